"""Which judged grade counts as relevant: the minimum relevance grade of each collection.

Graded collections judge on a scale and count only the upper grades as relevant for binary measures: the
TREC Deep Learning passage tasks judge 0-3 and count grade >= 2 ("highly relevant" and "perfectly relevant";
grade 1 is "related: does not answer"). This module is the one place that says it; everything binary follows
it: the relevant pairs (:func:`neuron_ig.ir.datasets.relevant_qrels`, hence the non-relevant pairs, the pair
accuracy and every "correctly classified" count), the judged queries that the query split divides
(:mod:`neuron_ig.ir.query_split`), RR@10 (``RR(rel=g)@10``, :func:`binary_measure`). nDCG@10 keeps the graded
gains.

The default table (:data:`MIN_GRADES`, keyed by ``ir_datasets`` id prefix, the longest matching prefix wins):

- 2: ``msmarco-passage/trec-dl-*``, ``msmarco-passage-v2/trec-dl-*``, ``beir/msmarco/test`` (graded 0-3): the
  TREC DL passage task's binary relevance (Craswell et al., TREC DL overviews 2019-2023).
- 1: ``cord19/trec-covid*``, ``beir/trec-covid`` (graded 0-2): the TREC-COVID track counted 1, "partially
  relevant", as relevant for its binary measures (trec_eval's default level).
- 1, for every other id: BEIR sets, Robust04 (0-2), the MS MARCO document TREC DL sets (0-3: the document task
  counts grade >= 1), Cranfield (-1 of no interest, 1 of minimum interest ... 4 a complete answer), the embedded
  ``neuron-ig/*`` collections (all 1): a positive grade is relevant, as trec_eval's default.

A user overrides it with ``min_grade``: None (the table), an int (every dataset), or a dict
``{dataset id: grade}`` (those datasets; the table for the others).
"""
from __future__ import annotations

from collections.abc import Mapping

DEFAULT_MIN_GRADE = 1
MIN_GRADES = {
    "msmarco-passage/trec-dl-": 2,
    "msmarco-passage-v2/trec-dl-": 2,
    "beir/msmarco/test": 2,
    "cord19/trec-covid": 1,
    "beir/trec-covid": 1,
}


def _checked_grade(grade, where: str) -> int:
    if isinstance(grade, bool) or not isinstance(grade, int):
        raise ValueError(f"min_grade{where} must be an int (the lowest grade counted relevant), got {grade!r}: "
                         "e.g. min_grade: 2 for TREC DL, or null for the documented table (neuron_ig.ir.grades)")
    return grade


def min_grade(dataset_id: str, override: int | Mapping[str, int] | None = None) -> int:
    """The lowest grade of ``dataset_id``'s qrels that counts as relevant: ``override`` where it names one,
    else the longest prefix of :data:`MIN_GRADES` that ``dataset_id`` starts with, else 1.

    Raises:
        ValueError: ``override`` is not None, an int or a dict of ints.
    """
    if override is not None:
        if isinstance(override, Mapping):
            if dataset_id in override:
                return _checked_grade(override[dataset_id], f"[{dataset_id!r}]")
        else:
            return _checked_grade(override, "")
    prefixes = [p for p in MIN_GRADES if dataset_id.startswith(p)]
    return MIN_GRADES[max(prefixes, key=len)] if prefixes else DEFAULT_MIN_GRADE


def is_relevant(grade: int, minimum: int) -> bool:
    """Whether a judged ``grade`` counts as relevant at the collection's ``minimum`` (:func:`min_grade`)."""
    return grade >= minimum


def binary_measure(measure, minimum: int):
    """The ``ir_measures`` measure with its relevance level at ``minimum`` where it has one and none is set:
    ``RR@10`` -> ``RR(rel=2)@10`` for TREC DL; graded measures (nDCG@10) come back unchanged."""
    import ir_measures

    parsed = ir_measures.parse_measure(measure) if isinstance(measure, str) else measure
    if "rel" in parsed.SUPPORTED_PARAMS and "rel" not in parsed.params and minimum != 1:
        return parsed(rel=minimum)
    return parsed
