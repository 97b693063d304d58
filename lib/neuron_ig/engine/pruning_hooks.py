"""Pruning FFN neurons: zeroing their activations through forward hooks.

A neuron set is a boolean mask ``[layers, units]`` over the FFN intermediate units (as in
:mod:`neuron_ig.stats.selection`). :class:`NeuronPruning` zeroes the selected units' activations, at every
token position or only at the positions of some token types, for as long as it is active: no weights
change, and once its hooks are removed the model computes exactly what it computed before. Prunings
compose: two active at once zero the union of their units.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import torch

from neuron_ig.engine.encoding import SEGMENTS
from neuron_ig.engine.models import CrossEncoder


def as_mask(neurons, shape: tuple[int, int]) -> np.ndarray:
    """A boolean mask ``[layers, units]`` from a mask of that shape or ``(layer, unit)`` pairs.

    Raises:
        ValueError: the mask has another shape, or a pair is outside it.
    """
    array = np.asarray(neurons.cpu() if isinstance(neurons, torch.Tensor) else neurons)
    if array.dtype == bool:
        if array.shape != tuple(shape):
            raise ValueError(f"neuron mask of shape {array.shape} for a model of {shape[0]} layers x {shape[1]} units: "
                             "select the neurons of this model")
        return array
    if array.size == 0:
        return np.zeros(shape, dtype=bool)
    if array.ndim != 2 or array.shape[1] != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"neurons must be a boolean mask [layers, units] or integer (layer, unit) pairs, got an array "
                         f"of shape {array.shape} and dtype {array.dtype}: e.g. top_p_percent(scores, 1.0)")
    mask = np.zeros(shape, dtype=bool)
    for layer, unit in array.tolist():
        if not (0 <= layer < shape[0] and 0 <= unit < shape[1]):
            raise ValueError(f"neuron {(layer, unit)} is outside the model's {shape[0]} layers x {shape[1]} units")
        mask[layer, unit] = True
    return mask


def ffn_shape(encoder: CrossEncoder) -> tuple[int, int]:
    """``(layers, units)`` of the encoder's FFN intermediate neurons."""
    layers = list(encoder.ffn_layers().values())
    return len(layers), layers[0].dense.out_features


def checked_token_types(token_types: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Token types as a sorted tuple (one name may be given as a string), or None for every position.

    Raises:
        ValueError: a name is not one of ``CLS``, ``query``, ``SEP``, ``passage``.
    """
    if isinstance(token_types, str):
        token_types = [token_types]
    unknown = sorted(set(token_types or ()) - set(SEGMENTS[:-1]))
    if unknown:
        raise ValueError(f"unknown token types {unknown}: choose among {', '.join(SEGMENTS[:-1])}")
    return tuple(sorted(set(token_types))) if token_types else None


class NeuronPruning:
    """Zeroes the activations of the FFN neurons in ``neurons`` while active (a context manager).

    Args:
        encoder: the cross-encoder to prune.
        neurons: a mask ``[layers, units]`` or ``(layer, unit)`` pairs.
        token_types: zero only at the positions of these segments (names of
            :data:`neuron_ig.engine.encoding.SEGMENTS`: ``CLS``, ``query``, ``SEP``, ``passage``); default every position.

    Hooks go only on the layers that have selected units. ``attach()`` / ``remove()`` do what ``with`` does.
    Without gradients (scoring) the units are zeroed in place, so another forward hook on the same module
    that keeps the activation tensor sees the zeros; with gradients a zeroed copy is returned.
    """

    def __init__(self, encoder: CrossEncoder, neurons, *, token_types: Sequence[str] | None = None):
        self.encoder = encoder
        self.mask = as_mask(neurons, ffn_shape(encoder))
        self.token_types = checked_token_types(token_types)
        self._handles = []
        self._positions = None  # [batch, tokens] bool of the current forward pass, with token_types

    def __enter__(self) -> "NeuronPruning":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.remove()

    def attach(self) -> "NeuronPruning":
        if self._handles:
            raise RuntimeError("this pruning is already attached: remove() it first")
        for layer, module in enumerate(self.encoder.ffn_layers().values()):
            units = np.flatnonzero(self.mask[layer])
            if units.size:
                index = torch.as_tensor(units, device=self.encoder.device)
                self._handles.append(module.register_forward_hook(lambda m, i, out, index=index: self._zero(out, index)))
        if self.token_types and self._handles:
            self._handles.append(self.encoder.model.register_forward_pre_hook(self._find_positions, with_kwargs=True))
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self._positions = [], None

    def _zero(self, output: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # scoring: zero in place, no copy of the activations (2% instead of 10%)
            if self._positions is None:
                return output.index_fill_(-1, units, 0.0)
            output[..., units] = output[..., units] * ~self._positions[..., None]
            return output
        zeroed = output.index_fill(-1, units, 0.0)  # with gradients: out of place, autograd keeps the original
        if self._positions is None:
            return zeroed
        return torch.where(self._positions[..., None], zeroed, output)

    def _find_positions(self, module, args, kwargs):
        """Before each forward pass: the positions of the chosen token types, from the input ids.

        Segments follow :mod:`neuron_ig.engine.encoding`: the [CLS] at position 0 is CLS, every [SEP] is SEP,
        other tokens before the first [SEP] are the query, after it the passage; padding is never selected.
        """
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            raise ValueError("pruning by token type reads the token ids: call the model with input_ids, not inputs_embeds")
        attention_mask = kwargs.get("attention_mask")
        tokenizer = self.encoder.tokenizer
        real = attention_mask.bool() if attention_mask is not None else input_ids != tokenizer.pad_token_id
        sep = (input_ids == tokenizer.sep_token_id) & real
        first = torch.zeros_like(real)
        first[:, 0] = input_ids[:, 0] == tokenizer.cls_token_id
        seps_before = torch.cumsum(sep, dim=1) - sep.long()
        text = real & ~sep & ~first  # [UNK] and [MASK] typed in a text belong to it, as in encode_pairs
        segments = {"CLS": first, "SEP": sep, "query": text & (seps_before == 0), "passage": text & (seps_before >= 1)}
        self._positions = torch.stack([segments[name] for name in self.token_types]).any(dim=0)


def mask_fingerprint(mask: np.ndarray) -> str:
    """A short hash of a neuron set (its shape and selected units)."""
    mask = np.asarray(mask, dtype=bool)
    return hashlib.sha256(f"{mask.shape}".encode() + np.packbits(mask).tobytes()).hexdigest()[:16]
