"""How many path steps NIG needs, under each integration rule: one fine pass per pair, every coarser count from it.

:func:`convergence_ladders` computes (and caches) the :class:`neuron_ig.engine.step_ladder.StepLadder` of a few
correctly classified pairs per class and dataset; :func:`convergence_table` measures each (rule, steps) against the
finest trapezoid: the completeness error of a cut, the attribution error per pair, and the Jaccard overlap of the
class mean's top-p% set, each with a bootstrap interval over pairs; :func:`cheapest_match` names the cheapest
setting that is at least as good as the book's default on every measure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from neuron_ig.engine.baselines import Baseline
from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.models import model_fingerprint
from neuron_ig.engine.nig import RULES, step_gradient
from neuron_ig.engine.step_ladder import StepLadder, dividing_steps, step_ladder
from neuron_ig.ir.measures import first_stage_key
from neuron_ig.runtime import cache
from neuron_ig.stats.selection import jaccard_rows, top_masks
from neuron_ig.studies.results import (
    CLASS_NAMES,
    cached_encoder,
    nig_pairs,
    pairs_fingerprint,
)

COMPLETENESS = "completeness error"
ATTRIBUTION = "attribution error"


def spread(total: int, parts: int) -> list[int]:
    """``total`` split over ``parts`` as evenly as possible, the larger shares first (16 over 3: 6, 5, 5)."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def convergence_ladders(
    model: str,
    datasets: Sequence[str],
    *,
    pairs_per_class: int = 16,
    finest: int = 400,
    lowest: int = 10,
    seed: int = 0,
    baseline: str = "PAD_QUERY",
    max_length: int = 128,
    precision: str = "fp32",
    device: str | None = "auto",
    min_grade=None,
    default_steps: int | None = None,
    progress: bool = True,
) -> dict[tuple[str, int], StepLadder]:
    """The ladders of ``pairs_per_class`` correctly classified pairs per class, spread over ``datasets`` (16 over
    three: 6, 5 and 5, the first of each dataset's book sample, :func:`neuron_ig.studies.results.nig_pairs`), with a
    cut at the last layer's output. Keyed ``(dataset, label)``; each entry cached on disk by every parameter.
    ``default_steps``: the book's step count, refused before anything runs unless it is on the ladder."""
    if isinstance(pairs_per_class, bool) or not isinstance(pairs_per_class, int) or pairs_per_class < 1:
        raise ValueError(f"pairs_per_class must be a positive int, got {pairs_per_class!r}: the page uses 16")
    rungs = dividing_steps(finest, lowest)
    if default_steps is not None and default_steps not in rungs:
        raise ValueError(f"steps={default_steps} is not among the counts from {lowest} that divide finest={finest} "
                         f"({', '.join(map(str, rungs))}): choose a finest that is a multiple of it, e.g. {8 * default_steps}")
    ladders = {}
    for dataset, count in zip(datasets, spread(pairs_per_class, len(datasets))):
        for label in (1, 0):
            if count == 0:
                continue
            pairs, _ = nig_pairs(model, dataset, label, n_pairs=count, seed=seed, max_length=max_length, device=device,
                                 min_grade=min_grade)
            if pairs:
                ladders[dataset, label] = _cached_ladder(model, dataset, label, pairs, finest=finest, lowest=lowest,
                                                         baseline=baseline, max_length=max_length, precision=precision,
                                                         device=device, min_grade=min_grade, progress=progress)
    return ladders


def _cached_ladder(model, dataset, label, pairs, *, finest, lowest, baseline, max_length, precision, device, min_grade,
                   progress) -> StepLadder:
    parameters = {"model": str(model), "model_fingerprint": model_fingerprint(str(model)), "dataset": dataset,
                  "label": label, "pairs_fingerprint": pairs_fingerprint(pairs), "finest": finest, "lowest": lowest,
                  "baseline": Baseline.parse(baseline).value, "max_length": max_length, "modules": "ffn",
                  "cut": "last layer output", "precision": precision, **first_stage_key(dataset, min_grade)}
    path = (cache.cache_root() / "ladders" / cache.slug(Path(str(model)).name) / cache.slug(dataset)
            / f"{CLASS_NAMES[label].replace('-', '')}-{cache.parameters_key(parameters)}.npz")
    with cache.computing(path) as done:
        if not done:
            encoder = cached_encoder(str(model), device)
            encoded = encode_pairs(encoder.tokenizer, [p.query for p in pairs], [p.passage for p in pairs], max_length)
            ladder = step_ladder(encoder, encoded, [p.label for p in pairs], finest=finest, lowest=lowest,
                                 cut=list(encoder.layer_outputs().items())[-1], baseline=baseline, precision=precision,
                                 progress=progress)
            cache.save_arrays(path, steps=np.array(ladder.steps), score=ladder.score.numpy(),
                              baseline_score=ladder.baseline_score.numpy(),
                              **{f"nig_{r}": ladder.nig[r].numpy() for r in ("left", "right")},
                              **{f"cut_{r}": ladder.cut[r].numpy() for r in ("left", "right")})
    saved = cache.load_arrays(path)
    rungs = {r: torch.from_numpy(saved[f"nig_{r}"]) for r in ("left", "right")}
    cuts = {r: torch.from_numpy(saved[f"cut_{r}"]) for r in ("left", "right")}
    return StepLadder(steps=saved["steps"].tolist(),
                      nig={**rungs, "trapezoid": step_gradient(rungs["left"], rungs["right"], "trapezoid")},
                      cut={**cuts, "trapezoid": step_gradient(cuts["left"], cuts["right"], "trapezoid")},
                      score=torch.from_numpy(saved["score"]), baseline_score=torch.from_numpy(saved["baseline_score"]))


def _interval(values: np.ndarray, statistic, n_bootstrap: int, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``statistic`` over resamples of the rows of ``values``, widened to hold
    the estimate itself where the resamples lie to one side of it (a resampled set overlap is noisier than the
    sample's, so its resamples can all fall below it)."""
    draws = [statistic(values[rng.integers(0, len(values), len(values))]) for _ in range(n_bootstrap)]
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    estimate = statistic(values)
    return float(min(low, estimate)), float(max(high, estimate))


def convergence_table(ladders: Mapping[tuple[str, int], StepLadder], p_values: Sequence[float], *,
                      n_bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """Each (rule, steps) of the ladders against the reference, the finest step count under the trapezoid rule.

    One row per rule, steps and measure, with ``value`` and its 95% bootstrap interval over pairs (``low``,
    ``high``) and ``pairs``:

    - ``completeness error``: median over pairs of |sum of the cut's NIG - (F(x) - F(x'))| / |F(x) - F(x')|;
    - ``attribution error``: median over pairs of ||NIG - NIG_ref|| / ||NIG_ref|| over all FFN neurons;
    - ``Jaccard top p% (relevant)``, ``(non-relevant)``: overlap of the top-p% set of the class mean (over the
      class's pairs of every dataset) with the reference's; the bootstrap resamples the class's pairs.
    """
    if not ladders:
        raise ValueError("no ladder to measure: no dataset had a correctly classified pair")
    steps = next(iter(ladders.values())).steps
    finest = steps[-1]
    pooled = {rule: np.concatenate([l.nig[rule].numpy().reshape(len(steps), len(l.score), -1) for l in ladders.values()], axis=1)
              for rule in RULES}  # [counts, pairs, neurons]
    cut = {rule: np.concatenate([l.cut[rule].numpy() for l in ladders.values()], axis=1) for rule in RULES}  # [counts, pairs]
    change = np.concatenate([(l.score - l.baseline_score).numpy() for l in ladders.values()])
    labels = np.concatenate([np.full(len(l.score), label) for (_, label), l in ladders.items()])
    reference = pooled["trapezoid"][-1]
    reference_norm = np.linalg.norm(reference, axis=1)
    rng = np.random.default_rng(seed)
    median = lambda v: float(np.median(v))
    rows = []
    for rule in RULES:
        for k, m in enumerate(steps):
            per_pair = {COMPLETENESS: np.abs(cut[rule][k] - change) / np.abs(change),
                        ATTRIBUTION: np.linalg.norm(pooled[rule][k] - reference, axis=1) / reference_norm}
            for measure, values in per_pair.items():
                exact = rule == "trapezoid" and m == finest and measure == ATTRIBUTION
                low, high = (0.0, 0.0) if exact else _interval(values, median, n_bootstrap, rng)
                rows.append({"rule": rule, "steps": m, "measure": measure, "value": median(values), "low": low,
                             "high": high, "pairs": len(values)})
            for label in (1, 0):
                ours, theirs = pooled[rule][k][labels == label], reference[labels == label]
                if not len(ours):
                    continue
                for p in p_values:
                    overlap = lambda index: float(jaccard_rows(top_masks(ours[index].mean(0), p), top_masks(theirs[index].mean(0), p))[0])
                    everyone = np.arange(len(ours))
                    low, high = _interval(everyone, overlap, n_bootstrap, rng)
                    rows.append({"rule": rule, "steps": m, "measure": f"Jaccard top {p:g}% ({CLASS_NAMES[label]})",
                                 "value": overlap(everyone), "low": low, "high": high, "pairs": len(ours)})
    return pd.DataFrame(rows)


def cheapest_match(table: pd.DataFrame, *, rule: str, steps: int) -> dict | None:
    """The (rule, steps) with the fewest steps below ``steps`` whose every measure is at least as good as the
    default's (errors no larger, overlaps no smaller, point estimates): ``{"rule", "steps", "cost"}`` where ``cost``
    is its path points over the default's, or None when nothing cheaper matches the default."""
    wide = table.pivot_table(index=["rule", "steps"], columns="measure", values="value")
    if (rule, steps) not in wide.index:
        raise ValueError(f"the default ({rule}, {steps} steps) is not on the ladder: steps must divide the finest count")
    default = wide.loc[(rule, steps)]
    errors = [c for c in wide.columns if c in (COMPLETENESS, ATTRIBUTION)]
    overlaps = [c for c in wide.columns if c not in errors]
    good = (wide[errors] <= default[errors]).all(axis=1) & (wide[overlaps] >= default[overlaps]).all(axis=1)
    cheaper = wide[good & (wide.index.get_level_values("steps") < steps)]
    if cheaper.empty:
        return None
    best = cheaper.reset_index().sort_values(["steps", COMPLETENESS]).iloc[0]  # among equal steps, the smaller error
    return {"rule": best["rule"], "steps": int(best["steps"]), "cost": (int(best["steps"]) + 1) / (steps + 1)}
