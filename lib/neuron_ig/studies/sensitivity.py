"""Which NIG verdicts depend on a contested choice: page 10's NIG claims rerun with one choice changed at a time.

A :class:`Variant` changes one choice of the book's setting (the baseline, the integration rule, ``min_change``,
or averaging over every drawn pair instead of the correctly classified ones); :func:`variant_results` computes (or
reads from the cache) its NIG on a smaller sample, the first pairs of the book's own draw; :func:`sensitivity_claims`
tests page 10's four NIG claims per class on it (:func:`neuron_ig.studies.verdicts.nig_claims`, Holm over the
variant's own eight claims). :func:`baseline_survivors` and :func:`segment_shares_by_variant` read the sets and their
token types across the variants.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from neuron_ig.engine.baselines import Baseline
from neuron_ig.engine.nig import ATTRIBUTED_SEGMENTS, RULES
from neuron_ig.stats.selection import jaccard, top_p_percent
from neuron_ig.studies.aggregation import class_mean, contrast_cells, pair_nig
from neuron_ig.studies.change import drop_small_changes
from neuron_ig.studies.results import DatasetNIG, datasets_nig, nig_pairs
from neuron_ig.studies.robustness import matching_pairs
from neuron_ig.studies.settings import NIGParameters
from neuron_ig.studies.verdicts import (
    BELOW_TARGET,
    NOT_COMPUTED,
    nig_claims,
    page_verdicts,
)

AS_BUILT = "as built"
#: The claims of :func:`neuron_ig.studies.verdicts.nig_claims`, in its order, in a word or two.
SHORT_CLAIMS = ("concentration", "common core", "relevance", "OOD neurons")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One choice changed: ``choice`` (a name of :mod:`neuron_ig.report.choices`' registry) set to ``value``.

    ``overrides``: the :class:`neuron_ig.studies.settings.NIGParameters` fields it changes; ``correct_only``: whether
    NIG is averaged over the correctly classified pairs only (the authors' filter) or over every drawn pair."""

    name: str
    choice: str
    value: str
    overrides: Mapping = dataclasses.field(default_factory=dict)
    correct_only: bool = True


def sensitivity_variants(nig: NIGParameters, *, baselines: Sequence[str], rules: Sequence[str],
                         min_changes: Sequence[float], correct_only: Sequence[bool] = (True, False)) -> list[Variant]:
    """The book's setting (:data:`AS_BUILT`), then one variant per value of each choice that differs from the book's.

    Unknown baseline or rule names are refused here, before anything runs."""
    for name in baselines:
        Baseline.parse(name)
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}: use one of {', '.join(RULES)}")
    book_baseline = Baseline.parse(nig.baseline).value
    variants = [Variant(AS_BUILT, "as built", f"{book_baseline}, {nig.rule}, min_change {nig.min_change:g}, correct only")]
    variants += [Variant(f"baseline {Baseline.parse(b).value}", "baseline", Baseline.parse(b).value,
                         {"baseline": Baseline.parse(b).value}) for b in baselines if Baseline.parse(b).value != book_baseline]
    variants += [Variant(f"rule {r}", "rule", r, {"rule": r}) for r in rules if r != nig.rule]
    variants += [Variant(f"min_change {m:g}", "min_change", f"{m:g}", {"min_change": float(m)})
                 for m in min_changes if float(m) != nig.min_change]
    variants += [Variant("every drawn pair", "correct_only", "off", correct_only=False) for c in correct_only if not c]
    return variants


def variant_results(nig: NIGParameters, datasets: Sequence[str], variant: Variant, label: int, *,
                    n_pairs: int) -> dict[str, DatasetNIG]:
    """``{dataset: DatasetNIG}`` of class ``label`` under ``variant``, on the first ``n_pairs`` pairs of the book's draw
    (capped at the book's ``n_pairs``), with the variant's ``min_change`` applied.

    The book's own setting is read from the book's result restricted to those pairs (nothing is recomputed), as is a
    variant that changes only ``min_change``; the others are computed and cached like any NIG result.
    """
    n_pairs = min(n_pairs, nig.n_pairs)
    chosen = dataclasses.replace(nig, **variant.overrides)
    nig_changed = any(k != "min_change" for k in variant.overrides) or not variant.correct_only
    arguments = dict(chosen.nig_arguments(), n_pairs=n_pairs)
    if nig_changed:
        results = datasets_nig(chosen.model, datasets, label, progress=False, correct_only=variant.correct_only, **arguments)
    else:
        book = datasets_nig(nig.model, datasets, label, progress=False, **nig.nig_arguments())
        results = {}
        for dataset in datasets:
            sample, _ = nig_pairs(nig.model, dataset, label, n_pairs=n_pairs, seed=nig.seed, max_length=nig.max_length,
                                  device=nig.device, min_grade=nig.min_grade)
            results[dataset] = (matching_pairs(book[dataset], [p.query_id for p in sample], [p.doc_id for p in sample])
                                or datasets_nig(nig.model, [dataset], label, progress=False, **arguments)[dataset])
    return drop_small_changes(results, chosen.min_change)


def sensitivity_claims(results: Mapping[str, Mapping[int, Mapping[str, DatasetNIG]]], variants: Sequence[Variant],
                       in_domain: str, p: float, *, class_names: Mapping[int, str], tokenizer=None, max_length: int = 128,
                       below_target: Mapping[str, Sequence[str]] | None = None, p_values: Sequence[float] | None = None,
                       n_dropped: int = 0, n_resamples: int = 999, ood_resamples: int = 499, seed: int = 0,
                       alpha: float = 0.05) -> pd.DataFrame:
    """Page 10's NIG claims under every variant: one row per variant, class and claim, with the verdict (Holm over
    the variant's own claims), ``short`` (the claim in :data:`SHORT_CLAIMS`' words) and ``pairs`` (those the class
    means average over, all datasets).

    ``results``: ``{variant name: {label: {dataset: DatasetNIG}}}`` from :func:`variant_results`; ``tokenizer``
    and ``below_target`` as for page 10 (:func:`neuron_ig.studies.aggregation.contrast_cells`,
    :func:`neuron_ig.studies.effectiveness.targets_missed`).
    """
    tables = []
    for variant in variants:
        claims = []
        cells = contrast_cells(results[variant.name][1], results[variant.name][0], tokenizer=tokenizer,
                               max_length=max_length, correct_only=variant.correct_only)
        for label, name in class_names.items():
            per_pair = pair_nig(results[variant.name][label], correct_only=variant.correct_only)
            rows = nig_claims(per_pair, in_domain, p, class_name=name, label=label, cells=cells, below_target=below_target,
                              p_values=p_values, n_dropped=n_dropped, n_resamples=n_resamples,
                              ood_resamples=ood_resamples, seed=seed)
            claims += [dict(row, short=short, pairs=sum(len(a) for a in per_pair.values()))
                       for row, short in zip(rows, SHORT_CLAIMS, strict=True)]
        tables.append(page_verdicts(claims, alpha=alpha).assign(variant=variant.name, choice=variant.choice,
                                                                value=variant.value))
    return pd.concat(tables, ignore_index=True)


def conditional_claims(table: pd.DataFrame, *, choice: str) -> pd.DataFrame:
    """The claims whose verdict differs between the book's setting and the variants of ``choice``: one row per
    class and claim, the verdicts by variant as columns (empty when no verdict changes). A claim a variant could not
    test ("not computed", or the model below its targets) does not count as a change."""
    rows = table[(table["variant"] == AS_BUILT) | (table["choice"] == choice)]
    grid = rows.pivot_table(index=["class", "short"], columns="variant", values="verdict", aggfunc="first", sort=False)
    return grid[grid.where(~grid.isin([NOT_COMPUTED, BELOW_TARGET])).nunique(axis=1) > 1]


def baseline_survivors(scores: Mapping[str, np.ndarray], p: float) -> dict:
    """The top-p% neurons of every baseline: ``scores`` ``{variant: [layers, units]}`` class means of one class and
    dataset. Returns ``survivors`` (mask), ``count``, ``set size`` and the smallest and largest pairwise Jaccard."""
    masks = {name: top_p_percent(s, p) for name, s in scores.items()}
    every = np.logical_and.reduce(list(masks.values()))
    names = list(masks)
    overlaps = [jaccard(masks[a], masks[b]) for i, a in enumerate(names) for b in names[i + 1:]]
    return {"survivors": every, "count": int(every.sum()), "set size": int(next(iter(masks.values())).sum()),
            "lowest Jaccard": float(min(overlaps)) if overlaps else np.nan,
            "highest Jaccard": float(max(overlaps)) if overlaps else np.nan}


def top_set_segment_shares(result: DatasetNIG, p: float, *, correct_only: bool = True) -> dict[str, float]:
    """The share of the top-p% set's summed class-mean NIG that each token type carries (CLS, query, SEP, passage):
    what page 08 reads, for one result."""
    keep = result.correct if correct_only else np.ones(len(result.score), dtype=bool)
    mask = top_p_percent(class_mean(result, correct_only=correct_only), p)
    per_segment = result.attributions[keep].mean(axis=0)[:, mask].sum(axis=1)  # [4]
    total = per_segment.sum()
    return {segment: float(v / total) if total else np.nan for segment, v in zip(ATTRIBUTED_SEGMENTS, per_segment)}
