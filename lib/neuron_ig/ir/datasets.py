"""Datasets by `ir_datasets` id.

Importing this module registers the embedded collections (`neuron-ig/gcide/{train,dev,test}`,
`neuron-ig/hpo/test`, `neuron-ig/pystdlib/test`: see `neuron_ig.ir.embedded`), so that any id, embedded or
real (`cranfield`, `beir/nfcorpus/test`, `msmarco-passage/trec-dl-2019/judged`), loads the same way; an unknown
id is a one-line error naming the closest registered ids. The relevance pairs are :mod:`neuron_ig.ir.pairs`.
"""
from __future__ import annotations

import difflib
import hashlib
import json

import ir_datasets

from neuron_ig.ir import embedded  # noqa: F401  (registers the embedded collections)
from neuron_ig.ir.embedded import COLLECTIONS, PREFIX, build_key
from neuron_ig.ir.grades import is_relevant
from neuron_ig.ir.grades import min_grade as minimum_of

PARTS = ("docs", "queries", "qrels")


def _has(dataset, part: str) -> bool:
    return getattr(dataset, f"has_{part}")()


def _complete_ids(prefix: str = "") -> list[str]:
    """Registered ids starting with `prefix` whose dataset has docs, queries and qrels."""
    ids = [i for i in ir_datasets.registry._registered if i.startswith(prefix)]
    return [i for i in ids if all(_has(ir_datasets.registry._registered[i], p) for p in PARTS)]


def _one_of(ids: list[str]) -> str:
    """'a', 'b' or 'c'"""
    quoted = [repr(i) for i in ids]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)


def load_dataset(dataset_id: str, need=PARTS):
    """`ir_datasets.load(dataset_id)`, refusing unknown ids and datasets without the parts in `need`."""
    try:
        dataset = ir_datasets.load(dataset_id)
    except KeyError:
        close = difflib.get_close_matches(dataset_id, _complete_ids(), n=3, cutoff=0.6)
        hint = f": did you mean {_one_of(close)}?" if close else ""
        raise ValueError(f"unknown dataset id {dataset_id!r}{hint} (ir_datasets ids are listed by "
                         f"`ir_datasets list`)") from None
    missing = [p for p in need if not _has(dataset, p)]
    if missing:
        subsets = _complete_ids(f"{dataset_id}/")[:3]
        hint = f", e.g. {_one_of(subsets)}" if subsets else ""
        raise ValueError(f"dataset {dataset_id!r} has no {' or '.join(missing)}: use an id that has docs, "
                         f"queries and qrels{hint}")
    return dataset


def collection_fingerprint(dataset_id: str) -> str:
    """sha256 of the dataset's docs, queries and qrels (each sorted by id), to tell two builds apart."""
    dataset = load_dataset(dataset_id)
    digest = hashlib.sha256()
    for part in PARTS:
        records = sorted(json.dumps(list(r), ensure_ascii=False) for r in getattr(dataset, f"{part}_iter")())
        digest.update(f"{part}:{len(records)}\n".encode())
        for record in records:
            digest.update(record.encode("utf-8") + b"\n")
    return digest.hexdigest()


def collection_key(dataset_id: str) -> str:
    """What identifies the content of a dataset for cache keys: the build of an embedded collection
    (``neuron-ig/...``, which the project may rebuild differently), else the ``ir_datasets`` id itself."""

    name = dataset_id.removeprefix(f"{PREFIX}/").split("/")[0]
    return f"{dataset_id}@{build_key(name)}" if dataset_id.startswith(f"{PREFIX}/") and name in COLLECTIONS else dataset_id


def relevant_qrels(dataset_id: str, min_grade=None) -> dict[str, set[str]]:
    """{query_id: doc ids judged relevant} for queries that have at least one: the judged queries.

    Relevant: a grade at or above the dataset's minimum (:func:`neuron_ig.ir.grades.min_grade`, ``min_grade``:
    None for the documented table, an int, or ``{dataset id: grade}``).
    """

    minimum = minimum_of(dataset_id, min_grade)
    relevant = {}
    for qrel in load_dataset(dataset_id).qrels_iter():
        if is_relevant(qrel.relevance, minimum):
            relevant.setdefault(qrel.query_id, set()).add(qrel.doc_id)
    return relevant


