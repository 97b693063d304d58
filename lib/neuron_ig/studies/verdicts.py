"""The verdict on each claim of the paper: an effect size against a null that keeps what noise would keep.

Each claim function returns one row (a dict): ``claim``, ``statistic`` (what is measured), ``observed``,
``reference`` (its value under the null: the null mean, or the controls' mean), ``effect`` (observed against
reference, named in ``effect is``), ``interval low``/``interval high`` (where the null puts the statistic, or
the controls' prediction interval), ``p`` (one-sided, in the direction of the claim), ``test`` and
``in claimed direction``; the NIG claims add ``observed low``/``observed high``, the statistic's own bootstrap
interval over pairs. :func:`page_verdicts` adjusts the p-values of a page's claims together (Holm) and
gives each claim its verdict by :func:`verdict`:

- ``supported``: the Holm-adjusted p-value is at most ``alpha``;
- ``not supported``: it is not, and the observed value is not on the claimed side of its reference
  (the data point the other way, or nowhere);
- ``inconclusive``: it is not, but the observed value is on the claimed side: the data cannot tell;
- ``model below target: not tested``: the claim is about collections where the model misses its stand-in
  targets (:data:`BELOW_TARGET`), and about no other.

Per-pair NIG is ``{dataset: [pairs, layers, units]}`` (:func:`neuron_ig.studies.aggregation.pair_nig`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from neuron_ig.stats import contrast, nulls
from neuron_ig.stats.controls import (
    pooled_per_query,
    query_control_test,
    set_and_control_per_query,
)
from neuron_ig.stats.selection import chance_intersection, ood_neuron_test
from neuron_ig.stats.significance import holm

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_COMPUTED = "supported", "not supported", "inconclusive", "not computed"
#: the verdict of a claim about collections where the model misses its stand-in targets (and about no other)
BELOW_TARGET = "model below target: not tested"


def verdict(p_adjusted: float, in_claimed_direction: bool, *, alpha: float = 0.05) -> str:
    """``supported`` when ``p_adjusted <= alpha``; else ``inconclusive`` if the effect points the claimed way,
    ``not supported`` if not; ``not computed`` when there is no p-value (NaN)."""
    if p_adjusted is None or not np.isfinite(p_adjusted):
        return NOT_COMPUTED
    if p_adjusted <= alpha:
        return SUPPORTED
    return INCONCLUSIVE if in_claimed_direction else NOT_SUPPORTED


def _row(claim, statistic, observed, null, p, test, *, effect_is="observed / null mean") -> dict:
    null = np.asarray(null, dtype=float)
    reference = float(null.mean())
    effect = observed / reference if reference > 0 else (np.inf if observed > 0 else np.nan)
    return {"claim": claim, "statistic": statistic, "observed": float(observed), "reference": reference,
            "effect": float(effect), "effect is": effect_is, "interval low": float(np.quantile(null, 0.025)),
            "interval high": float(np.quantile(null, 0.975)), "p": float(p), "test": test,
            "in claimed direction": bool(observed > reference)}


def _with_interval(row: dict, interval: tuple[float, float]) -> dict:
    """The row with the statistic's own bootstrap interval (``observed low``/``observed high``), widened to hold the
    observed value (a percentile interval of a selected statistic may miss its estimate)."""
    low, high = interval
    return {**row, "observed low": min(low, row["observed"]), "observed high": max(high, row["observed"])}


def concentration_claim(per_pair: Mapping[str, np.ndarray], p: float, *, n_resamples: int = 999, seed: int = 0,
                        claim: str = "the top p% of neurons carry more than their share of the positive NIG") -> dict:
    """Do the top-p% neurons carry more of the positive mean NIG than neuron scale alone gives them?

    Statistic: the smallest, over datasets, of the share of the positive class-mean NIG in the top p%
    (:func:`neuron_ig.stats.selection.top_share`). Null: sign flips of the pairs (:func:`neuron_ig.stats.nulls.sign_flip_null`),
    which keep each neuron's scale, hence the concentration scale alone produces. Interval: the null's 95% range.
    """
    flat = nulls.flat_pairs(per_pair)
    observed = min(float(nulls.top_share_rows(a.mean(axis=0), p)[0]) for a in flat.values())

    def statistic(means):
        return np.min([nulls.top_share_rows(m, p) for m in means.values()], axis=0)

    null = nulls.sign_flip_null(per_pair, statistic, n_resamples=n_resamples, seed=seed)
    row = _row(claim, f"smallest top-{p:g}% share of the positive NIG over {len(flat)} datasets", observed, null,
               nulls.upper_p_value(observed, null), f"sign-flip null ({n_resamples} resamples)")
    return _with_interval(row, nulls.pairs_bootstrap(per_pair, statistic, n_resamples=n_resamples, seed=seed))


def common_core_claim(per_pair: Mapping[str, np.ndarray], p: float, *, p_values: Sequence[float] | None = None,
                      n_dropped: int = 0, keep: int = 2, protect: Sequence[str] = (), n_resamples: int = 999,
                      seed: int = 0, claim: str = "the top-p% sets share a common core across collections") -> dict:
    """Is the intersection of the datasets' top-p% sets larger than neuron scale alone makes it?

    Statistic: the size of the intersection, after dropping the ``n_dropped`` datasets that share the fewest
    neurons (:func:`neuron_ig.stats.selection.fewest_shared` over ``p_values``, default ``[p]``, as Figures 3 and 5
    do), never one of ``protect`` (the in-domain collection). Null: sign flips of the pairs with the same drop rule
    applied to every resample, so that the choice
    of datasets is part of the null. The row adds ``dropped`` and ``uniform chance`` (the intersection of
    uniformly random sets: a secondary reference, which neuron scale alone exceeds).
    """
    flat = nulls.flat_pairs(per_pair)
    if len(flat) < 2:
        raise ValueError(f"a common core needs two datasets or more, got {len(flat)}: {', '.join(flat) or 'none'}")
    p_values = list(p_values or [p])

    def statistic(means):
        return nulls.intersection_rows(means, p, nulls.fewest_shared_rows(means, p_values, n_dropped, keep=keep,
                                                                          protect=protect))

    observed_means = {name: a.mean(axis=0)[None] for name, a in flat.items()}
    dropped = nulls.fewest_shared_rows(observed_means, p_values, n_dropped, keep=keep, protect=protect)[0]
    observed = float(statistic(observed_means)[0])
    null = nulls.sign_flip_null(per_pair, statistic, n_resamples=n_resamples, seed=seed)
    n_neurons = next(iter(flat.values())).shape[1]
    row = _row(claim, f"neurons in all {len(flat) - len(dropped)} top-{p:g}% sets", observed, null,
               nulls.upper_p_value(observed, null), f"sign-flip null with the drop rule ({n_resamples} resamples)")
    row = _with_interval(row, nulls.pairs_bootstrap(per_pair, statistic, n_resamples=n_resamples, seed=seed))
    row.update({"dropped": dropped, "uniform chance": chance_intersection(nulls.top_count(n_neurons, p), n_neurons,
                                                                          len(flat) - len(dropped))})
    return row


def ood_statistics(per_pair: Mapping[str, np.ndarray], in_domain: str, p: float, *, q: float = 0.05,
                   in_domain_p: float | None = None) -> tuple[float, int, int]:
    """What the OOD claim measures: ``(largest t, tested, rank gap)``.

    Candidates are the neurons in every out-of-domain top-p% set (of the class means). ``largest t``: the
    largest, over candidates, of the smallest over out-of-domain datasets of the Welch t of out-of-domain
    against in-domain NIG (:func:`neuron_ig.stats.selection.ood_neuron_test`; 0 without a candidate). ``tested``:
    candidates that the test finds higher out of domain at BH level ``q``. ``rank gap``: the neurons of
    :func:`neuron_ig.stats.selection.ood_rank_gap`.
    """
    outside = {name: a for name, a in per_pair.items() if name != in_domain}
    candidates = _in_every_top_set(outside, p)
    test = ood_neuron_test(per_pair[in_domain], outside, q=q)
    largest = float(test["t"][candidates].max()) if candidates.any() else 0.0
    # the rank gap of ood_rank_gap, with the resamples' faster top sets (no ties in means of floats)
    gap = min(100.0, 5 * p) if in_domain_p is None else in_domain_p
    in_top = nulls.top_masks(np.asarray(per_pair[in_domain]).mean(axis=0).reshape(1, -1), gap)[0].reshape(candidates.shape)
    return largest, int((test["OOD neurons"] & candidates).sum()), int((candidates & ~in_top).sum())


def _in_every_top_set(per_pair: Mapping[str, np.ndarray], p: float) -> np.ndarray:
    """Mask ``[layers, units]`` of the neurons in the top-p% set of every dataset's class mean."""
    shape = np.shape(next(iter(per_pair.values())))[1:]
    means = np.stack([np.asarray(a).mean(axis=0).ravel() for a in per_pair.values()])
    return nulls.top_masks(means, p).all(axis=0).reshape(shape)


def ood_claim(per_pair: Mapping[str, np.ndarray], in_domain: str, p: float, *, q: float = 0.05,
              in_domain_p: float | None = None, alpha: float = 0.05, n_resamples: int = 199, seed: int = 0,
              claim: str = "some neurons are specific to out-of-domain data") -> dict:
    """Is some neuron of every out-of-domain top-p% set higher out of domain than in domain, beyond what
    pairs shuffled between the datasets give?

    Statistic: the largest t of :func:`ood_statistics` (a max-t test: its permutation p-value controls the
    error over all candidates at once, and is exact whatever the t-tests' accuracy). Null: the pairs shuffled
    between datasets (:func:`neuron_ig.stats.nulls.dataset_permutation_null`). The row adds ``OOD neurons`` (the
    candidates whose t exceeds the null's ``1 - alpha`` quantile of the largest t: the neurons the claim rests
    on), ``tested neurons`` (BH at ``q``), ``rank-gap neurons``, and the mean of the last two in shuffled pairs
    (``tested null mean``, ``rank-gap null mean``: how many noise produces). A resample costs a t-test of every
    neuron (about 25 ms at the book's size): the default 199 puts the p-value floor at 0.005, enough for a Holm
    family of 10 claims at 0.05.
    """
    if in_domain not in per_pair or len(per_pair) < 2:
        raise ValueError(f"OOD neurons need the in-domain dataset {in_domain!r} and one out-of-domain dataset or more "
                         f"(datasets: {', '.join(per_pair) or 'none'})")
    largest, tested, gap = ood_statistics(per_pair, in_domain, p, q=q, in_domain_p=in_domain_p)
    null = nulls.dataset_permutation_null(
        per_pair, lambda shuffled: ood_statistics(shuffled, in_domain, p, q=q, in_domain_p=in_domain_p),
        n_resamples=n_resamples, seed=seed)
    row = _row(claim, f"largest t (out of domain > in domain) among the neurons of every out-of-domain top-{p:g}% set",
               largest, null[:, 0], nulls.upper_p_value(largest, null[:, 0]),
               f"max-t, pairs shuffled between datasets ({n_resamples} resamples)", effect_is="observed - null mean")
    row["effect"] = float(largest - row["reference"])
    outside = {name: a for name, a in per_pair.items() if name != in_domain}
    candidates = _in_every_top_set(outside, p)
    t = ood_neuron_test(per_pair[in_domain], outside, q=q)["t"]
    row.update({"OOD neurons": int((candidates & (t > np.quantile(null[:, 0], 1 - alpha))).sum()),
                "tested neurons": tested, "tested null mean": float(null[:, 1].mean()),
                "rank-gap neurons": gap, "rank-gap null mean": float(null[:, 2].mean())})
    return row


def relevance_claim(cells: Mapping[str, tuple[np.ndarray, np.ndarray]], p: float, *, label: int,
                    n_resamples: int = 999, q: float = 0.05, seed: int = 0,
                    claim: str = "the top-p% neurons respond to relevance, not to a query being there") -> dict:
    """Do a class's top-p% neurons separate relevant from non-relevant pairs, beyond permuted class labels?

    :func:`neuron_ig.stats.contrast.set_contrast_test` of each dataset's top-p% set of class ``label`` on ``cells``
    (``{dataset: (relevant, non_relevant)}``, NIG towards P(relevant), :func:`neuron_ig.studies.aggregation.contrast_cells`).
    A set that pushes P(relevant) up on every pair alike (a neuron for "a query is there") fails. The row adds the
    statistic's own 95% bootstrap interval (``observed low``/``observed high``, over pairs) and
    ``relevance-specific neurons``: the sets' neurons that pass the per-neuron test
    (:func:`neuron_ig.stats.contrast.contrast_test`, BH at ``q``) with a positive contrast, summed over datasets,
    beside ``set neurons``.
    """
    test = contrast.set_contrast_test(cells, p, label=label, n_permutations=n_resamples, n_bootstrap=n_resamples,
                                      seed=seed)
    row = _row(claim, f"mean class contrast of the top-{p:g}% set (NIG per token towards P(relevant), relevant minus "
                      f"non-relevant pairs) over {len(cells)} datasets", test["observed"], test["null"], test["p"],
               f"class labels permuted within each dataset, the set chosen again ({n_resamples} permutations)",
               effect_is="observed - null mean")
    row["effect"] = float(test["observed"] - row["reference"])
    row["observed low"], row["observed high"] = test["interval"]
    specific = 0
    for name, (relevant, non_relevant) in cells.items():
        tested = contrast.contrast_test(relevant, non_relevant, tested=test["sets"][name], n_permutations=n_resamples,
                                        q=q, seed=seed)
        specific += int((tested["passes"] & (tested["contrast"] > 0)).sum())
    row.update({"relevance-specific neurons": specific, "set neurons": int(sum(m.sum() for m in test["sets"].values()))})
    return row


def ood_interaction_claim(cells: Mapping[str, tuple[np.ndarray, np.ndarray]], in_domain: str, p: float, *, label: int,
                          n_resamples: int = 499, alpha: float = 0.05, seed: int = 0,
                          claim: str = "some neurons separate the classes more out of domain than in domain") -> dict:
    """Do some neurons of every out-of-domain top-p% set of class ``label`` separate relevant from non-relevant
    pairs more out of domain than in domain?

    :func:`neuron_ig.stats.contrast.contrast_difference_test` (a difference in differences, max-t, a studentised
    bootstrap null that chooses the candidates again): a shift of a whole collection does not pass, only a
    difference of the class contrast does. ``cells`` holds the in-domain dataset and the out-of-domain ones tested.
    The row adds ``OOD neurons``: the candidates above the null's ``1 - alpha`` quantile of the largest t (the
    neurons a pruning of "OOD neurons" should take), and ``candidates``.
    """
    test = contrast.contrast_difference_test(cells, in_domain, p, label=label, n_resamples=n_resamples, alpha=alpha,
                                             seed=seed)
    count = int(test["candidates"].sum())
    row = _row(claim, f"largest t of the class contrast out of domain minus in domain (NIG per token towards "
                      f"P(relevant)) over the {count} neurons of every out-of-domain top-{p:g}% set", test["observed"],
               test["null"][np.isfinite(test["null"])] if np.isfinite(test["null"]).any() else [0.0], test["p"],
               f"max-t, studentised bootstrap of the pairs ({n_resamples} resamples)", effect_is="observed - null mean")
    row["effect"] = float(test["observed"] - row["reference"])
    row.update({"OOD neurons": int(test["passes"].sum()), "candidates": count})
    return row


def cells_at_target(cells: Mapping[str, tuple[np.ndarray, np.ndarray]] | None,
                    below_target: Mapping[str, Sequence[str]] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The ``cells`` (:func:`neuron_ig.studies.aggregation.contrast_cells`) of the collections where the model meets
    its stand-in targets: ``below_target`` ``{dataset: [targets missed]}``
    (:func:`neuron_ig.studies.effectiveness.targets_missed`) names the others."""
    return {name: c for name, c in (cells or {}).items() if not (below_target or {}).get(name)}


def ood_neuron_masks(cells: Mapping[str, tuple[np.ndarray, np.ndarray]], in_domain: str, p_values: Sequence[float],
                     shape: tuple[int, int], *, below_target: Mapping[str, Sequence[str]] | None = None,
                     n_resamples: int = 499, alpha: float = 0.05, seed: int = 0) -> dict[int, dict[float, np.ndarray]]:
    """The OOD neurons that pass the test of :func:`ood_interaction_claim`, the sets the pruning study prunes as
    "OOD neurons": ``{label: {p: mask [layers, units]}}`` for labels 1 (positive) and 0 (negative).

    The test and its arguments are :func:`ood_interaction_claim`'s (the same ``seed`` and ``n_resamples`` give the
    same neurons as page 10's count), on the collections of :func:`cells_at_target`; ``shape`` is the FFN's
    ``(layers, units)``. Without the in-domain collection and another one tested, every mask is empty.
    """
    cells = cells_at_target(cells, below_target)
    masks = {}
    for label in (1, 0):
        masks[label] = {}
        for p in p_values:
            mask = np.zeros(int(np.prod(shape)), dtype=bool)
            if in_domain in cells and len(cells) >= 2:
                mask = contrast.contrast_difference_test(cells, in_domain, p, label=label, n_resamples=n_resamples,
                                                         alpha=alpha, seed=seed)["passes"]
            masks[label][p] = np.asarray(mask, dtype=bool).reshape(shape)
    return masks


def pruning_claim(set_per_query, controls_per_query, *,
                  claim: str = "pruning the set hurts nDCG@10 more than pruning random neurons") -> dict:
    """Does pruning the set lower nDCG@10 more than its R random controls do, over queries and controls?

    :func:`neuron_ig.stats.controls.query_control_test` of the per-query deltas (``[queries]`` and ``[R, queries]``):
    the statistic (``observed``) is the effect, the set's per-query delta minus a control's, averaged, against 0;
    its interval is the effect's bootstrap interval over both queries and controls (not a null's); p, the larger of
    the rank p-value among the controls and the bootstrap one.
    """
    test = query_control_test(set_per_query, controls_per_query)
    return {"claim": claim, "statistic": "delta nDCG@10 of the set minus a control's, per query", "observed": test["effect"],
            "reference": 0.0, "effect": test["effect"], "effect is": "set - control, per query",
            "interval low": test["interval low"], "interval high": test["interval high"], "p": test["p"],
            "set delta": test["delta"], "control mean": test["control mean"],
            "test": f"{test['method']} ({test['controls']} controls, {test['queries']} queries, "
                    f"{test['informative queries']} changed)", "in claimed direction": test["effect"] < 0}


def pruning_claims(per_query: pd.DataFrame | None, class_names: Sequence[str], pruned: Sequence[str], in_domain: str,
                   p: float, *, sets: Sequence[str], random_seeds: int, matched_seeds: int) -> list[dict]:
    """The pruning claims of every class, set and kind of control, one row each (``class``, ``kind`` "pruning" and
    ``short``, the claim in a few words, added).

    For each class of ``class_names``, each set of ``sets`` (``top: <in_domain>`` or ``fusion``) and each kind of
    control (random neurons of the same per-layer counts, or also matched on mean activation): does pruning the set
    hurt in-domain nDCG@10 more than pruning its controls (:func:`pruning_claim`)? ``per_query`` is the pruning
    study's per-query table (None when it was not run); ``pruned`` the classes that have a set in ``in_domain``.
    A claim without its data (fewer than 2 controls, no set for the class, an empty set) is a row with ``p`` NaN
    and a ``note``.
    """
    rows = []
    schemes = set(per_query["scheme"]) if per_query is not None else set()
    for name in class_names:
        for set_name in sets:
            for kind, words in (("random ", "random neurons of the same per-layer counts"),
                                ("matched ", "random neurons matched on layer and mean activation")):
                described = f"top-{p:g}% set of `{in_domain}`" if set_name.startswith("top: ") else f"fusion set (top {p:g}%)"
                claim = f"Pruning the {name} {described} hurts in-domain nDCG@10 more than pruning {words}"
                short = f"pruning the {'top' if set_name.startswith('top: ') else 'fusion'} set hurts more than {kind}controls"
                scheme = f"{name} · {set_name}"
                count, parameter = (random_seeds, "random_seeds") if kind == "random " else (matched_seeds, "matched_seeds")
                if count < 2 or name not in pruned or scheme not in schemes:
                    why = (f"fewer than 2 controls ({parameter})" if count < 2 else
                           f"no correctly classified {name} pair in {in_domain}: no set to prune")
                    rows.append({"class": name, "kind": "pruning", "short": short, "claim": claim, "p": np.nan,
                                 "in claimed direction": False, "note": why})
                    continue
                set_per_query, controls_per_query = set_and_control_per_query(per_query, scheme, in_domain,
                                                                               control_prefix=kind)
                if len(controls_per_query) < 2:
                    rows.append({"class": name, "kind": "pruning", "short": short, "claim": claim, "p": np.nan,
                                 "in claimed direction": False, "note": f"the {set_name} set is empty at top {p:g}%"})
                    continue
                rows.append({"class": name, "kind": "pruning", "short": short,
                             **pruning_claim(set_per_query, controls_per_query, claim=claim)})
    return rows


def ood_pruning_claims(per_query: pd.DataFrame | None, ood_sizes: Mapping[str, int], ood_tasks: Sequence[str], p: float, *,
                       random_seeds: int, below_target: Sequence[str] = ()) -> list[dict]:
    """Per class, does pruning its tested OOD neurons (the set ``"OOD neurons"`` of
    :func:`neuron_ig.studies.pruning.relevance_pruning`) hurt out-of-domain nDCG@10 more than pruning random neurons?

    :func:`pruning_claim` of the per-query deltas of every collection of ``ood_tasks`` (the out-of-domain collections
    the OOD test used; the queries of all of them together, each control with the same seed everywhere).
    ``ood_sizes`` ``{class name: neurons in its OOD set}`` (a class without OOD neurons has nothing to prune: ``p``
    NaN and a ``note``); ``below_target`` the out-of-domain collections left out because the model misses its
    targets there (with no collection left, the verdict is :data:`BELOW_TARGET`). Rows as :func:`pruning_claims`'.
    """
    rows = []
    for name, size in ood_sizes.items():
        claim = (f"Pruning the {name} OOD neurons (top {p:g}%, those that pass the OOD test) hurts out-of-domain "
                 "nDCG@10 more than pruning random neurons of the same per-layer counts")
        row = {"class": name, "kind": "pruning", "short": "pruning the OOD neurons hurts out of domain more than random controls",
               "claim": claim, "p": np.nan, "in claimed direction": False}
        scheme = f"{name} · OOD neurons"
        if not ood_tasks:
            rows.append({**row, "note": ("not tested where the model is below target: " + ", ".join(below_target)
                                         if below_target else "no out-of-domain collection"),
                         "below target": bool(below_target)})
        elif size == 0:
            rows.append({**row, "note": f"no {name} neuron passes the OOD test at top {p:g}%: nothing to prune"})
        elif random_seeds < 2 or per_query is None or scheme not in set(per_query["scheme"]):
            rows.append({**row, "note": "fewer than 2 controls (random_seeds)" if random_seeds < 2 else "not pruned"})
        else:
            rows.append({**row, **pruning_claim(*pooled_per_query(per_query, scheme, ood_tasks), claim=claim),
                         "note": "on " + ", ".join(ood_tasks) + ("; not tested where the model is below target: "
                                                                  + ", ".join(below_target) if below_target else "")})
    return rows


def nig_claims(per_pair: Mapping[str, np.ndarray], in_domain: str, p: float, *, class_name: str, label: int = 1,
               cells: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
               below_target: Mapping[str, Sequence[str]] | None = None, p_values: Sequence[float] | None = None,
               n_dropped: int = 0, n_resamples: int = 999, ood_resamples: int = 499, seed: int = 0) -> list[dict]:
    """The four NIG claims of one class, one row each (``class``, ``kind`` and ``short``, the claim in a few words,
    added): concentration, common core, relevance and OOD neurons (``kind``: concentration, core, relevance, ood).

    ``per_pair`` holds the datasets with correctly classified pairs of the class ``label`` (1 relevant, 0
    non-relevant; :func:`neuron_ig.studies.aggregation.pair_nig`);
    ``cells`` both classes' NIG towards P(relevant) per dataset (:func:`neuron_ig.studies.aggregation.contrast_cells`),
    which the relevance and OOD claims need; ``below_target`` ``{dataset: [targets missed]}``
    (:func:`neuron_ig.studies.effectiveness.targets_missed`): the relevance and OOD claims leave out the collections
    where the model misses a stand-in target (their ``note`` names them), and read "model below target: not tested"
    (:data:`BELOW_TARGET`) when that leaves them nothing to test. A claim that lacks its data is a row with ``p``
    NaN and a ``note``.
    """
    missed = {name: list(targets) for name, targets in (below_target or {}).items() if targets}
    cells = {name: c for name, c in cells_at_target(cells, missed).items() if name in per_pair}
    outside = [name for name in cells if name != in_domain]
    untested = ", ".join(missed)  # which targets each misses: the cross-encoder page
    claims = {
        "concentration": f"the top {p:g}% of {class_name} neurons carry more than their share of the positive NIG",
        "core": f"{class_name} neurons are shared across collections (a common core)",
        "relevance": f"the top {p:g}% of {class_name} neurons respond to relevance, not to a query being there",
        "ood": f"some {class_name} neurons separate the classes more out of domain than in domain",
    }
    shorts = {"concentration": "the top set carries more than its share", "core": "a common core across collections",
              "relevance": "the top set responds to relevance", "ood": "some neurons are specific to out of domain"}
    checks = [
        (lambda: concentration_claim(per_pair, p, n_resamples=n_resamples, seed=seed, claim=claims["concentration"]),
         "concentration", len(per_pair) >= 1, "no dataset with correctly classified pairs"),
        (lambda: common_core_claim(per_pair, p, p_values=p_values, n_dropped=n_dropped, protect=[in_domain],
                                   n_resamples=n_resamples, seed=seed, claim=claims["core"]),
         "core", len(per_pair) >= 2, "fewer than two datasets with correctly classified pairs"),
        (lambda: relevance_claim(cells, p, label=label, n_resamples=n_resamples, seed=seed, claim=claims["relevance"]),
         "relevance", bool(cells), "no collection with 2 correctly classified pairs of each class"),
        (lambda: ood_interaction_claim({n: cells[n] for n in (in_domain, *outside)}, in_domain, p, label=label,
                                       n_resamples=ood_resamples, seed=seed, claim=claims["ood"]),
         "ood", in_domain in cells and bool(outside),
         "needs the in-domain dataset and another, each with 2 correctly classified pairs of each class or more"),
    ]
    rows = []
    for compute, key, possible, why in checks:
        row = compute() if possible else {"claim": claims[key], "p": np.nan, "in claimed direction": False, "note": why}
        if untested and key in ("relevance", "ood"):  # collections left out for the model's sake: say which
            row["note"] = f"not tested where the model is below target: {untested}"
            row["below target"] = not possible  # nothing left to test: the verdict says why
        rows.append({"class": class_name, "kind": key, "short": shorts[key], **row})
    return rows


def page_verdicts(claims: Sequence[dict], *, alpha: float = 0.05) -> pd.DataFrame:
    """The claims of a page, one row each, with ``p (Holm)`` over the page's claims and a ``verdict``.

    Claims without a p-value (``p`` missing or NaN: not computed) are kept, outside the Holm family.
    """

    table = pd.DataFrame(list(claims))
    if table.empty:
        return table.assign(**{"p (Holm)": [], "verdict": []})
    if "p" not in table:
        table["p"] = np.nan
    if "in claimed direction" not in table:
        table["in claimed direction"] = False
    tested = table["p"].notna()
    table["p (Holm)"] = np.nan
    if tested.any():
        table.loc[tested, "p (Holm)"] = holm(table.loc[tested, "p"].to_numpy(dtype=float))
    table["verdict"] = [verdict(p, bool(d), alpha=alpha) for p, d in zip(table["p (Holm)"], table["in claimed direction"])]
    if "below target" in table:
        table.loc[table["below target"].fillna(False).astype(bool), "verdict"] = BELOW_TARGET
    return table
