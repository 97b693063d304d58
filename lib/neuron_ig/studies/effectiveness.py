"""How well a cross-encoder ranks and classifies a collection: re-ranking the first stage's top-k
(:func:`rerank`, nDCG@10 and RR@10), the share of each class's pairs it puts in their own class
(:func:`pair_accuracy`, :func:`class_accuracy`), calibration (:func:`reliability`) and the stand-in targets a
model must meet for a collection's verdicts to count (:data:`STAND_IN_TARGETS`, :func:`stand_in_checks`).
Results are cached per model fingerprint and parameters.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from neuron_ig.engine.encoding import encode_batches
from neuron_ig.engine.models import model_fingerprint
from neuron_ig.ir.datasets import load_dataset
from neuron_ig.ir.grades import min_grade as minimum_of
from neuron_ig.ir.measures import (
    RerankInputs,
    evaluate,
    first_stage_key,
    per_query,
    qrels_dict,
    rerank_query_ids,
)
from neuron_ig.ir.pairs import relevance_pairs
from neuron_ig.ir.query_split import informative_queries
from neuron_ig.ir.retrieval import first_stage_run
from neuron_ig.runtime import cache


def rerank_inputs(tokenizer, dataset_id: str, *, depth: int = 100, max_queries: int = 1000, seed: int = 0,
                  max_length: int = 128, batch_size: int = 64, part: str | None = None, min_grade=None) -> RerankInputs:
    """The first-stage top ``depth`` of up to ``max_queries`` judged queries (drawn with ``seed``), tokenised.

    ``part``: draw the queries from that side of :func:`neuron_ig.ir.query_split.queries_in_part` only
    (``"evaluation"`` for the pruning study: queries no selected neuron was chosen on; default None: every query).
    ``min_grade``: None (the table of :mod:`neuron_ig.ir.grades`), an int or ``{dataset id: grade}``.

    Raises:
        ValueError: ``depth`` or ``max_queries`` is not a positive int.
    """

    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}: the paper-scale parameters re-rank the BM25 top 100 of up to 1,000 queries")
    query_ids = rerank_query_ids(dataset_id, max_queries, seed, part=part, min_grade=min_grade)
    first_stage = first_stage_run(dataset_id, k=depth, query_ids=query_ids)
    parameters = {"dataset": dataset_id, "depth": depth, "max_queries": max_queries, "seed": seed,
                  "max_length": max_length, "part": part, **first_stage_key(dataset_id, min_grade)}
    return _tokenised(tokenizer, dataset_id, first_stage, parameters, batch_size, minimum_of(dataset_id, min_grade))


def informative_part(inputs: RerankInputs, tokenizer, batch_size: int = 64) -> tuple[RerankInputs, np.ndarray]:
    """The task restricted to its informative queries (a document of positive grade among the candidates), and
    the positions of its pairs in ``inputs.pairs``: ``(RerankInputs, [informative pairs] int)``.

    Every measure of the other queries is 0 whatever the scores (no document with a gain to rank), so a pruned
    model needs to score only these pairs: the pruning study's deltas are the same, for a fraction of the work.
    """

    keep = set(informative_queries(inputs.first_stage, inputs.qrels))
    first_stage = {q: ranking for q, ranking in inputs.first_stage.items() if q in keep}
    parameters = {k: v for k, v in inputs.parameters.items() if k != "pairs_fingerprint"}
    part = _tokenised(tokenizer, inputs.dataset_id, first_stage, dict(parameters, queries="informative"), batch_size,
                      inputs.min_grade, qrels=inputs.qrels)
    position = {pair: i for i, pair in enumerate(inputs.pairs)}
    return part, np.array([position[pair] for pair in part.pairs], dtype=int)


def _tokenised(tokenizer, dataset_id: str, first_stage: dict, parameters: dict, batch_size: int, min_grade: int,
               qrels: dict | None = None) -> RerankInputs:
    """The RerankInputs of a first-stage run: its pairs query by query, tokenised, and their fingerprint."""
    import hashlib


    dataset = load_dataset(dataset_id)
    queries = {q.query_id: q.default_text() for q in dataset.queries_iter() if q.query_id in first_stage}
    doc_ids = sorted({d for ranking in first_stage.values() for d in ranking})
    texts = {doc.doc_id: doc.default_text() for doc in dataset.docs_store().get_many_iter(doc_ids)}
    pairs = [(q, d) for q in sorted(first_stage) for d in first_stage[q]]
    batches = encode_batches(tokenizer, [queries[q] for q, _ in pairs], [texts[d] for _, d in pairs],
                             parameters["max_length"], batch_size)
    digest = hashlib.sha256("\n".join(f"{q}\t{d}\t{queries[q]}\t{texts[d]}" for q, d in pairs).encode()).hexdigest()[:16]
    return RerankInputs(dataset_id, first_stage, pairs, batches, qrels_dict(dataset_id) if qrels is None else qrels,
                        dict(parameters, pairs_fingerprint=digest), min_grade)


def rerank(encoder, dataset_id: str, *, depth: int = 100, max_queries: int = 1000, seed: int = 0,
           max_length: int = 128, batch_size: int = 64, progress: bool = True, min_grade=None,
           informative_only: bool = False):
    """Re-rank the first-stage top ``depth`` of up to ``max_queries`` judged queries (drawn with ``seed``).

    Returns ``(first-stage run, model run)``, both ``{query_id: {doc_id: score}}``; the model's score is the
    log-odds of relevance (ordered as P(relevant), without ties at P = 1). ``informative_only``: the model
    scores only the candidates of the informative queries (:func:`informative_part`); the others keep their
    first-stage order in the model run, which changes none of the measures (they are 0 whatever the order).
    """
    inputs = rerank_inputs(encoder.tokenizer, dataset_id, depth=depth, max_queries=max_queries, seed=seed,
                           max_length=max_length, batch_size=batch_size, min_grade=min_grade)
    if not informative_only:
        return inputs.first_stage, inputs.run(encoder.score_batches(inputs.batches, progress=progress, log_odds=True))
    part, _ = informative_part(inputs, encoder.tokenizer, batch_size)
    scores = encoder.score_batches(part.batches, progress=progress, log_odds=True)
    return inputs.first_stage, {**inputs.first_stage, **part.run(scores)}


def pair_probabilities(encoder, dataset_id: str, *, n: int = 200, seed: int = 1, max_length: int = 128, min_grade=None):
    """P(relevant) of ``n`` relevant and ``n`` non-relevant pairs (see ``relevance_pairs``, relevant at
    ``min_grade``): ``(p [2n], labels [2n])``."""

    pairs = (relevance_pairs(dataset_id, n, 1, seed=seed, min_grade=min_grade)
             + relevance_pairs(dataset_id, n, 0, seed=seed, min_grade=min_grade))
    relevance = encoder.score([p.query for p in pairs], [p.passage for p in pairs], max_length=max_length)
    return relevance.numpy(), np.array([p.label for p in pairs])


def pair_accuracy(encoder, dataset_id: str, *, n: int = 200, seed: int = 1, max_length: int = 128,
                  min_grade=None) -> dict[str, float]:
    """Share of ``n`` relevant and ``n`` non-relevant pairs (see ``relevance_pairs``) put in their own class."""
    return class_accuracy(*pair_probabilities(encoder, dataset_id, n=n, seed=seed, max_length=max_length, min_grade=min_grade))


def class_accuracy(probabilities, labels) -> dict[str, float]:
    """{"relevant": share of relevant pairs with P > 0.5, "non-relevant": share of the others with P <= 0.5}."""
    p, y = np.asarray(probabilities), np.asarray(labels)
    return {name: float(_in_class(p, y, label).mean()) for label, name in ((1, "relevant"), (0, "non-relevant"))}


def _in_class(p: np.ndarray, y: np.ndarray, label: int) -> np.ndarray:
    """For each pair labelled ``label`` (``y``), whether its P(relevant) ``p`` puts it in that class (> 0.5 or <= 0.5)."""
    return (p[y == label] > 0.5) == bool(label)


def reliability(probabilities, labels, bins: int = 10):
    """Reliability table: P(relevant) in ``bins`` equal-width bins of [0, 1] against the observed share of relevant pairs.

    Returns a DataFrame with one row per non-empty bin: ``bin`` (its lower edge), ``mean P`` (the mean
    predicted P(relevant) of its pairs), ``share relevant`` (the fraction of its pairs labelled 1) and
    ``pairs``. A calibrated model has ``share relevant`` close to ``mean P``.
    """
    import pandas as pd

    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels)
    if p.shape != y.shape or p.ndim != 1:
        raise ValueError(f"probabilities {p.shape} and labels {y.shape} must be two 1-d arrays of one value per pair")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]: pass P(relevant), not log-odds")
    index = np.minimum((p * bins).astype(int), bins - 1)  # P = 1 falls in the last bin
    rows = [{"bin": b / bins, "mean P": float(p[index == b].mean()), "share relevant": float(y[index == b].mean()),
             "pairs": int((index == b).sum())} for b in range(bins) if (index == b).any()]
    return pd.DataFrame(rows, columns=["bin", "mean P", "share relevant", "pairs"])


def effectiveness(encoder, dataset_id: str, *, depth: int = 100, max_queries: int = 1000, n_pairs: int = 200,
                  seed: int = 0, max_length: int = 128, progress: bool = True, min_grade=None) -> dict[str, float]:
    """First-stage ("BM25 ...") and re-ranked nDCG@10 and RR@10, and pair accuracy per class, of ``encoder`` on a
    dataset; RR and the pairs' classes at the dataset's minimum grade (``min_grade``, :mod:`neuron_ig.ir.grades`).

    Cached by model fingerprint, dataset and every parameter (``<cache>/effectiveness/``), with the
    pairs' P(relevant) (see :func:`effectiveness_pairs`).
    """
    return _effectiveness_record(encoder, dataset_id, depth=depth, max_queries=max_queries, n_pairs=n_pairs, seed=seed,
                                 max_length=max_length, progress=progress, min_grade=min_grade)["effectiveness"]


def effectiveness_pairs(encoder, dataset_id: str, *, depth: int = 100, max_queries: int = 1000, n_pairs: int = 200,
                        seed: int = 0, max_length: int = 128, progress: bool = True, min_grade=None):
    """``(P(relevant) [2 n_pairs], labels [2 n_pairs])`` of the pairs whose accuracy :func:`effectiveness` reports."""
    record = _effectiveness_record(encoder, dataset_id, depth=depth, max_queries=max_queries, n_pairs=n_pairs, seed=seed,
                                   max_length=max_length, progress=progress, min_grade=min_grade)
    return np.array(record["probabilities"], dtype=float), np.array(record["labels"])


def _effectiveness_record(encoder, dataset_id, *, depth, max_queries, n_pairs, seed, max_length, progress, min_grade) -> dict:

    minimum = minimum_of(dataset_id, min_grade)
    parameters = {"model": encoder.name, "model_fingerprint": model_fingerprint(encoder.name), "dataset": dataset_id,
                  "score": "log-odds", "depth": depth, "max_queries": max_queries, "n_pairs": n_pairs, "seed": seed,
                  "max_length": max_length, "record": "with pair probabilities and per-query nDCG@10",
                  **first_stage_key(dataset_id, min_grade)}
    path = cache.cache_root() / "effectiveness" / f"{cache.slug(dataset_id)}-{cache.parameters_key(parameters)}.json"
    with cache.computing(path) as done:  # checked against its manifest; one process computes it at a time
        if done:
            return cache.load_json(path)
        bm25, model = rerank(encoder, dataset_id, depth=depth, max_queries=max_queries, seed=seed, max_length=max_length,
                             informative_only=True,
                             progress=progress, min_grade=minimum)
        qrels = qrels_dict(dataset_id)
        values = {"queries": len(bm25)}
        values.update({f"BM25 {m}": v for m, v in evaluate(bm25, qrels, min_grade=minimum).items()})
        values.update({f"re-ranked {m}": v for m, v in evaluate(model, qrels, min_grade=minimum).items()})
        probability, labels = pair_probabilities(encoder, dataset_id, n=n_pairs, seed=seed + 1, max_length=max_length,
                                                 min_grade=minimum)
        values.update({f"accuracy {k}": v for k, v in class_accuracy(probability, labels).items()})
        record = {"parameters": parameters, "effectiveness": values, "probabilities": probability.tolist(), "labels": labels.tolist(),
                  "per-query nDCG@10": {"BM25": per_query(bm25, qrels), "re-ranked": per_query(model, qrels)}}
        cache.save_json(path, record)
    return record


STAND_IN_TARGETS = {  # the least share of each class's pairs that the model must put in their own class (P > 0.5 or <= 0.5)
    "in-domain": {"relevant": 0.9, "non-relevant": 0.9},
    "out-of-domain": {"relevant": 0.5, "non-relevant": 0.8},
}


def stand_in_checks(encoder, dataset_id: str, *, in_domain: bool, depth: int = 100, max_queries: int = 1000,
                    n_pairs: int = 200, seed: int = 0, max_length: int = 128, progress: bool = True, min_grade=None) -> list[dict]:
    """The model against the targets of a stand-in for MonoBERT on one collection (:func:`target_rows`), from
    the same cached record as :func:`effectiveness` with the same arguments."""
    record = _effectiveness_record(encoder, dataset_id, depth=depth, max_queries=max_queries, n_pairs=n_pairs, seed=seed,
                                   max_length=max_length, progress=progress, min_grade=min_grade)
    per_query_ndcg = record["per-query nDCG@10"]
    return target_rows(per_query_ndcg["re-ranked"], per_query_ndcg["BM25"], record["probabilities"], record["labels"],
                       in_domain=in_domain)


def target_rows(model_ndcg: Mapping[str, float], bm25_ndcg: Mapping[str, float], probabilities, labels, *,
                in_domain: bool, confidence: float = 0.95) -> list[dict]:
    """Rows ``{target, observed, low, high, met}``, one per target, with a ``confidence`` interval [low, high]:

    - "nDCG@10 minus BM25's": the mean per-query difference (``{query_id: nDCG@10}`` of both runs) with its paired
      t interval. Out of domain it must be >= 0; in domain "well above" BM25: the whole interval above 0.
    - "relevant pairs in their class" and "non-relevant pairs in their class": the share of ``labels`` 1 (0) pairs
      whose ``probabilities`` (P(relevant)) is > 0.5 (<= 0.5), with its Wilson score interval; at least
      :data:`STAND_IN_TARGETS`. ``met`` compares the observed value (not the interval) with the target.
    """
    from scipy import stats

    queries = [q for q in model_ndcg if q in bm25_ndcg]
    if len(queries) < 2:
        raise ValueError(f"{len(queries)} queries in both runs: a difference of nDCG@10 needs at least 2")
    differences = np.array([model_ndcg[q] - bm25_ndcg[q] for q in queries])
    mean = float(differences.mean())
    low, high = (stats.ttest_1samp(differences, 0.0).confidence_interval(confidence) if np.ptp(differences) > 0
                 else (mean, mean))  # every difference the same: no spread to take an interval from
    rows = [{"target": "nDCG@10 minus BM25's: " + ("whole interval above 0" if in_domain else ">= 0"), "observed": mean,
             "low": float(low), "high": float(high), "met": bool(low > 0 if in_domain else mean >= 0)}]
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels)
    for label, name in ((1, "relevant"), (0, "non-relevant")):
        in_class = _in_class(p, y, label)
        interval = stats.binomtest(int(in_class.sum()), len(in_class)).proportion_ci(confidence, method="wilson")
        least = STAND_IN_TARGETS["in-domain" if in_domain else "out-of-domain"][name]
        rows.append({"target": f"{name} pairs in their class: >= {least:.0%}", "observed": float(in_class.mean()),
                     "low": float(interval.low), "high": float(interval.high), "met": bool(in_class.mean() >= least)})
    return rows


def targets_missed(encoder, datasets: Sequence[str], *, depth: int = 20, max_queries: int = 100, n_pairs: int = 200,
                   seed: int = 0, max_length: int = 128, min_grade=None) -> dict[str, list[str]]:
    """``{dataset: [the stand-in targets the model misses there]}`` (:func:`stand_in_checks`; the first dataset is
    in domain), from the cached record of the cross-encoder page when the arguments are its own. A claim about a
    collection where the model misses a target is not tested there: its pairs would say little about a ranker."""
    return {dataset: [row["target"].split(":")[0] for row in stand_in_checks(
                encoder, dataset, in_domain=n == 0, depth=depth, max_queries=max_queries, n_pairs=n_pairs, seed=seed,
                max_length=max_length, progress=False, min_grade=min_grade) if not row["met"]]
            for n, dataset in enumerate(datasets)}
