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
sign) and the rest. :func:`set_contrast_test` asks the same of a whole set at once, and
:func:`contrast_difference_test` asks which neurons separate the classes more out of domain than in domain (the
out-of-domain claim as a difference in differences, which a shift of the whole collection does not pass).

Per-pair NIG is ``[pairs, neurons]`` (neurons = layers x units, flattened) towards P(relevant).
"""
from __future__ import annotations

import numpy as np

from neuron_ig.stats.nulls import bootstrap_weights
from neuron_ig.stats.selection import top_masks
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
    relevant_weights, other_weights = _permuted_groups(rng, n_permutations, n_pairs, n_relevant)
    null = relevant_weights @ pooled - other_weights @ pooled  # [R, tested]
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


def _check_cells(cells) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{dataset: (relevant, non_relevant)}`` as float arrays ``[pairs, neurons]``, 2 pairs a class or more."""
    checked = {}
    for name, (relevant, non_relevant) in cells.items():
        relevant, non_relevant = np.asarray(relevant, dtype=float), np.asarray(non_relevant, dtype=float)
        if relevant.ndim != 2 or non_relevant.ndim != 2 or relevant.shape[1] != non_relevant.shape[1]:
            raise ValueError(f"{name}: expected [pairs, neurons] for both classes, got {relevant.shape} and {non_relevant.shape}")
        if min(len(relevant), len(non_relevant)) < 2:
            raise ValueError(f"{name}: a contrast needs 2 pairs of each class or more, got {len(relevant)} and {len(non_relevant)}")
        checked[name] = (relevant, non_relevant)
    if not checked:
        raise ValueError("no dataset to test: pass {dataset: (relevant, non_relevant)}")
    return checked


def _selected_contrast(relevant_means: np.ndarray, non_relevant_means: np.ndarray, p: float, label: int) -> np.ndarray:
    """``[rows]``: the class contrast averaged over each row's top-p% set of the class ``label`` (its mean towards
    its own class: P(relevant) for 1, P(non-relevant) = -P(relevant) for 0). Means are ``[rows, neurons]``."""
    own = relevant_means if label == 1 else -non_relevant_means
    masks = top_masks(own, p)
    return ((relevant_means - non_relevant_means) * masks).sum(axis=1) / masks.sum(axis=1)


def _permuted_groups(rng: np.random.Generator, rows: int, n: int, take: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, a random split of ``n`` pairs into ``take`` "relevant" ones and the rest, as averaging weights
    ``[rows, n]`` of each group: ``(relevant, non_relevant)``, so that ``weights @ values`` gives the groups' means."""
    chosen = np.argsort(rng.random((rows, n)), axis=1)[:, :take]
    relevant = np.zeros((rows, n))
    np.put_along_axis(relevant, chosen, 1.0, axis=1)
    return relevant / take, (1.0 - relevant) / (n - take)


def set_contrast_test(cells, p: float, *, label: int, n_permutations: int = 999, n_bootstrap: int = 999,
                      confidence: float = 0.95, seed: int = 0, chunk: int = 250) -> dict:
    """Do a class's top-p% neurons push P(relevant) up more on relevant pairs than on non-relevant ones?

    Args:
        cells: ``{dataset: (relevant [pairs, neurons], non_relevant [pairs, neurons])}``, NIG towards P(relevant).
        p: the set of each dataset is its top p% of the class ``label``'s mean NIG towards its own class
            (1: relevant pairs towards P(relevant); 0: non-relevant pairs towards P(non-relevant)).

    The statistic is the mean, over datasets, of the class contrast (:func:`class_contrast`) averaged over the
    dataset's set: positive when the set separates the classes the way relevance does. The set is chosen on the
    pairs the contrast then reads, which biases it upwards, so both the null and the interval choose it again on
    every resample. The null permutes the class labels within each dataset (every pair keeps its values, so every
    neuron keeps its scale: a set that pushes P(relevant) up on every pair alike stays at its selection's bias).
    The interval resamples the pairs of each dataset and class (bootstrap percentile, widened to hold the estimate).

    Returns:
        ``observed``, ``null`` ``[n_permutations]``, ``p`` (one-sided, upper; at least 1 / (R + 1)),
        ``interval`` ``(low, high)``, ``per dataset`` ``{dataset: contrast of its set}`` and ``sets``
        ``{dataset: [neurons] bool}``.
    """
    cells = _check_cells(cells)
    if label not in (0, 1):
        raise ValueError(f"label must be 1 (positive set) or 0 (negative set), got {label!r}")
    rng = np.random.default_rng(seed)
    per_dataset, sets, null, boot = {}, {}, np.zeros(n_permutations), np.zeros(n_bootstrap)
    for name, (relevant, non_relevant) in cells.items():
        means = relevant.mean(axis=0)[None], non_relevant.mean(axis=0)[None]
        per_dataset[name] = float(_selected_contrast(*means, p, label)[0])
        sets[name] = top_masks(means[0] if label == 1 else -means[1], p)[0]
        pooled, n_relevant = np.concatenate([relevant, non_relevant]), len(relevant)
        for start in range(0, n_permutations, chunk):
            rows = min(chunk, n_permutations - start)
            relevant_weights, other_weights = _permuted_groups(rng, rows, len(pooled), n_relevant)
            null[start:start + rows] += _selected_contrast(relevant_weights @ pooled, other_weights @ pooled, p, label)
        for start in range(0, n_bootstrap, chunk):
            rows = min(chunk, n_bootstrap - start)
            boot[start:start + rows] += _selected_contrast(bootstrap_weights(rng, rows, len(relevant)) @ relevant,
                                                           bootstrap_weights(rng, rows, len(non_relevant)) @ non_relevant,
                                                           p, label)
    null, boot = null / len(cells), boot / len(cells)
    observed = float(np.mean(list(per_dataset.values())))
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    p_value = (1 + int((null >= observed - 1e-12 * max(abs(observed), 1.0)).sum())) / (n_permutations + 1)
    return {"observed": observed, "null": null, "p": p_value,
            "interval": (float(min(low, observed)), float(max(high, observed))), "per dataset": per_dataset, "sets": sets}


def _moments(weights: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``weights`` ``[rows, pairs]`` (each a resample's averaging weights): the mean ``[rows, neurons]``
    of ``values`` ``[pairs, neurons]`` and the squared standard error of that mean (the sample variance / pairs)."""
    mean = weights @ values
    square = weights @ values**2
    return mean, np.maximum(square - mean**2, 0.0) / (len(values) - 1)


def _largest_t(moments, inside: str, outside, p: float, label: int, centre=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the candidates (neurons in every ``outside`` top-p% set of class ``label``), each neuron's smallest
    studentised contrast difference over ``outside`` (minus ``centre`` ``{dataset: [neurons]}``) and the largest
    over the candidates (-inf without one): ``(candidates, t, largest)``, ``[rows, neurons]`` twice and ``[rows]``."""
    (r_in, vr_in), (n_in, vn_in) = moments[inside]
    candidates, t = None, None
    for name in outside:
        (r, vr), (n, vn) = moments[name]
        top = top_masks(r if label == 1 else -n, p)
        candidates = top if candidates is None else candidates & top
        difference = (r - n) - (r_in - n_in) - (0.0 if centre is None else centre[name])
        se = np.sqrt(vr + vn + vr_in + vn_in)
        t_o = np.divide(difference, se, out=np.zeros_like(difference), where=se > 0)
        t = t_o if t is None else np.minimum(t, t_o)
    largest = np.where(candidates, t, -np.inf).max(axis=1)
    return candidates, t, largest


def contrast_difference_test(cells, inside: str, p: float, *, label: int, n_resamples: int = 499, alpha: float = 0.05,
                             seed: int = 0, chunk: int = 100) -> dict:
    """Which neurons separate the classes more out of domain than in domain (a difference in differences)?

    Args:
        cells: ``{dataset: (relevant [pairs, neurons], non_relevant [pairs, neurons])}``, NIG towards P(relevant)
            (per token, so that collections of longer or shorter pairs compare), with ``inside``, the in-domain
            dataset, and one out-of-domain dataset or more.
        p, label: the candidates are the neurons in every out-of-domain top-p% set of class ``label`` (its mean
            towards its own class).

    Per neuron and out-of-domain dataset o: t_o = ((mean_rel - mean_nonrel) in o - (the same) in domain) / its
    Welch standard error; a neuron's statistic is its smallest t_o (it must hold in every out-of-domain dataset),
    and the claim's the largest over the candidates (max-t). A shift of the whole collection (every pair of o
    higher, or on another scale) leaves the contrast, hence the difference, at 0. The null is the studentised
    bootstrap of the max-t: the pairs of each dataset and class are resampled, the candidates chosen again (they
    are chosen on the pairs the test reads) and each neuron's t recomputed about its observed difference, so that
    every group keeps its own spread and every neuron its scale (calibrated in the suite at 64 pairs a group).

    Returns:
        ``t`` ``[neurons]`` (NaN outside the candidates), ``candidates`` ``[neurons]`` bool, ``observed`` (the
        largest t; 0 without a candidate), ``null`` ``[n_resamples]``, ``p`` (upper; at least 1 / (R + 1)),
        ``threshold`` (the null's 1 - alpha quantile) and ``passes`` ``[neurons]`` (candidates above it: neurons
        specific to out-of-domain data, with the family-wise error of the max-t at ``alpha``).
    """
    cells = _check_cells(cells)
    if inside not in cells or len(cells) < 2:
        raise ValueError(f"a difference in differences needs the in-domain dataset {inside!r} and another "
                         f"(datasets: {', '.join(cells)})")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive int, got {n_resamples!r}")
    if label not in (0, 1):
        raise ValueError(f"label must be 1 (positive set) or 0 (negative set), got {label!r}")
    outside = [name for name in cells if name != inside]
    uniform = {name: tuple(_moments(np.full((1, len(a)), 1.0 / len(a)), a) for a in cells[name]) for name in cells}
    candidates, t, largest = _largest_t(uniform, inside, outside, p, label)
    candidates, t = candidates[0], np.where(candidates[0], t[0], np.nan)
    observed = float(largest[0]) if candidates.any() else 0.0
    centre = {name: ((uniform[name][0][0] - uniform[name][1][0]) - (uniform[inside][0][0] - uniform[inside][1][0]))
              for name in outside}
    rng = np.random.default_rng(seed)
    null = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        rows = min(chunk, n_resamples - start)
        drawn = {name: tuple(_moments(bootstrap_weights(rng, rows, len(a)), a) for a in cells[name]) for name in cells}
        null[start:start + rows] = _largest_t(drawn, inside, outside, p, label, centre)[2]
    threshold = float(np.quantile(null, 1 - alpha))
    p_value = (1 + int((null >= observed - 1e-12 * max(abs(observed), 1.0)).sum())) / (n_resamples + 1)
    return {"t": t, "candidates": candidates, "observed": observed, "null": null, "p": p_value if candidates.any() else 1.0,
            "threshold": threshold, "passes": candidates & (np.nan_to_num(t, nan=-np.inf) > threshold)}


def presence_position(relevant: np.ndarray, mismatched: np.ndarray, non_relevant: np.ndarray, select, *,
                      n_bootstrap: int = 999, confidence: float = 0.95, seed: int = 0) -> dict[str, dict]:
    """Where mismatched pairs fall between non-relevant (0) and relevant pairs (1), per group of neurons.

    A mismatched pair keeps a relevant pair's passage and takes another query (:func:`neuron_ig.ir.pairs.mismatched_pairs`):
    a query is there, but it is not relevant. A group that answers "the query is relevant" treats it as a
    non-relevant pair (position 0); one that answers "a query is there", as a relevant pair (position 1).

    Args:
        relevant: ``[n, neurons]`` NIG towards P(relevant) of relevant pairs.
        mismatched: ``[n, neurons]``, row i the mismatched twin of relevant row i (same passage).
        non_relevant: ``[m, neurons]``, of non-relevant pairs.
        select: ``select(relevant, non_relevant) -> {group: [neurons] bool}``, how the groups are chosen
            (a class's top set and its parts, :func:`split_top_set`).

    The groups are chosen on one half of the pairs and measured on the other (two folds, each pair measured once,
    the folds' statistics averaged): chosen and measured on the same pairs, a group picked for its contrast would
    look more relevance-specific than it is. Per group the mean, over its neurons, of each kind of pair's mean;
    ``position`` = (mismatched - non-relevant) / (relevant - non-relevant) and ``relevant - mismatched`` (paired
    over passages), each with a percentile bootstrap interval over the measured pairs (widened to hold the estimate).

    Returns:
        ``{group: {"neurons", "relevant", "mismatched", "non-relevant", "position", "position low", "position high",
        "relevant - mismatched", "difference low", "difference high"}}``; ``neurons`` is the groups' mean size over the
        folds, and a group empty in a fold is left out of that fold (NaN if empty in both).
    """
    relevant, mismatched, non_relevant = (np.asarray(a, dtype=float) for a in (relevant, mismatched, non_relevant))
    if relevant.shape != mismatched.shape or relevant.ndim != 2 or non_relevant.ndim != 2 \
            or non_relevant.shape[1] != relevant.shape[1]:
        raise ValueError(f"expected relevant and mismatched [n, neurons] of one shape and non_relevant [m, neurons], got "
                         f"{relevant.shape}, {mismatched.shape} and {non_relevant.shape}")
    if min(len(relevant), len(non_relevant)) < 4:
        raise ValueError(f"two folds need 4 relevant and 4 non-relevant pairs or more, got {len(relevant)} and "
                         f"{len(non_relevant)}")
    rng = np.random.default_rng(seed)
    folds = [np.array_split(rng.permutation(n), 2) for n in (len(relevant), len(non_relevant))]
    measured: dict[str, list] = {}
    for fold in range(2):
        chosen_r, measured_r = folds[0][fold], folds[0][1 - fold]
        chosen_n, measured_n = folds[1][fold], folds[1][1 - fold]
        groups = select(relevant[chosen_r], non_relevant[chosen_n])
        weights = (bootstrap_weights(rng, n_bootstrap, len(measured_r)), bootstrap_weights(rng, n_bootstrap, len(measured_n)))
        for name, mask in groups.items():
            mask = np.asarray(mask, dtype=bool).reshape(-1)
            measured.setdefault(name, [])
            if not mask.any():
                continue
            r, m, o = (a[:, mask].mean(axis=1) for a in (relevant[measured_r], mismatched[measured_r], non_relevant[measured_n]))
            means = np.array([r.mean(), m.mean(), o.mean()])
            resampled = np.stack([weights[0] @ r, weights[0] @ m, weights[1] @ o])  # [3, B]
            measured[name].append((int(mask.sum()), means, resampled))
    tail = (1 - confidence) / 2
    out = {}
    for name, parts in measured.items():
        if not parts:
            out[name] = {"neurons": np.nan, **{key: np.nan for key in ("relevant", "mismatched", "non-relevant", "position",
                                                                       "position low", "position high", "relevant - mismatched",
                                                                       "difference low", "difference high")}}
            continue
        means = np.mean([p[1] for p in parts], axis=0)
        resampled = np.mean([p[2] for p in parts], axis=0)
        position = (means[1] - means[2]) / (means[0] - means[2])
        positions = (resampled[1] - resampled[2]) / (resampled[0] - resampled[2])
        difference, differences = means[0] - means[1], resampled[0] - resampled[1]
        p_low, p_high = np.nanquantile(positions, [tail, 1 - tail])
        d_low, d_high = np.quantile(differences, [tail, 1 - tail])
        out[name] = {"neurons": float(np.mean([p[0] for p in parts])), "relevant": float(means[0]),
                     "mismatched": float(means[1]), "non-relevant": float(means[2]), "position": float(position),
                     "position low": float(min(p_low, position)), "position high": float(max(p_high, position)),
                     "relevant - mismatched": float(difference), "difference low": float(min(d_low, difference)),
                     "difference high": float(max(d_high, difference))}
    return out
