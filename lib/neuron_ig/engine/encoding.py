"""Tokenising (query, passage) pairs as ``[CLS] query [SEP] passage [SEP]`` and labelling every token.

Passages are truncated to fit ``max_length``; a query longer than half of ``max_length`` is cut to that
half first (as MonoBERT keeps 64 of its 512 tokens for the query), so every passage keeps room.

Each token position gets a segment code, so attributions can be split by token type:
``CLS`` (the first special token), ``query``, ``SEP`` (every later special token), ``passage`` and
``padding`` (positions the attention mask hides).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields
from typing import Sequence

import torch

#: Segment names, indexed by segment code. Attributions are reported for the first four.
SEGMENTS = ("CLS", "query", "SEP", "passage", "padding")
CLS, QUERY, SEP, PASSAGE, PADDING = range(len(SEGMENTS))


@dataclass
class EncodedPairs:
    """A batch of tokenised pairs. Every tensor is ``[pairs, tokens]`` (long) except ``truncated``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    segments: torch.Tensor
    truncated: torch.Tensor  # [pairs] bool: the query or the passage lost tokens to max_length

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, index) -> "EncodedPairs":
        """The pairs at ``index`` (slice, list or tensor), padding trimmed to their longest pair."""
        picked = {f.name: getattr(self, f.name)[index] for f in fields(self)}
        length = int(picked["attention_mask"].sum(dim=1).max())
        return EncodedPairs(**{k: v if k == "truncated" else v[:, :length] for k, v in picked.items()})

    def to(self, device) -> "EncodedPairs":
        return EncodedPairs(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def encode_pairs(
    tokenizer, queries: Sequence[str], passages: Sequence[str], max_length: int = 128
) -> EncodedPairs:
    """Tokenise pairs to at most ``max_length`` tokens each: passages truncated, queries cut to half of it.

    Padding goes to the longest pair of the batch. One warning tells how many pairs were truncated.

    Raises:
        ValueError: lengths differ, a query or passage is empty, or ``max_length`` is not an int >= 8.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 8:
        raise ValueError(f"max_length must be an int >= 8, got {max_length!r}: pass e.g. max_length=128")
    if isinstance(queries, str) or isinstance(passages, str):
        raise ValueError("queries and passages must be lists of strings, not a single string: wrap it in a list")
    if len(queries) != len(passages):
        raise ValueError(f"{len(queries)} queries but {len(passages)} passages: pass one passage per query")
    for kind, texts in (("query", queries), ("passage", passages)):
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"empty {kind} at index {i} ({text!r}): every pair needs a non-empty query and passage")
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("a fast (Rust) tokenizer is needed to label token types: load it with AutoTokenizer(use_fast=True)")

    queries, cut_queries = _cut_queries(tokenizer, queries, max_length // 2)
    full_lengths = [len(ids) for ids in tokenizer(list(queries), list(passages), truncation=False, verbose=False)["input_ids"]]
    batch = tokenizer(
        list(queries), list(passages), truncation="only_second", max_length=max_length,
        padding="longest", return_tensors="pt", return_token_type_ids=True,
    )
    segments = torch.full_like(batch["input_ids"], PADDING)
    for row in range(len(queries)):
        first_special = True
        for position, sequence in enumerate(batch.sequence_ids(row)):
            if not batch["attention_mask"][row, position]:
                continue
            if sequence is None:
                segments[row, position] = CLS if first_special else SEP
                first_special = False
            else:
                segments[row, position] = QUERY if sequence == 0 else PASSAGE
    truncated = torch.tensor([length > max_length for length in full_lengths]) | cut_queries
    if truncated.any():
        warnings.warn(
            f"{int(truncated.sum())} of {len(truncated)} pairs truncated to max_length={max_length} tokens"
            + (f" ({int(cut_queries.sum())} queries cut to {max_length // 2})" if cut_queries.any() else ""),
            stacklevel=2,
        )
    return EncodedPairs(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        token_type_ids=batch["token_type_ids"],
        segments=segments,
        truncated=truncated,
    )


def _cut_queries(tokenizer, queries: Sequence[str], max_query_tokens: int) -> tuple[list[str], torch.Tensor]:
    """Queries cut to ``max_query_tokens`` word pieces, and ``[queries]`` bool: which were cut."""
    cut, was_cut = [], []
    for query in queries:
        tokens = tokenizer.tokenize(query)
        was_cut.append(len(tokens) > max_query_tokens)
        cut.append(tokenizer.convert_tokens_to_string(tokens[:max_query_tokens]) if was_cut[-1] else query)
    return cut, torch.tensor(was_cut)


MAX_PADDING = 0.2  # the largest share of padding in a batch of encode_batches: shorter pairs go to the next batch


def encode_batches(
    tokenizer, queries: Sequence[str], passages: Sequence[str], max_length: int = 128, batch_size: int = 64,
) -> list[tuple[list[int], EncodedPairs]]:
    """The pairs tokenised in batches of similar length (little padding): ``[(pair indices, EncodedPairs)]``.

    For scoring many pairs, e.g. a re-ranking; truncation is expected there and not warned about. Pairs are
    sorted by token count, longest first; a batch holds at most ``batch_size * max_length`` tokens with its
    padding, so batches of short pairs hold more of them (a forward pass costs about its number of tokens), and
    none of its pairs is shorter than ``1 - MAX_PADDING`` of its first: padding stays under that share of a batch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if len(queries) != len(passages):
        raise ValueError(f"{len(queries)} queries but {len(passages)} passages: pass one passage per query")
    lengths = [len(ids) for ids in tokenizer(list(queries), list(passages), truncation="longest_first",
                                              max_length=max_length)["input_ids"]] if len(queries) else []
    order = sorted(range(len(queries)), key=lambda i: -lengths[i])
    budget, batches, start = batch_size * max_length, [], 0
    while start < len(order):
        longest = lengths[order[start]]  # the first pair of a batch is its longest
        end = min(len(order), start + max(1, budget // longest))
        end = next((i for i in range(start + 1, end) if lengths[order[i]] < (1 - MAX_PADDING) * longest), end)
        index = order[start:end]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            batches.append((index, encode_pairs(tokenizer, [queries[i] for i in index], [passages[i] for i in index], max_length)))
        start = end
    return batches


def regroup(batches: list[tuple[list[int], EncodedPairs]], rows: int) -> list[tuple[list[int], EncodedPairs]]:
    """Consecutive batches of :func:`encode_batches` joined into batches of at most ``rows`` pairs (a batch
    larger than ``rows`` stays whole), each padded to its longest pair: bigger passes for a GPU."""
    grouped, index, parts = [], [], []
    for batch_index, batch in batches:
        if parts and len(index) + len(batch_index) > rows:
            grouped.append((index, _concatenate(parts)))
            index, parts = [], []
        index, parts = index + list(batch_index), parts + [batch]
    if parts:
        grouped.append((index, _concatenate(parts)))
    return grouped


def _concatenate(parts: list[EncodedPairs]) -> EncodedPairs:
    """The pairs of ``parts`` in one EncodedPairs, padded (id 0, mask 0, segment ``padding``) to the longest."""
    if len(parts) == 1:
        return parts[0]
    length = max(part.input_ids.shape[1] for part in parts)
    padding = {"input_ids": 0, "attention_mask": 0, "token_type_ids": 0, "segments": PADDING}

    def padded(name):
        return torch.cat([torch.nn.functional.pad(getattr(p, name), (0, length - p.input_ids.shape[1]), value=padding[name])
                          for p in parts])

    return EncodedPairs(**{name: padded(name) for name in padding}, truncated=torch.cat([p.truncated for p in parts]))
