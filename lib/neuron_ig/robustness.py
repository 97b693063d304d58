"""How much the relevance neurons depend on the choices behind them: the baseline, the number of path
steps, the sample of pairs.

A variant run changes one choice; it is compared with the default run on the same datasets and classes by
the Jaccard overlap of the top-p% neuron sets and the Spearman rank correlation of the mean-NIG vectors
(all ``layers x units`` neurons). For the number of steps, :func:`step_convergence` says how far the
attributions moved, and :func:`completeness_gaps` how far a cut's NIG is from F(x) - F(x') (a Riemann
sum converges to it as the number of steps grows).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import torch

from .aggregation import class_mean
from .results import CLASS_NAMES, DatasetNIG
from .selection import jaccard, top_p_percent


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two score arrays of the same shape (flattened); NaN if one is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"scores of different shapes {a.shape} and {b.shape}: they must come from the same model")
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=None) - (a.size + 1) / 2, rankdata(b, axis=None) - (b.size + 1) / 2
    norm = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / norm) if norm > 0 else float("nan")


def compare_scores(reference: np.ndarray, variant: np.ndarray, p_values: Sequence[float]) -> dict[str, float]:
    """Spearman correlation of two mean-NIG arrays ``[layers, units]`` and the Jaccard overlap of their top-p% sets.

    Returns ``{"Spearman": rho, "Jaccard top 0.1%": ..., ...}``, one Jaccard per p in ``p_values``.
    """
    row = {"Spearman": spearman(reference, variant)}
    for p in p_values:
        row[f"Jaccard top {p:g}%"] = jaccard(top_p_percent(reference, p), top_p_percent(variant, p))
    return row


def random_jaccard(n_neurons: int, p: float) -> float:
    """Expected Jaccard overlap of two independent random sets of the top-p% size among ``n_neurons`` (chance level)."""
    k = max(1, int(np.ceil(n_neurons * p / 100)))
    shared = k * k / n_neurons  # expected size of the intersection
    return float(shared / (2 * k - shared))


def matching_pairs(result: DatasetNIG, query_ids: Sequence[str], doc_ids: Sequence[str]) -> DatasetNIG | None:
    """``result`` restricted to the pairs ``(query_ids[i], doc_ids[i])``, in that order; None if one is missing.

    The default run of ``n`` pairs contains the sample of fewer pairs drawn with the same seed, so a variant
    computed on fewer pairs is compared with the same pairs of the default run without recomputing them.
    """
    position = {(str(q), str(d)): i for i, (q, d) in enumerate(zip(result.query_ids, result.doc_ids))}
    wanted = [(str(q), str(d)) for q, d in zip(query_ids, doc_ids)]
    if any(pair not in position for pair in wanted):
        return None
    index = np.array([position[pair] for pair in wanted], dtype=int)
    per_pair = {field: getattr(result, field)[index] for field in
                ("attributions", "score", "baseline_score", "relevance", "labels", "query_ids", "doc_ids")}
    manifest = dict(result.manifest, n_pairs=len(index), n_correct=int((per_pair["score"] > 0.5).sum()))
    return dataclasses.replace(result, manifest=manifest, **per_pair)


def compare_runs(
    reference: Mapping[str, DatasetNIG], variant: Mapping[str, DatasetNIG], p_values: Sequence[float]
) -> list[dict]:
    """One row per dataset: the pairs each run averages over and :func:`compare_scores` of their class means.

    A dataset where either run has no correctly classified pair gets NaN scores and a ``note`` saying so; a
    variant run may be None (not computed, see :func:`variant_runs`). The pairs columns read "correct/all".
    """
    rows = []
    for dataset, ref in reference.items():
        var = variant[dataset]
        label = CLASS_NAMES[int(ref.labels[0])] if len(ref.labels) else "?"
        row = {"dataset": dataset, "class": label,
               "pairs (default)": f"{int(ref.correct.sum())}/{len(ref.score)}",
               "pairs (variant)": "not computed" if var is None else f"{int(var.correct.sum())}/{len(var.score)}", "note": ""}
        empty = [name for name, run in (("default", ref), ("variant", var)) if run is None or not run.correct.any()]
        if empty:
            row.update({"Spearman": np.nan, **{f"Jaccard top {p:g}%": np.nan for p in p_values}})
            row["note"] = f"no correctly classified pair in the {' and '.join(empty)} run: skipped"
        else:
            row.update(compare_scores(class_mean(ref), class_mean(var), p_values))
        rows.append(row)
    return rows


def _relative(difference: np.ndarray, reference: np.ndarray) -> float:
    norm = np.linalg.norm(reference)
    return float(np.linalg.norm(difference) / norm) if norm > 0 else float("nan")


def step_convergence(coarse: DatasetNIG, fine: DatasetNIG) -> dict[str, float]:
    """How far the attributions of the same pairs move from ``coarse`` (e.g. 50 steps) to ``fine`` (e.g. 200).

    Returns the median over pairs of ||A_coarse - A_fine|| / ||A_fine|| (each pair's attributions over
    segments, layers and units), the same for the class mean over correctly classified pairs (NaN when there
    is none), and the mean over pairs of the summed FFN NIG at each step count.
    """
    if coarse.attributions.shape != fine.attributions.shape or list(coarse.query_ids) != list(fine.query_ids) \
            or list(coarse.doc_ids) != list(fine.doc_ids):
        raise ValueError("step_convergence compares two runs of the same pairs: sample them with the same n_pairs and seed")
    per_pair = [_relative(c - f, f) for c, f in zip(coarse.attributions, fine.attributions)]
    mean_change = _relative(class_mean(coarse) - class_mean(fine), class_mean(fine)) if fine.correct.any() else float("nan")
    return {
        "median relative change per pair": float(np.nanmedian(per_pair)) if per_pair else float("nan"),
        "relative change of the class mean": mean_change,
        "summed FFN NIG (coarse)": float(coarse.total().sum(axis=(1, 2)).mean()),
        "summed FFN NIG (fine)": float(fine.total().sum(axis=(1, 2)).mean()),
    }


def completeness_gaps(encoder, pairs: Sequence, steps_values: Sequence[int], *, baseline: str, rule: str,
                      max_length: int) -> list[dict]:
    """NIG of the last layer's output (a cut of the network) against F(x) - F(x'), per pair and number of steps.

    Completeness holds on a cut in the limit of infinitely many steps; the gap |sum of NIG - (F(x) - F(x'))|
    is the error of the Riemann sum with m steps. ``pairs`` are records with ``query, passage, label``.
    Returns one row per pair and step count: ``pair, class, steps, F(x) - F(x'), sum of NIG, gap``.
    """
    from .encoding import encode_pairs
    from .nig import neuron_integrated_gradients

    encoded = encode_pairs(encoder.tokenizer, [p.query for p in pairs], [p.passage for p in pairs], max_length)
    labels = torch.tensor([p.label for p in pairs])
    name, module = list(encoder.layer_outputs().items())[-1]
    rows = []
    for steps in steps_values:
        cut = neuron_integrated_gradients(encoder, encoded, labels, modules={name: module}, baseline=baseline,
                                          steps=steps, rule=rule)
        change = (cut.score - cut.baseline_score).numpy()
        total = cut.attributions[name].sum(dim=(1, 2)).numpy()
        for i, pair in enumerate(pairs):
            rows.append({"pair": i, "class": CLASS_NAMES[int(pair.label)], "steps": steps,
                         "F(x) - F(x')": float(change[i]), "sum of NIG": float(total[i]),
                         "gap": float(abs(total[i] - change[i]))})
    return rows


def variant_runs(model: str, datasets: Sequence[str], label: int, variants: Mapping[str, dict], **defaults
                 ) -> dict[str, tuple[dict[str, DatasetNIG], dict[str, DatasetNIG | None]]]:
    """Each variant of the default run, and the default run on the same number of pairs, per dataset.

    ``defaults`` are the keyword arguments of :func:`neuron_ig.results.datasets_nig` of the book (``n_pairs``,
    ``seed``, ``baseline``, ``steps``, ...); each variant overrides some of them (``{"steps": 200, "n_pairs": 4}``;
    its ``n_pairs`` is capped at the book's) and draws its pairs with its own seed. The default run on a
    variant's number of pairs is the book's result restricted to the pairs that the book's seed draws for that
    number (the book's sample contains them), computed only if it does not. A variant is not computed (None)
    on a dataset where the model classifies none of its pairs correctly: NIG is averaged over those only.
    Returns ``{variant name: (default runs, variant runs)}``, each ``{dataset: DatasetNIG}``.
    """
    from .data import relevance_pairs
    from .results import cached_encoder, dataset_nig, datasets_nig

    book = datasets_nig(model, datasets, label, **defaults)
    compared = {}
    for name, overrides in variants.items():
        chosen = dict(defaults, **overrides)
        chosen["n_pairs"] = min(chosen["n_pairs"], defaults["n_pairs"])
        small = dict(defaults, n_pairs=chosen["n_pairs"])
        reference, runs = {}, {}
        for dataset in datasets:
            sample = relevance_pairs(dataset, small["n_pairs"], label, seed=small.get("seed", 0))
            reference[dataset] = (matching_pairs(book[dataset], [p.query_id for p in sample], [p.doc_id for p in sample])
                                  or dataset_nig(model, dataset, label, **small))
            sample = relevance_pairs(dataset, chosen["n_pairs"], label, seed=chosen.get("seed", 0))
            relevance = cached_encoder(str(model), chosen.get("device", "auto")).score([p.query for p in sample], [p.passage for p in sample],
                                                         max_length=chosen.get("max_length", 128))
            correct = (relevance > 0.5) if label == 1 else (relevance < 0.5)
            runs[dataset] = dataset_nig(model, dataset, label, **chosen) if bool(correct.any()) else None
        compared[name] = (reference, runs)
    return compared


# --- resampling the book's own pairs: membership probability, and a top-weighted overlap --------------

def rank_biased_overlap(a: np.ndarray, b: np.ndarray, *, persistence: float = 0.98) -> float:
    """Rank-biased overlap (Webber, Moffat and Zobel 2010, extrapolated RBO_ext) of the neuron rankings by two
    score arrays of the same shape (highest first, ties broken by position).

    Top-weighted, unlike Jaccard of one cut: the top d ranks carry a weight of about 1 - persistence^d (with
    0.98, the top 100 carry 87%). 1 for the same ranking; for two random rankings of n neurons about d/n
    at the depths that carry the weight.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"scores of different shapes {a.shape} and {b.shape}: they must come from the same model")
    if not 0 < persistence < 1:
        raise ValueError(f"persistence must be in (0, 1), got {persistence!r}: 0.98 weighs about the top 100 ranks")
    n = a.size
    position_a = np.empty(n, dtype=int)
    position_a[np.argsort(-a, axis=None, kind="stable")] = np.arange(n)
    position_b = np.empty(n, dtype=int)
    position_b[np.argsort(-b, axis=None, kind="stable")] = np.arange(n)
    # a neuron is in both top-k lists from depth k = max(its two positions) + 1 on: X_k, the overlap at depth k
    overlap = np.cumsum(np.bincount(np.maximum(position_a, position_b), minlength=n))
    depth = np.arange(1, n + 1)
    agreement = overlap / depth
    weights = persistence ** depth
    return float(agreement[-1] * persistence ** n + (1 - persistence) / persistence * np.sum(agreement * weights))


def _bootstrap_means(per_pair: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """Class means of ``n_bootstrap`` resamples (with replacement) of the pairs, ``[n_bootstrap, neurons]``."""
    per_pair = np.asarray(per_pair, dtype=float)
    if per_pair.ndim != 3 or len(per_pair) < 1:
        raise ValueError(f"per-pair NIG must be [pairs, layers, units] with at least one pair, got shape {per_pair.shape}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be a positive int, got {n_bootstrap!r}")
    flat = per_pair.reshape(len(per_pair), -1)
    rng = np.random.default_rng(seed)
    counts = np.stack([np.bincount(rng.integers(0, len(flat), len(flat)), minlength=len(flat)) for _ in range(n_bootstrap)])
    return counts @ flat / len(flat)


def membership_probability(per_pair: np.ndarray, p: float, *, n_bootstrap: int = 200, seed: int = 0) -> np.ndarray:
    """Share of bootstrap resamples of the pairs whose top-p% set holds each neuron, ``[layers, units]`` in [0, 1].

    ``per_pair`` is one dataset's per-pair NIG ``[pairs, layers, units]`` (the book's own pairs,
    :func:`neuron_ig.nulls.pair_nig`); the class mean of a resample is the mean over the pairs drawn.
    """
    from .nulls import top_masks

    means = _bootstrap_means(per_pair, n_bootstrap, seed)
    return top_masks(means, p).mean(axis=0).reshape(np.shape(per_pair)[1:])


def agreement_table(per_pair, p: float, *, n_splits: int = 20, persistence: float = 0.98, seed: int = 0):
    """Agreement within each dataset beside agreement between datasets, on sets from the same number of pairs.

    ``per_pair`` is ``{dataset: [pairs, layers, units]}`` (at least 2 pairs each). Each dataset's pairs are split
    ``n_splits`` times in two disjoint random halves; row ``within <dataset>`` compares its two halves, row
    ``<dataset> / <other>`` a half of one with a half of the other (independent pairs in both cases: two
    bootstrap resamples share most of their pairs and would agree more than independent samples do).
    Columns: mean ``Jaccard`` of the top-p% sets and mean :func:`rank_biased_overlap` (``RBO``) of the half
    means, so a reader sees whether datasets differ more than halves of one dataset do.
    """
    import itertools

    import pandas as pd

    from .nulls import _flat, _half_weights

    flat = _flat(per_pair)
    small = [name for name, a in flat.items() if len(a) < 2]
    if small:
        raise ValueError(f"datasets {small} have fewer than 2 pairs: comparing halves needs at least 2")
    shape = np.shape(next(iter(per_pair.values())))[1:]
    rng = np.random.default_rng(seed)
    values = {}

    def compare(key, x, y):
        values.setdefault(key, []).append((jaccard(top_p_percent(x, p), top_p_percent(y, p)),
                                           rank_biased_overlap(x, y, persistence=persistence)))

    for _ in range(n_splits):
        halves = {name: [(w @ a).reshape(shape) for w in _half_weights(len(a), rng)] for name, a in flat.items()}
        for name, (first, second) in halves.items():
            compare(f"within {name}", first, second)
        for a, b in itertools.combinations(flat, 2):
            for x in halves[a]:
                for y in halves[b]:
                    compare(f"{a} / {b}", x, y)
    rows = {key: dict(zip(("Jaccard", "RBO"), np.mean(pairs, axis=0))) for key, pairs in values.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("compared")
