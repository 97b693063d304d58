"""How alike two neuron score vectors, or two top-p% sets, are.

The Spearman rank correlation of all ``layers x units`` scores (:func:`spearman`), the Jaccard overlap of the
top-p% sets (:func:`compare_scores`), rank-biased overlap of the two rankings (:func:`rank_biased_overlap`), and
how often a neuron stays in the top-p% set when the pairs are resampled (:func:`membership_probability`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from neuron_ig.stats.selection import jaccard, top_masks, top_p_percent


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
    :func:`neuron_ig.studies.aggregation.pair_nig`); the class mean of a resample is the mean over the pairs drawn.
    """

    means = _bootstrap_means(per_pair, n_bootstrap, seed)
    return top_masks(means, p).mean(axis=0).reshape(np.shape(per_pair)[1:])




def membership_summary(per_pair: np.ndarray, p: float, *, n_bootstrap: int = 200, seed: int = 0) -> dict:
    """How sure the membership of the neurons actually selected is: the top-p% set of the class mean of all the
    pairs, and each of its neurons' :func:`membership_probability`.

    Returns ``mean probability of the selected``, ``selected with probability >= 0.9``, ``selected with probability
    < 0.5`` and ``set size``.
    """
    probability = membership_probability(per_pair, p, n_bootstrap=n_bootstrap, seed=seed)
    selected = probability[top_p_percent(np.asarray(per_pair, dtype=float).mean(axis=0), p)]
    return {"mean probability of the selected": float(selected.mean()),
            "selected with probability >= 0.9": int((selected >= 0.9).sum()),
            "selected with probability < 0.5": int((selected < 0.5).sum()), "set size": int(selected.size)}
