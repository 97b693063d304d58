"""Ranking effectiveness through `ir_measures`: nDCG@10 (the pruning study's measure), RR@10, per query.

A run is `{query_id: {doc_id: score}}` (higher is better), qrels `{query_id: {doc_id: relevance}}`.
As trec_eval does, a measure is averaged over the run's queries that have qrels; a query of the run whose
ranking is empty counts 0 (trec_eval would drop it). Gains are the relevance grades (trec_eval's nDCG);
RR, like every binary measure, counts a grade >= the collection's minimum (`min_grade`, :mod:`neuron_ig.grades`:
``RR(rel=2)@10`` on TREC DL passages), reported under the name asked (``RR@10``).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ir_measures
import numpy as np

from .data import load_dataset


def qrels_dict(dataset_id: str) -> dict[str, dict[str, int]]:
    """The dataset's qrels as {query_id: {doc_id: relevance}}."""
    qrels = {}
    for qrel in load_dataset(dataset_id).qrels_iter():
        qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    return qrels


def per_query_measures(run, qrels, measures, min_grade: int = 1) -> dict[str, dict[str, float]]:
    """{measure name: {query_id: value}} over the run's queries that have qrels, in one `ir_measures` pass.

    ``min_grade``: the lowest grade a binary measure (RR) counts relevant (:func:`neuron_ig.grades.min_grade` of
    the dataset); graded measures (nDCG) ignore it.
    """
    from .grades import binary_measure

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
    from .grades import min_grade as minimum_of
    from .retrieval import first_stage

    minimum, stage = minimum_of(dataset_id, min_grade), first_stage(dataset_id)
    return {**({"min_grade": minimum} if minimum != 1 else {}), **({"first_stage": stage} if stage != "bm25s" else {})}


def ndcg_at_10(run, qrels) -> float:
    """Mean nDCG@10 of the run over its queries that have qrels."""
    return evaluate(run, qrels, ("nDCG@10",))["nDCG@10"]


def collection_summary(dataset_id: str, depth: int = 100, min_grade=None) -> dict:
    """One row of the collections page: sizes, and the first stage's effectiveness on the judged queries.

    ``documents``, ``queries``, ``qrels`` (judgements), ``relevant grade`` (the minimum,
    :func:`neuron_ig.grades.min_grade`), ``first stage`` (:func:`neuron_ig.retrieval.first_stage`: ``bm25s`` or
    ``scoreddocs``), then ``BM25 nDCG@10`` and ``BM25 RR@10`` of
    :func:`neuron_ig.retrieval.first_stage_run` (top ``depth``: bm25s, or the BM25 run the dataset ships, see
    :func:`neuron_ig.retrieval.first_stage_name`) over the queries that have qrels, RR at the dataset's minimum
    grade (``min_grade``: :func:`neuron_ig.grades.min_grade`). Works for any ``ir_datasets`` id with documents,
    queries and qrels, embedded or not.
    """
    from .grades import min_grade as minimum_of
    from .retrieval import first_stage, first_stage_run

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
        first_stage: the first-stage run ``{query_id: {doc_id: score}}`` (:func:`neuron_ig.retrieval.first_stage_run`).
        pairs: ``[(query_id, doc_id)]``, the pairs to score, query by query.
        batches: the pairs tokenised by :func:`neuron_ig.encoding.encode_batches` (indices into ``pairs``).
        qrels: ``{query_id: {doc_id: relevance}}`` of the dataset.
        parameters: what defines the task (dataset, depth, max_queries, seed, max_length, and the minimum grade
            and first stage where not the defaults, :func:`first_stage_key`) and a hash of the pairs.
        min_grade: the lowest grade counted relevant (RR@10, :func:`neuron_ig.grades.min_grade`).
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

    ``part``: only the queries of that side of :func:`neuron_ig.query_split.queries_in_part` (None: every query).
    Judged: a document at the minimum grade (:func:`neuron_ig.data.relevant_qrels`, ``min_grade``).

    Raises:
        ValueError: ``max_queries`` is not a positive int.
    """
    import random

    from .data import relevant_qrels

    if isinstance(max_queries, bool) or not isinstance(max_queries, int) or max_queries < 1:
        raise ValueError(f"max_queries must be a positive int, got {max_queries!r}: the paper re-ranks the BM25 top 100 of up to 1,000 queries")
    from .query_split import queries_in_part

    query_ids = queries_in_part(sorted(relevant_qrels(dataset_id, min_grade)), part)
    if not query_ids:
        raise ValueError(f"{dataset_id} has no judged query in the {part!r} part: use part=None (every query)")
    if len(query_ids) > max_queries:
        query_ids = sorted(random.Random(seed).sample(query_ids, max_queries))
    return query_ids


def rerank_inputs(tokenizer, dataset_id: str, *, depth: int = 100, max_queries: int = 1000, seed: int = 0,
                  max_length: int = 128, batch_size: int = 64, part: str | None = None, min_grade=None) -> RerankInputs:
    """The first-stage top ``depth`` of up to ``max_queries`` judged queries (drawn with ``seed``), tokenised.

    ``part``: draw the queries from that side of :func:`neuron_ig.query_split.queries_in_part` only
    (``"evaluation"`` for the pruning study: queries no selected neuron was chosen on; default None: every query).
    ``min_grade``: None (the table of :mod:`neuron_ig.grades`), an int or ``{dataset id: grade}``.

    Raises:
        ValueError: ``depth`` or ``max_queries`` is not a positive int.
    """
    from .grades import min_grade as minimum_of
    from .retrieval import first_stage_run

    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}: the paper re-ranks the BM25 top 100 of up to 1,000 queries")
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
    from .query_split import informative_queries

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

    from .encoding import encode_batches

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
    from .data import relevance_pairs

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
    dataset; RR and the pairs' classes at the dataset's minimum grade (``min_grade``, :mod:`neuron_ig.grades`).

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
    from . import cache
    from .grades import min_grade as minimum_of
    from .results import model_fingerprint

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


# --- is the model a stand-in for MonoBERT? -----------------------------------------------------------

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


# --- paired significance over queries --------------------------------------------------------------

def paired_test(treatment: Mapping[str, float], control: Mapping[str, float], *, n_resamples: int = 10_000,
                seed: int = 0) -> dict[str, float]:
    """Paired two-sided tests of ``treatment - control`` over the queries both have, e.g. per-query nDCG@10.

    Returns ``delta`` (mean difference), ``queries``, ``p randomization`` (sign-flip randomization test,
    Fisher's test as Smucker et al. 2007 recommend for IR; exact when ``2**queries <= n_resamples``) and
    ``p t-test`` (paired t-test). With every difference zero both p-values are 1.

    Raises:
        ValueError: the two share no query.
    """
    from scipy import stats

    queries = [q for q in treatment if q in control]
    if not queries:
        raise ValueError("the two runs share no query: compare runs of the same queries")
    differences = np.array([treatment[q] - control[q] for q in queries], dtype=float)
    result = {"delta": float(differences.mean()), "queries": len(queries)}
    if not np.any(differences):
        return {**result, "p randomization": 1.0, "p t-test": 1.0}
    randomization = stats.permutation_test(
        (differences,), lambda d, axis: np.mean(d, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=np.random.default_rng(seed))
    t_test = stats.ttest_1samp(differences, 0.0) if len(queries) > 1 else None
    p_t = float(t_test.pvalue) if t_test is not None and np.isfinite(t_test.pvalue) else 1.0
    return {**result, "p randomization": float(randomization.pvalue), "p t-test": p_t}


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error), in the order given."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(scaled, 1.0)
    return adjusted
