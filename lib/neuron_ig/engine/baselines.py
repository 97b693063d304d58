"""NIG baselines x': the input's token ids with some segments replaced by ``[PAD]``, then embedded.

* ``PAD_QUERY`` (default): ``[CLS]``, ``[SEP]`` and the passage kept, query tokens -> ``[PAD]``.
* ``PAD_QUERY_AND_PASSAGE``: only ``[CLS]`` and ``[SEP]`` kept.
* ``PAD_ALL``: every token -> ``[PAD]``.

The attention mask and token-type ids are those of the input, so the baseline has the same shape and
positions; only word embeddings move along the path.
"""

from __future__ import annotations

from enum import Enum

import torch

from neuron_ig.engine.encoding import CLS, PASSAGE, SEP, EncodedPairs


class Baseline(str, Enum):
    PAD_QUERY = "PAD_QUERY"
    PAD_QUERY_AND_PASSAGE = "PAD_QUERY_AND_PASSAGE"
    PAD_ALL = "PAD_ALL"

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


def baseline_ids(encoded: EncodedPairs, baseline: "str | Baseline", pad_token_id: int) -> torch.Tensor:
    """Token ids of the baseline, ``[pairs, tokens]``: kept segments as in the input, the rest ``[PAD]``."""
    kept = torch.zeros_like(encoded.input_ids, dtype=torch.bool)
    for segment in KEPT_SEGMENTS[Baseline.parse(baseline)]:
        kept |= encoded.segments == segment
    return torch.where(kept, encoded.input_ids, torch.full_like(encoded.input_ids, pad_token_id))
