"""Neuron Integrated Gradients (NIG): conductance of every neuron of a cross-encoder.

NIG (Dhamdhere et al., 2018, "How important is a neuron?"; Vast et al., ICTIR 2024) attributes the
change of the target F between a baseline x' and the input x to each hidden unit y along the straight
path x_k = x' + (k/m)(x - x'), k = 0..m, in word-embedding space:

    NIG_y = sum_{k=0}^{m-1} dF/da_y(x_k) * [a_y(x_{k+1}) - a_y(x_k)]          (rule "left")

which is ``captum.attr.LayerConductance(method="riemann_trapezoid", n_steps=m)``. The rule "right"
takes the gradient at x_{k+1} instead, as the authors' public code does; both converge as m grows, with an
error of first order in the step. The rule "trapezoid" takes their mean: the same gradients (every point's is
computed anyway), an error of second order.
F is the probability of the pair's own class (P(relevant) for relevant pairs, P(non-relevant) for
non-relevant ones). Units are the outputs of the chosen modules, by default every FFN intermediate
layer (post-activation), at every token position.

Speed: pairs are sorted by length and each batch is cut to its longest pair, so batches carry almost
no padding (results come back in the caller's order). The path points of several pairs go through the
model as one batch; rows do not interact, so one backward pass of sum(F) gives every point's gradient.
The backward pass stops at the lowest recorded module and computes no weight gradient: parameters are
frozen and the path itself does not require a gradient, so the first recorded output is made an autograd
leaf. Step differences are accumulated chunk by chunk, so memory does not grow with m. ``precision``
``"bf16"`` runs the model under bf16 autocast (``"tf32"``: TF32 matrix products, CUDA only); step
differences and sums are always taken in fp32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from neuron_ig.engine.baselines import Baseline, baseline_embeddings
from neuron_ig.engine.encoding import SEGMENTS, EncodedPairs
from neuron_ig.engine.models import CrossEncoder, autocast
from neuron_ig.runtime.device import batch_rows as device_batch_rows
from neuron_ig.runtime.device import out_of_memory_hint

RULES = ("left", "right", "trapezoid")
#: Default path points per forward/backward pass on the CPU (CUDA sizes its passes by free memory): one pair's
#: path of m = 50 (51 points) a pass. Against 128 rows (two such pairs a pass) on 2 cores, in one run of
#: benchmarks/nig_batch_rows.py (16 real pairs, medians of 4 interleaved runs): 1.18x faster on pystdlib pairs of 52
#: to 128 tokens, 1.01x on gcide pairs of 30 to 65 (the larger passes of long pairs are slowed by memory traffic).
BATCH_ROWS = 64
#: Segments attributions are split into (padding is excluded).
ATTRIBUTED_SEGMENTS = SEGMENTS[:4]


@dataclass
class NIGResult:
    """NIG of a batch of pairs.

    Attributes:
        attributions: per module name, ``[pairs, 4, units]``: NIG summed over the tokens of each segment
            (CLS, query, SEP, passage); padding excluded. Units: probability (F is a probability).
        score: F(x), ``[pairs]``: probability of the pair's own class at the input.
        baseline_score: F(x'), ``[pairs]``: the same at the baseline.
        relevance: P(relevant) at the input, ``[pairs]``.
        token_attributions: per module name, ``[pairs, tokens, units]`` (only with ``keep_tokens``).
    """

    attributions: dict[str, torch.Tensor]
    score: torch.Tensor
    baseline_score: torch.Tensor
    relevance: torch.Tensor
    token_attributions: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def layer_names(self) -> list[str]:
        return list(self.attributions)

    def stacked(self) -> torch.Tensor:
        """All modules stacked, ``[pairs, 4, layers, units]`` (modules must share their width)."""
        return torch.stack(list(self.attributions.values()), dim=2)

    def total(self) -> torch.Tensor:
        """NIG summed over all real tokens, ``[pairs, layers, units]``."""
        return self.stacked().sum(dim=1)


def neuron_integrated_gradients(
    encoder: CrossEncoder,
    encoded: EncodedPairs,
    labels: Sequence[int] | torch.Tensor,
    *,
    modules: Mapping[str, nn.Module] | None = None,
    baseline: str | Baseline = Baseline.PAD_QUERY,
    steps: int = 50,
    rule: str = "left",
    batch_rows: int = BATCH_ROWS,
    unit_reduce: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
    keep_tokens: bool = False,
    precision: str = "fp32",
    progress: bool = False,
) -> NIGResult:
    """NIG of every unit of ``modules`` (default: every FFN intermediate layer) for each pair.

    Args:
        encoder: the cross-encoder (any device; its parameters are not modified).
        encoded: ``[pairs, tokens]`` tokenised pairs from :func:`neuron_ig.engine.encoding.encode_pairs`.
        labels: ``[pairs]`` class of each pair, 1 relevant / 0 non-relevant: F is P(label).
        modules: module name -> module whose output (``[rows, tokens, units]``, or a tuple whose first
            element is) holds the units. Default ``encoder.ffn_layers()``.
        baseline: a :class:`Baseline` name.
        steps: m, the number of path steps (m + 1 points are evaluated).
        rule: ``"left"`` (gradient at x_k, = captum riemann_trapezoid), ``"right"`` (at x_{k+1}) or ``"trapezoid"``
            (their mean: the same gradients, an error of second order in the step where the others' is first order).
        batch_rows: most path points (over all pairs of a batch) in one forward/backward pass.
        unit_reduce: optional per module name, ``[..., units] -> [..., groups]`` applied to the per-token
            attribution (e.g. summing the units of each attention head); conductance is additive.
        keep_tokens: also return the per-token attributions (``[pairs, tokens, units]``, ``tokens`` of ``encoded``).
        precision: ``"fp32"`` (exact), ``"bf16"`` (autocast, CPU or CUDA) or ``"tf32"`` (CUDA only).
        progress: show a progress bar over pairs.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}: the book uses steps=50")
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}: use 'left' (captum's riemann_trapezoid), 'right' (the authors' code) "
                         "or 'trapezoid' (their mean)")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive int, got {batch_rows!r}")
    baseline = Baseline.parse(baseline)
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if labels.shape != (len(encoded),) or not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(f"labels must be {len(encoded)} values in {{0, 1}} (1 = relevant), got {labels.tolist()!r}")
    modules = dict(modules) if modules is not None else encoder.ffn_layers()
    unit_reduce = dict(unit_reduce or {})

    points = steps + 1
    autocast(encoder.device, precision)  # refuses an unknown or unavailable precision now
    # the CPU keeps batch_rows; on CUDA as many rows as free memory holds (neuron_ig.runtime.device)
    batch_rows = device_batch_rows(encoder.device, encoder.model.config, encoded.input_ids.shape[1], batch_rows, backward=True)
    pairs_per_batch = max(1, batch_rows // points)
    order = length_order(encoded)
    outputs: list[dict] = []
    workspace: dict = {}  # the longest batch comes first: its scratch buffer serves every later one
    bar = tqdm(total=len(encoded), desc=f"NIG ({steps} steps)", unit="pair", disable=not progress)
    with frozen_parameters(encoder.model), recorded_outputs(modules) as recorded, out_of_memory_hint("computing NIG", batch_rows):
        for start in range(0, len(encoded), pairs_per_batch):
            index = order[start:start + pairs_per_batch]
            outputs.append(
                _batch_nig(encoder, encoded.select(index), labels[index], modules, recorded,
                           baseline, steps, rule, batch_rows, unit_reduce, keep_tokens, precision, workspace)
            )
            bar.update(len(outputs[-1]["score"]))
    bar.close()
    return _concatenate(outputs, list(modules), keep_tokens, torch.argsort(order), encoded.input_ids.shape[1])


def length_order(encoded: EncodedPairs) -> torch.Tensor:
    """``[pairs]`` indices of the pairs from the longest to the shortest (ties in their order): batches of
    neighbours in this order carry little padding, and the longest batch comes first (memory errors early)."""
    return torch.argsort(encoded.attention_mask.sum(dim=1), descending=True, stable=True)


def _batch_nig(encoder, encoded, labels, modules, recorded, baseline, steps, rule, batch_rows, unit_reduce, keep_tokens,
               precision, workspace):
    """NIG of one batch of pairs, its path points chunked so at most ``batch_rows`` go through at once;
    ``workspace``: scratch memory reused by every batch, layer and chunk (:func:`_step_contributions`)."""
    device = encoder.device
    encoded = encoded.to(device)
    labels = labels.to(device)
    pairs, tokens = encoded.input_ids.shape
    embed = encoder.word_embeddings
    with torch.no_grad():
        inputs = embed(encoded.input_ids)
        baselines = baseline_embeddings(encoder, encoded, baseline)
    alphas = torch.linspace(0, 1, steps + 1, device=device, dtype=inputs.dtype)
    chunks = torch.split(alphas, max(1, batch_rows // pairs))

    accumulated = {name: None for name in modules}  # [pairs, tokens, units] running NIG per token, fp32
    previous = {}  # name -> (activation, gradient) at the last point of the previous chunk, [pairs, tokens, units]
    first_score = last_score = None  # F at the chunk's first and last points: F(x') and F(x) in the end
    for number, chunk in enumerate(chunks):
        span = len(chunk)
        # the path needs no gradient: the backward pass stops at the first recorded module (see recorded_outputs)
        path = (baselines[:, None] + chunk[None, :, None, None] * (inputs - baselines)[:, None]).reshape(pairs * span, tokens, -1)
        with torch.enable_grad():
            with autocast(device, precision):
                logits = encoder.model(
                    inputs_embeds=path,
                    attention_mask=encoded.attention_mask.repeat_interleave(span, dim=0),
                    token_type_ids=encoded.token_type_ids.repeat_interleave(span, dim=0),
                ).logits
            target = encoder.class_probabilities(logits.float()).gather(1, labels.repeat_interleave(span)[:, None])[:, 0]
            activations = [recorded[name] for name in modules]
            gradients = torch.autograd.grad(target.sum(), activations)
        target = target.detach().view(pairs, span)
        first_score = target[:, 0] if first_score is None else first_score
        last_score = target[:, -1]
        for name, activation, gradient in zip(modules, activations, gradients):
            # fp32 differences: bf16 activations of neighbouring points differ in their last bits
            a = activation.detach().float().view(pairs, span, tokens, -1)
            g = gradient.float().view(pairs, span, tokens, -1)
            contribution = _step_contributions(a, g, previous.get(name), rule, workspace)
            if contribution is not None:
                accumulated[name] = contribution if accumulated[name] is None else accumulated[name].add_(contribution)
            if number + 1 < len(chunks):  # a copy, so the chunk's activations can be freed
                previous[name] = (a[:, -1].clone(), g[:, -1].clone())
        del logits, target, activations, gradients, path
        recorded.clear()

    # one-hot of the attributed segments, [pairs, tokens, 4]; padding rows are all zero
    segment_onehot = torch.stack([encoded.segments == s for s in range(len(ATTRIBUTED_SEGMENTS))], dim=-1).float()
    result = {"attributions": {}, "tokens": {}}
    for name, per_token in accumulated.items():
        if name in unit_reduce:
            per_token = unit_reduce[name](per_token)
        result["attributions"][name] = torch.einsum("pts,ptu->psu", segment_onehot, per_token).cpu()
        if keep_tokens:
            result["tokens"][name] = (per_token * encoded.attention_mask[..., None]).cpu()
    result["score"] = last_score.cpu()
    result["baseline_score"] = first_score.cpu()
    result["relevance"] = torch.where(labels == 1, last_score, 1 - last_score).cpu()
    return result


def _step_contributions(a, g, previous, rule, workspace: dict):
    """sum over the steps of this chunk of gradient * activation difference, ``[pairs, tokens, units]``.

    ``a`` and ``g`` are ``[pairs, span, tokens, units]``: activations and gradients at the chunk's points;
    ``previous`` the pair at the point just before the chunk (None for the first chunk); ``workspace``, a dict
    kept across calls, holds the scratch memory of the differences (allocated once, not once per layer and chunk).
    """
    total = None
    if a.shape[1] > 1:
        # differences between consecutive evaluations, times the gradient at the step's left or right end, in
        # place in one reused buffer: this is memory-bound, and a fresh buffer of this size costs page faults
        weights = step_gradient(g[:, :-1], g[:, 1:], rule)
        differences = _scratch(workspace, (a.shape[0], a.shape[1] - 1, *a.shape[2:]), a)
        torch.sub(a[:, 1:], a[:, :-1], out=differences)
        total = differences.mul_(weights).sum(dim=1)  # einsum would copy both operands to permute them
    if previous is not None:
        previous_a, previous_g = previous
        boundary = step_gradient(previous_g, g[:, 0], rule) * (a[:, 0] - previous_a)
        total = boundary if total is None else total + boundary
    return total


def step_gradient(start: torch.Tensor, end: torch.Tensor, rule: str) -> torch.Tensor:
    """The gradient a step is weighted by, from the gradients at its two ends: the start's (rule ``left``), the
    end's (``right``) or their mean (``trapezoid``). Linear, so it also combines sums of start- and end-weighted
    steps (:mod:`neuron_ig.engine.step_ladder`)."""
    if rule == "left":
        return start
    return end if rule == "right" else (start + end) / 2


def _scratch(workspace: dict, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``shape`` (dtype and device of ``like``), a view of ``workspace``'s buffer."""
    size = math.prod(shape)
    buffer = workspace.get("buffer")
    if buffer is None or buffer.numel() < size or buffer.dtype != like.dtype or buffer.device != like.device:
        buffer = workspace["buffer"] = like.new_empty(size)
    return buffer[:size].view(shape)


def _concatenate(outputs, names, keep_tokens, inverse, width) -> NIGResult:
    """The batches' results joined, back in the caller's order (``inverse`` undoes the length order)."""
    cat = lambda key: torch.cat([o[key] for o in outputs])[inverse]
    tokens = {}
    if keep_tokens:
        pad = lambda t: torch.nn.functional.pad(t, (0, 0, 0, width - t.shape[1]))
        tokens = {n: torch.cat([pad(o["tokens"][n]) for o in outputs])[inverse] for n in names}
    return NIGResult(
        attributions={n: torch.cat([o["attributions"][n] for o in outputs])[inverse] for n in names},
        score=cat("score"),
        baseline_score=cat("baseline_score"),
        relevance=cat("relevance"),
        token_attributions=tokens,
    )


class frozen_parameters:
    """Context: parameters need no gradient while NIG runs (only activations' gradients are used)."""

    def __init__(self, model: nn.Module):
        self.model = model

    def __enter__(self):
        self.flags = [(p, p.requires_grad) for p in self.model.parameters()]
        for p, _ in self.flags:
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p, flag in self.flags:
            p.requires_grad_(flag)


class recorded_outputs:
    """Context: forward hooks that keep each module's latest output (in the autograd graph) by name.

    An output that does not require a gradient (the lowest recorded module's, as parameters are frozen
    and the path needs none) is replaced by a detached copy that does: an autograd leaf, where the
    backward pass stops, so nothing below the lowest recorded module is differentiated.
    """

    def __init__(self, modules: Mapping[str, nn.Module]):
        self.modules = modules

    def __enter__(self) -> dict:
        self.recorded: dict[str, torch.Tensor] = {}

        def hook_for(name):
            def hook(_module, _inputs, output):
                tensor = output[0] if isinstance(output, tuple) else output
                if torch.is_grad_enabled() and not tensor.requires_grad:
                    tensor = tensor.detach().requires_grad_(True)
                    output = (tensor, *output[1:]) if isinstance(output, tuple) else tensor
                self.recorded[name] = tensor
                return output
            return hook

        self.handles = [m.register_forward_hook(hook_for(n)) for n, m in self.modules.items()]
        return self.recorded

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def attention_head_reduce(num_heads: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``[..., heads * head_dim] -> [..., heads]``: sums the units of each attention head."""

    def reduce(per_unit: torch.Tensor) -> torch.Tensor:
        return per_unit.unflatten(-1, (num_heads, -1)).sum(-1)

    return reduce


def path_trace(
    encoder: CrossEncoder,
    encoded: EncodedPairs,
    label: int,
    module_name: str,
    unit: int,
    *,
    baseline: str | Baseline = Baseline.PAD_QUERY,
    steps: int = 50,
    rule: str = "left",
) -> dict[str, torch.Tensor]:
    """One neuron along the integration path of one pair (Figure 1 of the paper, from a real example).

    Returns ``[steps + 1]`` tensors indexed by path point k: ``alpha`` (k/m), ``score`` F(x_k),
    ``activation`` a_y(x_k) summed over the pair's real tokens, and ``accumulated`` NIG_y of the
    steps done so far (0 at k = 0; its last value is the neuron's NIG, as :func:`neuron_integrated_gradients`).
    """
    if len(encoded) != 1:
        raise ValueError(f"path_trace follows one pair, got {len(encoded)}: pass encoded.select([i])")
    module = dict(encoder.model.named_modules()).get(module_name)
    if module is None:
        raise ValueError(f"no module named {module_name!r}: use a name from encoder.ffn_layers()")
    device = encoder.device
    encoded = encoded.to(device)
    embed = encoder.word_embeddings
    with torch.no_grad():
        inputs = embed(encoded.input_ids)
        baselines = baseline_embeddings(encoder, encoded, baseline)
    alphas = torch.linspace(0, 1, steps + 1, device=device, dtype=inputs.dtype)
    path = baselines + alphas[:, None, None] * (inputs - baselines)
    with frozen_parameters(encoder.model), recorded_outputs({module_name: module}) as recorded, torch.enable_grad():
        logits = encoder.model(inputs_embeds=path, attention_mask=encoded.attention_mask.expand(steps + 1, -1),
                               token_type_ids=encoded.token_type_ids.expand(steps + 1, -1)).logits
        score = encoder.class_probabilities(logits)[:, label]
        activation = recorded[module_name][..., unit]  # [points, tokens]
        gradient = torch.autograd.grad(score.sum(), recorded[module_name])[0][..., unit]
    mask = encoded.attention_mask[0].to(activation.dtype)
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}: use one of {', '.join(RULES)}")
    weights = step_gradient(gradient[:-1], gradient[1:], rule)
    per_step = ((weights * (activation[1:] - activation[:-1])) * mask).sum(-1).detach()
    accumulated = torch.cat([per_step.new_zeros(1), per_step.cumsum(0)])
    return {
        "alpha": alphas.cpu(), "score": score.detach().cpu(), "activation": (activation * mask).sum(-1).detach().cpu(),
        "accumulated": accumulated.cpu(),
    }
