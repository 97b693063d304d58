"""The first stage: a dataset's own `scoreddocs` where `ir_datasets` ships them, else BM25 with `bm25s`.

The pruning study re-ranks the first-stage top-100 of each query, and NIG's non-relevant pairs are first-stage
top-k documents not judged relevant: both come from `first_stage_run`. A dataset with scoreddocs (the TREC DL
sets ship the BM25 top-1000 of each query) is never indexed: `first_stage_run` reads its run, so MS MARCO's
8.8M passages never enter memory (:func:`first_stage`, :func:`first_stage_name` say which a dataset uses).
Otherwise `bm25_run`: standard BM25 (bm25s defaults: Lucene scoring,
k1 = 1.5, b = 0.75) over `doc.default_text()`, lower-cased, split on `\\w\\w+`, English stopwords removed,
Snowball English stemming (PyStemmer). The index is built once per document collection (the subsets of
one dataset that share documents share it, e.g. `beir/nfcorpus/test` and `/dev`) and cached in
`<cache root>/bm25/<collection>/<key>/`, keyed by bm25s version and tokenizer settings (a checked cache entry,
see `neuron_ig.runtime.cache`). The documents are streamed into the index: one document's text at a time, its
token ids kept in one flat array (4 bytes a token), never every text or token list at once
(`benchmarks/bm25_scale.py` measures time and memory on a million documents).
"""
from __future__ import annotations

import functools
import hashlib
import json
from array import array
from pathlib import Path
from typing import NamedTuple

import bm25s
import ir_datasets
import numpy as np
from tqdm.auto import tqdm

from neuron_ig.ir.datasets import load_dataset
from neuron_ig.ir.embedded import COLLECTIONS, PREFIX, build_key
from neuron_ig.runtime import cache
from neuron_ig.runtime.cache import cache_root, write_folder_atomic

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


def tokenize(texts: list[str], progress: bool = False) -> list[list[str]]:
    stemmer = Stemmer.Stemmer(TOKENIZER["stemmer"]) if TOKENIZER["stemmer"] else None
    return bm25s.tokenize(texts, lower=TOKENIZER["lower"], token_pattern=TOKENIZER["token_pattern"],
                          stopwords=TOKENIZER["stopwords"], stemmer=stemmer, return_ids=False,
                          show_progress=progress)


def _index_dir(dataset_id: str) -> Path:
    collection = ir_datasets.parent_id(dataset_id, "docs")
    name = collection.removeprefix(f"{PREFIX}/")
    content = build_key(name) if collection.startswith(f"{PREFIX}/") and name in COLLECTIONS else ""
    settings = json.dumps({"bm25s": bm25s.__version__, "tokenizer": TOKENIZER, "content": content,
                           "build": "streamed"}, sort_keys=True)
    key = hashlib.sha256(settings.encode()).hexdigest()[:16]
    return cache_root() / "bm25" / collection.replace("/", "__") / key


def bm25_index(dataset_id: str) -> Bm25Index:
    """The BM25 index of the dataset's documents: loaded from the cache, or built and cached first."""
    path = _index_dir(dataset_id)
    with cache.computing(path) as done:  # checked against its manifest; one process builds it at a time
        if not done:
            _build(dataset_id, path)
    return _load(path)


class TokenIds:
    """The token ids of every document, in one flat ``array('I')`` plus offsets: a sequence of ``[tokens]``
    lists for ``bm25s.BM25.index``, made one list at a time while it iterates (it reads the corpus three times)."""

    def __init__(self):
        self.flat, self.offsets = array("I"), array("Q", [0])

    def append(self, ids: list[int]) -> None:
        self.flat.extend(ids)
        self.offsets.append(len(self.flat))

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __iter__(self):
        flat, offsets = self.flat, self.offsets
        for i in range(len(self)):
            yield flat[offsets[i]:offsets[i + 1]].tolist()


def streamed_index(texts, progress: bool = False) -> bm25s.BM25:
    """A bm25s index of ``texts`` (any iterable of strings, read once): each text is tokenised as it comes
    (:data:`TOKENIZER`: the same tokens as ``bm25s.tokenize``, hence the same scores) and only its token ids kept."""
    stemmer = Stemmer.Stemmer(TOKENIZER["stemmer"]) if TOKENIZER["stemmer"] else None
    tokenizer = bm25s.tokenization.Tokenizer(lower=TOKENIZER["lower"], splitter=TOKENIZER["token_pattern"],
                                             stopwords=TOKENIZER["stopwords"], stemmer=stemmer)
    ids = TokenIds()
    for doc_ids in tokenizer.streaming_tokenize(texts, allow_empty=False):  # no words: no tokens, as bm25s.tokenize
        ids.append(doc_ids)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=tokenizer.get_vocab_dict()), show_progress=progress,
                    leave_progress=False)
    return retriever


def _build(dataset_id: str, path: Path) -> None:
    """Index the dataset's documents into `path` (atomically: tmp folder, then rename), streaming them."""
    dataset = load_dataset(dataset_id, need=("docs",))
    doc_ids = []

    def texts():
        for doc in tqdm(dataset.docs_iter(), total=dataset.docs_count(), desc=f"indexing {dataset_id}",
                        mininterval=2, leave=False):
            doc_ids.append(doc.doc_id)
            yield doc.default_text()

    retriever = streamed_index(texts(), progress=dataset.docs_count() > 50_000)

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
    tokens = tokenize(list(queries.values()), progress=len(queries) > 1000)
    run = {}
    for query_id, query_tokens in tqdm(zip(queries, tokens), total=len(queries), desc=f"BM25 {dataset_id}",
                                       disable=len(queries) <= 1000, leave=False, mininterval=2):
        scores = index.retriever.get_scores_from_ids(index.retriever.get_tokens_ids(query_tokens))
        run[query_id] = {index.doc_ids[d]: float(scores[d]) for d in top_k(scores, k)}
    return run


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k highest non-zero scores, by decreasing score, then by row (ties broken the same way)."""
    rows = np.flatnonzero(scores)
    if len(rows) > k:
        rows = rows[scores[rows] >= np.partition(scores[rows], -k)[-k]]
    return rows[np.lexsort((rows, -scores[rows]))][:k]


# --- the first stage: the dataset's own run, or BM25 -------------------------------------------------

def first_stage(dataset_id: str) -> str:
    """``"scoreddocs"`` where ``ir_datasets`` ships a run of the dataset (``has_scoreddocs()``), else ``"bm25s"``."""
    return "scoreddocs" if load_dataset(dataset_id, need=()).has_scoreddocs() else "bm25s"


def first_stage_name(dataset_id: str) -> str:
    """How a page names the dataset's first stage, e.g. in a table's caption or column."""
    if first_stage(dataset_id) == "scoreddocs":
        return "the dataset's scoreddocs (the run ir_datasets ships with it: BM25's top 1,000 for the TREC DL passage sets)"
    return "BM25 (bm25s)"


def first_stage_run(dataset_id: str, k: int = 100, query_ids=None) -> dict[str, dict[str, float]]:
    """The first-stage top-k documents of the dataset's queries (all, or `query_ids`): {query_id: {doc_id: score}}.

    With scoreddocs (:func:`first_stage`): each query's top k of the shipped run, by decreasing score, ties in
    the run's order; where the run's scores do not order them (MS MARCO's top-1000 files carry none: all 0) the
    score is minus the rank (1-based), so that any measure sees the run's order. A query absent from the run gets
    an empty ranking. Without: :func:`bm25_run`.
    """
    if first_stage(dataset_id) == "bm25s":
        return bm25_run(dataset_id, k=k, query_ids=query_ids)
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    dataset = load_dataset(dataset_id)
    known = {q.query_id for q in dataset.queries_iter()}
    if query_ids is None:
        query_ids = sorted(known)
    query_ids = list(dict.fromkeys(query_ids))
    missing = [q for q in query_ids if q not in known]
    if missing:
        raise ValueError(f"{len(missing)} query ids not in {dataset_id} (e.g. {missing[0]!r}): "
                         f"pass ids from its queries_iter()")
    ranked = {q: [] for q in query_ids}
    for scored in dataset.scoreddocs_iter():
        if scored.query_id in ranked:
            ranked[scored.query_id].append((scored.doc_id, float(scored.score)))
    run = {}
    for query_id, ranking in ranked.items():
        top = sorted(ranking, key=lambda item: -item[1])[:k]  # stable: ties keep the run's order
        scores = [score for _, score in top]
        ordered = all(a > b for a, b in zip(scores, scores[1:]))
        run[query_id] = {doc_id: score if ordered else -float(rank) for rank, (doc_id, score) in enumerate(top, 1)}
    return run
