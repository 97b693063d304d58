"""Ranking effectiveness through `ir_measures`: nDCG@10 (the pruning study's measure), RR@10, per query.

A run is `{query_id: {doc_id: score}}` (higher is better), qrels `{query_id: {doc_id: relevance}}`.
As trec_eval does, a measure is averaged over the run's queries that have qrels; a query of the run whose
ranking is empty counts 0 (trec_eval would drop it). Gains are the relevance grades (trec_eval's nDCG);
RR, like every binary measure, counts a grade >= the collection's minimum (`min_grade`, :mod:`neuron_ig.ir.grades`:
``RR(rel=2)@10`` on TREC DL passages), reported under the name asked (``RR@10``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ir_measures
import numpy as np

from neuron_ig.ir.datasets import load_dataset, relevant_qrels
from neuron_ig.ir.grades import binary_measure
from neuron_ig.ir.grades import min_grade as minimum_of
from neuron_ig.ir.query_split import queries_in_part
from neuron_ig.ir.retrieval import first_stage, first_stage_run


def qrels_dict(dataset_id: str) -> dict[str, dict[str, int]]:
    """The dataset's qrels as {query_id: {doc_id: relevance}}."""
    qrels = {}
    for qrel in load_dataset(dataset_id).qrels_iter():
        qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    return qrels


def per_query_measures(run, qrels, measures, min_grade: int = 1) -> dict[str, dict[str, float]]:
    """{measure name: {query_id: value}} over the run's queries that have qrels, in one `ir_measures` pass.

    ``min_grade``: the lowest grade a binary measure (RR) counts relevant (:func:`neuron_ig.ir.grades.min_grade` of
    the dataset); graded measures (nDCG) ignore it.
    """

    measures = {m: binary_measure(m, min_grade) for m in measures}
    query_ids = [q for q in run if q in qrels]
    if not query_ids:
        raise ValueError(f"the run and the qrels share no query id (run: {list(run)[:3]}, qrels: "
                         f"{list(qrels)[:3]}): evaluate a run against the qrels of its own dataset")
    values = {name: dict.fromkeys(query_ids, 0.0) for name in measures}
    names = {measure: name for name, measure in measures.items()}
    judged = {q: qrels[q] for q in query_ids}
    ranked = {q: {d: float(s) for d, s in run[q].items()} for q in query_ids if run[q]}
    for result in ir_measures.iter_calc(list(measures.values()), judged, ranked):
        values[names[result.measure]][result.query_id] = result.value
    return values


def per_query(run, qrels, measure: str = "nDCG@10", min_grade: int = 1) -> dict[str, float]:
    """{query_id: value of `measure`} for the run's queries that have qrels (for paired tests)."""
    return per_query_measures(run, qrels, [measure], min_grade)[measure]


def evaluate(run, qrels, measures=("nDCG@10", "RR@10"), min_grade: int = 1) -> dict[str, float]:
    """{measure: mean over the run's queries that have qrels}, measures named as `ir_measures` does
    (``min_grade``: see :func:`per_query_measures`)."""
    return {name: sum(v.values()) / len(v) for name, v in per_query_measures(run, qrels, measures, min_grade).items()}


def first_stage_key(dataset_id: str, min_grade=None) -> dict:
    """What a cached result adds to its key for the dataset's relevance and first stage: ``min_grade`` where
    it is not 1 and ``first_stage`` where it is not bm25s, so that keys made before either existed stay valid."""

    minimum, stage = minimum_of(dataset_id, min_grade), first_stage(dataset_id)
    return {**({"min_grade": minimum} if minimum != 1 else {}), **({"first_stage": stage} if stage != "bm25s" else {})}


def ndcg_at_10(run, qrels) -> float:
    """Mean nDCG@10 of the run over its queries that have qrels."""
    return evaluate(run, qrels, ("nDCG@10",))["nDCG@10"]


def collection_summary(dataset_id: str, depth: int = 100, min_grade=None) -> dict:
    """One row of the collections page: sizes, and the first stage's effectiveness on the judged queries.

    ``documents``, ``queries``, ``qrels`` (judgements), ``relevant grade`` (the minimum,
    :func:`neuron_ig.ir.grades.min_grade`), ``first stage`` (:func:`neuron_ig.ir.retrieval.first_stage`: ``bm25s`` or
    ``scoreddocs``), then ``BM25 nDCG@10`` and ``BM25 RR@10`` of
    :func:`neuron_ig.ir.retrieval.first_stage_run` (top ``depth``: bm25s, or the BM25 run the dataset ships, see
    :func:`neuron_ig.ir.retrieval.first_stage_name`) over the queries that have qrels, RR at the dataset's minimum
    grade (``min_grade``: :func:`neuron_ig.ir.grades.min_grade`). Works for any ``ir_datasets`` id with documents,
    queries and qrels, embedded or not.
    """

    dataset = load_dataset(dataset_id)
    qrels = qrels_dict(dataset_id)
    minimum = minimum_of(dataset_id, min_grade)
    measures = evaluate(first_stage_run(dataset_id, k=depth), qrels, min_grade=minimum)
    return {"documents": dataset.docs_count(), "queries": sum(1 for _ in dataset.queries_iter()),
            "qrels": sum(len(judged) for judged in qrels.values()), "relevant grade": minimum,
            "first stage": first_stage(dataset_id),
            "BM25 nDCG@10": measures["nDCG@10"], "BM25 RR@10": measures["RR@10"]}


def rerank_run(scores: Mapping[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    """A run from model scores {(query_id, doc_id): score}: {query_id: {doc_id: score}}."""
    run = {}
    for (query_id, doc_id), score in scores.items():
        run.setdefault(query_id, {})[doc_id] = float(score)
    return run


@dataclass
class RerankInputs:
    """A re-ranking task: the first-stage top ``depth`` of some judged queries, tokenised once for every model variant.

    Attributes:
        dataset_id: the ``ir_datasets`` id.
        first_stage: the first-stage run ``{query_id: {doc_id: score}}`` (:func:`neuron_ig.ir.retrieval.first_stage_run`).
        pairs: ``[(query_id, doc_id)]``, the pairs to score, query by query.
        batches: the pairs tokenised by :func:`neuron_ig.engine.encoding.encode_batches` (indices into ``pairs``).
        qrels: ``{query_id: {doc_id: relevance}}`` of the dataset.
        parameters: what defines the task (dataset, depth, max_queries, seed, max_length, and the minimum grade
            and first stage where not the defaults, :func:`first_stage_key`) and a hash of the pairs.
        min_grade: the lowest grade counted relevant (RR@10, :func:`neuron_ig.ir.grades.min_grade`).
    """

    dataset_id: str
    first_stage: dict
    pairs: list
    batches: list
    qrels: dict
    parameters: dict
    min_grade: int = 1

    def run(self, scores) -> dict[str, dict[str, float]]:
        """The run of one score per pair (``[pairs]``, in ``pairs`` order)."""
        return rerank_run(dict(zip(self.pairs, np.asarray(scores, dtype=float).tolist())))


def rerank_query_ids(dataset_id: str, max_queries: int, seed: int = 0, part: str | None = None,
                     min_grade=None) -> list[str]:
    """The judged queries a re-ranking evaluates: all, or ``max_queries`` of them drawn with ``seed``, sorted.

    ``part``: only the queries of that side of :func:`neuron_ig.ir.query_split.queries_in_part` (None: every query).
    Judged: a document at the minimum grade (:func:`neuron_ig.ir.datasets.relevant_qrels`, ``min_grade``).

    Raises:
        ValueError: ``max_queries`` is not a positive int.
    """
    import random


    if isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 1:
        raise ValueError(f"max_queries must be a positive int, got {max_queries!r}: the paper-scale parameters re-rank the BM25 top 100 of up to 1,000 queries")

    query_ids = queries_in_part(sorted(relevant_qrels(dataset_id, min_grade)), part)
    if not query_ids:
        raise ValueError(f"{dataset_id} has no judged query in the {part!r} part: use part=None (every query)")
    if len(query_ids) > max_queries:
        query_ids = sorted(random.Random(seed).sample(query_ids, max_queries))
    return query_ids


# --- is the model a stand-in for MonoBERT? -----------------------------------------------------------


# --- paired significance over queries --------------------------------------------------------------


