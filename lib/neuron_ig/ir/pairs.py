"""The (query, passage) relevance pairs that NIG attributes (the "Data" setting of REPRODUCTION.md).

N relevant and N non-relevant pairs per dataset, fixed seed; relevant = qrels at or above the dataset's minimum
grade (:mod:`neuron_ig.ir.grades`); non-relevant = first-stage top-k documents of a judged query that are not
judged relevant for it (:func:`neuron_ig.ir.retrieval.first_stage_run`: the dataset's own scoreddocs where it
ships them, else BM25). Pairs come from the selection part of the queries (:mod:`neuron_ig.ir.query_split`).
"""
from __future__ import annotations

import random
from typing import NamedTuple

from neuron_ig.ir.datasets import load_dataset, relevant_qrels
from neuron_ig.ir.query_split import queries_in_part
from neuron_ig.ir.retrieval import first_stage_run


class Pair(NamedTuple):
    """One (query, passage) pair with its class: 1 = relevant, 0 = non-relevant."""
    query_id: str
    doc_id: str
    query: str
    passage: str
    label: int


def _round_robin(order: list[str], candidates: dict[str, list[str]], per_query):
    """(query, doc): the first candidate of each query in `order`, then the second of each, and so on."""
    depth = 0
    while per_query is None or depth < per_query:
        layer = [(q, candidates[q][depth]) for q in order if len(candidates.get(q, ())) > depth]
        if not layer:
            return
        yield from layer
        depth += 1


def relevance_pairs(dataset_id: str, n: int, label: int, seed: int = 0, bm25_depth: int = 100,
                    max_pairs_per_query: int | None = None, part: str | None = "selection",
                    min_grade=None, draw_order: bool = False) -> list[Pair]:
    """n (query, passage) pairs of class `label` from the dataset, the same for the same seed.

    label 1: (query, document) judged relevant (grade >= the dataset's minimum, see `relevant_qrels` and
    `min_grade`). label 0: a document in the query's first-stage top `bm25_depth`
    (:func:`neuron_ig.ir.retrieval.first_stage_run`) that is not judged relevant, for queries with at least one
    relevant document.
    Pairs are spread over queries: queries are shuffled with `seed`, each query's candidates too, and
    pairs are taken one per query, then a second per query, ... up to `max_pairs_per_query` (None: no
    limit). Returned deduplicated and sorted by (query_id, doc_id); texts are `default_text()`. With
    `draw_order`, in the order drawn instead, and fewer than n where the dataset has fewer (no error).
    Only queries of the `part` of :func:`neuron_ig.ir.query_split.queries_in_part` are used (default "selection":
    the queries whose pruning the book evaluates are never used to select neurons; None: every query).
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if label not in (0, 1):
        raise ValueError(f"label must be 1 (relevant) or 0 (non-relevant), got {label!r}")
    if max_pairs_per_query is not None and max_pairs_per_query <= 0:
        raise ValueError(f"max_pairs_per_query must be positive or None, got {max_pairs_per_query}")
    dataset = load_dataset(dataset_id)
    queries = {q.query_id: q.default_text() for q in dataset.queries_iter()}
    relevant = relevant_qrels(dataset_id, min_grade)
    rng = random.Random(seed)

    order = queries_in_part(sorted(q for q in relevant if q in queries), part)
    rng.shuffle(order)
    if label == 1:
        candidates = {q: rng.sample(sorted(relevant[q]), len(relevant[q])) for q in order}
    else:

        candidates, chunk = {}, max(n, 256)
        for start in range(0, len(order), chunk):  # retrieve for only as many queries as needed
            run = first_stage_run(dataset_id, k=bm25_depth, query_ids=order[start:start + chunk])
            for q, ranking in run.items():
                negatives = sorted(d for d in ranking if d not in relevant[q])
                candidates[q] = rng.sample(negatives, len(negatives))
            if sum(1 for c in candidates.values() if c) >= n:
                break
    docs = dataset.docs_store()
    chosen, texts = [], {}
    for query_id, doc_id in _round_robin(order, candidates, max_pairs_per_query):
        if len(chosen) == n:
            break
        if doc_id not in texts:  # qrels may name documents missing from the collection: skip those
            found = docs.get_many([doc_id])
            texts[doc_id] = found[doc_id].default_text() if doc_id in found else None
        if texts[doc_id] is not None:
            chosen.append((query_id, doc_id))
    if len(chosen) < n and not draw_order:
        limit = "" if max_pairs_per_query is None else f" with at most {max_pairs_per_query} per query"
        raise ValueError(f"{dataset_id} has only {len(chosen)} {'relevant' if label else 'non-relevant'} pairs"
                         f"{limit}, {n} asked: lower n" + (" or raise max_pairs_per_query" if limit else ""))
    return [Pair(q, d, queries[q], texts[d], label) for q, d in (chosen if draw_order else sorted(chosen))]


def example_pairs(dataset_id: str, seed: int = 0, bm25_depth: int = 100, min_grade=None) -> tuple[Pair, Pair]:
    """One query with a relevant and a non-relevant passage: ``(relevant pair, non-relevant pair)``.

    The query is drawn with ``seed`` among judged queries whose first-stage top ``bm25_depth``
    (:func:`neuron_ig.ir.retrieval.first_stage_run`) holds a document not judged relevant (``min_grade``: see
    :func:`relevant_qrels`); the non-relevant passage is the highest-ranked such document (the hardest one).
    """

    relevant = relevant_qrels(dataset_id, min_grade)
    order = sorted(relevant)
    random.Random(seed).shuffle(order)
    for start in range(0, len(order), 32):
        run = first_stage_run(dataset_id, k=bm25_depth, query_ids=order[start:start + 32])
        for query_id in order[start:start + 32]:
            ranking = sorted(run.get(query_id, {}).items(), key=lambda item: (-item[1], item[0]))
            negatives = [doc_id for doc_id, _ in ranking if doc_id not in relevant[query_id]]
            if negatives:
                dataset = load_dataset(dataset_id)
                query = next(q.default_text() for q in dataset.queries_iter() if q.query_id == query_id)
                positives = sorted(relevant[query_id])
                docs = dataset.docs_store().get_many([*positives, negatives[0]])
                positive_id = next((d for d in positives if d in docs), None)
                if positive_id is not None and negatives[0] in docs:
                    return (Pair(query_id, positive_id, query, docs[positive_id].default_text(), 1),
                            Pair(query_id, negatives[0], query, docs[negatives[0]].default_text(), 0))
    raise ValueError(f"{dataset_id} has no judged query with a non-relevant document in its first-stage top {bm25_depth}: "
                     "raise bm25_depth or pick another dataset")


def pair_texts(dataset_id: str, query_ids, doc_ids) -> list[tuple[str, str]]:
    """The ``(query, passage)`` texts of pairs given by their ids, as :func:`relevance_pairs` makes them
    (``default_text()``), in the order given.

    Raises:
        ValueError: an id that the dataset does not hold.
    """
    dataset = load_dataset(dataset_id)
    wanted = set(map(str, query_ids))
    queries = {q.query_id: q.default_text() for q in dataset.queries_iter() if q.query_id in wanted}
    docs = dataset.docs_store().get_many(sorted(set(map(str, doc_ids))))
    missing = sorted(wanted - set(queries))[:1] or [d for d in map(str, doc_ids) if d not in docs][:1]
    if missing:
        raise ValueError(f"{dataset_id} has no query or document {missing[0]!r}: are these ids of another dataset?")
    return [(queries[str(q)], docs[str(d)].default_text()) for q, d in zip(query_ids, doc_ids, strict=True)]


def mismatched_pairs(dataset_id: str, pairs, seed: int = 0, min_grade=None) -> list[Pair]:
    """The control pairs of ``pairs`` (relevant pairs of ``dataset_id``): each passage kept, given the query of another
    pair of the list, one that does not judge it relevant (label 0), in the order of ``pairs``.

    A query is there but is not the passage's: a neuron that answers "a query is there" fires on these as on the
    relevant pairs, one that answers "the query is relevant" as on non-relevant pairs. The queries are the pairs'
    own, permuted (a seeded shuffle, then the smallest cyclic shift under which no pair keeps its query or meets a
    query that judges its passage relevant), so the mismatched pairs have the same queries and passages as ``pairs``.

    Raises:
        ValueError: fewer than two distinct queries, or no shift that mismatches every pair.
    """
    pairs = list(pairs)
    if len({p.query_id for p in pairs}) < 2:
        raise ValueError(f"mismatched pairs need relevant pairs of at least two queries of {dataset_id}, got "
                         f"{len({p.query_id for p in pairs})}: draw more pairs")
    relevant = relevant_qrels(dataset_id, min_grade)
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    for shift in range(1, len(order)):
        given = {order[k]: pairs[order[(k + shift) % len(order)]] for k in range(len(order))}
        if all(given[i].query_id != p.query_id and p.doc_id not in relevant.get(given[i].query_id, ())
               for i, p in enumerate(pairs)):
            return [Pair(given[i].query_id, p.doc_id, given[i].query, p.passage, 0) for i, p in enumerate(pairs)]
    raise ValueError(f"no permutation of the {len(pairs)} pairs' queries of {dataset_id} mismatches every passage: "
                     "draw pairs of more queries")
