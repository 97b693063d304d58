"""NIG at every step count that divides a fine path, under every integration rule, from one pass over it.

The uniform path of m steps has the points k/m, k = 0..m; when m divides the finest count M, they are the points
k (M/m) of the M-step path. One forward and backward pass over the M + 1 points of the finest path therefore holds
the activations and gradients of every coarser path, and with them its NIG under the rules ``left`` (gradient at
a step's start), ``right`` (at its end) and ``trapezoid`` (their mean) of :mod:`neuron_ig.engine.nig`. A
convergence study then costs one M-step NIG pass per pair, not one pass per (rule, m).

The ladder keeps NIG summed over a pair's real tokens (``[pairs, modules, units]``), and optionally the summed NIG
of a cut of the network (a whole layer's output), whose total tends to F(x) - F(x') as m grows (completeness).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from neuron_ig.engine.baselines import Baseline, baseline_embeddings
from neuron_ig.engine.encoding import EncodedPairs
from neuron_ig.engine.models import CrossEncoder, autocast
from neuron_ig.engine.nig import (
    BATCH_ROWS,
    RULES,
    frozen_parameters,
    length_order,
    recorded_outputs,
    step_gradient,
)


def dividing_steps(finest: int, lowest: int = 1) -> list[int]:
    """The step counts from ``lowest`` to ``finest`` that divide ``finest``, ascending (400, 10: 10, 16, 20, ... 400)."""
    if isinstance(finest, bool) or not isinstance(finest, int) or finest < 1:
        raise ValueError(f"finest must be a positive int, got {finest!r}: the convergence page uses 400")
    return [m for m in range(max(1, lowest), finest + 1) if finest % m == 0]


@dataclass
class StepLadder:
    """NIG of a batch of pairs at each step count and rule.

    Attributes:
        steps: the step counts, ascending (each divides the finest, the last).
        nig: per rule, ``[counts, pairs, modules, units]``: NIG summed over each pair's real tokens, per step count
            in the order of ``steps``. Units: probability.
        cut: per rule, ``[counts, pairs]``: the summed NIG of the cut (NaN without a cut).
        score: F(x), ``[pairs]``; baseline_score: F(x'), ``[pairs]``.
    """

    steps: list[int]
    nig: dict[str, torch.Tensor]
    cut: dict[str, torch.Tensor]
    score: torch.Tensor
    baseline_score: torch.Tensor

    def at(self, rule: str, steps: int) -> torch.Tensor:
        """``[pairs, modules, units]``: NIG with ``steps`` steps under ``rule``."""
        if steps not in self.steps:
            raise ValueError(f"{steps} steps are not on this ladder: use one of {self.steps}")
        return self.nig[rule][self.steps.index(steps)]


def step_ladder(
    encoder: CrossEncoder,
    encoded: EncodedPairs,
    labels: Sequence[int] | torch.Tensor,
    *,
    finest: int = 400,
    lowest: int = 10,
    modules: Mapping[str, nn.Module] | None = None,
    cut: tuple[str, nn.Module] | None = None,
    baseline: str | Baseline = Baseline.PAD_QUERY,
    batch_rows: int = BATCH_ROWS,
    precision: str = "fp32",
    progress: bool = False,
) -> StepLadder:
    """NIG of every unit of ``modules`` (default: every FFN intermediate layer) with each step count from ``lowest``
    that divides ``finest``, under the three rules, from one pass over the ``finest``-step path of each pair.

    Each (rule, m) equals ``neuron_integrated_gradients(..., steps=m, rule=rule).total()`` up to float rounding
    (tested). ``cut``: ``(name, module)`` of a module whose output is a cut of the network (default: none), whose
    total NIG per pair is returned for the completeness check. Pairs go through one at a time (the fine path fills
    a pass); ``batch_rows`` path points per forward/backward pass.
    """
    steps = dividing_steps(finest, lowest)
    if not steps:
        raise ValueError(f"no step count from {lowest} divides {finest}: lower `lowest`")
    baseline = Baseline.parse(baseline)
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if labels.shape != (len(encoded),) or not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"labels must be {len(encoded)} values in {{0, 1}} (1 = relevant), got {labels.tolist()!r}")
    modules = dict(modules) if modules is not None else encoder.ffn_layers()
    recorded_modules = dict(modules, **({cut[0]: cut[1]} if cut else {}))
    autocast(encoder.device, precision)  # refuses an unknown or unavailable precision now

    order = length_order(encoded)
    per_pair = []
    with frozen_parameters(encoder.model), recorded_outputs(recorded_modules) as recorded:
        for index in tqdm(order.tolist(), desc=f"NIG ladder ({finest} steps)", unit="pair", disable=not progress):
            per_pair.append(_pair_ladder(encoder, encoded.select([index]), labels[[index]], list(modules),
                                         cut[0] if cut else None, recorded, baseline, finest, steps, batch_rows, precision))
    inverse = torch.argsort(order)
    stack = lambda key, rule: torch.cat([p[key][rule] for p in per_pair], dim=1)[:, inverse]
    return StepLadder(
        steps=steps,
        nig={rule: stack("nig", rule) for rule in RULES},
        cut={rule: stack("cut", rule) for rule in RULES},
        score=torch.cat([p["score"] for p in per_pair])[inverse],
        baseline_score=torch.cat([p["baseline_score"] for p in per_pair])[inverse],
    )


def _pair_ladder(encoder, encoded, labels, names, cut_name, recorded, baseline, finest, steps, batch_rows, precision):
    """The ladder of one pair: per rule ``[counts, 1, modules, units]`` and the cut's ``[counts, 1]``."""
    device = encoder.device
    encoded, labels = encoded.to(device), labels.to(device)
    embed = encoder.word_embeddings
    with torch.no_grad():
        inputs = embed(encoded.input_ids)
        baselines = baseline_embeddings(encoder, encoded, baseline)
    alphas = torch.linspace(0, 1, finest + 1, device=device, dtype=inputs.dtype)
    every = names + ([cut_name] if cut_name else [])
    # per step count and name: sums of gradient x activation difference with the gradient at the start / end
    start = {m: {n: 0.0 for n in every} for m in steps}
    end = {m: {n: 0.0 for n in every} for m in steps}
    previous = {m: {} for m in steps}  # m -> name -> (activation, gradient) at the last point of m's grid so far
    first_score = last_score = None
    offset = 0
    for chunk in torch.split(alphas, max(2, batch_rows)):
        path = baselines + chunk[:, None, None] * (inputs - baselines)
        with torch.enable_grad():
            with autocast(device, precision):
                logits = encoder.model(inputs_embeds=path, attention_mask=encoded.attention_mask.expand(len(chunk), -1),
                                       token_type_ids=encoded.token_type_ids.expand(len(chunk), -1)).logits
            target = encoder.class_probabilities(logits.float())[:, int(labels[0])]
            activations = [recorded[n] for n in every]
            gradients = torch.autograd.grad(target.sum(), activations)
        target = target.detach()
        first_score = target[:1] if first_score is None else first_score
        last_score = target[-1:]
        for name, activation, gradient in zip(every, activations, gradients):
            # [points, tokens, units]; one pair a pass, trimmed to its length by select(): no padding to mask
            a, g = activation.detach().float(), gradient.float()
            for m in steps:
                stride = finest // m
                first = (-offset) % stride  # the chunk's first point on m's grid
                if first >= len(chunk):
                    continue
                a_m, g_m = a[first::stride], g[first::stride]  # views
                if name in previous[m]:  # the step that crosses from the previous chunk
                    a_before, g_before = previous[m][name]
                    difference = a_m[0] - a_before
                    start[m][name] = start[m][name] + (difference * g_before).sum(dim=0)  # [units]
                    end[m][name] = end[m][name] + (difference * g_m[0]).sum(dim=0)
                if len(a_m) > 1:
                    difference = a_m[1:] - a_m[:-1]
                    start[m][name] = start[m][name] + (difference * g_m[:-1]).sum(dim=(0, 1))
                    end[m][name] = end[m][name] + (difference * g_m[1:]).sum(dim=(0, 1))
                previous[m][name] = (a_m[-1].clone(), g_m[-1].clone())
        offset += len(chunk)
        del logits, activations, gradients, path
        recorded.clear()

    def by_rule(sums, name):  # [counts, units]
        return torch.stack([sums[m][name] for m in steps])

    nig, cut = {}, {}
    for rule in RULES:
        per_name = {n: step_gradient(by_rule(start, n), by_rule(end, n), rule) for n in every}  # [counts, units]
        nig[rule] = torch.stack([per_name[n] for n in names], dim=1)[:, None].cpu()  # [counts, 1, modules, units]
        cut[rule] = (per_name[cut_name].sum(-1)[:, None].cpu() if cut_name else torch.full((len(steps), 1), float("nan")))
    return {"nig": nig, "cut": cut, "score": last_score.cpu(), "baseline_score": first_score.cpu()}
