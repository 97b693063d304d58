"""NIG baselines x': the input's token ids with some segments replaced by ``[PAD]``, then embedded.

* ``PAD_QUERY`` (default): ``[CLS]``, ``[SEP]`` and the passage kept, query tokens -> ``[PAD]``.
* ``PAD_QUERY_AND_PASSAGE``: only ``[CLS]`` and ``[SEP]`` kept.
* ``PAD_ALL``: every token -> ``[PAD]``.
* ``NEUTRAL``: per pair, the point on the straight line from its ``PAD_QUERY`` embeddings to its ``PAD_ALL``
  embeddings where the model's P(relevant) is 0.5, so that F(x') is 0.5 for both classes (the token baselines
  start far from it: for the embedded model P(relevant) is about 0.25 at ``PAD_QUERY`` and 0.8 at ``PAD_ALL``).
  Found on a grid of the line, then by bisection in the first interval that crosses 0.5; a pair whose line never
  crosses it gets the grid point closest to 0.5.

The attention mask and token-type ids are those of the input, so the baseline has the same shape and
positions; only word embeddings move along the path.
"""

from __future__ import annotations

from enum import Enum

import torch

from neuron_ig.engine.encoding import CLS, PASSAGE, QUERY, SEP, EncodedPairs


class Baseline(str, Enum):
    PAD_QUERY = "PAD_QUERY"
    PAD_QUERY_AND_PASSAGE = "PAD_QUERY_AND_PASSAGE"
    PAD_ALL = "PAD_ALL"
    NEUTRAL = "NEUTRAL"

    @classmethod
    def parse(cls, value: "str | Baseline") -> "Baseline":
        """``"pad_query"``, ``"PAD_QUERY"`` or ``Baseline.PAD_QUERY`` -> ``Baseline.PAD_QUERY``."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).upper())
        except ValueError:
            names = ", ".join(member.value for member in cls)
            raise ValueError(f"unknown baseline {value!r}: use one of {names}") from None


#: Segments each baseline keeps as they are; everything else becomes [PAD].
KEPT_SEGMENTS = {
    Baseline.PAD_QUERY: (CLS, SEP, PASSAGE),
    Baseline.PAD_QUERY_AND_PASSAGE: (CLS, SEP),
    Baseline.PAD_ALL: (),
}


def moved_segments(baseline: "str | Baseline") -> tuple[int, ...]:
    """The segment codes (:data:`neuron_ig.engine.encoding.SEGMENTS` order) whose embeddings the baseline replaces,
    hence the only token types whose word embeddings move along the path: the query alone for ``PAD_QUERY``; every
    type for ``NEUTRAL``, which lies part way to ``PAD_ALL``."""
    baseline = Baseline.parse(baseline)
    kept = KEPT_SEGMENTS.get(baseline, ())
    return tuple(s for s in (CLS, QUERY, SEP, PASSAGE) if s not in kept)


def baseline_ids(encoded: EncodedPairs, baseline: "str | Baseline", pad_token_id: int) -> torch.Tensor:
    """Token ids of the baseline, ``[pairs, tokens]``: kept segments as in the input, the rest ``[PAD]``."""
    baseline = Baseline.parse(baseline)
    if baseline not in KEPT_SEGMENTS:
        raise ValueError(f"{baseline.value} is not made of tokens: use baseline_embeddings(encoder, encoded, baseline)")
    kept = torch.zeros_like(encoded.input_ids, dtype=torch.bool)
    for segment in KEPT_SEGMENTS[baseline]:
        kept |= encoded.segments == segment
    return torch.where(kept, encoded.input_ids, torch.full_like(encoded.input_ids, pad_token_id))


#: The ends of the line the ``NEUTRAL`` baseline is found on; the grid and bisection steps that find it.
NEUTRAL_ENDS = (Baseline.PAD_QUERY, Baseline.PAD_ALL)
NEUTRAL_GRID = 11
NEUTRAL_BISECTIONS = 10


@torch.no_grad()
def baseline_embeddings(encoder, encoded: EncodedPairs, baseline: "str | Baseline") -> torch.Tensor:
    """The baseline x' in word-embedding space, ``[pairs, tokens, hidden]``, on ``encoded``'s device.

    ``encoder`` is a :class:`neuron_ig.engine.models.CrossEncoder`; only ``NEUTRAL`` runs it (about 21 forward
    passes of one point per pair, a few percent of a 50-step NIG pass).
    """
    baseline = Baseline.parse(baseline)
    pad = encoder.tokenizer.pad_token_id
    if baseline is not Baseline.NEUTRAL:
        return encoder.word_embeddings(baseline_ids(encoded, baseline, pad))
    start, end = (encoder.word_embeddings(baseline_ids(encoded, b, pad)) for b in NEUTRAL_ENDS)
    shares = torch.stack([_neutral_share(encoder, encoded, i, start[i], end[i]) for i in range(len(encoded))])
    return start + shares.to(start.dtype)[:, None, None] * (end - start)


def neutral_relevance(encoder, encoded: EncodedPairs, index: int, points: torch.Tensor) -> torch.Tensor:
    """P(relevant) of pair ``index`` at ``points`` ``[n, tokens, hidden]`` (its word embeddings replaced), ``[n]``."""
    n = len(points)
    logits = encoder.model(inputs_embeds=points, attention_mask=encoded.attention_mask[index:index + 1].expand(n, -1),
                           token_type_ids=encoded.token_type_ids[index:index + 1].expand(n, -1)).logits
    return encoder.class_probabilities(logits.float())[:, 1]


def _neutral_share(encoder, encoded: EncodedPairs, index: int, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """The share t in [0, 1] of the way from ``start`` to ``end`` where pair ``index``'s P(relevant) is 0.5."""
    grid = torch.linspace(0, 1, NEUTRAL_GRID, device=start.device)
    relevance = neutral_relevance(encoder, encoded, index, start + grid[:, None, None].to(start.dtype) * (end - start))
    above = relevance > 0.5
    crossing = torch.nonzero(above[1:] != above[:-1]).flatten()
    if len(crossing) == 0:
        return grid[torch.argmin((relevance - 0.5).abs())]
    k = int(crossing[0])
    low, high, low_above = grid[k], grid[k + 1], bool(above[k])
    for _ in range(NEUTRAL_BISECTIONS):
        middle = (low + high) / 2
        if bool(neutral_relevance(encoder, encoded, index, (start + middle.to(start.dtype) * (end - start))[None])[0] > 0.5) == low_above:
            low = middle
        else:
            high = middle
    return (low + high) / 2
