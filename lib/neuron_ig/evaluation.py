"""Ranking effectiveness through `ir_measures`: nDCG@10 (the pruning study's measure), RR@10, per query.

A run is `{query_id: {doc_id: score}}` (higher is better), qrels `{query_id: {doc_id: relevance}}`.
As trec_eval does, a measure is averaged over the run's queries that have qrels; a query of the run whose
ranking is empty counts 0 (trec_eval would drop it). Gains are the relevance grades (trec_eval's nDCG);
RR counts relevance >= 1.
"""
from __future__ import annotations

from collections.abc import Mapping

import ir_measures

from .data import load_dataset


def qrels_dict(dataset_id: str) -> dict[str, dict[str, int]]:
    """The dataset's qrels as {query_id: {doc_id: relevance}}."""
    qrels = {}
    for qrel in load_dataset(dataset_id).qrels_iter():
        qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    return qrels


def _per_query(run, qrels, measures) -> dict[str, dict[str, float]]:
    """{measure name: {query_id: value}} over the run's queries that have qrels."""
    measures = {m: ir_measures.parse_measure(m) for m in measures}
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


def per_query(run, qrels, measure: str = "nDCG@10") -> dict[str, float]:
    """{query_id: value of `measure`} for the run's queries that have qrels (for paired tests)."""
    return _per_query(run, qrels, [measure])[measure]


def evaluate(run, qrels, measures=("nDCG@10", "RR@10")) -> dict[str, float]:
    """{measure: mean over the run's queries that have qrels}, measures named as `ir_measures` does."""
    return {name: sum(v.values()) / len(v) for name, v in _per_query(run, qrels, measures).items()}


def ndcg_at_10(run, qrels) -> float:
    """Mean nDCG@10 of the run over its queries that have qrels."""
    return evaluate(run, qrels, ("nDCG@10",))["nDCG@10"]


def rerank_run(scores: Mapping[tuple[str, str], float]) -> dict[str, dict[str, float]]:
    """A run from model scores {(query_id, doc_id): score}: {query_id: {doc_id: score}}."""
    run = {}
    for (query_id, doc_id), score in scores.items():
        run.setdefault(query_id, {})[doc_id] = float(score)
    return run
