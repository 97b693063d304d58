"""From per-pair NIG to per-dataset neuron scores.

Per pair, NIG is already summed over token positions (per segment). Per dataset and class, the score of
a neuron is the mean of its signed NIG over the pairs the model classifies correctly.
"""

from __future__ import annotations

import warnings
from typing import Mapping

import numpy as np
import pandas as pd

from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.nig import ATTRIBUTED_SEGMENTS
from neuron_ig.ir.pairs import pair_texts
from neuron_ig.stats import contrast, selection
from neuron_ig.studies.results import DatasetNIG


def _segment_index(segment: str | None):
    if segment is None:
        return slice(None)
    if segment not in ATTRIBUTED_SEGMENTS:
        raise ValueError(f"unknown segment {segment!r}: use one of {', '.join(ATTRIBUTED_SEGMENTS)} or None for all tokens")
    return ATTRIBUTED_SEGMENTS.index(segment)


def _kept_pairs(result: DatasetNIG, correct_only: bool) -> np.ndarray:
    """``[pairs]`` bool: the pairs a class mean averages over; refuses a result with none of them."""
    keep = result.correct if correct_only else np.ones(len(result.score), dtype=bool)
    if not keep.any():
        raise ValueError(
            f"the model classifies none of the {len(keep)} pairs of {result.manifest['parameters']['dataset']} correctly: "
            "check the model and the labels, or pass correct_only=False"
        )
    return keep


def class_mean(result: DatasetNIG, *, correct_only: bool = True, segment: str | None = None) -> np.ndarray:
    """Mean signed NIG per neuron, ``[layers, units]``, over the (correctly classified) pairs.

    ``segment`` restricts the sum over tokens to one token type (``"CLS"``, ``"query"``, ``"SEP"``,
    ``"passage"``); None sums all real tokens.
    """
    per_segment = result.attributions[_kept_pairs(result, correct_only)]  # [pairs, 4, layers, units]
    selected = per_segment[:, _segment_index(segment)]
    per_pair = selected if segment is not None else selected.sum(axis=1)
    return per_pair.mean(axis=0)


def segment_layer_table(result: DatasetNIG, *, correct_only: bool = True) -> pd.DataFrame:
    """Mean NIG summed over each layer's units, per segment: rows = layers, columns = segments."""
    keep = result.correct if correct_only else np.ones(len(result.score), dtype=bool)
    sums = result.attributions[keep].sum(axis=3).mean(axis=0)  # [4, layers]
    return pd.DataFrame(sums.T, columns=list(ATTRIBUTED_SEGMENTS), index=pd.RangeIndex(sums.shape[1], name="layer"))


def pairs_used(results: Mapping[str, DatasetNIG]) -> pd.DataFrame:
    """Per dataset: pairs drawn, pairs classified correctly among them, pairs each class mean averages, and the scores.

    Columns: ``sampled`` (pairs drawn: :func:`neuron_ig.studies.results.nig_pairs` draws until ``n_pairs`` are classified
    correctly), ``correct``, ``share correct`` (correct / sampled, the model's accuracy on the class), ``used`` (the
    correct pairs left after a ``min_change`` drop, :func:`neuron_ig.studies.change.drop_small_changes`), ``mean F(x),
    correct pairs`` and ``mean F(x')`` (the baseline's probability of the class: near 0.5 means a neutral start).
    """
    rows = {}
    for dataset, result in results.items():
        keep = result.correct
        dropped = int(result.manifest.get("n_small_change_dropped", 0))  # pairs of the draw's correct ones
        correct = int(keep.sum()) + dropped
        sampled = int(result.manifest.get("n_drawn", len(keep) + dropped))
        rows[dataset] = {
            "sampled": sampled,
            "correct": correct,
            "share correct": correct / sampled if sampled else float("nan"),
            "used": int(keep.sum()),
            "mean F(x), correct pairs": float(result.score[keep].mean()) if keep.any() else float("nan"),
            "mean F(x')": float(result.baseline_score.mean()) if len(keep) else float("nan"),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset")


def class_means(results: Mapping[str, DatasetNIG], *, segment: str | None = None) -> dict[str, np.ndarray]:
    """:func:`class_mean` of each dataset, ``{dataset: [layers, units]}``, in order.

    A dataset whose pairs the model classifies none correctly has no class mean: it is left out (see
    :func:`pairs_used` to say so), so the neuron sets of that class are built from the other datasets.
    """
    return {dataset: class_mean(result, segment=segment) for dataset, result in results.items() if result.correct.any()}


def segment_shares(result: DatasetNIG, *, correct_only: bool = True) -> pd.Series:
    """Each segment's share of the absolute NIG, indexed by segment (sums to 1).

    Per pair, ``|NIG|`` is summed over all neurons of the segment; the sums are averaged over the (correctly
    classified) pairs, then divided by their total.
    """
    absolute = np.abs(result.attributions[_kept_pairs(result, correct_only)]).sum(axis=(2, 3)).mean(axis=0)  # [4]
    return pd.Series(absolute / absolute.sum(), index=list(ATTRIBUTED_SEGMENTS), name="share")


def segment_profile(result: DatasetNIG, mask: np.ndarray, *, correct_only: bool = True) -> pd.DataFrame:
    """Where the attribution of the neurons in ``mask`` (``[layers, units]``) comes from, per segment.

    Columns: ``share`` of the set's summed mean NIG that each segment carries (signed: the shares sum to 1,
    a segment that works against the class has a negative share), and ``dominant``, the number of neurons
    of the set whose largest mean NIG comes from that segment.
    """
    keep = _kept_pairs(result, correct_only)
    per_segment = result.attributions[keep].mean(axis=0)[:, mask]  # [4, neurons]
    total = per_segment.sum()
    dominant = np.bincount(per_segment.argmax(axis=0), minlength=len(ATTRIBUTED_SEGMENTS)) if mask.any() else np.zeros(4, int)
    return pd.DataFrame({"share": per_segment.sum(axis=1) / total if total else np.nan, "dominant": dominant},
                        index=pd.Index(list(ATTRIBUTED_SEGMENTS), name="segment"))


def pair_nig(results: Mapping[str, DatasetNIG], *, correct_only: bool = True) -> dict[str, np.ndarray]:
    """Per-pair NIG summed over tokens, ``{dataset: [pairs, layers, units]}`` float64, of the pairs a class mean uses.

    With ``correct_only`` (the class means' rule) only correctly classified pairs; a dataset left with none is
    left out, as :func:`neuron_ig.studies.aggregation.class_means` does.
    """
    per_pair = {}
    for dataset, result in results.items():
        keep = result.correct if correct_only else np.ones(len(result.score), dtype=bool)
        if keep.any():
            per_pair[dataset] = result.total()[keep].astype(np.float64)
    return per_pair


def towards_relevant_pairs(result: DatasetNIG, *, normalise: bool = False, correct_only: bool = True) -> np.ndarray:
    """NIG towards P(relevant) of the correctly classified pairs (every pair without ``correct_only``),
    ``[pairs, layers x units]`` float64.

    With ``normalise``, each pair's NIG is divided by its F(x) - F(x') (the share of its change each neuron carries,
    :func:`neuron_ig.stats.contrast.normalised`). A result without such a pair gives ``[0, neurons]``.
    """
    keep = result.correct if correct_only else np.ones(len(result.score), dtype=bool)
    totals = result.total()
    attributions = totals[keep].reshape(int(keep.sum()), int(np.prod(totals.shape[1:]))).astype(np.float64)
    if normalise:
        attributions = contrast.normalised(attributions, (result.score - result.baseline_score)[keep])
    return contrast.towards_relevant(attributions, result.labels[keep])


def token_counts(result: DatasetNIG, tokenizer, max_length: int) -> np.ndarray:
    """``[pairs]``: the real tokens of each pair of ``result`` (``[CLS] query [SEP] passage [SEP]`` as NIG saw it,
    truncated to ``max_length``)."""
    if not len(result.score):
        return np.zeros(0, dtype=int)
    texts = pair_texts(result.manifest["parameters"]["dataset"], result.query_ids.tolist(), result.doc_ids.tolist())
    with warnings.catch_warnings():  # truncation is what NIG saw too; the pages that ran it said so
        warnings.simplefilter("ignore", UserWarning)
        encoded = encode_pairs(tokenizer, [q for q, _ in texts], [p for _, p in texts], max_length)
    return encoded.attention_mask.sum(dim=1).numpy()


def contrast_cells(positive: Mapping[str, DatasetNIG], negative: Mapping[str, DatasetNIG], *, tokenizer=None,
                   max_length: int = 128, correct_only: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{dataset: (relevant, non_relevant)}``: NIG towards P(relevant) of each class's correctly classified pairs
    (every pair without ``correct_only``), ``[pairs, layers x units]``, what :mod:`neuron_ig.stats.contrast` tests.
    With a ``tokenizer``, each pair's NIG is divided by its real tokens (:func:`token_counts`: NIG per token, so
    that collections of long and short pairs compare). Datasets with fewer than 2 such pairs in a class are left
    out."""
    cells = {}
    for dataset in positive:
        if dataset not in negative:
            continue
        pair = []
        for result in (positive[dataset], negative[dataset]):
            keep = result.correct if correct_only else np.ones(len(result.score), dtype=bool)
            if keep.sum() < 2:
                break
            values = towards_relevant_pairs(result, correct_only=correct_only)
            if tokenizer is not None and len(values):
                values = values / token_counts(result, tokenizer, max_length)[keep][:, None]
            pair.append(values)
        if len(pair) == 2:
            cells[dataset] = tuple(pair)
    return cells


def top_set_parts(positive: Mapping[str, DatasetNIG], negative: Mapping[str, DatasetNIG], p_values, *, label: int,
                  normalise: bool = False, n_permutations: int = 999, q: float = 0.05, strong_share: float = 0.5,
                  seed: int = 0) -> pd.DataFrame:
    """Each dataset's top-p% set of class ``label`` split by :func:`neuron_ig.stats.contrast.split_top_set`.

    ``positive`` and ``negative`` are the datasets' results of the relevant and the non-relevant pairs; the set is
    the top p% of the class mean of ``label``'s results, and the class contrast of its neurons is tested against
    class labels permuted within the dataset (Benjamini-Hochberg over the set's neurons). One row per dataset and
    p: ``dataset``, ``p``, ``neurons``, the count of each part, ``relevant pairs``, ``non-relevant pairs``; a dataset
    with fewer than 2 correctly classified pairs in a class gets NaN counts and a ``note``.
    """
    rows = []
    own = positive if label == 1 else negative
    for dataset in own:
        relevant, non_relevant = (towards_relevant_pairs(positive[dataset], normalise=normalise),
                                  towards_relevant_pairs(negative[dataset], normalise=normalise))
        for p in p_values:
            row = {"dataset": dataset, "p": p, "relevant pairs": len(relevant), "non-relevant pairs": len(non_relevant)}
            if min(len(relevant), len(non_relevant)) < 2:
                rows.append({**row, "neurons": np.nan, **{part: np.nan for part in contrast.PARTS},
                             "note": "fewer than 2 correctly classified pairs in a class"})
                continue
            top = selection.top_p_percent(class_mean(own[dataset]), p).reshape(-1)
            tested = contrast.contrast_test(relevant, non_relevant, tested=top, n_permutations=n_permutations, q=q,
                                            seed=seed)
            parts = contrast.split_top_set(top, relevant, non_relevant, tested["passes"], label=label,
                                           strong_share=strong_share)
            rows.append({**row, "neurons": int(top.sum()), **{part: int(mask.sum()) for part, mask in parts.items()},
                         "note": ""})
    return pd.DataFrame(rows)


def presence_positions(paired: Mapping[str, tuple[DatasetNIG, DatasetNIG]], negative: Mapping[str, DatasetNIG], p: float, *,
                       label: int, n_permutations: int = 999, q: float = 0.05, strong_share: float = 0.5,
                       n_bootstrap: int = 999, seed: int = 0) -> pd.DataFrame:
    """Where the mismatched twins of the relevant pairs fall, for each part of the class ``label``'s top-p% set.

    ``paired`` is ``{dataset: (relevant, mismatched)}`` (:meth:`neuron_ig.studies.settings.NIGParameters.mismatched_results`),
    ``negative`` the datasets' non-relevant pairs. On each dataset the top set and its parts are chosen as
    :func:`top_set_parts` chooses them, on half of the pairs, and measured on the other half
    (:func:`neuron_ig.stats.contrast.presence_position`: position 0, the twins look non-relevant to the group; 1,
    relevant). One row per dataset and group (``top set`` and each of :data:`neuron_ig.stats.contrast.PARTS`), with
    ``twins`` (pairs) and ``twins called non-relevant`` (the share the model puts below P(relevant) = 0.5); datasets
    with fewer than 4 correctly classified pairs in a class are left out.
    """
    def select(relevant, non_relevant):
        top = selection.top_p_percent(relevant.mean(axis=0) if label == 1 else -non_relevant.mean(axis=0), p).reshape(-1)
        tested = contrast.contrast_test(relevant, non_relevant, tested=top, n_permutations=n_permutations, q=q, seed=seed)
        return {"top set": top, **contrast.split_top_set(top, relevant, non_relevant, tested["passes"], label=label,
                                                         strong_share=strong_share)}

    rows = []
    for dataset, (relevant, twins) in paired.items():
        if dataset not in negative:
            continue
        keep = relevant.correct
        non_relevant = towards_relevant_pairs(negative[dataset])
        if keep.sum() < 4 or len(non_relevant) < 4:
            continue
        found = contrast.presence_position(towards_relevant_pairs(relevant), towards_relevant_pairs(twins, correct_only=False)[keep],
                                           non_relevant, select, n_bootstrap=n_bootstrap, seed=seed)
        called = float((twins.relevance[keep] < 0.5).mean())
        rows += [{"dataset": dataset, "group": group, **values, "twins": int(keep.sum()), "twins called non-relevant": called}
                 for group, values in found.items()]
    return pd.DataFrame(rows)
