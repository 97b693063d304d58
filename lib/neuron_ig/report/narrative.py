"""The sentences a page writes about its numbers: small functions from tables to Markdown text.

Each function takes the tables a page computed (with :mod:`neuron_ig.studies.aggregation` and
:mod:`neuron_ig.stats.selection`) and returns Markdown; a notebook displays it with
``display(Markdown(...))``. Dataset ids are shown as code (```id```); p values as ``top 0.5%``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from neuron_ig.report.tables import number_text
from neuron_ig.stats.selection import (
    INTERSECTION,
    layer_count_summary,
    relevance_neuron_sets,
)
from neuron_ig.studies.results import CLASS_NAMES

CLASSES = {1: "positive", 0: "negative"}  # label: the class's name (its pairs: CLASS_NAMES[label])
FEW_PAIRS = 10  # a class mean over fewer correctly classified pairs than this is called noisy


# --- words -----------------------------------------------------------------------------------------

def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 pair``, ``3 pairs`` (``many`` for an irregular plural)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def code_list(names: Sequence[str]) -> str:
    """```a`, `b``: names as inline code, comma-separated."""
    return ", ".join(f"`{name}`" for name in names)


def percents(p_values: Sequence[float]) -> str:
    """``0.1%, 0.5%``."""
    return ", ".join(f"{p:g}%" for p in p_values)


def class_name(label: int) -> str:
    """``positive`` for label 1, ``negative`` for 0; a clear error for anything else."""
    if isinstance(label, bool) or label not in CLASSES:
        raise ValueError(f"label must be 1 (positive class: relevant pairs) or 0 (negative class: non-relevant pairs), "
                         f"got {label!r}: fix `label` in the page's section of the params file")
    return CLASSES[label]


# --- page 02: the collections ----------------------------------------------------------------------

def other_collections_text(others: Sequence[str]) -> str:
    """The sentence about the book's datasets that are not embedded collections (empty when there are none)."""
    if not others:
        return ""
    return (f"The book's `datasets` also name {code_list(others)}: measured in the table like the embedded "
            f"collections, described by `ir_datasets` (`ir_datasets.load(id).documentation()`), not on this page.")


# --- the cross-encoder page: how well it ranks ---------------------------------------------------------

def gain_text(gain: pd.DataFrame) -> str:
    """The cross-encoder's nDCG@10 minus BM25's per collection with its interval (``gain``: the nDCG@10 rows of
    :func:`neuron_ig.studies.effectiveness.stand_in_checks`, indexed by collection, the in-domain one first)."""
    each = [f"{row.observed:+.3f} on `{collection}` ({'in domain; ' if n == 0 else ''}95% interval {row.low:+.3f} to "
            f"{row.high:+.3f})" for n, (collection, row) in enumerate(gain.iterrows())]
    return ", ".join(each[:-1]) + " and " + each[-1] if len(each) > 1 else (each[0] if each else "not measured")


def targets_text(checks: pd.DataFrame) -> str:
    """Which stand-in targets the model meets and which it misses, with the values and intervals of the misses
    (``checks``: :func:`neuron_ig.studies.effectiveness.stand_in_checks` rows with ``collection``)."""
    def shown(row, value):
        return f"{value:+.3f}" if row["target"].startswith("nDCG@10") else f"{value:.1%}"

    missed = checks[~checks["met"]]
    if missed.empty:
        return f"It meets every one of the {len(checks)} stand-in targets."
    misses = [f"on `{collection}`, " + " and ".join(
        f"{row['target'].split(': ')[0]} ({shown(row, row['observed'])} against the target {row['target'].split(': ')[1]}; "
        f"95% interval {shown(row, row['low'])} to {shown(row, row['high'])})" for _, row in part.iterrows())
        for collection, part in missed.groupby("collection", sort=False)]
    return f"It meets {len(checks) - len(missed)} of the {len(checks)} stand-in targets and misses " + "; ".join(misses) + "."


# --- the positive and negative neuron pages: the relevance neurons of one class -------------------------------------------

def _few_pairs(used: pd.DataFrame, scores: Mapping) -> list[str]:
    """The datasets with a class mean over fewer than FEW_PAIRS pairs."""
    column = "used" if "used" in used else "correct"
    return [d for d in scores if used.loc[d, column] < FEW_PAIRS]


def _rests_on(used: pd.DataFrame, few: Sequence[str]) -> str:
    """``The mean of `a` rests on 3 pairs, `b` rests on 1 pair``."""
    column = "used" if "used" in used else "correct"
    return "The mean of " + ", ".join(f"`{d}` rests on {plural(int(used.loc[d, column]), 'pair')}" for d in few)


def class_means_text(used: pd.DataFrame, scores: Mapping, label: int) -> str:
    """What each dataset's class mean rests on: the correctly classified pairs, datasets left out, noisy means.

    ``used`` is :func:`neuron_ig.studies.aggregation.pairs_used` (index: every dataset, in order; columns
    ``sampled``, ``correct``); ``scores`` the class means, only of the datasets that have one.
    """
    pairs = CLASS_NAMES[label]
    datasets = list(used.index)
    left_out = [d for d in datasets if d not in scores]
    text = (f"Each dataset's neuron scores are the mean NIG over the {pairs} pairs that the model gives P({pairs}) > 0.5, "
            "the first ones of the seeded draw (NIG is computed for those only): "
            + ", ".join(f"{used.loc[d, 'correct']} of {used.loc[d, 'sampled']} drawn for `{d}`" for d in datasets) + ". "
            + "F(x') is the probability of the class at the baseline, where the path starts. ")
    if left_out:
        one = len(left_out) == 1
        text += (f"The model classifies none of the sampled {pairs} pairs of {code_list(left_out)} correctly: "
                 f"{'that dataset has' if one else 'those datasets have'} no class mean and {'is' if one else 'are'} "
                 f"left out of the sets below, so the intersection is over {plural(len(scores), 'dataset')} only. ")
    few = _few_pairs(used, scores)
    if few:
        text += _rests_on(used, few) + (": its set is noisy, read it with care. " if len(few) == 1
                                        else ": their sets are noisy, read them with care. ")
    if len(scores) == 1:
        text += "With a single dataset, its intersection is its own set."
    if not scores:
        text += f"No dataset has a correctly classified {pairs} pair: there are no relevance neurons to show."
    return text.strip()


def peak_layers_text(counts: pd.DataFrame, datasets: Sequence[str], layers: int) -> str:
    """Where each set lies: the layer holding most of each dataset's set at the largest p, and the intersection per p.

    ``counts`` is :func:`neuron_ig.stats.selection.layer_count_table` over ``datasets`` (those with a class mean).
    """

    summary = layer_count_summary(counts)
    largest = counts["p"].max()
    holder = "the datasets share" if len(datasets) > 1 else f"the set of `{datasets[0]}` has"
    at_largest = []
    for d in datasets:
        peak = layer_count_summary(counts, d).loc[largest]
        at_largest.append(f"{int(peak['peak layer'])} for `{d}` ({peak['share in peak layer']:.0%})")
    per_p = []
    for p, row in summary.iterrows():
        n = int(row["neurons"])
        where = f", {row['share in peak layer']:.0%} of them in layer {int(row['peak layer'])}" if n else ""
        per_p.append(f"at top {p:g}% {holder} {plural(n, 'neuron')}{where}")
    return (f"Layers are numbered from 0 (closest to the input) to {layers - 1}. At top {largest:g}%, the layer holding "
            f"the most of each dataset's set is " + ", ".join(at_largest) + "; " + "; ".join(per_p) + ".")


def intersection_text(sizes: pd.DataFrame, n_neurons: int, n_datasets: int) -> str:
    """The size of the intersection per p against chance, and the mean Jaccard index between two datasets' sets.

    ``sizes`` is :func:`neuron_ig.stats.selection.set_size_table`; ``n_neurons`` = layers x units.
    """
    if n_datasets < 2:
        return f"Every dataset's set has ceil(p% x {n_neurons:,}) neurons; with one dataset there is nothing to intersect."
    lines = [f"at top {p:g}%, {int(row[INTERSECTION])} of {int(row['neurons per dataset'])} "
             f"({row[INTERSECTION + ' / set']:.0%}; sets drawn at random would share {row['chance ' + INTERSECTION]:.2g})"
             for p, row in sizes.iterrows()]
    return (f"Every dataset's set has ceil(p% x {n_neurons:,}) neurons. The intersection over the {n_datasets} datasets "
            f"holds " + "; ".join(lines) + ". The mean Jaccard index between two datasets' sets is "
            + ", ".join(f"{row['mean Jaccard']:.2f} at top {p:g}%" for p, row in sizes.iterrows()) + ".")


# --- pages 04 and 06: the shared core of one class -------------------------------------------------

def core_means_text(used: pd.DataFrame, scores: Mapping, label: int) -> str:
    """The class means the core rests on: noisy means, and datasets left out before ranking."""
    pairs = CLASS_NAMES[label]
    left_out = [d for d in used.index if d not in scores]
    text = f"Class means over the correctly classified {pairs} pairs only (P({pairs}) > 0.5). "
    few = _few_pairs(used, scores)
    if few:
        text += _rests_on(used, few) + ": its set is noisy, and so is its rank below. "
    if left_out:
        text += (f"None of the sampled pairs of {code_list(left_out)} is classified correctly: "
                 f"{'it is' if len(left_out) == 1 else 'they are'} left out before ranking"
                 + (f", and the core is chosen among the {len(scores)} remaining dataset{'' if len(scores) == 1 else 's'}."
                    if scores else "."))
    return text.strip()


def left_out_text(ranking: pd.DataFrame, dropped: Sequence[str], core: Sequence[str], n_dropped: int,
                  in_domain: str, figure: int) -> str:
    """Which datasets the core leaves out and why (:func:`neuron_ig.stats.selection.shared_with_others` ranking).

    ``core`` lists the datasets kept; ``figure`` is the paper's figure of all datasets (2 or 4).
    """
    n_scores = len(ranking)
    capped = (f" `n_dropped` = {n_dropped}, capped at {n_scores - 2} so that at least two datasets remain to intersect."
              if n_dropped > n_scores - 2 else "")
    text = ("Each row is a dataset's mean Jaccard index with the other datasets' top-p% sets, per p and averaged over p "
            f"(ascending: the first rows share the fewest neurons with the rest).{capped} ")
    if not dropped:
        return text + f"Nothing is left out: the core is the intersection over all {len(core)} datasets, as in Figure {figure}."
    return (text + "Left out: " + ", ".join(f"`{d}` ({ranking.loc[d, 'mean']:.3f})" for d in dropped)
            + f"; the core is the intersection over {code_list(core)}"
            + f" (the in-domain dataset `{in_domain}` is never left out: a core shared across collections holds it).")


def single_core_text(scores: Mapping, label: int) -> str:
    """The core when fewer than two datasets have a class mean."""
    if scores:
        return (f"Only `{next(iter(scores))}` has correctly classified {CLASS_NAMES[label]} pairs: there is no other dataset "
                "to compare with, so nothing is left out and the core is its set alone.")
    return f"No dataset has a correctly classified {CLASS_NAMES[label]} pair: there is no core to show."


def core_sizes_text(table: pd.DataFrame, summary: pd.DataFrame, dropped: Sequence[str], n_core: int) -> str:
    """How many neurons the core of ``n_core`` datasets shares per p, where, and how many more than all datasets do.

    ``table`` is :func:`neuron_ig.stats.selection.core_size_table`; ``summary`` the core's
    :func:`neuron_ig.stats.selection.layer_count_summary`.
    """
    core_sizes, all_sizes = table["core intersection"].astype(int), table["intersection, all datasets"].astype(int)
    lines = []
    for p, n in core_sizes.items():
        where = f", {summary.loc[p, 'share in peak layer']:.0%} of them in layer {int(summary.loc[p, 'peak layer'])}" if n else ""
        lines.append(f"at top {p:g}%, {n} of {int(table.loc[p, 'neurons per dataset'])}{where}")
    text = f"The {n_core} datasets of the core share " + "; ".join(lines) + ". "
    if dropped:
        text += (f"Intersecting fewer sets can only keep more neurons; leaving out {code_list(dropped)} keeps "
                 + ", ".join(str(n) for n in core_sizes - all_sizes) + " more at top " + percents(core_sizes.index)
                 + " than the intersection over all datasets (" + ", ".join(str(n) for n in all_sizes)
                 + "); sets drawn at random would share " + ", ".join(f"{c:.2g}" for c in table["chance core"]) + ".")
    return text.strip()


def drop_rule_text(scores: Mapping, label: int, dropped: Sequence[str], core: Sequence[str], n_dropped: int) -> str:
    """The finding's first sentence: what the drop rule leaves out of the core, and whether ``n_dropped`` was capped.

    ``scores`` are the class means (only the datasets that have one); ``dropped`` the datasets
    :func:`neuron_ig.stats.selection.fewest_shared` leaves out; ``core`` the datasets kept. With fewer than two
    class means: :func:`single_core_text`.
    """
    if len(scores) < 2:
        return single_core_text(scores, label)
    capped = (f" (`n_dropped` = {n_dropped}, capped at {len(dropped)} so that two datasets remain)"
              if len(dropped) < n_dropped else "")
    if dropped:
        return (f"The drop rule leaves out {code_list(dropped)}: the out-of-domain "
                f"dataset{'' if len(dropped) == 1 else 's'} whose top-p% sets share the fewest neurons with the "
                f"others'{capped}.")
    return (f"The drop rule leaves nothing out{capped or ' (`n_dropped` = 0)'}: the core is the intersection over "
            f"all {len(core)} datasets.")


def core_share_text(table: pd.DataFrame | None, scores: Mapping, dropped: Sequence[str], core: Sequence[str],
                    p: float) -> str:
    """At top ``p``%, how many of each set's neurons the core holds (and, with datasets dropped, how many all share).

    ``table`` is :func:`neuron_ig.stats.selection.core_size_table` (index p; columns ``core intersection``,
    ``neurons per dataset``, ``intersection, all datasets``), None without a core of two datasets; ``scores`` the
    class means, ``dropped`` the datasets left out, ``core`` those kept. Empty with fewer than two class means.
    """
    if table is None or len(scores) < 2:
        return ""
    names = [f"`{d}`" for d in core]
    return (f"At top {p:g}%, the core of {', '.join(names[:-1])} and {names[-1]} holds "
            f"{int(table.loc[p, 'core intersection'])} of each set's {int(table.loc[p, 'neurons per dataset'])} neurons"
            + (f" ({int(table.loc[p, 'intersection, all datasets'])} are in the sets of all {len(scores)} datasets)."
               if dropped else "."))


def core_null_text(nulls: pd.DataFrame, scores: Mapping, p: float, n_resamples: int) -> str:
    """The core at top ``p``% against sign flips of the pairs with the drop rule inside (uncorrected p-value, at 5%).

    ``nulls`` has one row per p (columns ``p``, ``core intersection``, ``sign-flip null mean``,
    ``p (drop rule in the null)``), empty when the pairs are too few to split; ``scores`` the class means.
    Empty with fewer than two class means.
    """
    if len(scores) < 2:
        return ""
    if not len(nulls):
        return "Too few pairs to split every core dataset: no null to compare the core with."
    at = nulls.set_index("p").loc[p]
    larger = "larger than" if at["p (drop rule in the null)"] <= 0.05 else "not larger, at the 5% level, than"
    return (f"Sign flips of the pairs, with the same drop rule inside every resample, give a core of "
            f"{at['sign-flip null mean']:.3g} neurons on average: the observed {int(at['core intersection'])} is {larger} "
            f"noise makes it (p = {at['p (drop rule in the null)']:.3g}, {n_resamples} resamples, uncorrected).")


# --- page 07: overlaps between datasets, between classes, and out-of-domain neurons ------------------

def both_classes_means_text(used: Mapping[int, pd.DataFrame], scores: Mapping[int, Mapping]) -> str:
    """The class means of both classes: noisy ones and datasets left out, per class (``{label: ...}``)."""
    noisy, missing = [], []
    for label in CLASSES:
        few = _few_pairs(used[label], scores[label])
        if few:
            one = len(few) == 1
            noisy.append(f"The {CLASSES[label]} mean{'' if one else 's'} of {code_list(few)} rest{'s' if one else ''} on "
                         f"fewer than {FEW_PAIRS} pairs: read {'its set' if one else 'their sets'} with care.")
        absent = [d for d in used[label].index if d not in scores[label]]
        if absent:
            missing.append(f"No {CLASS_NAMES[label]} pair of {code_list(absent)} is classified correctly: "
                           f"{'that dataset is' if len(absent) == 1 else 'those datasets are'} left out of the "
                           f"{CLASSES[label]} class below.")
    return " ".join(["Each class mean averages the pairs the model puts in their own class.", *noisy, *missing])


def _jaccard_spread(at_p: pd.DataFrame) -> str:
    """``from 0.10 (`a` and `b`) to 0.30 (`a` and `c`)`` over the pairs of datasets (rows ``row``, ``column``, ``Jaccard``)."""
    high, low = at_p.loc[at_p["Jaccard"].idxmax()], at_p.loc[at_p["Jaccard"].idxmin()]

    def pair(row):
        return f"{row['Jaccard']:.2f} (`{row['row']}` and `{row['column']}`)"

    if len(at_p) == 1:
        return pair(high)
    if high["Jaccard"] == low["Jaccard"]:
        return f"{high['Jaccard']:.2f} for every pair of datasets"
    return f"from {pair(low)} to {pair(high)}"


def jaccard_text(long: pd.DataFrame | None, scores: Mapping[int, Mapping], p_values: Sequence[float]) -> str:
    """The spread of the Jaccard index between datasets, per class, at the smallest and largest p.

    ``long`` has columns ``class`` (``positive class``...), ``p``, ``row``, ``column``, ``Jaccard`` (the
    matrices of the classes with two datasets or more; None when there is none).
    """

    lines = []
    for label in CLASSES:
        if len(scores[label]) < 2:
            lines.append(f"The {CLASSES[label]} class has {plural(len(scores[label]), 'dataset')} with correctly "
                         "classified pairs: no pair of datasets to compare.")
            continue
        off = long[(long["class"] == f"{CLASSES[label]} class") & (long["row"] < long["column"])]
        for p in dict.fromkeys((p_values[0], p_values[-1])):
            size = int(next(iter(relevance_neuron_sets(scores[label], p).values())).sum())
            lines.append(f"{CLASSES[label].capitalize()} class, top {p:g}% ({size} neurons per set): "
                         f"Jaccard {_jaccard_spread(off[off['p'] == p])}.")
    return ("A Jaccard index of 1 means identical sets, 0 disjoint ones; two sets drawn at random would score about "
            "p% / 2 (0.0005 to 0.005 here). " + " ".join(lines))


def class_overlap_text(overlap: pd.DataFrame) -> str:
    """The positive against the negative class (:func:`neuron_ig.stats.selection.class_overlap`, index ``(dataset, p)``)."""
    if not len(overlap):
        return "No dataset has correctly classified pairs in both classes: nothing to compare."
    by_p = overlap.groupby(level="p")["Jaccard"].mean()
    dataset, p = overlap["shared"].idxmax()
    return ("For each dataset with correctly classified pairs in both classes, the positive class's top-p% set against "
            "the negative class's. Mean Jaccard over datasets: " + ", ".join(f"{j:.2f} at top {q:g}%" for q, j in by_p.items())
            + f"; the largest share is {overlap['shared'].max()} neurons (`{dataset}`, top {p:g}%).")


def ood_datasets_text(in_domain: str, scores: Mapping[int, Mapping], absent: Sequence[int]) -> str:
    """Which datasets the out-of-domain sets are over, per class; why a class in ``absent`` has no OOD neurons."""
    outside = {label: [d for d in scores[label] if d != in_domain] for label in CLASSES if label not in absent}
    text = f"The in-domain dataset is `{in_domain}`. "
    if outside:
        text += "The out-of-domain sets are over " + "; ".join(
            f"{code_list(names)} for the {CLASSES[label]} class"
            + (" (with one out-of-domain dataset, its intersection and its fusion are both its own set)" if len(names) == 1 else "")
            for label, names in outside.items()) + ". "
    text += " ".join(f"No OOD neurons for the {CLASSES[label]} class: "
                     + (f"`{in_domain}` has no correctly classified {CLASS_NAMES[label]} pair." if in_domain not in scores[label]
                        else f"no out-of-domain dataset has a correctly classified {CLASS_NAMES[label]} pair.")
                     for label in absent)
    return text.strip()


def ood_sizes_text(sizes: pd.DataFrame, counts: pd.DataFrame) -> str:
    """One bullet per class and p: the out-of-domain sets, their OOD neurons, and the fusion's share in-domain.

    ``sizes`` has index ``(class name, p)`` and a column per set of :data:`neuron_ig.stats.selection.OOD_SETS`,
    plus ``fusion, all datasets, in the in-domain set``; ``counts`` the sets' layer counts with columns
    ``class`` (``positive class``...), ``p``, ``set``, ``layer``, ``neurons``.
    """
    lines = []
    for (name, p), row in sizes.iterrows():
        at = counts[(counts["class"] == f"{name} class") & (counts["p"] == p)]
        ood = at[at["set"] == "OOD neurons (fusion)"].set_index("layer")["neurons"]
        peak = f", most in layer {ood.idxmax()} ({ood.max()})" if ood.sum() else ""
        lines.append(
            f"- {name} class, top {p:g}%: the out-of-domain intersection has {row['out-of-domain intersection']} neurons, "
            f"{row['OOD neurons (intersection)']} of them outside the in-domain set; the out-of-domain fusion has "
            f"{row['OOD neurons (fusion)']} of {row['out-of-domain fusion']} outside it{peak}; of the "
            f"{row['fusion, all datasets']} neurons of the fusion over all datasets, "
            f"{row['fusion, all datasets, in the in-domain set']} are in the in-domain set.")
    return "\n".join(lines)


def _range(values, spec: str) -> str:
    """``low to high`` of some values, each written with the format ``spec`` (``.2f``, ``.0%``, ``.3g``), or the one
    value when both write alike."""
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low} to {high}"


def _per_class(values, names: Sequence[str], labelled: bool) -> str:
    """``16 (positive class) and 20 (negative class)``, or ``16 and 20`` when the classes were named before."""
    return " and ".join(f"{v} ({n} class)" if labelled else str(v) for v, n in zip(values, names))


def between_datasets_text(long: pd.DataFrame | None, ratios: pd.DataFrame, compared: Sequence[int], p: float) -> str:
    """The finding on the overlap between datasets at top ``p``%: the range of the Jaccard index per class, and how
    that overlap compares with the one between two halves of one dataset.

    ``long`` has columns ``class`` (``positive class``...), ``p``, ``row``, ``column``, ``Jaccard`` (None when no
    class is compared); ``ratios`` the :func:`neuron_ig.stats.nulls.agreement_ratio` rows with ``class`` and ``p``
    (may be empty); ``compared`` the labels of the classes with two datasets or more.
    """
    if not compared:
        return "No class has two datasets with correctly classified pairs: no overlap between datasets to show."
    shown = [CLASSES[label] for label in compared]
    jaccards = [_range(long[(long["class"] == f"{n} class") & (long["p"] == p) & (long["row"] < long["column"])]["Jaccard"],
                       ".2f")
                for n in shown]
    text = (f"At top {p:g}%, the datasets' sets overlap by a Jaccard index of "
            + " and ".join(f"{j} in the {n} class" for j, n in zip(jaccards, shown)))
    at_p = ratios[ratios["p"] == p].dropna(subset=["ratio"]) if len(ratios) else ratios
    with_ratio = [n for n in shown if len(at_p) and (at_p["class"] == f"{n} class").any()]
    if with_ratio:
        text += ("; on halves of the pairs, the overlap between two datasets is "
                 + _per_class([_range(at_p[at_p["class"] == f"{n} class"]["ratio"], ".2f") for n in with_ratio],
                              with_ratio, with_ratio != shown)
                 + " times that between two halves of one dataset")
    text += "."
    return text + "".join(f" The {CLASSES[label]} class has fewer than two datasets with correctly classified pairs."
                          for label in CLASSES if label not in compared)


def between_classes_text(overlap: pd.DataFrame, p: float) -> str:
    """The finding on the positive against the negative class at top ``p``%: the range of neurons a dataset's two
    sets share and their mean Jaccard (``overlap``: :func:`neuron_ig.stats.selection.class_overlap`, index
    ``(dataset, p)``); without such a dataset, :func:`class_overlap_text`."""
    if not len(overlap):
        return class_overlap_text(overlap)
    at = overlap.xs(p, level="p")
    return (f"A dataset's positive and negative top-{p:g}% sets share {_range(at['shared'], '.0f')} neurons "
            f"(mean Jaccard {at['Jaccard'].mean():.2g}).")


def ood_counts_text(sizes: pd.DataFrame, tests: pd.DataFrame, in_domain: str, scores: Mapping[int, Mapping],
                    absent: Sequence[int], p: float) -> str:
    """The finding on the OOD neurons at top ``p``%: per class, how many of the out-of-domain intersection lie outside
    the in-domain set and, where tested, how many pass the stricter rank-gap and max-t definitions.

    ``sizes`` has index ``(class name, p)`` and columns ``OOD neurons (intersection)`` and ``out-of-domain
    intersection`` (empty: no class has OOD sets; then :func:`ood_datasets_text` of ``in_domain``, ``scores``,
    ``absent``); ``tests`` the :func:`neuron_ig.studies.verdicts.ood_claim` rows with ``class`` (``positive
    class``...), ``rank-gap neurons`` and ``OOD neurons`` (may be empty).
    """
    if not len(sizes):
        return ood_datasets_text(in_domain, scores, absent)
    names = [n for n in CLASSES.values() if (n, p) in sizes.index]
    rows_at = [sizes.loc[(n, p)] for n in names]
    text = ("Of the neurons in every out-of-domain top-" + f"{p:g}% set, "
            + _per_class([f"{r['OOD neurons (intersection)']} of {r['out-of-domain intersection']}" for r in rows_at],
                         names, True)
            + " are outside the in-domain set (the intersection's OOD neurons)")
    tested = tests.set_index("class") if len(tests) else tests
    names_t = [n for n in names if f"{n} class" in tested.index]
    if names_t:
        labelled = names_t != names
        text += ("; " + _per_class([int(tested.loc[f"{n} class", "rank-gap neurons"]) for n in names_t], names_t, labelled)
                 + f" are outside its top {min(100, 5 * p):g}%, and "
                 + _per_class([int(tested.loc[f"{n} class", "OOD neurons"]) for n in names_t], names_t, labelled)
                 + " have a higher NIG out of domain than in domain beyond the 95% quantile of the largest t in pairs "
                 "shuffled between datasets (a description: any shift of a whole collection passes that test; the "
                 "OOD claim of \"Paper vs reproduction\" compares class contrasts instead)")
    return text + "."


# --- page 08: token types ------------------------------------------------------------------------------

def token_pairs_text(pairs: pd.DataFrame, baseline: str) -> str:
    """Which (dataset, class) have no correctly classified pair; ``pairs`` has index ``(dataset, class)``
    and a column ``correctly classified``."""
    empty = pairs[pairs["correctly classified"] == 0].index
    skipped = [f"{name} pairs of `{dataset}`" for name in pairs.index.unique("class")
               for dataset in pairs.index.unique("dataset") if (dataset, name) in empty]
    return ("Every number below is a mean over the correctly classified pairs only (the column above). "
            + (f"The model classifies none of the {' and none of the '.join(skipped)} correctly: they are left out of "
               "this page. " if skipped else "Every dataset and class has at least one. ")
            + f"F is the probability of the pair's own class; F(x') is its value at the {baseline} baseline.")


def layer_token_text(per_layer: pd.DataFrame, usable: Sequence[tuple[str, str]]) -> str:
    """The layer with the largest total per (class, dataset), and the negative bars.

    ``per_layer`` has columns ``class``, ``dataset``, ``layer``, ``token type``, ``NIG`` and ``note``
    (non-empty for a panel without correctly classified pairs); ``usable`` lists (class, dataset).
    """
    shown = per_layer[per_layer["note"] == ""]
    by_layer = shown.groupby(["class", "dataset", "layer"])["NIG"].sum()
    peaks = [f"{name}, `{dataset}`: layer {by_layer[name, dataset].idxmax()}" for name, dataset in usable]
    negatives = per_layer[per_layer["NIG"] < 0]
    text = ("Bars above zero push the pair towards its own class, bars below zero away from it; a layer's bars add up "
            "to the mean summed NIG of its FFN neurons (the two classes have their own scales: a baseline that is already "
            "far on one side of 0.5 leaves little change of F to attribute for that class). The layer with the largest "
            "total is " + "; ".join(peaks) + ". ")
    if not len(negatives):
        return text + "No bar is negative."
    worst = negatives.loc[negatives["NIG"].idxmin()]
    return (text + f"{len(negatives)} of the {len(shown)} (layer, token type) bars are negative, the largest "
            f"{worst['NIG']:.4f} ({worst['token type']} tokens, layer {worst['layer']}, {worst['class']} pairs of "
            f"`{worst['dataset']}`).")


def token_shares_text(shares: pd.DataFrame, segments: Sequence[str], max_length: int, baseline: str) -> str:
    """The token type with the largest share per (dataset, class), then the next; the special tokens' share.

    ``shares`` has index ``(dataset, class)``, a column ``pairs`` and one column per token type of ``segments``.
    """
    tokens = shares[list(segments)]
    lines = []
    for dataset, name in shares.index:
        row = tokens.loc[(dataset, name)]
        first = row.idxmax()
        lines.append(f"- {name}, `{dataset}` ({shares.loc[(dataset, name), 'pairs']} pairs): {first} ({row.max():.0%}), "
                     f"then {row.drop(first).idxmax()} ({row.drop(first).max():.0%})")
    special = tokens["CLS"] + tokens["SEP"]
    return ("The token type with the largest share of the absolute attribution:\n\n" + "\n".join(lines) + "\n\n"
            f"The special tokens [CLS] and [SEP], three positions of up to {max_length}, carry between "
            f"{special.min():.0%} and {special.max():.0%} of it."
            + (" With the PAD_QUERY baseline the passage tokens are the same at both ends of the path, so their "
               "attribution comes only from what the query changes in them through attention."
               if baseline.upper() == "PAD_QUERY" else ""))


def main_token_type_text(profiles: pd.DataFrame) -> str:
    """How often each token type carries most of a set's attribution, per class, and whether p changes it.

    ``profiles`` has index ``(dataset, class, top p%)`` and a column ``main token type``.
    """
    main = profiles["main token type"].unstack("top p%")
    counts = profiles["main token type"].value_counts()
    changes = [(dataset, name) for dataset, name in main.index if main.loc[(dataset, name)].nunique() != 1]
    by_class = {name: profiles.xs(name, level="class")["main token type"].value_counts()
                for name in profiles.index.unique("class")}
    return (f"Over the {len(profiles)} sets (dataset, class and p), the token type carrying most of the set's attribution is "
            + ", ".join(f"{segment} for {count}" for segment, count in counts.items()) + ". "
            + " ".join(f"Of the {c.sum()} {name}-class sets: " + ", ".join(f"{segment} in {count}" for segment, count in c.items())
                       + "." for name, c in by_class.items())
            + f" The answer does not change with p for {len(main) - len(changes)} of the {len(main)} (dataset, class) combinations"
            + (": it does for " + ", ".join(f"the {name} class of `{dataset}`" for dataset, name in changes) + "." if changes else ".")
            + " Out-of-domain rows rest on the correctly classified pairs counted in the `pairs` column, which can be few.")


def where_it_sits_text(shares: pd.DataFrame, segments: Sequence[str]) -> str:
    """The finding on the token types: which one carries the largest share of the absolute attribution in how many
    (dataset, class) combinations, its range of shares against the query or passage tokens' and [CLS] and [SEP]'s.

    ``shares`` has index ``(dataset, class)`` and one column per token type of ``segments`` (``CLS``, ``query``,
    ``SEP``, ``passage``); empty when no dataset and class has a correctly classified pair.
    """
    if not len(shares):
        return "No dataset and class has a correctly classified pair: there is no attribution to split."
    tokens = shares[list(segments)]
    first = tokens.idxmax(axis=1).value_counts()
    top = first.index[0]
    where = (f"in every one of the {len(tokens)} (dataset, class) combinations" if len(first) == 1 else
             f"in {first.iloc[0]} of the {len(tokens)} (dataset, class) combinations ("
             + ", ".join(f"{segment} in {count}" for segment, count in first.iloc[1:].items()) + ")")
    others = [s for s in ("query", "passage") if s != top]
    special = tokens["CLS"] + tokens["SEP"]
    return (f"The {top} tokens carry the largest share of the absolute attribution {where}: {_range(tokens[top], '.0%')} "
            "of it" + "".join(f", against {_range(tokens[s], '.0%')} for the {s} tokens" for s in others)
            + f" and {_range(special, '.0%')} for [CLS] and [SEP] together.")


def top_sets_token_text(profiles: pd.DataFrame) -> str:
    """The finding on the top-p% sets: which token type carries most of a set's attribution in how many sets.

    ``profiles`` has index ``(dataset, class, top p%)`` and a column ``main token type``; empty text when it is empty.
    """
    if not len(profiles):
        return ""
    main = profiles["main token type"].value_counts()
    return (f"Of the {len(profiles)} top-p% neuron sets (dataset, class and p), the {main.index[0]} tokens carry most of "
            f"the set's attribution in {main.iloc[0]}"
            + (" (" + ", ".join(f"{segment} in {count}" for segment, count in main.iloc[1:].items()) + ")."
               if len(main) > 1 else "."))


def baseline_tokens_text(baseline: str, moved: Sequence[str], segments: Sequence[str]) -> str:
    """Which token types' word embeddings move along the path from ``baseline`` (``moved``, among ``segments``)."""
    if list(moved) == ["query"]:
        return (f"With the {baseline} baseline only the query tokens' word embeddings move along the path, which by "
                "itself predicts that the query carries most of the attribution (see the caveats).")
    if len(moved) < len(segments):
        return (f"With the {baseline} baseline only the word embeddings of the {' and '.join(moved)} tokens move along "
                "the path (see the caveats).")
    return f"With the {baseline} baseline the word embeddings of every token type move along the path."


# --- page 09: robustness ------------------------------------------------------------------------------

def _robustness(share: float) -> str:
    return "robust" if share == 1 else "not robust" if share == 0 else f"partly robust ({share:.0%} of the sets)"


def stability_text(passed: pd.DataFrame, grid: pd.DataFrame, table: pd.DataFrame, p_values: Sequence[float],
                   n_variants: int) -> str:
    """Per variant, how many sets are stable; which sets are stable everywhere or nowhere; mean Jaccard by p.

    ``passed`` has one row per compared set and variant (columns ``variant``, ``top p%``, ``Jaccard``,
    ``stable``); ``grid`` is its ``stable`` flag, index ``(dataset, class, top p%)``, a column per variant
    (NaN: not compared); ``table`` the comparison table, index ``(variant, dataset, class)``, with
    ``Spearman`` and ``note`` (non-empty: not compared).
    """
    lines = []
    for variant in grid.columns:
        column = passed[passed["variant"] == variant]
        spearmans = table.xs(variant, level="variant")["Spearman"].dropna()
        lines.append(f"- {variant}: {int(column['stable'].sum())} of {len(column)} sets stable (Jaccard from "
                     f"{column['Jaccard'].min():.2f} to {column['Jaccard'].max():.2f}); Spearman of the scores from "
                     f"{spearmans.min():.3f} to {spearmans.max():.3f}.")
    by_p = passed.groupby(["variant", "top p%"])["Jaccard"].mean()
    known = grid.astype(object).where(grid.notna(), False).astype(bool)  # not compared counts as not stable here
    everywhere = grid[known.all(axis=1) & (grid.notna().sum(axis=1) == n_variants)].index.tolist()
    nowhere = grid[~known.any(axis=1)].index.tolist()
    skipped = table[table["note"] != ""].index.tolist()

    def describe(keys):
        return "; ".join(f"{name} class of `{dataset}`, top {p:g}%" for dataset, name, p in keys)

    shares = passed.groupby("variant", sort=False)["stable"].mean().reindex(grid.columns)
    return ("\n".join(lines) + "\n\n"
            + (f"Stable under every variant: {describe(everywhere)}. " if everywhere else "No set is stable under every variant. ")
            + (f"Stable under none: {describe(nowhere)}. " if nowhere else "")
            + "Mean Jaccard by p, over datasets and classes: "
            + "; ".join(f"{variant} " + ", ".join(f"{by_p[variant, p]:.2f}" for p in p_values) for variant in grid.columns)
            + f" (top {', '.join(f'{p:g}' for p in p_values)}%). "
            + ("A low overlap under the seed variant says that a set depends on which pairs were drawn; one under the "
               "baseline variant, that it depends on how NIG was computed for the same pairs. "
               if any(str(v).startswith("seed ") for v in grid.columns) else
               "A low overlap under the baseline variant says that a set depends on how NIG was computed for "
               "the same pairs. ")
            + ("Not compared, for lack of correctly classified pairs: "
               + "; ".join(f"{variant}, {name} class of `{dataset}`" for variant, dataset, name in skipped) + ". "
               if skipped else "")
            + "\n\nIn short, by this threshold the top-p% sets are "
            + "; ".join(f"{_robustness(share)} to the change to {variant}" for variant, share in shares.items()) + ".")


def membership_text(membership: pd.DataFrame, p: float) -> str:
    """The finding on bootstrap membership (a clause that goes on "Over N bootstrap resamples of the book's own pairs, ").

    ``membership`` has one row per class and dataset, with the columns of
    :func:`neuron_ig.stats.agreement.membership_summary` (``set size``, ``mean probability of the selected``,
    ``selected with probability >= 0.9``); empty when no dataset has a correctly classified pair.
    """
    if not len(membership):
        return "no dataset has a correctly classified pair to resample."
    sizes = sorted(set(membership["set size"]))
    sure = membership["selected with probability >= 0.9"]
    sure_text = f"{_range(sure, '.3g')} of a set's {sizes[0]} neurons" if len(sizes) == 1 else \
        f"{_range(sure, '.3g')} neurons of a set"
    return (f"the neurons of each class and dataset's top-{p:g}% set stay in it with a mean probability of "
            f"{_range(membership['mean probability of the selected'], '.3g')} ({len(membership)} sets), and {sure_text} stay "
            "with a probability of 0.9 or more.")


def agreement_text(agreement: pd.DataFrame, p: float) -> str:
    """The finding on within- against between-dataset agreement at top ``p``%: the Jaccard ranges per class and
    whether every between-dataset overlap lies below every within-dataset one.

    ``agreement`` has the rows of :func:`neuron_ig.stats.nulls.agreement_table` with columns ``class``, ``kind``
    (starting ``within`` or ``between``) and ``Jaccard``; a class without both kinds is left out, and without any
    class the text says there is nothing to compare.
    """
    by_class = [(name, rows[rows["kind"].str.startswith("within")]["Jaccard"],
                 rows[rows["kind"].str.startswith("between")]["Jaccard"])
                for name, rows in agreement.groupby("class", sort=False)]
    by_class = [(name, within, between) for name, within, between in by_class if len(within) and len(between)]
    if not by_class:
        return ("With fewer than two datasets of at least two pairs, there is no within- and between-dataset agreement "
                "to compare.")
    separated = [name for name, within, between in by_class if between.max() < within.min()]
    return ("Two disjoint halves of one dataset's pairs give top-" + f"{p:g}% sets that overlap by a Jaccard of "
            + " and ".join(f"{_range(within, '.3g')} ({name} class)" for name, within, _ in by_class)
            + "; halves of two different datasets by "
            + " and ".join(f"{_range(between, '.3g')} ({name} class)" for name, _, between in by_class) + ". "
            + ("Every between-dataset overlap lies below every within-dataset one"
               + (" in both classes" if len(by_class) == 2 else "") + ": the datasets' sets differ more than halves of "
               "one dataset do." if len(separated) == len(by_class) else
               f"Every between-dataset overlap lies below every within-dataset one only for the {' and '.join(separated)} "
               "class: the other's ranges overlap." if separated else
               "The between- and within-dataset ranges overlap in every class: the datasets' sets do not clearly differ "
               "more than halves of one dataset do."))


# --- verdicts against nulls and controls (issue 14) ----------------------------------------------------

def records(table: pd.DataFrame) -> list[dict]:
    """``table`` as a list of row dicts for ``glue``, missing values as None (a NaN would not read back)."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def control_tests_text(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """How each controlled set of a pruning table (:func:`neuron_ig.studies.pruning.relevance_pruning`) compares with its
    random and activation-matched controls, one bullet per row with controls, and which test gave the p-value."""
    rows = table[(table["controls"] > 0) & (table["neurons"] > 0)] if "controls" in table else table.iloc[0:0]
    if rows.empty:
        return "No set was pruned with controls here: every row reads 'no control'."
    lines = []
    for _, row in rows.iterrows():
        parts = []
        for kind, words in (("random", "random"), ("matched", "activation-matched")):
            if f"p vs {kind}" in row and pd.notna(row.get(f"p vs {kind}")):
                count = f"R = {int(row[f'{kind} controls'])}, " if f"{kind} controls" in row else ""
                parts.append(f"{words} {row[f'{kind} delta']:+.3f} ({count}sd {row[f'{kind} sd']:.3f}; "
                             f"{row[f'test vs {kind}']}, p = {row[f'p vs {kind}']:.2g}, Holm {row[f'p vs {kind} (Holm)']:.2g})")
        lines.append(f"- {row['class']} · {row['set']}, top {row['p']:g}%, `{row['task']}`: delta {row['delta']:+.3f} "
                     f"against " + "; ".join(parts) + ".")
    counts = rows[[c for c in ("random controls", "matched controls", "controls") if c in rows]].to_numpy(dtype=float)
    r = int(counts[counts > 0].min())  # a kind of control a row lacks (0) resolves nothing
    return ("Each controlled set against its controls, query by query (the null):\n\n" + "\n".join(lines) + "\n\n"
            f"With R = {r} controls no p-value here is below 1 / (R + 1) = {1 / (r + 1):.3f}: p is the larger of the set's "
            "rank among its controls and the share of resamples (of the evaluation queries and of the controls, both with "
            "replacement) in which the set does not hurt more than a control, query by query. No tail is extrapolated. "
            "Holm is applied within each set over its classes, collections and p.")


def verdicts_text(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """The count of each verdict of a :func:`neuron_ig.studies.verdicts.page_verdicts` table and what the verdicts mean."""
    counts = table["verdict"].value_counts()
    tested = int(table["p"].notna().sum()) if "p" in table else 0
    return (", ".join(f"{n} {v}" for v, n in counts.items()) + f" (of {len(table)} claims). "
            f"Each claim is tested against its null (column `test`); 'supported' means the one-sided p-value, "
            f"Holm-adjusted over the {tested} tested claims of this page, is at most {alpha}; 'inconclusive' that the "
            "effect points the claimed way but the data cannot tell it from the null; 'not supported' that it does not "
            "point the claimed way; 'not computed' that the data lack (see `note`).")


def presence_text(rows: pd.DataFrame) -> str:
    """Where mismatched pairs fall for the relevance-specific neurons, one clause per dataset (rows of
    :func:`neuron_ig.studies.aggregation.presence_positions` of that part); empty when there are none."""
    if rows.empty:
        return ""
    clauses = [f"`{row['dataset']}` {row['position']:.2f} [{row['position low']:.2f}, {row['position high']:.2f}]"
               for _, row in rows.iterrows()]
    return ("Given a query that is there but not relevant (the mismatched pairs, measured on held-out pairs), the "
            "relevance-specific neurons sit at " + "; ".join(clauses) + " of the way from non-relevant (0) to "
            "relevant pairs (1).")


def probability_shift_text(shifts: pd.DataFrame) -> str:
    """How pruning each set moves P(relevant) against its controls, one clause per set and kind of pair (rows of
    :func:`neuron_ig.studies.pruning.probability_shifts`), and which ones move it beyond their controls' range."""
    if shifts.empty:
        return "No set was pruned with controls here, so no shift of P(relevant) is compared."
    clauses = []
    for _, row in shifts.iterrows():
        beyond = row["interval high"] < 0 or row["interval low"] > 0
        clauses.append(f"{row['scheme']} on {row['pairs']} pairs {row['effect']:+.3g} [{row['interval low']:+.3g}, "
                       f"{row['interval high']:+.3g}]" + (" (beyond its controls)" if beyond else ""))
    return ("Against its random controls, pruning moves the mean P(relevant) by: " + "; ".join(clauses) + " (set minus "
            "controls, over queries; 95% interval from resampling queries and controls).")


def power_text(informative: int, queries: int, power: Mapping[str, float], needed: Mapping[str, float], *, controls: int,
               family: int, alpha: float = 0.05, effect: float = -0.05) -> str:
    """How many informative evaluation queries the in-domain verdict rests on, its power to see ``effect`` (per set),
    how many would give 80% (``needed``, informative queries), and whether its ``controls`` (R) let a verdict reach
    Holm's first threshold ``alpha / family`` at all (no p-value is below 1 / (R + 1))."""
    threshold = alpha / max(family, 1)
    shown = "; ".join(f"{name} set {value:.0%}" for name, value in power.items() if value == value)
    text = f"The in-domain verdicts rest on {informative} informative queries (of {queries} evaluation queries re-ranked)"
    if not shown:
        text += ": too few controls or queries to estimate the power."
    else:
        text += (f": the power to see a mean change of {effect:+g} nDCG@10 against the controls, one-sided at "
                 f"{threshold:.3g}, is {shown} (normal approximation, from the spread of each set's own per-query differences "
                 "to its controls).")
    wanted = {name: n for name, n in needed.items() if n == n}
    if wanted and informative and queries:
        most = max(wanted.values())
        text += (f" 80% would take about {int(most):,} informative queries, some {int(np.ceil(most * queries / informative)):,} "
                 "evaluation queries at this build's share of informative ones (`pruning_queries`).")
    floor = 1 / (controls + 1)
    if floor > threshold:
        text += (f" With R = {controls} controls no p-value is below {floor:.3g}, above Holm's first threshold "
                 f"{threshold:.3g} over the {family} cases of the set: no verdict here can read \"hurts more than random\" "
                 f"whatever the effect; R >= {int(-(-max(family, 1) // alpha)) - 1} (`random_seeds`) would let it.")
    return text


def controls_as_sets_text(checks: pd.DataFrame, alpha: float = 0.05) -> str:
    """The rule applied to each control as if it were the pruned set (rows of
    :func:`neuron_ig.stats.controls.controls_as_sets`, with ``class``)."""
    if checks.empty:
        return "Fewer than 3 controls per set: no control is tested as a set."
    fired, queries = int(checks["fires"].sum()), int((checks["p queries"] <= alpha).sum())
    return (f"Each random control, tested as if it were the pruned set against the other controls, with the page's rule: "
            f"{fired} of {len(checks)} reach p <= {alpha:g} (random sets, so at most about {alpha:.0%} should). The query "
            f"bootstrap alone would say so for {queries}: random sets differ in how much they hurt, which only the rank "
            "among the controls accounts for.")


# --- the pruning summary page: the finding ---------------------------------------------------------------

def _against(row: pd.Series, kind: str, words: str, interval: str = "95% interval ") -> str:
    """The set's effect against its ``kind`` controls, with its interval and Holm p, or '' without such controls."""
    if not row.get(f"{kind} controls") or pd.isna(row.get(f"delta vs {kind}")):
        return ""
    low, high, holm = row.get(f"delta vs {kind} low"), row.get(f"delta vs {kind} high"), row.get(f"p vs {kind} (Holm)")
    details = ([f"{interval}{low:.3g} to {high:.3g}"] if pd.notna(low) and pd.notna(high) else []) + (
        [f"Holm p = {holm:.3g}"] if pd.notna(holm) else [])
    return f"{row[f'delta vs {kind}']:+.3g} against {words}" + (f" ({', '.join(details)})" if details else "")


def pruning_effects_text(table: pd.DataFrame, verdicts: pd.Series, in_domain: str, p: float) -> str:
    """One sentence per class on its in-domain top-``p``% set pruned on the in-domain collection: its neurons, its
    delta nDCG@10, its effect against its random and activation-matched controls (interval, Holm p) and its verdict;
    a class without that set says that no pair of ``in_domain`` of the class is classified correctly.

    ``table`` is :func:`neuron_ig.studies.pruning.relevance_pruning`'s table (columns ``class``, ``set``, ``task``,
    ``p``, ``neurons``, ``delta``, and per kind of control ``random``/``matched``: ``KIND controls``, ``delta vs
    KIND``, ``delta vs KIND low``/``high``, ``p vs KIND (Holm)``, any of which may be missing); ``verdicts`` its
    :func:`neuron_ig.studies.pruning.pruning_verdicts`, indexed as the table.
    """
    sentences = []
    for name in CLASSES.values():
        at = table[(table["class"] == name) & (table["set"] == f"top: {in_domain}") & (table["task"] == in_domain)
                   & (table["p"] == p)]
        if at.empty:
            sentences.append(f"The {name} class has no set: no {name} pair of `{in_domain}` is classified correctly.")
            continue
        row, verdict = at.iloc[0], verdicts[at.index[0]]
        effects = [e for e in (_against(row, "random", "random controls"), _against(row, "matched", "matched ones", ""))
                   if e]
        sentences.append(f"{name.capitalize()} class ({int(row['neurons'])} neurons): delta {row['delta']:+.3g}"
                         + (", effect " + " and ".join(effects) if effects else "") + f": **{verdict}**.")
    return " ".join(sentences)


def ood_pruning_text(table: pd.DataFrame, verdicts: pd.Series, p: float, ood_tasks: Sequence[str]) -> str:
    """One sentence on each class's tested OOD neurons pruned at top ``p``% on the out-of-domain collections
    ``ood_tasks`` (those of the OOD test, where their random controls are): per class its neurons and, per collection,
    its delta, its effect against the random controls and the verdict; or why there is nothing to say. ``table`` and
    ``verdicts`` as :func:`pruning_effects_text`'s."""
    rows = table[(table["set"] == "OOD neurons") & (table["p"] == p)]
    if rows.empty:
        return "No OOD neuron was pruned: the OOD test needs the in-domain collection and another one."
    if not ood_tasks:
        return ("No OOD neuron is tested, so none is pruned against controls: the model meets its targets on no "
                "out-of-domain collection.")
    parts = []
    for name in CLASSES.values():
        at = rows[(rows["class"] == name) & rows["task"].isin(ood_tasks)]
        if at.empty:
            continue
        if int(at["neurons"].iloc[0]) == 0:
            parts.append(f"no {name} neuron passes the test")
            continue
        cases = [f"on `{row['task']}` delta {row['delta']:+.3g}"
                 + (f", effect {effect}" if (effect := _against(row, "random", "random controls")) else "")
                 + f": **{verdicts[i]}**" for i, row in at.iterrows()]
        parts.append(f"the {int(at['neurons'].iloc[0])} {name} ones " + "; ".join(cases))
    return ("The OOD neurons (those that pass the difference-in-differences test of page 10), pruned on the "
            "out-of-domain collections of that test: " + "; ".join(parts) + ".")


def verdict_counts_text(table: pd.DataFrame, verdicts: pd.Series) -> str:
    """How many of the non-empty (set, collection, p) cases with controls hurt more than random, and the count of
    each verdict (``table``: :func:`neuron_ig.studies.pruning.relevance_pruning`'s, with ``controls`` and
    ``neurons``; ``verdicts``: its :func:`neuron_ig.studies.pruning.pruning_verdicts`, indexed as the table)."""
    cases = verdicts[(table["controls"] > 0) & (table["neurons"] > 0)]
    if not len(cases):
        return "No case has controls here, so none has a verdict."
    hurts = int((cases == "hurts more than random").sum())
    return (f"Of all {len(cases)} (set, collection, p) cases with controls, {hurts} hurt{'s' if hurts == 1 else ''} "
            "more than random (" + ", ".join(f"{n} {v}" for v, n in cases.value_counts().items()) + ").")


def presence_table(presence: pd.DataFrame) -> pd.DataFrame:
    """:func:`neuron_ig.studies.aggregation.presence_positions` rows as a narrow table for the page: per dataset and
    group, its neurons, the three means, the position and the paired difference each with its interval in brackets,
    the twins and the share the model calls non-relevant."""
    def with_interval(value, low, high) -> str:
        return f"{number_text(value)} [{number_text(low)}, {number_text(high)}]" if number_text(value) else ""

    return pd.DataFrame({
        "dataset": presence["dataset"], "group": presence["group"], "neurons": presence["neurons"],
        "relevant": presence["relevant"], "mismatched": presence["mismatched"], "non-relevant": presence["non-relevant"],
        "position [95%]": [with_interval(*v) for v in zip(presence["position"], presence["position low"], presence["position high"])],
        "relevant - mismatched [95%]": [with_interval(*v) for v in zip(presence["relevant - mismatched"],
                                                                       presence["difference low"], presence["difference high"])],
        "twins": presence["twins"], "called non-relevant": presence["twins called non-relevant"]})
