"""The change F(x) - F(x') that NIG distributes over the neurons, per pair.

By completeness the NIG of a cut sums to F(x) - F(x'): a pair whose baseline already puts it in its class
(with PAD_QUERY, non-relevant pairs start near F(x') = 0.87) has little or even negative change to attribute,
and its NIG says little about what makes the decision. These functions show the change, flag such pairs and
drop them.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import pandas as pd

from neuron_ig.studies.results import CLASS_NAMES, DatasetNIG


def score_change(result: DatasetNIG) -> np.ndarray:
    """F(x) - F(x') of every pair, ``[pairs]`` (probability of the pair's own class)."""
    return np.asarray(result.score, dtype=float) - np.asarray(result.baseline_score, dtype=float)


def small_change(result: DatasetNIG, min_change: float = 0.05) -> np.ndarray:
    """``[pairs]`` bool: the pairs whose change F(x) - F(x') is below ``min_change`` (negative ones included)."""
    return score_change(result) < min_change


def change_distribution(results: Mapping[str, DatasetNIG]) -> pd.DataFrame:
    """Every pair's change, long format for a figure: columns ``dataset``, ``class``, ``pair``, ``F(x)``,
    ``F(x')``, ``F(x) - F(x')``, ``correct``."""
    rows = [{"dataset": dataset, "class": CLASS_NAMES[int(label)], "pair": i, "F(x)": float(f), "F(x')": float(f0),
             "F(x) - F(x')": float(f - f0), "correct": bool(f > 0.5)}
            for dataset, result in results.items()
            for i, (f, f0, label) in enumerate(zip(result.score, result.baseline_score, result.labels))]
    return pd.DataFrame(rows, columns=["dataset", "class", "pair", "F(x)", "F(x')", "F(x) - F(x')", "correct"])


def change_table(results: Mapping[str, DatasetNIG], min_change: float = 0.05) -> pd.DataFrame:
    """Per dataset, over the correctly classified pairs (those a class mean uses): how much change there is.

    Index ``dataset``; columns ``pairs`` (correct ones), ``median change``, ``smallest change``,
    ``below min_change`` (pairs :func:`small_change` flags, negative ones included) and ``negative``.
    """
    rows = {}
    for dataset, result in results.items():
        change = score_change(result)[result.correct]
        rows[dataset] = {"pairs": len(change), "median change": float(np.median(change)) if len(change) else np.nan,
                         "smallest change": float(change.min()) if len(change) else np.nan,
                         "below min_change": int((change < min_change).sum()), "negative": int((change < 0).sum())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset")


def drop_small_change(result: DatasetNIG, min_change: float = 0.05) -> DatasetNIG:
    """``result`` without the pairs whose change is below ``min_change``; the manifest records ``min_change``
    and the pairs dropped, and its ``n_pairs`` and ``n_correct`` count the pairs kept."""
    keep = ~small_change(result, min_change)
    return kept_pairs(result, keep, min_change=min_change, n_small_change_dropped=int((~keep).sum()))


def kept_pairs(result: DatasetNIG, keep: np.ndarray, **noted) -> DatasetNIG:
    """``result`` with only the pairs of the ``[pairs]`` mask ``keep``; its manifest's ``n_pairs`` and ``n_correct``
    count them, and records ``noted``."""
    per_pair = {field: getattr(result, field)[keep] for field in
                ("attributions", "score", "baseline_score", "relevance", "labels", "query_ids", "doc_ids")}
    manifest = dict(result.manifest, n_pairs=int(keep.sum()), n_correct=int((per_pair["score"] > 0.5).sum()), **noted)
    return dataclasses.replace(result, manifest=manifest, **per_pair)


def drop_small_changes(results: Mapping[str, DatasetNIG], min_change: float = 0.0) -> dict[str, DatasetNIG]:
    """:func:`drop_small_change` of every dataset's result, ``{dataset: DatasetNIG}``; ``min_change`` 0 (the book's
    default) keeps every pair and returns the results as they are. The one rule the pages share."""
    if isinstance(min_change, bool) or not isinstance(min_change, (int, float)) or min_change < 0:
        raise ValueError(f"min_change must be a number >= 0, got {min_change!r}: 0 keeps every pair, 0.05 drops small changes")
    if min_change == 0:
        return dict(results)
    return {dataset: drop_small_change(result, min_change) for dataset, result in results.items()}
