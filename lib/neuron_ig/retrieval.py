"""BM25 first-stage retrieval with `bm25s`, over the documents of any `ir_datasets` dataset.

The pruning study re-ranks the BM25 top-100 of each query, and NIG's non-relevant pairs are BM25 top-k
documents not judged relevant: both come from `bm25_run`. Standard BM25 (bm25s defaults: Lucene scoring,
k1 = 1.5, b = 0.75) over `doc.default_text()`, lower-cased, split on `\\w\\w+`, English stopwords removed,
Snowball English stemming (PyStemmer). The index is built once per document collection (the subsets of
one dataset that share documents share it, e.g. `beir/nfcorpus/test` and `/dev`) and cached in
`<cache root>/bm25/<collection>/<key>/`, keyed by bm25s version and tokenizer settings (a checked cache entry,
see `neuron_ig.cache`).
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import bm25s
import ir_datasets
import numpy as np
from tqdm.auto import tqdm

from . import cache
from .cache import cache_root, write_folder_atomic
from .data import load_dataset
from .embedded import COLLECTIONS, PREFIX, build_key

try:
    import Stemmer
except ImportError:  # PyStemmer is a dependency; without it BM25 runs unstemmed (and is cached apart)
    Stemmer = None

TOKENIZER = {"lower": True, "token_pattern": r"(?u)\b\w\w+\b", "stopwords": "en",
             "stemmer": "english" if Stemmer else None}


class Bm25Index(NamedTuple):
    """A bm25s retriever and the doc id of each of its rows."""
    retriever: bm25s.BM25
    doc_ids: list[str]


def _tokenize(texts: list[str], progress: bool = False) -> list[list[str]]:
    stemmer = Stemmer.Stemmer(TOKENIZER["stemmer"]) if TOKENIZER["stemmer"] else None
    return bm25s.tokenize(texts, lower=TOKENIZER["lower"], token_pattern=TOKENIZER["token_pattern"],
                          stopwords=TOKENIZER["stopwords"], stemmer=stemmer, return_ids=False,
                          show_progress=progress)


def _index_dir(dataset_id: str) -> Path:
    collection = ir_datasets.parent_id(dataset_id, "docs")
    name = collection.removeprefix(f"{PREFIX}/")
    content = build_key(name) if collection.startswith(f"{PREFIX}/") and name in COLLECTIONS else ""
    settings = json.dumps({"bm25s": bm25s.__version__, "tokenizer": TOKENIZER, "content": content}, sort_keys=True)
    key = hashlib.sha256(settings.encode()).hexdigest()[:16]
    return cache_root() / "bm25" / collection.replace("/", "__") / key


def bm25_index(dataset_id: str) -> Bm25Index:
    """The BM25 index of the dataset's documents: loaded from the cache, or built and cached first."""
    path = _index_dir(dataset_id)
    with cache.computing(path) as done:  # checked against its manifest; one process builds it at a time
        if not done:
            _build(dataset_id, path)
    return _load(path)


def _build(dataset_id: str, path: Path) -> None:
    """Index the dataset's documents into `path` (atomically: tmp folder, then rename)."""
    dataset = load_dataset(dataset_id, need=("docs",))
    doc_ids, texts = [], []
    for doc in tqdm(dataset.docs_iter(), total=dataset.docs_count(), desc=f"reading {dataset_id}",
                    mininterval=2, leave=False):
        doc_ids.append(doc.doc_id)
        texts.append(doc.default_text())
    big = len(texts) > 50_000
    retriever = bm25s.BM25()
    retriever.index(_tokenize(texts, progress=big), show_progress=big, leave_progress=False)

    def write(folder: Path) -> None:
        retriever.save(str(folder))
        (folder / "doc_ids.json").write_text(json.dumps(doc_ids), encoding="utf-8")

    write_folder_atomic(path, write)


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> Bm25Index:
    doc_ids = json.loads((path / "doc_ids.json").read_text(encoding="utf-8"))
    return Bm25Index(bm25s.BM25.load(str(path)), doc_ids)


def bm25_run(dataset_id: str, k: int = 100, query_ids=None) -> dict[str, dict[str, float]]:
    """BM25 top-k documents of the dataset's queries (all, or `query_ids`): {query_id: {doc_id: score}}.

    Documents that share no word with the query (score 0) are left out, so a query may get fewer than k,
    and a query none of whose words is in the collection gets an empty ranking.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    queries = {q.query_id: q.default_text() for q in load_dataset(dataset_id).queries_iter()}
    if query_ids is not None:
        query_ids = list(dict.fromkeys(query_ids))
        missing = [q for q in query_ids if q not in queries]
        if missing:
            raise ValueError(f"{len(missing)} query ids not in {dataset_id} (e.g. {missing[0]!r}): "
                             f"pass ids from its queries_iter()")
        queries = {q: queries[q] for q in query_ids}
    index = bm25_index(dataset_id)
    tokens = _tokenize(list(queries.values()), progress=len(queries) > 1000)
    run = {}
    for query_id, query_tokens in tqdm(zip(queries, tokens), total=len(queries), desc=f"BM25 {dataset_id}",
                                       disable=len(queries) <= 1000, leave=False, mininterval=2):
        scores = index.retriever.get_scores_from_ids(index.retriever.get_tokens_ids(query_tokens))
        run[query_id] = {index.doc_ids[d]: float(scores[d]) for d in _top_k(scores, k)}
    return run


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k highest non-zero scores, by decreasing score, then by row (ties broken the same way)."""
    rows = np.flatnonzero(scores)
    if len(rows) > k:
        rows = rows[scores[rows] >= np.partition(scores[rows], -k)[-k]]
    return rows[np.lexsort((rows, -scores[rows]))][:k]
