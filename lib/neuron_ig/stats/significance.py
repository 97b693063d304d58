"""Paired tests over queries and multiplicity corrections.

:func:`paired_test` compares two runs' per-query values by a paired bootstrap (mean difference, its interval
and a two-sided p-value); :func:`holm` (family-wise error) and :func:`benjamini_hochberg` (false discovery
rate) adjust a family of p-values.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


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


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the order given (as
    ``scipy.stats.false_discovery_control(p, method="bh")``, without its checks: called once per resample)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    return adjusted
