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


def rerank(encoder, dataset_id: str, *, depth: int = 100, max_queries: int = 1000, seed: int = 0,
           max_length: int = 128, batch_size: int = 64, progress: bool = True):
    """Re-rank the BM25 top ``depth`` of up to ``max_queries`` judged queries (drawn with ``seed``).

    Returns ``(bm25 run, model run)``, both ``{query_id: {doc_id: score}}``; the model's score is P(relevant).
    """
    import random

    from .data import load_dataset, relevant_qrels
    from .retrieval import bm25_run

    query_ids = sorted(relevant_qrels(dataset_id))
    if len(query_ids) > max_queries:
        query_ids = sorted(random.Random(seed).sample(query_ids, max_queries))
    first_stage = bm25_run(dataset_id, k=depth, query_ids=query_ids)
    dataset = load_dataset(dataset_id)
    wanted = set(first_stage)
    queries = {q.query_id: q.default_text() for q in dataset.queries_iter() if q.query_id in wanted}
    doc_ids = sorted({d for ranking in first_stage.values() for d in ranking})
    texts = {doc.doc_id: doc.default_text() for doc in dataset.docs_store().get_many_iter(doc_ids)}
    pairs = [(q, d) for q in sorted(first_stage) for d in first_stage[q]]
    scores = encoder.score([queries[q] for q, _ in pairs], [texts[d] for _, d in pairs],
                           max_length=max_length, batch_size=batch_size, progress=progress)
    return first_stage, rerank_run(dict(zip(pairs, scores.tolist())))


def pair_accuracy(encoder, dataset_id: str, *, n: int = 200, seed: int = 1, max_length: int = 128) -> dict[str, float]:
    """Share of ``n`` relevant and ``n`` non-relevant pairs (see ``relevance_pairs``) put in their own class."""
    from .data import relevance_pairs

    accuracy = {}
    for label, name in ((1, "relevant"), (0, "non-relevant")):
        pairs = relevance_pairs(dataset_id, n, label, seed=seed)
        relevance = encoder.score([p.query for p in pairs], [p.passage for p in pairs], max_length=max_length)
        accuracy[name] = float(((relevance > 0.5) == bool(label)).float().mean())
    return accuracy


def effectiveness(encoder, dataset_id: str, *, depth: int = 100, max_queries: int = 1000, n_pairs: int = 200,
                  seed: int = 0, max_length: int = 128, progress: bool = True) -> dict[str, float]:
    """BM25 and re-ranked nDCG@10 and RR@10, and pair accuracy per class, of ``encoder`` on a dataset.

    Cached by model fingerprint, dataset and every parameter (``<cache>/effectiveness/``).
    """
    from . import cache
    from .results import model_fingerprint

    parameters = {"model": encoder.name, "model_fingerprint": model_fingerprint(encoder.name), "dataset": dataset_id,
                  "depth": depth, "max_queries": max_queries, "n_pairs": n_pairs, "seed": seed, "max_length": max_length}
    path = cache.cache_root() / "effectiveness" / f"{cache.slug(dataset_id)}-{cache.parameters_key(parameters)}.json"
    if path.exists():
        return cache.load_json(path)["effectiveness"]
    bm25, model = rerank(encoder, dataset_id, depth=depth, max_queries=max_queries, seed=seed, max_length=max_length, progress=progress)
    qrels = qrels_dict(dataset_id)
    values = {"queries": len(bm25)}
    values.update({f"BM25 {m}": v for m, v in evaluate(bm25, qrels).items()})
    values.update({f"re-ranked {m}": v for m, v in evaluate(model, qrels).items()})
    values.update({f"accuracy {k}": v for k, v in pair_accuracy(encoder, dataset_id, n=n_pairs, seed=seed + 1, max_length=max_length).items()})
    cache.save_json(path, {"parameters": parameters, "effectiveness": values})
    return values
