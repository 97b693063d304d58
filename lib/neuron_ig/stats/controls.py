"""Random controls of a pruned set, and the test of "pruning the set hurts more than pruning random neurons".

A set's control is a random set of neurons with the same count in every layer (:func:`layer_matched_controls`,
the controls of :func:`neuron_ig.stats.controls.random_control`), or also matched on the neurons' mean activation
within each layer (:func:`activation_matched_controls`), so that "hurts more than random" cannot just mean
"busy neurons matter". The null of the test is the spread of the R controls' mean delta nDCG@10: the set's
delta against its controls' deltas, by rank (:func:`rank_p_value`) or against a t prediction interval
(:func:`prediction_interval_p_value`); :func:`control_test` chooses between them for a family of tests.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from neuron_ig.stats.significance import holm

RANK, PREDICTION_INTERVAL = "rank among controls", "t prediction interval"
QUERY_CONTROL = "rank among controls and bootstrap over queries and controls"


def layer_matched_controls(mask: np.ndarray, n_controls: int, *, seed: int = 0) -> list[np.ndarray]:
    """``n_controls`` random sets with the per-layer counts of ``mask``, seeds ``seed, seed + 1, ...``
    (:func:`neuron_ig.stats.controls.random_control`: the controls the pruning study draws)."""
    return [random_control(mask, seed + i) for i in range(n_controls)]


def activation_matched_control(mask: np.ndarray, activation: np.ndarray, seed: int, *, n_bins: int = 10) -> np.ndarray:
    """A random set matched to ``mask`` on mean activation within each layer, ``[layers, units]``.

    In every layer the units are cut into ``n_bins`` bins of equal size by their mean activation
    (``activation [layers, units]``, e.g. :func:`mean_activation`); the control draws, without replacement, as
    many units from each bin as the set has there. Same per-layer counts, same activation profile.
    """
    mask, activation = np.asarray(mask, dtype=bool), np.asarray(activation, dtype=float)
    if mask.shape != activation.shape:
        raise ValueError(f"mask {mask.shape} and activation {activation.shape} differ: give the mean activation of "
                         "every neuron of the same model ([layers, units])")
    units = mask.shape[1]
    if not 1 <= n_bins <= units:
        raise ValueError(f"n_bins must be between 1 and the {units} units of a layer, got {n_bins}")
    control = np.zeros_like(mask)
    for layer in np.flatnonzero(mask.any(axis=1)):
        rng = np.random.default_rng([seed, int(layer)])
        order = np.argsort(activation[layer], kind="stable")
        for members in np.array_split(order, n_bins):
            count = int(mask[layer, members].sum())
            if count:
                control[layer, rng.choice(members, size=count, replace=False)] = True
    return control


def activation_matched_controls(mask: np.ndarray, activation: np.ndarray, n_controls: int, *, seed: int = 0,
                                n_bins: int = 10) -> list[np.ndarray]:
    """``n_controls`` :func:`activation_matched_control` sets, seeds ``seed, seed + 1, ...``."""
    return [activation_matched_control(mask, activation, seed + i, n_bins=n_bins) for i in range(n_controls)]


# --- the test of a set against its controls ---------------------------------------------------------

def _deltas(control_deltas) -> np.ndarray:
    deltas = np.asarray(control_deltas, dtype=float)
    if deltas.ndim != 1 or len(deltas) < 2 or not np.isfinite(deltas).all():
        raise ValueError(f"need 2 or more finite control deltas, got {deltas.tolist()}: draw more random controls "
                         "(at least 19 per set)")
    return deltas


def rank_p_value(set_delta: float, control_deltas) -> float:
    """One-sided rank p-value that the set hurts more than its controls: (1 + #{control <= set}) / (R + 1).

    Exact (uniform on {1, ..., R + 1} / (R + 1)) when the set is exchangeable with its controls; its floor is
    1 / (R + 1).
    """
    deltas = _deltas(control_deltas)
    return float((1 + np.sum(deltas <= set_delta)) / (len(deltas) + 1))


def prediction_interval_p_value(set_delta: float, control_deltas) -> tuple[float, float]:
    """One-sided p-value of the set's delta against a t prediction interval of its R controls' deltas.

    t = (d_set - mean) / (sd x sqrt(1 + 1/R)), R - 1 degrees of freedom, lower tail (the set hurts more). Exact
    when the deltas are normal; no floor. Returns ``(t, p)``. Controls that all agree (sd = 0: pruning them
    never moved a ranking) give t = -inf, 0 or +inf and leave the spread unknown, so p is then the rank
    p-value (:func:`rank_p_value`, exact whatever the distribution), never 0.
    """
    from scipy import stats

    deltas = _deltas(control_deltas)
    r = len(deltas)
    spread = deltas.std(ddof=1) * np.sqrt(1 + 1 / r)
    difference = set_delta - deltas.mean()
    if spread == 0:
        t = 0.0 if difference == 0 else np.copysign(np.inf, difference)
        return float(t), rank_p_value(set_delta, deltas)
    t = difference / spread
    return float(t), float(stats.t.cdf(t, df=r - 1))


def control_method(n_controls: int, family_size: int = 1, alpha: float = 0.05) -> str:
    """The test a family can use: the rank p-value when its floor 1 / (R + 1) can pass the strictest Holm
    threshold alpha / family_size, else the t prediction interval (which uses the controls' spread)."""
    if family_size < 1:
        raise ValueError(f"family_size must be 1 or more, got {family_size}")
    return RANK if 1 / (n_controls + 1) <= alpha / family_size else PREDICTION_INTERVAL


def control_test(set_delta: float, control_deltas, *, family_size: int = 1, alpha: float = 0.05,
                 confidence: float = 0.95) -> dict:
    """The set's delta nDCG@10 against its R controls' deltas, by the test :func:`control_method` chooses.

    Returns ``delta`` (the set's), ``controls`` (R), ``control mean``, ``control sd``, ``effect`` (delta minus the
    control mean: negative when the set hurts more), ``interval low``/``interval high`` (the ``confidence``
    prediction interval of a control's delta), ``t``, ``p rank``, ``p t``, ``method`` and ``p`` (the chosen one).
    """
    from scipy import stats

    deltas = _deltas(control_deltas)
    r = len(deltas)
    t, p_t = prediction_interval_p_value(set_delta, deltas)
    p_rank = rank_p_value(set_delta, deltas)
    method = control_method(r, family_size, alpha)
    half = stats.t.ppf(1 - (1 - confidence) / 2, df=r - 1) * deltas.std(ddof=1) * np.sqrt(1 + 1 / r)
    return {"delta": float(set_delta), "controls": r, "control mean": float(deltas.mean()),
            "control sd": float(deltas.std(ddof=1)), "effect": float(set_delta - deltas.mean()),
            "interval low": float(deltas.mean() - half), "interval high": float(deltas.mean() + half),
            "t": t, "p rank": p_rank, "p t": p_t, "method": method, "p": p_rank if method == RANK else p_t}


def set_and_control_deltas(per_query: pd.DataFrame, scheme: str, task: str, *, control_prefix: str = "random ",
                           measure: str = "nDCG@10") -> tuple[float, np.ndarray]:
    """From a pruning study's per-query table: the set's delta and each control's delta (mean over queries,
    minus the unpruned model's mean), ``(float, [R])``. Controls are the variants named ``control_prefix + seed``."""
    rows = per_query[(per_query["task"] == task)]
    unpruned = rows[rows["scheme"] == "unpruned"][measure].mean()
    own = rows[rows["scheme"] == scheme]
    if own.empty:
        raise ValueError(f"no rows for scheme {scheme!r} on task {task!r} in the per-query table")
    set_delta = own[own["variant"] == "set"][measure].mean() - unpruned
    controls = own[own["variant"].str.startswith(control_prefix)].groupby("variant", sort=False)[measure].mean() - unpruned
    return float(set_delta), controls.to_numpy()


def control_test_table(per_query: pd.DataFrame, *, control_prefix: str = "random ", family: Sequence[str] = ("set",),
                       alpha: float = 0.05, measure: str = "nDCG@10") -> pd.DataFrame:
    """:func:`control_test` of every (scheme, task) of a pruning study's per-query table that has controls.

    ``family`` names the columns whose values make one Holm family (e.g. ``("set",)``: each set over its
    classes, tasks and p; the per-query table must carry those columns, or give ``family=()`` for one family
    over every row). The method is chosen for the family's size. Columns: ``p``, ``class``, ``set`` where the
    per-query table has them (``p`` is the percentage pruned), ``scheme``, ``task``, ``family size``,
    :func:`control_test`'s with its ``p`` named ``p vs controls``, and ``p vs controls (Holm)``.
    """

    keys = [c for c in ("p", "class", "set") if c in per_query.columns]
    missing = [c for c in family if c not in per_query.columns]
    if missing:
        raise ValueError(f"family columns {missing} are not in the per-query table (columns: {list(per_query.columns)})")
    groups = per_query.groupby("p", sort=False) if "p" in per_query.columns else [(None, per_query)]
    rows = []
    for _, at_p in groups:
        controlled = at_p[at_p["variant"].str.startswith(control_prefix)]
        for (scheme, task), group in controlled.groupby(["scheme", "task"], sort=False):
            set_delta, deltas = set_and_control_deltas(at_p, scheme, task, control_prefix=control_prefix, measure=measure)
            rows.append({**{c: group[c].iloc[0] for c in keys}, "scheme": scheme, "task": task, "deltas": deltas,
                         "set delta": set_delta})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["family size"] = table.groupby(list(family), sort=False)["scheme"].transform("size") if family else len(table)
    tests = pd.DataFrame([control_test(row["set delta"], row["deltas"], family_size=int(row["family size"]), alpha=alpha)
                          for _, row in table.iterrows()], index=table.index).rename(columns={"p": "p vs controls"})
    table = pd.concat([table.drop(columns=["deltas", "set delta"]), tests], axis=1)
    for _, rows_ in (table.groupby(list(family), sort=False) if family else [(None, table)]):
        table.loc[rows_.index, "p vs controls (Holm)"] = holm(rows_["p vs controls"])
    return table


def set_and_control_per_query(per_query: pd.DataFrame, scheme: str, task: str, *, control_prefix: str = "random ",
                              measure: str = "nDCG@10") -> tuple[np.ndarray, np.ndarray]:
    """From a pruning study's per-query table: per query, the set's delta and each control's delta against the
    unpruned model, ``([queries], [R, queries])``, over the queries all of them scored (in query order)."""
    rows = per_query[per_query["task"] == task]
    unpruned = rows[rows["scheme"] == "unpruned"].groupby("query_id")[measure].mean()
    own = rows[rows["scheme"] == scheme]
    if own.empty:
        raise ValueError(f"no rows for scheme {scheme!r} on task {task!r} in the per-query table")
    wide = own.pivot_table(index="variant", columns="query_id", values=measure, aggfunc="mean")
    controls = [v for v in wide.index if str(v).startswith(control_prefix)]
    queries = sorted(set(wide.columns) & set(unpruned.index))
    wide = wide[queries].sub(unpruned[queries], axis=1)
    return wide.loc["set"].to_numpy(dtype=float), wide.loc[controls].to_numpy(dtype=float).reshape(len(controls), -1)


def pooled_per_query(per_query: pd.DataFrame, scheme: str, tasks: Sequence[str], *, control_prefix: str = "random ",
                     measure: str = "nDCG@10") -> tuple[np.ndarray, np.ndarray]:
    """:func:`set_and_control_per_query` of every task of ``tasks``, their queries side by side: ``([queries],
    [R, queries])``. Each control keeps its seed on every task (:func:`random_control` depends on the counts and the
    seed only), so a row of the controls is one random set throughout."""
    parts = [set_and_control_per_query(per_query, scheme, task, control_prefix=control_prefix, measure=measure)
             for task in tasks]
    return np.concatenate([own for own, _ in parts]), np.concatenate([controls for _, controls in parts], axis=1)


def query_control_test(set_per_query, controls_per_query, *, n_bootstrap: int = 1999, confidence: float = 0.95,
                       seed: int = 0) -> dict:
    """Does pruning the set lower the measure more than pruning its R controls, over the queries and the controls?

    The unit of the verdict is the control set and the query alike:

    - ``effect``: the mean over queries and controls of the set's per-query delta minus the control's;
    - ``interval low``/``interval high``: the ``confidence`` percentile interval of the effect when the evaluation
      queries and the controls are both resampled with replacement (a bootstrap nested over both);
    - ``p rank``: the rank of the set's mean delta among the R + 1 sets, (1 + #{control <= set}) / (R + 1), exact
      when the set is exchangeable with its controls (its floor 1 / (R + 1));
    - ``p queries``: the share of bootstrap effects at or above 0, (1 + #) / (B + 1): the effect holds over queries;
    - ``p``: the larger of the two (an intersection-union test: the set must rank below its controls and do so
      over the queries), so no p-value is below what R controls can resolve, and no tail is extrapolated.

    ``set_per_query`` is ``[queries]``, ``controls_per_query`` ``[R, queries]`` (deltas against the unpruned model,
    the same queries in the same order).
    """
    set_per_query = np.asarray(set_per_query, dtype=float)
    controls_per_query = np.asarray(controls_per_query, dtype=float)
    if controls_per_query.ndim != 2 or controls_per_query.shape[1] != len(set_per_query) or len(set_per_query) < 1:
        raise ValueError(f"expected [queries] and [controls, queries] deltas of the same queries, got "
                         f"{set_per_query.shape} and {controls_per_query.shape}")
    r, q = controls_per_query.shape
    if r < 2:
        raise ValueError(f"the test needs 2 controls or more, got {r}")
    differences = set_per_query[None, :] - controls_per_query  # [R, queries]
    rng = np.random.default_rng(seed)
    effects = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        effects[b] = differences[rng.integers(0, r, r)][:, rng.integers(0, q, q)].mean()
    tail = (1 - confidence) / 2
    control_means = controls_per_query.mean(axis=1)
    p_rank = rank_p_value(float(set_per_query.mean()), control_means)
    p_queries = float((1 + np.sum(effects >= 0)) / (n_bootstrap + 1))
    return {"delta": float(set_per_query.mean()), "controls": r, "queries": q,
            "informative queries": int(np.sum(np.any(np.vstack([set_per_query, controls_per_query]) != 0, axis=0))),
            "control mean": float(control_means.mean()), "control sd": float(control_means.std(ddof=1)),
            "effect": float(differences.mean()), "interval low": float(np.quantile(effects, tail)),
            "interval high": float(np.quantile(effects, 1 - tail)), "p rank": p_rank, "p queries": p_queries,
            "p": max(p_rank, p_queries), "method": QUERY_CONTROL}


def controls_as_sets(controls_per_query, *, alpha: float = 0.05, n_bootstrap: int = 999, seed: int = 0) -> pd.DataFrame:
    """Each control treated as the pruned set, tested by :func:`query_control_test` against the other controls: a
    check of the rule on real data, where the "set" is random by construction and must pass at most at ``alpha``.

    ``controls_per_query`` is ``[R, queries]`` (deltas against the unpruned model). One row per control: ``control``
    (its index), ``effect``, ``p rank``, ``p queries``, ``p`` and ``fires`` (``p <= alpha`` with the effect negative).
    ``p queries`` alone fires more often than ``alpha`` where random sets differ from each other in how much they hurt
    (a set that hurts more than the average control does so over the queries); the rank keeps the rule at its level.
    """
    controls_per_query = np.asarray(controls_per_query, dtype=float)
    if controls_per_query.ndim != 2 or len(controls_per_query) < 3:
        raise ValueError(f"expected [controls, queries] deltas of 3 controls or more, got {controls_per_query.shape}")
    rows = []
    for i in range(len(controls_per_query)):
        others = np.delete(controls_per_query, i, axis=0)
        test = query_control_test(controls_per_query[i], others, n_bootstrap=n_bootstrap, seed=seed + i)
        rows.append({"control": i, "effect": test["effect"], "p rank": test["p rank"], "p queries": test["p queries"],
                     "p": test["p"], "fires": bool(test["p"] <= alpha and test["effect"] < 0)})
    return pd.DataFrame(rows)


def _difference_spread(controls_per_query: np.ndarray, set_per_query: np.ndarray | None) -> float:
    """The per-query spread of the set-minus-control difference: from the set's own per-query differences to its
    controls' mean when given (a set that moves some queries far and others not at all spreads more than random sets
    do), else from the controls' pairwise differences."""
    if set_per_query is not None:
        return float(np.std(np.asarray(set_per_query, dtype=float) - controls_per_query.mean(axis=0), ddof=1))
    r = len(controls_per_query)
    return float(np.mean([(controls_per_query[i] - controls_per_query[j]).std(ddof=1)
                          for i in range(r) for j in range(i + 1, r)]))


def detectable_power(controls_per_query, effect: float = -0.05, alpha: float = 0.05, *, set_per_query=None) -> float:
    """The power of a one-sided test at ``alpha`` to see a mean per-query change of ``effect`` over these queries,
    by the normal approximation: Phi(|effect| sqrt(Q) / sd - z(1 - alpha)), with sd the per-query spread of the
    difference (:func:`_difference_spread`: the set's own against its controls when ``set_per_query`` is given)."""
    from scipy import stats

    controls_per_query = np.asarray(controls_per_query, dtype=float)
    r, q = controls_per_query.shape
    if r < 2 or q < 2:
        return float("nan")
    spread = _difference_spread(controls_per_query, set_per_query)
    if spread == 0:
        return 1.0 if effect != 0 else float("nan")
    return float(stats.norm.cdf(abs(effect) * np.sqrt(q) / spread - stats.norm.ppf(1 - alpha)))


def queries_for_power(controls_per_query, effect: float = -0.05, alpha: float = 0.05, power: float = 0.8, *,
                      set_per_query=None) -> float:
    """How many queries (of the kind measured: informative ones) the test of :func:`detectable_power` needs to see
    ``effect`` with ``power``: ((z(1 - alpha) + z(power)) sd / |effect|)^2, rounded up (NaN without a spread)."""
    from scipy import stats

    controls_per_query = np.asarray(controls_per_query, dtype=float)
    if controls_per_query.shape[0] < 2 or controls_per_query.shape[1] < 2 or effect == 0:
        return float("nan")
    spread = _difference_spread(controls_per_query, set_per_query)
    return float(np.ceil(((stats.norm.ppf(1 - alpha) + stats.norm.ppf(power)) * spread / abs(effect)) ** 2))


def random_control(mask: np.ndarray, seed: int) -> np.ndarray:
    """A random set with the per-layer counts of ``mask``: in every layer, as many units drawn uniformly.

    Depends only on the counts and the seed, so two sets with the same counts get the same controls.
    """
    mask = np.asarray(mask, dtype=bool)
    control = np.zeros_like(mask)
    for layer, count in enumerate(mask.sum(axis=1)):
        if count:
            rng = np.random.default_rng([seed, layer])
            control[layer, rng.choice(mask.shape[1], size=int(count), replace=False)] = True
    return control
