"""Selecting relevance neurons: the global top p% of all layers x units, and set operations across datasets.

A neuron set is a boolean mask ``[layers, units]``.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np


def top_p_percent(scores: np.ndarray, p: float) -> np.ndarray:
    """Mask of the ``ceil(p% of layers x units)`` neurons with the highest scores, ``[layers, units]``.

    Ties at the threshold are broken by position (stable), so the set always has exactly that size.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 100:
        raise ValueError(f"p must be a percentage in (0, 100], got {p!r}: the paper uses 0.1, 0.5 and 1")
    scores = np.asarray(scores)
    count = max(1, math.ceil(scores.size * p / 100))
    order = np.argsort(-scores, axis=None, kind="stable")[:count]
    mask = np.zeros(scores.size, dtype=bool)
    mask[order] = True
    return mask.reshape(scores.shape)


relevance_neurons = top_p_percent


def intersection(sets: Mapping[str, np.ndarray]) -> np.ndarray:
    """Neurons in every set."""
    _check_sets(sets)
    return np.logical_and.reduce(list(sets.values()))


def fusion(scores: Mapping[str, np.ndarray], p: float) -> np.ndarray:
    """Top p% of the mean of the per-dataset neuron scores."""
    _check_sets(scores)
    return top_p_percent(np.mean(list(scores.values()), axis=0), p)


def ood_neurons(out_of_domain: np.ndarray, in_domain: np.ndarray) -> np.ndarray:
    """Neurons in the out-of-domain set (an intersection or fusion) but not in the in-domain set."""
    return out_of_domain & ~in_domain


def per_layer_counts(mask: np.ndarray) -> np.ndarray:
    """Number of selected neurons in each layer, ``[layers]``."""
    return mask.sum(axis=1)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a & b| / |a | b| (1.0 for two empty sets)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def neuron_list(mask: np.ndarray) -> list[tuple[int, int]]:
    """The selected neurons as ``(layer, unit)`` pairs, in layer then unit order."""
    return [(int(layer), int(unit)) for layer, unit in zip(*np.nonzero(mask))]


def _check_sets(sets: Mapping[str, np.ndarray]):
    if not sets:
        raise ValueError("no datasets given: pass at least one dataset's neurons")
    shapes = {name: np.shape(s) for name, s in sets.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"neuron sets of different shapes {shapes}: they must come from the same model")
