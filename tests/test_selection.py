"""Relevance-neuron selection and per-dataset aggregation."""

import numpy as np
import pytest

from neuron_ig.aggregation import class_mean, segment_layer_table
from neuron_ig.results import DatasetNIG
from neuron_ig.selection import fusion, intersection, jaccard, neuron_list, ood_neurons, per_layer_counts, top_p_percent, top_share


def test_top_p_percent_picks_the_highest_scores_globally():
    scores = np.arange(2 * 500, dtype=float).reshape(2, 500)
    mask = top_p_percent(scores, 1.0)
    assert mask.sum() == 10 and mask[1, -10:].all() and not mask[0].any()
    assert top_p_percent(scores, 0.1).sum() == 1
    assert per_layer_counts(mask).tolist() == [0, 10]
    assert neuron_list(top_p_percent(scores, 0.1)) == [(1, 499)]


@pytest.mark.parametrize("p", [0, -1, 101, "1", True])
def test_p_must_be_a_percentage(p):
    with pytest.raises(ValueError, match="p must be a percentage"):
        top_p_percent(np.zeros((2, 3)), p)


def test_intersection_fusion_and_ood_neurons():
    rng = np.random.default_rng(0)
    scores = {name: rng.normal(size=(3, 100)) for name in ("in", "ood1", "ood2")}
    sets = {name: top_p_percent(s, 10) for name, s in scores.items()}
    common = intersection(sets)
    assert all((common <= s).all() for s in sets.values())
    fused = fusion(scores, 10)
    np.testing.assert_array_equal(fused, top_p_percent((scores["in"] + scores["ood1"] + scores["ood2"]) / 3, 10))
    ood = ood_neurons(intersection({k: sets[k] for k in ("ood1", "ood2")}), sets["in"])
    assert not (ood & sets["in"]).any()
    assert jaccard(sets["in"], sets["in"]) == 1.0 and 0 <= jaccard(sets["in"], sets["ood1"]) < 1
    with pytest.raises(ValueError, match="different shapes"):
        intersection({"a": np.zeros((2, 3), bool), "b": np.zeros((3, 2), bool)})


def toy_result(attributions, score):
    n = len(score)
    return DatasetNIG(attributions=attributions, score=np.array(score), baseline_score=np.zeros(n), relevance=np.array(score),
                      labels=np.ones(n, int), query_ids=np.arange(n).astype(str), doc_ids=np.arange(n).astype(str),
                      layer_names=["l0", "l1"], manifest={"parameters": {"dataset": "toy"}})


def test_class_mean_averages_correctly_classified_pairs_only():
    attributions = np.zeros((3, 4, 2, 5))
    attributions[0, 1] = 1.0   # query tokens of pair 0
    attributions[1, 3] = 3.0   # passage tokens of pair 1
    attributions[2] = 100.0    # pair 2 is misclassified: left out
    result = toy_result(attributions, [0.9, 0.7, 0.2])
    np.testing.assert_allclose(class_mean(result), np.full((2, 5), 2.0))
    np.testing.assert_allclose(class_mean(result, segment="query"), np.full((2, 5), 0.5))
    table = segment_layer_table(result)
    assert list(table.columns) == ["CLS", "query", "SEP", "passage"] and table.loc[0, "passage"] == 7.5
    with pytest.raises(ValueError, match="unknown segment"):
        class_mean(result, segment="title")
    with pytest.raises(ValueError, match="classifies none of the 1 pairs"):
        class_mean(toy_result(attributions[:1], [0.1]))


def test_top_share_is_the_positive_mass_of_the_top_neurons():
    scores = np.array([[10.0, 5.0, -3.0, 0.0], [5.0, 0.0, 0.0, -1.0]])
    assert top_share(scores, 12.5) == pytest.approx(0.5)  # 1 of 8 neurons: 10 of 20
    assert top_share(-np.ones((2, 2)), 50) == 0.0
