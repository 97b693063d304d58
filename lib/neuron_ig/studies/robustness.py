"""How much the relevance neurons depend on the choices behind them: the baseline and the sample of pairs (the
number of path steps: :mod:`neuron_ig.studies.convergence`).

A variant run changes one choice (:func:`variant_runs`); it is compared with the default run on the same
datasets and classes (:func:`compare_runs`) by :func:`neuron_ig.stats.agreement.compare_scores`.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from neuron_ig.stats.agreement import compare_scores
from neuron_ig.studies.aggregation import class_mean
from neuron_ig.studies.change import drop_small_changes
from neuron_ig.studies.results import (
    CLASS_NAMES,
    DatasetNIG,
    dataset_nig,
    datasets_nig,
    nig_pairs,
)


def matching_pairs(result: DatasetNIG, query_ids: Sequence[str], doc_ids: Sequence[str]) -> DatasetNIG | None:
    """``result`` restricted to the pairs ``(query_ids[i], doc_ids[i])``, in that order; None if one is missing.

    The default run of ``n`` pairs contains the sample of fewer pairs drawn with the same seed, so a variant
    computed on fewer pairs is compared with the same pairs of the default run without recomputing them.
    """
    position = {(str(q), str(d)): i for i, (q, d) in enumerate(zip(result.query_ids, result.doc_ids))}
    wanted = [(str(q), str(d)) for q, d in zip(query_ids, doc_ids)]
    if any(pair not in position for pair in wanted):
        return None
    index = np.array([position[pair] for pair in wanted], dtype=int)
    per_pair = {field: getattr(result, field)[index] for field in
                ("attributions", "score", "baseline_score", "relevance", "labels", "query_ids", "doc_ids")}
    manifest = dict(result.manifest, n_pairs=len(index), n_correct=int((per_pair["score"] > 0.5).sum()))
    return dataclasses.replace(result, manifest=manifest, **per_pair)


def compare_runs(
    reference: Mapping[str, DatasetNIG], variant: Mapping[str, DatasetNIG], p_values: Sequence[float]
) -> list[dict]:
    """One row per dataset: the pairs each run averages over and :func:`compare_scores` of their class means.

    A dataset where either run has no correctly classified pair gets NaN scores and a ``note`` saying so; a
    variant run may be None (not computed, see :func:`variant_runs`). The pairs columns read "correct/all".
    """
    rows = []
    for dataset, ref in reference.items():
        var = variant[dataset]
        label = CLASS_NAMES[int(ref.labels[0])] if len(ref.labels) else "?"
        row = {"dataset": dataset, "class": label,
               "pairs (default)": f"{int(ref.correct.sum())}/{len(ref.score)}",
               "pairs (variant)": "not computed" if var is None else f"{int(var.correct.sum())}/{len(var.score)}", "note": ""}
        empty = [name for name, run in (("default", ref), ("variant", var)) if run is None or not run.correct.any()]
        if empty:
            row.update({"Spearman": np.nan, **{f"Jaccard top {p:g}%": np.nan for p in p_values}})
            row["note"] = f"no correctly classified pair in the {' and '.join(empty)} run: skipped"
        else:
            row.update(compare_scores(class_mean(ref), class_mean(var), p_values))
        rows.append(row)
    return rows


def variant_runs(model: str, datasets: Sequence[str], label: int, variants: Mapping[str, dict], *,
                 min_change: float = 0.0, **defaults) -> dict[str, tuple[dict[str, DatasetNIG], dict[str, DatasetNIG | None]]]:
    """Each variant of the default run, and the default run on the same number of pairs, per dataset.

    ``defaults`` are the keyword arguments of :func:`neuron_ig.studies.results.datasets_nig` of the book (``n_pairs``,
    ``seed``, ``baseline``, ``steps``, ...); each variant overrides some of them (``{"steps": 200, "n_pairs": 4}``;
    its ``n_pairs`` is capped at the book's) and draws its pairs with its own seed. The default run on a
    variant's number of pairs is the book's result restricted to the pairs that the book's seed selects for that
    number (:func:`neuron_ig.studies.results.nig_pairs`: the first correctly classified ones of the draw, usually among the
    book's), computed only if the book's result lacks one. A variant is None on a dataset where the model
    classifies none of its pairs correctly: NIG is averaged over those only. ``min_change``: the pages' rule
    (:func:`neuron_ig.studies.change.drop_small_changes`), applied to both runs of every comparison.
    Returns ``{variant name: (default runs, variant runs)}``, each ``{dataset: DatasetNIG}``.
    """

    book = datasets_nig(model, datasets, label, **defaults)
    compared = {}
    for name, overrides in variants.items():
        chosen = dict(defaults, **overrides)
        chosen["n_pairs"] = min(chosen["n_pairs"], defaults["n_pairs"])
        small = dict(defaults, n_pairs=chosen["n_pairs"])
        reference, runs = {}, {}
        for dataset in datasets:
            sample, _ = nig_pairs(model, dataset, label, n_pairs=small["n_pairs"], seed=small.get("seed", 0),
                                  max_length=small.get("max_length", 128), device=small.get("device"),
                                  min_grade=small.get("min_grade"))
            reference[dataset] = (matching_pairs(book[dataset], [p.query_id for p in sample], [p.doc_id for p in sample])
                                  or dataset_nig(model, dataset, label, **small))
            run = dataset_nig(model, dataset, label, **chosen)
            runs[dataset] = run if run.correct.any() else None
        reference = drop_small_changes(reference, min_change)
        runs = {d: None if r is None else drop_small_changes({d: r}, min_change)[d] for d, r in runs.items()}
        compared[name] = (reference, runs)
    return compared
