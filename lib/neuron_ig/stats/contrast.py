"""Neurons that depend on relevance: each neuron's class contrast, against permuted class labels.

A neuron that pushes P(relevant) up on every pair responds to a query being there, not to the query being
relevant. The class contrast asks what a "relevance neuron" claims: scored towards one fixed target,
P(relevant), on both classes, does the neuron's mean differ between relevant and non-relevant pairs? With two
classes F_0 = 1 - F_1, so a non-relevant pair's NIG towards P(relevant) is minus its NIG towards its own class
(:func:`towards_relevant`). Each pair's attributions may also be divided by its F(x) - F(x') (:func:`normalised`:
the share of the pair's change that a neuron carries), so that pairs that move far do not outweigh the others.

The null permutes the class labels within a dataset (:func:`contrast_test`): every neuron keeps its values,
hence its scale, and only their link to the class is lost. Each tested neuron gets a two-sided permutation
p-value, and Benjamini-Hochberg runs over the neurons tested (a top-p% set: the claim is about its neurons).
:func:`split_top_set` then splits a class's top set into relevance-specific neurons (they pass, and they push
P(relevant) the way that separates the classes), class-independent ones (strong in both classes with the same
sign) and the rest.

Per-pair NIG is ``[pairs, neurons]`` (neurons = layers x units, flattened) towards P(relevant).
"""
from __future__ import annotations

import numpy as np

from neuron_ig.stats.significance import benjamini_hochberg

#: the parts of a class's top set (:func:`split_top_set`)
RELEVANCE_SPECIFIC, CLASS_INDEPENDENT, OTHER = "relevance-specific", "class-independent", "other"
PARTS = (RELEVANCE_SPECIFIC, CLASS_INDEPENDENT, OTHER)


def towards_relevant(attributions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """NIG towards P(relevant) from NIG towards each pair's own class: non-relevant pairs' rows negated.

    ``attributions`` is ``[pairs, ...]``, ``labels`` ``[pairs]`` (1 relevant, 0 non-relevant).
    """
    attributions, labels = np.asarray(attributions, dtype=float), np.asarray(labels)
    if len(attributions) != len(labels) or not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, one per pair: got {len(labels)} labels for {len(attributions)} pairs")
    sign = np.where(labels == 1, 1.0, -1.0)
    return attributions * sign.reshape((-1,) + (1,) * (attributions.ndim - 1))


def normalised(attributions: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Each pair's attributions divided by its F(x) - F(x') (towards the same target), ``[pairs, ...]``.

    Raises:
        ValueError: a pair whose change is 0 (it has nothing to share out): drop it first (``min_change``).
    """
    attributions, change = np.asarray(attributions, dtype=float), np.asarray(change, dtype=float)
    if len(change) != len(attributions):
        raise ValueError(f"one change per pair: got {len(change)} for {len(attributions)} pairs")
    if np.any(change == 0):
        raise ValueError(f"{int(np.sum(change == 0))} pairs have F(x) - F(x') = 0: drop them first (min_change > 0)")
    return attributions / change.reshape((-1,) + (1,) * (attributions.ndim - 1))


def class_contrast(relevant: np.ndarray, non_relevant: np.ndarray) -> np.ndarray:
    """Mean NIG towards P(relevant) over relevant pairs minus over non-relevant pairs, ``[neurons]``."""
    return np.asarray(relevant, dtype=float).mean(axis=0) - np.asarray(non_relevant, dtype=float).mean(axis=0)


def contrast_test(relevant: np.ndarray, non_relevant: np.ndarray, *, tested: np.ndarray | None = None,
                  n_permutations: int = 999, q: float = 0.05, seed: int = 0) -> dict[str, np.ndarray]:
    """The class contrast of each tested neuron against class labels permuted within the dataset.

    Args:
        relevant: ``[relevant pairs, neurons]`` NIG towards P(relevant) (at least 2 pairs).
        non_relevant: ``[non-relevant pairs, neurons]``, towards P(relevant) too (at least 2 pairs).
        tested: ``[neurons]`` bool, the neurons tested (the family of the Benjamini-Hochberg step); all if None.
        n_permutations: R; the smallest p-value is 1 / (R + 1).
        q: the false discovery rate of the Benjamini-Hochberg step.

    Returns:
        ``contrast`` ``[neurons]`` (:func:`class_contrast`), ``p`` ``[neurons]`` two-sided permutation p-values
        (NaN where not tested), ``p (BH)`` the adjusted ones, and ``passes`` ``[neurons]`` bool (``p (BH) <= q``).
    """
    relevant, non_relevant = np.asarray(relevant, dtype=float), np.asarray(non_relevant, dtype=float)
    if relevant.ndim != 2 or non_relevant.ndim != 2 or relevant.shape[1] != non_relevant.shape[1]:
        raise ValueError(f"expected [pairs, neurons] for both classes, got {relevant.shape} and {non_relevant.shape}")
    if min(len(relevant), len(non_relevant)) < 2:
        raise ValueError(f"the contrast needs 2 pairs of each class or more, got {len(relevant)} and {len(non_relevant)}")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive int, got {n_permutations!r}")
    neurons = relevant.shape[1]
    tested = np.ones(neurons, dtype=bool) if tested is None else np.asarray(tested, dtype=bool).reshape(-1)
    if tested.shape != (neurons,):
        raise ValueError(f"tested must be a mask of the {neurons} neurons, got shape {tested.shape}")
    contrast = class_contrast(relevant, non_relevant)
    pooled = np.concatenate([relevant, non_relevant])[:, tested]  # [pairs, tested neurons]
    n_relevant, n_pairs = len(relevant), len(relevant) + len(non_relevant)
    rng = np.random.default_rng(seed)
    # each permutation's relevant-pair indicator [R, pairs]; means of both groups by matrix products
    chosen = np.argsort(rng.random((n_permutations, n_pairs)), axis=1)[:, :n_relevant]
    indicator = np.zeros((n_permutations, n_pairs))
    np.put_along_axis(indicator, chosen, 1.0, axis=1)
    null = indicator @ pooled / n_relevant - (1.0 - indicator) @ pooled / (n_pairs - n_relevant)  # [R, tested]
    observed = np.abs(contrast[tested])
    exceed = (np.abs(null) >= observed - 1e-12 * np.maximum(observed, 1.0)).sum(axis=0)
    p = np.full(neurons, np.nan)
    p[tested] = (1 + exceed) / (n_permutations + 1)
    adjusted = np.full(neurons, np.nan)
    if tested.any():
        adjusted[tested] = benjamini_hochberg(p[tested])
    return {"contrast": contrast, "p": p, "p (BH)": adjusted, "passes": np.nan_to_num(adjusted, nan=1.0) <= q}


def split_top_set(top: np.ndarray, relevant: np.ndarray, non_relevant: np.ndarray, passes: np.ndarray, *,
                  label: int, strong_share: float = 0.5) -> dict[str, np.ndarray]:
    """The neurons of one class's top set, split by what they respond to, ``{part: [neurons] bool}``.

    - relevance-specific: they pass :func:`contrast_test` and push P(relevant) up more on relevant pairs than on
      non-relevant ones (the contrast is positive: the way that separates the classes, for either class's set);
    - class-independent: they do not, and they push towards the set's class on the other class's pairs too,
      with the same sign and at least ``strong_share`` of the strength they have on their own class's pairs;
    - other: the rest.

    ``top`` is the set's ``[neurons]`` mask, ``label`` its class (1: positive set, chosen on relevant pairs;
    0: negative set, on non-relevant pairs); ``relevant`` and ``non_relevant`` are NIG towards P(relevant).
    """
    if label not in (0, 1):
        raise ValueError(f"label must be 1 (positive set) or 0 (negative set), got {label!r}")
    if not 0 < strong_share <= 1:
        raise ValueError(f"strong_share must be in (0, 1], got {strong_share!r}")
    top, passes = np.asarray(top, dtype=bool).reshape(-1), np.asarray(passes, dtype=bool)
    mean_relevant, mean_non_relevant = np.mean(relevant, axis=0), np.mean(non_relevant, axis=0)
    contrast = mean_relevant - mean_non_relevant
    # towards the set's own class: P(relevant) for the positive set, P(non-relevant) = -P(relevant) for the negative
    sign = 1.0 if label == 1 else -1.0
    own, other = (sign * mean_relevant, sign * mean_non_relevant) if label == 1 else \
        (sign * mean_non_relevant, sign * mean_relevant)
    specific = top & passes & (contrast > 0)
    independent = top & ~specific & (own > 0) & (other > 0) & (other >= strong_share * own)
    return {RELEVANCE_SPECIFIC: specific, CLASS_INDEPENDENT: independent, OTHER: top & ~specific & ~independent}
