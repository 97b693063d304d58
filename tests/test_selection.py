"""Relevance-neuron selection and per-dataset aggregation."""

import numpy as np
import pytest

from neuron_ig.stats.selection import (
    fusion,
    intersection,
    jaccard,
    neuron_list,
    ood_neurons,
    per_layer_counts,
    top_p_percent,
    top_share,
)
from neuron_ig.studies.aggregation import class_mean, segment_layer_table
from neuron_ig.studies.results import DatasetNIG


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


# --- fusion with normalisation, OOD neurons by a rank gap and by a per-neuron test ----------------------

def test_fusion_normalisation_keeps_one_dataset_from_deciding_alone():
    from neuron_ig.stats.selection import fusion_shares, normalised_scores

    rng = np.random.default_rng(5)
    scores = {"loud": 1000 * rng.normal(size=(2, 200)), "quiet": rng.normal(size=(2, 200)), "other": rng.normal(size=(2, 200))}
    assert (fusion(scores, 5.0) == top_p_percent(np.mean(list(scores.values()), axis=0), 5.0)).all()  # default unchanged
    assert (fusion(scores, 5.0) == top_p_percent(scores["loud"], 5.0)).all()
    raw = fusion_shares(scores, 5.0)
    assert raw.loc["loud", "in its top p%"] == 1.0 and raw.loc["loud", "share of fused score"] > 0.99
    for normalise in ("rank", "z"):
        shares = fusion_shares(scores, 5.0, normalise=normalise)
        assert shares["share of fused score"].sum() == pytest.approx(1.0)
        assert shares["share of fused score"].max() < 0.5 and shares.loc["loud", "in its top p%"] < 1.0
    ranks = normalised_scores(scores, "rank")["quiet"]
    assert ranks.max() == 1.0 and ranks.min() == pytest.approx(1 / 400) and sorted(ranks.ravel())[1] == pytest.approx(2 / 400)
    z = normalised_scores(scores, "z")["loud"]
    assert z.mean() == pytest.approx(0, abs=1e-12) and z.std() == pytest.approx(1)
    with pytest.raises(ValueError, match="unknown normalisation 'mean'"):
        fusion(scores, 5.0, normalise="mean")


def test_ood_rank_gap_leaves_out_neurons_just_below_the_in_domain_cut():
    from neuron_ig.stats.selection import ood_rank_gap, score_ranks

    in_domain = np.arange(100, dtype=float)[::-1].reshape(1, 100)  # rank = unit + 1
    ood = np.zeros((1, 100))
    ood[0, [2, 97]] = 10.0  # unit 2 is in the in-domain top 5%... unit 97 far below it
    ood[0, 3] = 5.0         # just below the in-domain top 1% (rank 4), inside its top 5%
    scores = {"in": in_domain, "o1": ood, "o2": ood}
    assert score_ranks(in_domain)[0, :3].tolist() == [1, 2, 3]
    assert ood_rank_gap(scores, "in", 3.0).nonzero()[1].tolist() == [97]
    plain = ood_neurons(intersection({"o1": top_p_percent(ood, 3.0), "o2": top_p_percent(ood, 3.0)}), top_p_percent(in_domain, 3.0))
    assert plain.nonzero()[1].tolist() == [3, 97]  # the old definition keeps unit 3
    assert ood_rank_gap(scores, "in", 3.0, in_domain_p=3.0).nonzero()[1].tolist() == [3, 97]
    with pytest.raises(ValueError, match="at least p"):
        ood_rank_gap(scores, "in", 3.0, in_domain_p=1.0)


@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy, on the constant neuron
def test_ood_neuron_test_is_welch_with_benjamini_hochberg():
    from scipy import stats

    from neuron_ig.stats.selection import ood_neuron_test
    from neuron_ig.stats.significance import benjamini_hochberg

    rng = np.random.default_rng(6)
    p = rng.uniform(size=50) ** 2
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p, method="bh"))
    in_domain = rng.normal(size=(20, 2, 30))
    ood = {"a": rng.normal(size=(15, 2, 30)), "b": rng.normal(size=(12, 2, 30))}
    ood["a"][:, 0, 0] += 3.0
    ood["b"][:, 0, 0] += 3.0
    ood["a"][:, 1, 1] += 3.0  # higher in one out-of-domain dataset only
    in_domain[:, 1, 2] = ood["a"][:, 1, 2] = ood["b"][:, 1, 2] = 1.0  # constant
    result = ood_neuron_test(in_domain, ood)
    welch = [stats.ttest_ind(a, in_domain, axis=0, equal_var=False, alternative="greater").pvalue for a in ood.values()]
    expected = np.nan_to_num(np.maximum(*welch), nan=1.0)
    assert result["p"] == pytest.approx(expected)
    assert result["p (BH)"].ravel() == pytest.approx(stats.false_discovery_control(expected.ravel(), method="bh"))
    assert result["OOD neurons"].nonzero() == (np.array([0]), np.array([0]))
    assert result["p"][1, 2] == 1.0 and result["t"][1, 2] == 0.0
    with pytest.raises(ValueError, match="at least 2 pairs"):
        ood_neuron_test(in_domain[:1], ood)


def test_the_fewest_shared_drop_rule_never_drops_a_protected_dataset():
    from neuron_ig.stats.nulls import fewest_shared_rows
    from neuron_ig.stats.selection import fewest_shared

    rng = np.random.default_rng(0)
    base = rng.normal(size=(4, 25))
    scores = {"in": rng.normal(size=(4, 25)), "a": base + 0.01 * rng.normal(size=(4, 25)), "b": base.copy(),
              "c": base + 0.02 * rng.normal(size=(4, 25))}  # "in" shares the fewest neurons with the rest
    assert fewest_shared(scores, [10.0], 1) == ["in"]
    kept = fewest_shared(scores, [10.0], 1, protect=["in"])
    assert kept and "in" not in kept
    rows = fewest_shared_rows({name: s.reshape(1, -1) for name, s in scores.items()}, [10.0], 2, protect=["in"])
    assert rows[0] == fewest_shared(scores, [10.0], 2, protect=["in"]) and "in" not in rows[0]
