"""What noise alone would give: null references for the neuron sets, by resampling the pairs.

Attribution magnitude belongs to the neuron (its layer, its activation range), so top-p% sets agree across
datasets, and concentrate the attribution, with no relevance signal at all. Each null here keeps that scale:

- **split halves**: the top-p% sets of two disjoint random halves of one dataset's pairs. Their agreement is
  the reference for agreement between datasets (:func:`agreement_ratio`).
- **sign flips** (the label-permutation null): each pair's attributions multiplied by a random +-1. With two
  classes F_0 = 1 - F_1, so a pair's NIG towards the other class is exactly minus its NIG: a flip attributes
  the pair to a random label. Every neuron keeps its scale (and each pair its magnitudes and the correlations
  between neurons); only a direction consistent over pairs is lost (:func:`sign_flip_null`).
- **dataset permutation**: pairs shuffled between datasets, sizes kept: the null for differences between
  datasets, e.g. in-domain against out-of-domain (:func:`dataset_permutation_null`).
- **bootstrap** over pairs for intervals (:func:`pairs_bootstrap`, :func:`neuron_ig.stats.agreement.membership_probability`);
  **half-samples** without replacement for the split-based ratios (:func:`agreement_ratio`, :func:`intersection_ratio`).

Per-pair NIG is ``{dataset: [pairs, layers, units]}`` (:func:`pair_nig` from the cached results); a
resample's class means are ``{dataset: [resamples, neurons]}`` (neurons = layers x units, flattened).
"""

from __future__ import annotations

import itertools
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from neuron_ig.stats.agreement import rank_biased_overlap
from neuron_ig.stats.selection import (
    chance_intersection,
    jaccard,
    jaccard_rows,
    random_jaccard,
    top_count,
    top_indices,
    top_masks,
    top_p_percent,
)


def flat_pairs(per_pair: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not per_pair:
        raise ValueError("no dataset with pairs: pass at least one dataset's per-pair NIG (pair_nig(results))")
    shapes = {name: np.shape(a)[1:] for name, a in per_pair.items()}
    if len(set(shapes.values())) > 1 or any(np.ndim(a) != 3 for a in per_pair.values()):
        raise ValueError(f"per-pair NIG must be [pairs, layers, units] of one model, got shapes {shapes}")
    return {name: np.asarray(a, dtype=np.float64).reshape(len(a), -1) for name, a in per_pair.items()}


def _resample_seeds(n_resamples: int, seed: int) -> np.random.Generator:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive int, got {n_resamples!r}: 999 gives p-values down to 0.001")
    return np.random.default_rng(seed)


def sign_flip_null(per_pair: Mapping[str, np.ndarray], statistic: Callable[[dict[str, np.ndarray]], np.ndarray], *,
                   n_resamples: int = 999, seed: int = 0, chunk: int = 64) -> np.ndarray:
    """``statistic`` of the class means under random sign flips of the pairs, ``[n_resamples]``.

    ``statistic`` takes ``{dataset: class means [resamples, neurons]}`` and returns one value per resample;
    each dataset's pairs are flipped independently.
    """
    flat, rng = flat_pairs(per_pair), _resample_seeds(n_resamples, seed)
    values = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        means = {name: (rng.choice([-1.0, 1.0], size=(size, len(a))) @ a) / len(a) for name, a in flat.items()}
        values.append(np.asarray(statistic(means), dtype=float))
    return np.concatenate(values)


def bootstrap_weights(rng: np.random.Generator, rows: int, n: int) -> np.ndarray:
    """``[rows, n]``: each row a bootstrap resample of ``n`` pairs as averaging weights (how often each pair is
    drawn, over ``n``): ``weights @ values`` gives the resamples' means."""
    return np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(rows)]) / n


def pairs_bootstrap(per_pair: Mapping[str, np.ndarray], statistic: Callable[[dict[str, np.ndarray]], np.ndarray], *,
                    n_resamples: int = 999, seed: int = 0, chunk: int = 64, confidence: float = 0.95) -> tuple[float, float]:
    """The ``confidence`` percentile interval of ``statistic`` over bootstrap resamples of each dataset's pairs: the
    claim's own uncertainty, beside its null's range. ``statistic`` is as for :func:`sign_flip_null`."""
    flat, rng = flat_pairs(per_pair), _resample_seeds(n_resamples, seed)
    values = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        means = {name: bootstrap_weights(rng, size, len(a)) @ a for name, a in flat.items()}
        values.append(np.asarray(statistic(means), dtype=float))
    tail = (1 - confidence) / 2
    low, high = np.quantile(np.concatenate(values), [tail, 1 - tail])
    return float(low), float(high)


def dataset_permutation_null(per_pair: Mapping[str, np.ndarray], statistic: Callable[[dict[str, np.ndarray]], float], *,
                             n_resamples: int = 999, seed: int = 0) -> np.ndarray:
    """``statistic`` of the per-pair NIG with the pairs shuffled between datasets (sizes kept), ``[n_resamples]``
    (or ``[n_resamples, k]`` for a statistic of ``k`` numbers).

    ``statistic`` takes ``{dataset: [pairs, layers, units]}`` and returns one number (or ``k``).
    """
    flat, rng = flat_pairs(per_pair), _resample_seeds(n_resamples, seed)
    shape = np.shape(next(iter(per_pair.values())))[1:]
    pooled = np.concatenate(list(flat.values()))
    bounds = np.cumsum([0] + [len(a) for a in flat.values()])
    values = []
    for _ in range(n_resamples):
        order = rng.permutation(len(pooled))
        shuffled = {name: pooled[order[bounds[i]:bounds[i + 1]]].reshape(-1, *shape) for i, name in enumerate(flat)}
        values.append(np.asarray(statistic(shuffled), dtype=float))
    return np.stack(values)


def upper_p_value(observed: float, null: np.ndarray) -> float:
    """Resampling p-value of a statistic as large as ``observed``: (1 + #{null >= observed}) / (R + 1)."""
    null = np.asarray(null, dtype=float)
    return float((1 + np.sum(null >= observed)) / (len(null) + 1))


# --- the statistics of the figures, for many resamples at once ----------------------------------------

def top_share_rows(means: np.ndarray, p: float) -> np.ndarray:
    """Share of the positive mass of each row of ``means`` ``[rows, neurons]`` in its top p%, ``[rows]``
    (:func:`neuron_ig.stats.selection.top_share`; 0 when nothing is positive)."""
    means = np.atleast_2d(means)
    positive = np.clip(means, 0, None)
    top = np.take_along_axis(positive, top_indices(means, top_count(means.shape[1], p)), axis=1).sum(axis=1)
    total = positive.sum(axis=1)
    return np.where(total > 0, top / np.where(total > 0, total, 1), 0.0)


def fewest_shared_rows(means: Mapping[str, np.ndarray], p_values: Sequence[float], n_dropped: int, *,
                       keep: int = 2, protect: Sequence[str] = ()) -> list[list[str]]:
    """:func:`neuron_ig.stats.selection.fewest_shared` of each resample: the datasets it drops, one list per row.

    ``means`` are ``{dataset: [rows, neurons]}``: datasets ranked by their mean Jaccard with the others,
    averaged over ``p_values``, ascending (stable), the first ``min(n_dropped, datasets - keep)`` dropped, never one
    in ``protect``.
    """
    names = list(means)
    count = max(0, min(n_dropped, len(names) - keep))
    rows = len(next(iter(means.values())))
    if not count:
        return [[] for _ in range(rows)]
    shared = np.zeros((rows, len(names)))
    for p in p_values:
        masks = [top_masks(means[name], p) for name in names]
        for i, j in itertools.combinations(range(len(names)), 2):
            jac = jaccard_rows(masks[i], masks[j])
            shared[:, i] += jac
            shared[:, j] += jac
    order = np.argsort(shared, axis=1, kind="stable")  # the common factor 1 / ((D - 1) |p_values|) changes no order
    return [[names[k] for k in row if names[k] not in set(protect)][:count] for row in order]


def intersection_rows(means: Mapping[str, np.ndarray], p: float, dropped: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """Size of the intersection of the datasets' top-p% sets in each resample, without each row's ``dropped``."""
    names = list(means)
    masks = {name: top_masks(means[name], p) for name in names}
    rows = len(next(iter(means.values())))
    dropped = dropped or [[] for _ in range(rows)]
    sizes = np.empty(rows)
    for r in range(rows):
        kept = [masks[name][r] for name in names if name not in dropped[r]]
        sizes[r] = np.logical_and.reduce(kept).sum()
    return sizes


# --- the within-dataset reference for agreement between datasets ------------------------------------

def _part_weights(n: int, parts: int, rng: np.random.Generator, pool: np.ndarray | None = None) -> list[np.ndarray]:
    """Averaging weights ``[n]`` of ``parts`` disjoint random parts of the pairs ``pool`` (default: all ``n``), of equal
    sizes (to one pair)."""
    pool = np.arange(n) if pool is None else pool
    weights = []
    for index in np.array_split(rng.permutation(pool), parts):
        w = np.zeros(n)
        w[index] = 1 / len(index)
        weights.append(w)
    return weights


def _half_weights(n: int, rng: np.random.Generator, pool: np.ndarray | None = None) -> list[np.ndarray]:
    """:func:`_part_weights` of two halves."""
    return _part_weights(n, 2, rng, pool)


def _subsamples(flat: Mapping[str, np.ndarray], rng: np.random.Generator, fewest: int) -> dict[str, np.ndarray]:
    """Half of each dataset's pairs, drawn without replacement (at least ``fewest``): {dataset: pair indices}."""
    return {name: np.sort(rng.choice(len(a), max(fewest, len(a) // 2), replace=False)) for name, a in flat.items()}


def _half_sample_interval(estimate: float, values: np.ndarray, flat: Mapping[str, np.ndarray], fewest: int,
                          confidence: float) -> tuple[float, float]:
    """The interval of a statistic from its values on half-samples (:func:`_subsamples`): the estimate plus the
    half-samples' quantiles about their median, scaled by sqrt(m / (n - m)) (the spread of a statistic on m of n pairs
    drawn without replacement, about the full sample's, is sqrt((n - m) / m) times its sampling spread; 1 for halves).
    It holds its estimate by construction; NaN when every dataset's half-sample is the whole dataset."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    m_n = [(max(fewest, len(a) // 2), len(a)) for a in flat.values()]
    if not len(values) or not np.isfinite(estimate) or all(m >= n for m, n in m_n):
        return np.nan, np.nan
    scale = float(np.mean([np.sqrt(m / (n - m)) for m, n in m_n if m < n]))
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail]) - np.median(values)
    return float(estimate + scale * low), float(estimate + scale * high)


def _split_agreement(flat: Mapping[str, np.ndarray], p: float, n_splits: int, rng: np.random.Generator,
                     pools: Mapping[str, np.ndarray] | None = None) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Mean over ``n_splits`` splits of each dataset's half-vs-half Jaccard, and of each pair of datasets' Jaccard
    between their halves (the four half-by-half combinations)."""
    halves = {}
    for name, a in flat.items():
        weights = [_half_weights(len(a), rng, None if pools is None else pools[name]) for _ in range(n_splits)]
        halves[name] = [top_masks(np.stack([w[k] for w in weights]) @ a, p) for k in (0, 1)]  # 2 x [splits, neurons]
    within = {name: float(jaccard_rows(h[0], h[1]).mean()) for name, h in halves.items()}
    cross = {(a, b): float(np.mean([jaccard_rows(halves[a][i], halves[b][j]).mean() for i in (0, 1) for j in (0, 1)]))
             for a, b in itertools.combinations(flat, 2)}
    return within, cross


def split_half_agreement(per_pair: np.ndarray, p: float, *, n_splits: int = 50, seed: int = 0) -> np.ndarray:
    """Jaccard index of the top-p% sets of two disjoint random halves of one dataset's pairs, ``[n_splits]``.

    ``per_pair`` is ``[pairs, layers, units]`` (at least 2 pairs): how well the dataset agrees with itself.
    """
    a = flat_pairs({"dataset": per_pair})["dataset"]
    if len(a) < 2:
        raise ValueError(f"need at least 2 pairs to split a dataset in halves, got {len(a)}")
    rng = _resample_seeds(n_splits, seed)
    weights = [_half_weights(len(a), rng) for _ in range(n_splits)]
    first, second = (top_masks(np.stack([w[k] for w in weights]) @ a, p) for k in (0, 1))
    return jaccard_rows(first, second)


def agreement_ratio(per_pair: Mapping[str, np.ndarray], p: float, *, n_splits: int = 20, n_bootstrap: int = 200,
                    confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Agreement between two datasets' top-p% sets, as a ratio to the agreement of each dataset with itself.

    For every pair of datasets ``(a, b)``: split each dataset's pairs in two disjoint random halves
    (``n_splits`` times); ``cross`` is the mean Jaccard index between a half of ``a`` and a half of ``b``,
    ``within`` the mean over ``a`` and ``b`` of the Jaccard between a dataset's own two halves: sets from the
    same number of pairs, so the ratio ``cross / within`` is 1 when the datasets differ no more than
    resamples of one dataset do, and lower the more their sets differ. ``ratio low``/``ratio high``: an
    interval from ``n_bootstrap`` half-samples of each dataset's pairs, drawn without replacement
    (:func:`_half_sample_interval`, which holds its estimate: a resample with replacement holds about 63% distinct
    pairs, which lowers every split's agreement and moved the ratio's resamples off its estimate). ``Jaccard`` is
    the full-data Jaccard and ``chance Jaccard`` that of two uniformly random sets of the same size
    (a secondary reference: the neurons' own scale already lifts agreement above it).

    Index ``(dataset, other)``; columns ``Jaccard``, ``cross``, ``within``, ``ratio``, ``ratio low``,
    ``ratio high``, ``chance Jaccard``.
    """

    flat = flat_pairs(per_pair)
    if len(flat) < 2:
        raise ValueError(f"need two datasets or more to compare their sets, got {len(flat)}: {', '.join(flat)}")
    small = [name for name, a in flat.items() if len(a) < 2]
    if small:
        raise ValueError(f"datasets {small} have fewer than 2 pairs: a within-dataset reference needs two halves")
    rng = _resample_seeds(n_splits, seed)
    within, cross = _split_agreement(flat, p, n_splits, rng)
    halves = []
    for _ in range(n_bootstrap):
        w, c = _split_agreement(flat, p, max(1, n_splits // 4), rng, _subsamples(flat, rng, 2))
        halves.append({pair: c[pair] / ((w[pair[0]] + w[pair[1]]) / 2) if w[pair[0]] + w[pair[1]] > 0 else np.nan for pair in c})
    n_neurons = next(iter(flat.values())).shape[1]
    full = {name: top_masks(a.mean(axis=0), p)[0] for name, a in flat.items()}
    rows = {}
    for a, b in cross:
        reference = (within[a] + within[b]) / 2
        ratio = cross[(a, b)] / reference if reference > 0 else np.nan
        low, high = _half_sample_interval(ratio, [h[(a, b)] for h in halves], {n: flat[n] for n in (a, b)}, 2, confidence)
        rows[(a, b)] = {
            "Jaccard": float(jaccard_rows(full[a][None], full[b][None])[0]), "cross": cross[(a, b)], "within": reference,
            "ratio": ratio, "ratio low": low, "ratio high": high, "chance Jaccard": random_jaccard(n_neurons, p),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["dataset", "other"])


def _part_intersections(flat: Mapping[str, np.ndarray], p: float, n_splits: int, rng: np.random.Generator,
                        pools: Mapping[str, np.ndarray] | None = None) -> tuple[float, float]:
    """Mean over splits of the intersection across datasets (one part of each) and within datasets (the k parts
    of one dataset, averaged over datasets), every set from a k-th of a dataset's pairs."""
    k = len(flat)
    parts = {}
    for name, a in flat.items():
        weights = [_part_weights(len(a), k, rng, None if pools is None else pools[name]) for _ in range(n_splits)]
        parts[name] = [top_masks(np.stack([w[i] for w in weights]) @ a, p) for i in range(k)]  # k x [splits, neurons]
    names = list(flat)
    # across: dataset d contributes its part (d + shift) mod k, so every part is used once per shift
    across = np.mean([np.logical_and.reduce([parts[name][(i + shift) % k] for i, name in enumerate(names)]).sum(axis=1).mean()
                      for shift in range(k)])
    within = np.mean([np.logical_and.reduce(parts[name]).sum(axis=1).mean() for name in names])
    return float(across), float(within)


def intersection_ratio(per_pair: Mapping[str, np.ndarray], p: float, *, n_splits: int = 20, n_bootstrap: int = 200,
                       confidence: float = 0.95, seed: int = 0) -> dict:
    """The intersection of the datasets' top-p% sets as a ratio to the intersection within one dataset.

    With k datasets, each dataset's pairs are split in k disjoint random parts (``n_splits`` times). ``across``
    is the size of the intersection of k sets, one from a part of each dataset; ``within`` that of the k sets
    of one dataset's own parts (averaged over datasets): every set comes from the same number of pairs, so
    ``ratio = across / within`` is 1 when the datasets share as much as parts of one dataset do. For two
    datasets it is the split-halves reference of :func:`agreement_ratio`, in neurons.
    ``ratio low``/``ratio high``: interval from ``n_bootstrap`` half-samples of each dataset's pairs drawn without
    replacement (:func:`_half_sample_interval`). ``intersection`` is the full-data intersection and ``uniform chance`` that of uniformly random sets.
    Returns a dict of these numbers.
    """

    flat = flat_pairs(per_pair)
    k = len(flat)
    if k < 2:
        raise ValueError(f"need two datasets or more to intersect their sets, got {k}: {', '.join(flat)}")
    small = [name for name, a in flat.items() if len(a) < k]
    if small:
        raise ValueError(f"datasets {small} have fewer than {k} pairs: each needs one pair in each of {k} parts")
    rng = _resample_seeds(n_splits, seed)
    across, within = _part_intersections(flat, p, n_splits, rng)
    ratios = []
    for _ in range(n_bootstrap):
        a_, w_ = _part_intersections(flat, p, max(1, n_splits // 4), rng, _subsamples(flat, rng, k))
        ratios.append(a_ / w_ if w_ > 0 else np.nan)
    n_neurons = next(iter(flat.values())).shape[1]
    full = top_masks(np.stack([a.mean(axis=0) for a in flat.values()]), p).all(axis=0).sum()
    ratio = across / within if within > 0 else np.nan
    low, high = _half_sample_interval(ratio, ratios, flat, k, confidence)
    return {"intersection": int(full), "across": across, "within": within, "ratio": ratio, "ratio low": low,
            "ratio high": high, "uniform chance": chance_intersection(top_count(n_neurons, p), n_neurons, k)}


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


    flat = flat_pairs(per_pair)
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
