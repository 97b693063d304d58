"""Which queries select the neurons and which evaluate their pruning: a split by a seeded hash of the query id.

The queries whose pairs select the relevance neurons never evaluate their pruning. Each judged query goes to
``"selection"`` or ``"evaluation"`` by a hash of the seed and its id alone: the same query lands on the same
side whatever else is in the collection, whichever code asks (the pair sampling and the pruning study),
and on any machine (SHA-256, not Python's salted ``hash``). The judged queries split are those with a relevant
document at the collection's minimum grade (:func:`neuron_ig.ir.datasets.relevant_qrels`, :mod:`neuron_ig.ir.grades`).
:func:`informative_queries` says which evaluation queries can show an effect of pruning at all.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

SELECTION, EVALUATION = "selection", "evaluation"
SPLIT_SEED = 0  # the book's split: fixed, so that the pair-sampling seed can vary (robustness) without moving it


def query_part(query_id: str, *, seed: int = 0, selection_share: float = 0.5) -> str:
    """``"selection"`` or ``"evaluation"``: the query's side of the split.

    The first 8 bytes of SHA-256 of ``"<seed>:<query_id>"``, read as a number in [0, 1), below
    ``selection_share`` put the query in the selection part.
    """
    if not 0 < selection_share < 1:
        raise ValueError(f"selection_share must be in (0, 1), got {selection_share!r}: 0.5 splits the queries in halves")
    digest = hashlib.sha256(f"{seed}:{query_id}".encode()).digest()
    return SELECTION if int.from_bytes(digest[:8], "big") / 2 ** 64 < selection_share else EVALUATION


def split_queries(query_ids: Iterable[str], *, seed: int = 0, selection_share: float = 0.5) -> dict[str, list[str]]:
    """``{"selection": [...], "evaluation": [...]}``: the query ids on each side of :func:`query_part`, sorted."""
    parts = {SELECTION: [], EVALUATION: []}
    for query_id in sorted({str(q) for q in query_ids}):
        parts[query_part(query_id, seed=seed, selection_share=selection_share)].append(query_id)
    return parts


def queries_in_part(query_ids: Iterable[str], part: str | None, *, seed: int = SPLIT_SEED) -> list[str]:
    """The ids of ``query_ids`` on side ``part`` of :func:`query_part` (``"selection"``, ``"evaluation"``, or
    None: all of them), in their order. The one place where the book's pair sampling
    (:func:`neuron_ig.ir.pairs.relevance_pairs`, selection) and re-ranking tasks
    (:func:`neuron_ig.studies.effectiveness.rerank_inputs`, evaluation) split a collection's judged queries."""
    if part is None:
        return list(query_ids)
    if part not in (SELECTION, EVALUATION):
        raise ValueError(f"query part must be {SELECTION!r}, {EVALUATION!r} or None (every query), got {part!r}")
    return [q for q in query_ids if query_part(str(q), seed=seed) == part]


def informative_queries(run: dict, qrels: dict) -> list[str]:
    """The queries of a re-ranking ``run`` (``{query_id: {doc_id: score}}``) with a document of positive gain
    (grade > 0 in ``qrels``) among the documents re-ranked: the only ones whose nDCG@10 pruning can change.
    Deliberately not the collection's minimum grade (:mod:`neuron_ig.ir.grades`): nDCG@10 keeps graded gains, so a
    TREC DL grade-1 document moves it too."""
    return sorted(q for q, ranking in run.items() if any(qrels.get(q, {}).get(d, 0) > 0 for d in ranking))
