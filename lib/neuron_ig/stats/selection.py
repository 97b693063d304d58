"""Selecting relevance neurons: the global top p% of all layers x units, and set operations across datasets.

A neuron set is a boolean mask ``[layers, units]``.
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from neuron_ig.stats.significance import benjamini_hochberg


def top_p_percent(scores: np.ndarray, p: float) -> np.ndarray:
    """Mask of the ``ceil(p% of layers x units)`` neurons with the highest scores, ``[layers, units]``.

    Ties at the threshold are broken by position (stable), so the set always has exactly that size.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 100:
        raise ValueError(f"p must be a percentage in (0, 100], got {p!r}: the book uses 0.1, 0.5 and 1")
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


FUSION_NORMALISATIONS = (None, "rank", "z")


def normalised_scores(scores: Mapping[str, np.ndarray], normalise: str | None = None) -> dict[str, np.ndarray]:
    """Each dataset's scores put on a common scale before they are combined, ``{dataset: [layers, units]}``.

    ``None`` keeps them; ``"rank"`` replaces each score by its rank among the dataset's neurons divided by the
    number of neurons (in (0, 1], ties averaged); ``"z"`` standardises each dataset's scores (mean 0, sd 1 over
    its neurons). Without normalisation the dataset with the largest NIG scale decides the mean alone.
    """
    from scipy.stats import rankdata

    _check_sets(scores)
    if normalise not in FUSION_NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalise!r}: use None, 'rank' (rank average) or 'z' (z-scores)")
    if normalise is None:
        return {name: np.asarray(s, dtype=float) for name, s in scores.items()}
    out = {}
    for name, s in scores.items():
        s = np.asarray(s, dtype=float)
        if normalise == "rank":
            out[name] = rankdata(s, axis=None).reshape(s.shape) / s.size
        else:
            sd = s.std()
            out[name] = (s - s.mean()) / sd if sd > 0 else np.zeros_like(s)
    return out


def fusion(scores: Mapping[str, np.ndarray], p: float, *, normalise: str | None = None) -> np.ndarray:
    """Top p% of the mean of the per-dataset neuron scores (after :func:`normalised_scores` with ``normalise``)."""
    _check_sets(scores)
    return top_p_percent(np.mean(list(normalised_scores(scores, normalise).values()), axis=0), p)


def fusion_shares(scores: Mapping[str, np.ndarray], p: float, *, normalise: str | None = None) -> pd.DataFrame:
    """Each dataset's share of the fusion set: how much one dataset decides what the fusion selects.

    Index ``dataset``; columns ``in its top p%`` (share of the fusion set's neurons that are also in the
    dataset's own top-p% set) and ``share of fused score`` (the dataset's part of the summed fused scores of
    the fusion set, on the scale ``normalise`` puts them; the shares sum to 1).
    """
    normalised = normalised_scores(scores, normalise)
    fused = fusion(scores, p, normalise=normalise)
    total = sum(s[fused].sum() for s in normalised.values())
    rows = {name: {"in its top p%": float((top_p_percent(scores[name], p) & fused).sum() / fused.sum()),
                   "share of fused score": float(s[fused].sum() / total) if total else np.nan}
            for name, s in normalised.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset")


def ood_neurons(out_of_domain: np.ndarray, in_domain: np.ndarray) -> np.ndarray:
    """Neurons in the out-of-domain set (an intersection or fusion) but not in the in-domain set."""
    return out_of_domain & ~in_domain


def per_layer_counts(mask: np.ndarray) -> np.ndarray:
    """Number of selected neurons in each layer, ``[layers]``."""
    return mask.sum(axis=1)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """``|a & b| / |a | b|`` (1.0 for two empty sets)."""
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


# --- the relevance-neuron figures: per-dataset sets, their intersection, per-layer counts -----------

INTERSECTION = "intersection"


def relevance_neuron_sets(scores: Mapping[str, np.ndarray], p: float) -> dict[str, np.ndarray]:
    """Each dataset's top-p% set, ``{dataset: mask [layers, units]}``, in order."""
    _check_sets(scores)
    return {name: top_p_percent(s, p) for name, s in scores.items()}


def layer_count_table(
    scores: Mapping[str, np.ndarray], p_values: Sequence[float], *, intersection_name: str = INTERSECTION,
) -> pd.DataFrame:
    """Per p, per set and per layer, the number of relevance neurons: the figures' data, long format.

    ``scores`` are the per-dataset class means ``{dataset: [layers, units]}``; the sets are each dataset's
    top p% and their intersection (named ``intersection_name``). Columns: ``p``, ``set``, ``layer``,
    ``neurons``; one row for every layer, zeros included, so the counts of a set sum to its size.
    """
    tables = []
    for p in p_values:
        sets = relevance_neuron_sets(scores, p)
        sets[intersection_name] = intersection(sets)
        tables.append(layer_counts(sets).assign(p=p))
    return pd.concat(tables, ignore_index=True)[["p", "set", "layer", "neurons"]]


def layer_counts(sets: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per set and per layer, the number of neurons (zeros included): columns ``set``, ``layer``, ``neurons``."""
    _check_sets(sets)
    rows = [{"set": name, "layer": layer, "neurons": int(count)}
            for name, mask in sets.items() for layer, count in enumerate(per_layer_counts(mask))]
    return pd.DataFrame(rows, columns=["set", "layer", "neurons"])


def chance_intersection(size: int, total: int, n_sets: int) -> float:
    """Expected size of the intersection of ``n_sets`` independent random sets of ``size`` of ``total`` neurons."""
    return total * (size / total) ** n_sets if total else 0.0


def set_size_table(
    scores: Mapping[str, np.ndarray], p_values: Sequence[float], *, intersection_name: str = INTERSECTION,
) -> pd.DataFrame:
    """Per p: the size of each dataset's set, of their intersection, its share of a set, and its chance size.

    Index ``p``; columns ``neurons per dataset`` (every top-p% set has ``ceil(p% of neurons)``),
    ``intersection``, ``intersection / set`` and ``chance intersection`` (:func:`chance_intersection`:
    what sets drawn at random would share), and ``mean Jaccard`` over the pairs of datasets.
    """
    _check_sets(scores)
    total = next(iter(scores.values())).size
    rows = {}
    for p in p_values:
        sets = relevance_neuron_sets(scores, p)
        size = int(next(iter(sets.values())).sum())
        common = int(intersection(sets).sum())
        pairs = list(itertools.combinations(sets.values(), 2))
        rows[p] = {
            "neurons per dataset": size,
            intersection_name: common,
            f"{intersection_name} / set": common / size,
            f"chance {intersection_name}": chance_intersection(size, total, len(sets)),
            "mean Jaccard": float(np.mean([jaccard(a, b) for a, b in pairs])) if pairs else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("p")


def jaccard_matrix(sets: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Jaccard index of every pair of sets, a symmetric ``[sets, sets]`` table with ones on the diagonal."""
    _check_sets(sets)
    names = list(sets)
    return pd.DataFrame([[jaccard(sets[a], sets[b]) for b in names] for a in names], index=names, columns=names)


def shared_with_others(scores: Mapping[str, np.ndarray], p_values: Sequence[float]) -> pd.DataFrame:
    """How much each dataset's top-p% set shares with the other datasets' sets: the "fewest shared" ranking.

    For each p (one column per p), the mean Jaccard index of the dataset's set with each other dataset's
    set; column ``mean`` averages them over ``p_values``. Rows sorted by ``mean``, ascending: the first
    datasets share the fewest neurons with the rest.
    """
    if len(scores) < 2:
        raise ValueError(f"need at least two datasets to compare their neuron sets, got {len(scores)}: {', '.join(scores) or 'none'}")
    columns = {}
    for p in p_values:
        matrix = jaccard_matrix(relevance_neuron_sets(scores, p))
        columns[p] = (matrix.sum(axis=1) - 1) / (len(matrix) - 1)  # the diagonal (1) left out
    shared = pd.DataFrame(columns)
    shared["mean"] = shared.mean(axis=1)
    return shared.sort_values("mean", kind="stable").rename_axis("dataset")


def fewest_shared(scores: Mapping[str, np.ndarray], p_values: Sequence[float], n_dropped: int, *, keep: int = 2,
                  protect: Sequence[str] = ()) -> list[str]:
    """The ``n_dropped`` datasets that share the fewest neurons with the rest (:func:`shared_with_others`).

    At most ``len(scores) - keep`` are returned, so that an intersection over at least ``keep`` datasets
    remains; with fewer than ``keep + 1`` datasets nothing is dropped. Datasets in ``protect`` (the in-domain
    collection: a core "shared across collections" must hold it) are never dropped.
    """
    if n_dropped < 0:
        raise ValueError(f"n_dropped must be 0 or more, got {n_dropped}")
    count = max(0, min(n_dropped, len(scores) - keep))
    ranking = [name for name in shared_with_others(scores, p_values).index if name not in set(protect)]
    return ranking[:count] if count else []


def core_size_table(core: Mapping[str, np.ndarray], scores: Mapping[str, np.ndarray], p_values: Sequence[float]) -> pd.DataFrame:
    """Per p, the core's intersection (over the datasets of ``core``) against the intersection over all ``scores``.

    Index ``p``; columns ``neurons per dataset``, ``core intersection``, ``intersection, all datasets``,
    ``core / set`` and ``chance core`` (what as many random sets would share).
    """
    sizes = set_size_table(core, p_values)
    return pd.DataFrame({
        "neurons per dataset": sizes["neurons per dataset"],
        "core intersection": sizes[INTERSECTION],
        "intersection, all datasets": set_size_table(scores, p_values)[INTERSECTION],
        "core / set": sizes[INTERSECTION + " / set"],
        "chance core": sizes["chance " + INTERSECTION],
    })


def neuron_set_table(scores: Mapping[str, np.ndarray], p_values: Sequence[float]) -> pd.DataFrame:
    """Every dataset's relevance neurons at the largest p, one row per neuron, for download.

    Columns ``dataset``, ``layer``, ``unit``, ``score`` (the dataset's mean NIG), ``rank`` (1 = highest
    score among all layers x units, ties by position as in :func:`top_p_percent`), then per p
    ``top P%`` (the neuron is in the dataset's top-p% set) and ``intersection at top P%`` (in every
    dataset's set). Sets are nested, so the rows at the largest p hold all of them.
    """
    _check_sets(scores)
    largest = max(p_values)
    common = {p: intersection(relevance_neuron_sets(scores, p)) for p in p_values}
    tables = []
    for dataset, values in scores.items():
        values = np.asarray(values)
        order = np.argsort(-values, axis=None, kind="stable")
        kept = order[: int(top_p_percent(values, largest).sum())]
        layer, unit = np.unravel_index(kept, values.shape)
        table = pd.DataFrame({"dataset": dataset, "layer": layer, "unit": unit,
                              "score": values.reshape(-1)[kept], "rank": np.arange(1, len(kept) + 1)})
        for p in p_values:
            table[f"top {p:g}%"] = top_p_percent(values, p)[layer, unit]
            table[f"intersection at top {p:g}%"] = common[p][layer, unit]
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def layer_count_summary(counts: pd.DataFrame, set_name: str = INTERSECTION) -> pd.DataFrame:
    """Per p, for one set of a :func:`layer_count_table`: its size, the layer holding most of it, and that share."""
    rows = {}
    for p, group in counts[counts["set"] == set_name].groupby("p", sort=False):
        size = int(group["neurons"].sum())
        peak = group.loc[group["neurons"].idxmax()]
        rows[p] = {"neurons": size, "peak layer": int(peak["layer"]) if size else None,
                   "share in peak layer": float(peak["neurons"] / size) if size else float("nan")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("p")


# --- overlaps: between classes, and the neurons specific to out-of-domain data -----------------------

def class_overlap(positive: Mapping[str, np.ndarray], negative: Mapping[str, np.ndarray], p_values: Sequence[float]) -> pd.DataFrame:
    """Per dataset (present in both classes) and p: the positive and negative top-p% sets, what they share, Jaccard.

    Index ``(dataset, p)``; columns ``positive``, ``negative``, ``shared``, ``Jaccard``.
    """
    rows = {}
    for dataset in [d for d in positive if d in negative]:
        for p in p_values:
            pos, neg = top_p_percent(positive[dataset], p), top_p_percent(negative[dataset], p)
            rows[(dataset, p)] = {"positive": int(pos.sum()), "negative": int(neg.sum()),
                                  "shared": int((pos & neg).sum()), "Jaccard": jaccard(pos, neg)}
    index = pd.MultiIndex.from_tuples(list(rows), names=["dataset", "p"]) if rows else pd.MultiIndex.from_arrays([[], []], names=["dataset", "p"])
    return pd.DataFrame(list(rows.values()), index=index, columns=["positive", "negative", "shared", "Jaccard"])


OOD_SETS = ("fusion, all datasets", "out-of-domain intersection", "out-of-domain fusion",
            "OOD neurons (intersection)", "OOD neurons (fusion)")


def ood_sets(scores: Mapping[str, np.ndarray], in_domain: str, p: float, *, normalise: str | None = None) -> dict[str, np.ndarray]:
    """The sets that separate in-domain from out-of-domain neurons, at one p, named as in :data:`OOD_SETS`.

    ``scores`` are the per-dataset class means, ``in_domain`` the key of the in-domain dataset; the
    others are out-of-domain. The fusion over all datasets is the top p% of the mean of all the score
    vectors; the out-of-domain intersection and fusion are over the out-of-domain datasets only; the
    OOD neurons are those of the out-of-domain intersection (or fusion) that are not in the in-domain
    dataset's top-p% set. ``normalise`` is :func:`fusion`'s (default: the raw mean).
    """
    if in_domain not in scores:
        raise ValueError(f"the in-domain dataset {in_domain!r} has no scores (datasets: {', '.join(scores) or 'none'}): "
                         "OOD neurons need its top-p% set")
    outside = {name: s for name, s in scores.items() if name != in_domain}
    if not outside:
        raise ValueError(f"no out-of-domain dataset besides {in_domain!r}: OOD neurons need at least one")
    in_set = top_p_percent(scores[in_domain], p)
    ood_intersection = intersection(relevance_neuron_sets(outside, p))
    ood_fusion = fusion(outside, p, normalise=normalise)
    return dict(zip(OOD_SETS, (fusion(scores, p, normalise=normalise), ood_intersection, ood_fusion,
                               ood_neurons(ood_intersection, in_set), ood_neurons(ood_fusion, in_set))))


def top_share(scores: np.ndarray, p: float) -> float:
    """Share of the positive attribution mass that the top-p% neurons carry (0 when nothing is positive)."""
    positive = np.clip(np.asarray(scores), 0, None)
    total = positive.sum()
    return float(positive[top_p_percent(scores, p)].sum() / total) if total > 0 else 0.0


# --- the neuron sets the pruning study prunes ------------------------------------------------------

def lowest_p_percent(scores: np.ndarray, p: float) -> np.ndarray:
    """Mask of the ``ceil(p%)`` neurons with the lowest (most negative) scores: they push against the class."""
    return top_p_percent(-np.asarray(scores), p)


#: the pruning study's name of a class's tested OOD neurons (:func:`pruning_schemes`)
OOD_NEURONS = "OOD neurons"


def pruning_schemes(scores: Mapping[str, np.ndarray], in_domain: str, p: float, *, normalise: str | None = None,
                    ood: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The neuron sets of one class that the pruning study prunes at one p, ``{scheme: mask [layers, units]}``.

    ``scores`` are the class means ``{dataset: [layers, units]}`` (datasets without correctly classified
    pairs left out); ``in_domain`` is the in-domain dataset's key. In order: each dataset's top-p% set
    (``"top: <dataset>"``); with two datasets or more, their ``"intersection"`` and ``"fusion"``; with ``ood``
    (a mask ``[layers, units]``: the neurons that pass a test of out-of-domain specificity, e.g.
    :func:`neuron_ig.studies.verdicts.ood_neuron_masks`), ``"OOD neurons"`` (:data:`OOD_NEURONS`); and the
    in-domain dataset's lowest-NIG set (``"lowest: <dataset>"``), a control of the same size whose neurons oppose
    the class. A set may be empty (e.g. an intersection). ``normalise`` is :func:`fusion`'s (default: the raw
    mean). The untested set differences of :func:`ood_sets` are not pruned: any shift of text makes them.
    """
    schemes = {f"top: {name}": mask for name, mask in relevance_neuron_sets(scores, p).items()}
    if len(scores) >= 2:
        schemes[INTERSECTION] = intersection({name: schemes[f"top: {name}"] for name in scores})
        schemes["fusion"] = fusion(scores, p, normalise=normalise)
    if ood is not None:
        ood = np.asarray(ood, dtype=bool)
        shape = next(iter(scores.values())).shape if scores else ood.shape
        if ood.shape != shape:
            raise ValueError(f"the OOD neurons' mask has shape {ood.shape}, the scores {shape}: pass a [layers, units] mask")
        schemes[OOD_NEURONS] = ood
    if in_domain in scores:
        schemes[f"lowest: {in_domain}"] = lowest_p_percent(scores[in_domain], p)
    return schemes


# --- OOD neurons that are specific, not just below the in-domain cut ----------------------------------

def score_ranks(scores: np.ndarray) -> np.ndarray:
    """Rank of each neuron by score, 1 = highest (ties broken by position, as :func:`top_p_percent`), ``[layers, units]``."""
    scores = np.asarray(scores)
    ranks = np.empty(scores.size, dtype=int)
    ranks[np.argsort(-scores, axis=None, kind="stable")] = np.arange(1, scores.size + 1)
    return ranks.reshape(scores.shape)


def ood_rank_gap(scores: Mapping[str, np.ndarray], in_domain: str, p: float, *, in_domain_p: float | None = None) -> np.ndarray:
    """OOD neurons by a rank gap: in every out-of-domain top-p% set and outside the in-domain top ``in_domain_p`` percent.

    A neuron just below the in-domain top-p% cut is not specific to out-of-domain data; with ``in_domain_p``
    (default ``5 * p``, capped at 100) it must rank below the in-domain top ``in_domain_p`` percent as well.
    Returns a mask ``[layers, units]``.
    """
    if in_domain not in scores or len(scores) < 2:
        raise ValueError(f"OOD neurons need the in-domain dataset {in_domain!r} and one out-of-domain dataset or more "
                         f"(datasets: {', '.join(scores) or 'none'})")
    gap = min(100.0, 5 * p) if in_domain_p is None else in_domain_p
    if gap < p:
        raise ValueError(f"in_domain_p ({gap}) must be at least p ({p}): the gap lies below the in-domain top-p% set")
    outside = {name: s for name, s in scores.items() if name != in_domain}
    return intersection(relevance_neuron_sets(outside, p)) & ~top_p_percent(scores[in_domain], gap)


def ood_neuron_test(in_domain: np.ndarray, out_of_domain: Mapping[str, np.ndarray], *, q: float = 0.05) -> dict[str, np.ndarray]:
    """Per-neuron test that the mean NIG over out-of-domain pairs exceeds the in-domain mean, with BH control.

    ``in_domain`` is the in-domain per-pair NIG ``[pairs, layers, units]``, ``out_of_domain`` that of each
    out-of-domain dataset. Each neuron gets a one-sided Welch t-test against every out-of-domain dataset;
    its p-value is the largest of them (an intersection-union test: higher in every out-of-domain dataset),
    adjusted over all neurons by Benjamini-Hochberg. A constant neuron gets p = 1.

    Returns ``{"t": smallest t over datasets, "p": p, "p (BH)": adjusted p, "OOD neurons": adjusted p <= q}``,
    each ``[layers, units]``.
    """
    from scipy import special

    if not out_of_domain:
        raise ValueError("no out-of-domain dataset: the test compares in-domain pairs with out-of-domain pairs")
    shape = np.shape(in_domain)[1:]
    small = [name for name, a in {"in-domain": in_domain, **out_of_domain}.items() if len(a) < 2]
    if small:
        raise ValueError(f"{small} have fewer than 2 pairs: a t-test needs at least 2 pairs per dataset")
    t_values, p_values = [], []
    base = np.asarray(in_domain, dtype=float)
    base_mean, base_var = base.mean(axis=0), base.var(axis=0, ddof=1) / len(base)
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in out_of_domain.values():
            if np.shape(a)[1:] != shape:
                raise ValueError(f"per-pair NIG of shapes {np.shape(a)[1:]} and {shape}: they must come from the same model")
            a = np.asarray(a, dtype=float)
            var = a.var(axis=0, ddof=1) / len(a)  # Welch's t and Welch-Satterthwaite degrees of freedom
            t = (a.mean(axis=0) - base_mean) / np.sqrt(var + base_var)
            df = (var + base_var) ** 2 / (var ** 2 / (len(a) - 1) + base_var ** 2 / (len(base) - 1))
            t_values.append(np.nan_to_num(t, nan=0.0, posinf=0.0, neginf=0.0))
            p_values.append(np.where(np.isfinite(t), special.stdtr(df, -np.nan_to_num(t)), 1.0))  # = t.sf(t, df)
    p = np.max(p_values, axis=0)
    adjusted = benjamini_hochberg(p.ravel()).reshape(shape)
    return {"t": np.min(t_values, axis=0), "p": p, "p (BH)": adjusted, "OOD neurons": adjusted <= q}


def top_count(n_neurons: int, p: float) -> int:
    """Size of a top-p% set among ``n_neurons`` (as :func:`neuron_ig.stats.selection.top_p_percent`)."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 100:
        raise ValueError(f"p must be a percentage in (0, 100], got {p!r}: the book uses 0.1, 0.5 and 1")
    return max(1, math.ceil(n_neurons * p / 100))


def top_indices(scores: np.ndarray, count: int) -> np.ndarray:
    """The ``count`` highest of each row of ``scores`` ``[rows, neurons]``, best first, ``[rows, count]``.

    Ties are broken arbitrarily (a resample's means are sums of floats: ties do not occur in practice).
    """
    scores = np.atleast_2d(scores)
    if count >= scores.shape[1]:
        return np.argsort(-scores, axis=1, kind="stable")
    part = np.argpartition(-scores, count - 1, axis=1)[:, :count]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def top_masks(scores: np.ndarray, p: float) -> np.ndarray:
    """Top-p% masks of each row of ``scores`` ``[rows, neurons]``, bool ``[rows, neurons]``."""
    scores = np.atleast_2d(scores)
    masks = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(masks, top_indices(scores, top_count(scores.shape[1], p)), True, axis=1)
    return masks


def jaccard_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Jaccard index of each row of two masks ``[rows, neurons]`` (1.0 for two empty rows), ``[rows]``."""
    shared, union = (a & b).sum(axis=1), (a | b).sum(axis=1)
    return np.where(union > 0, shared / np.maximum(union, 1), 1.0)


def random_jaccard(n_neurons: int, p: float) -> float:
    """Expected Jaccard overlap of two independent random sets of the top-p% size among ``n_neurons`` (chance level)."""
    k = max(1, int(np.ceil(n_neurons * p / 100)))
    shared = k * k / n_neurons  # expected size of the intersection
    return float(shared / (2 * k - shared))
