"""Helpers of the pages "Token types" and "Robustness": segment shares, rank correlation, run comparisons."""


import numpy as np
import pytest

from neuron_ig.stats.agreement import compare_scores, spearman
from neuron_ig.stats.selection import random_jaccard
from neuron_ig.studies.aggregation import segment_profile, segment_shares
from neuron_ig.studies.results import DatasetNIG
from neuron_ig.studies.robustness import (
    compare_runs,
    matching_pairs,
)


def toy_result(attributions, score, label=1, ids=None, dataset="toy"):
    n = len(score)
    ids = np.arange(n).astype(str) if ids is None else np.asarray(ids)
    return DatasetNIG(attributions=np.asarray(attributions, dtype=float), score=np.asarray(score, dtype=float),
                      baseline_score=np.zeros(n), relevance=np.asarray(score, dtype=float), labels=np.full(n, label),
                      query_ids=ids, doc_ids=np.char.add("d", ids), layer_names=["l0", "l1"],
                      manifest={"parameters": {"dataset": dataset}, "n_pairs": n})


# --- token types ---------------------------------------------------------------------------------


def test_segment_shares_are_absolute_and_over_correct_pairs_only():
    attributions = np.zeros((3, 4, 2, 5))
    attributions[0, 0, 0, 0] = -3.0   # CLS, negative: counts by its size
    attributions[0, 3, 1, :] = 1.0    # passage: 5
    attributions[1, 1, 0, 0] = 2.0    # query
    attributions[2, 2] = 100.0        # misclassified pair: left out
    shares = segment_shares(toy_result(attributions, [0.9, 0.8, 0.1]))
    assert list(shares.index) == ["CLS", "query", "SEP", "passage"]
    np.testing.assert_allclose(shares.to_numpy(), np.array([3, 2, 0, 5]) / 10)
    with pytest.raises(ValueError, match="classifies none of the 1 pairs"):
        segment_shares(toy_result(attributions[:1], [0.2]))


def test_segment_profile_says_which_token_type_carries_the_selected_neurons():
    attributions = np.zeros((2, 4, 2, 5))
    attributions[:, 3, 1, 0] = 4.0   # neuron (1, 0): passage
    attributions[:, 0, 1, 0] = -1.0  #   ... with CLS working against it
    attributions[:, 1, 1, 1] = 2.0   # neuron (1, 1): query
    attributions[:, 3, 0, 4] = 9.0   # not selected
    mask = np.zeros((2, 5), bool)
    mask[1, :2] = True
    profile = segment_profile(toy_result(attributions, [0.9, 0.9]), mask)
    np.testing.assert_allclose(profile["share"].to_numpy(), np.array([-1, 2, 0, 4]) / 5)
    assert profile["dominant"].tolist() == [0, 1, 0, 1]


# --- rank correlation and set overlap ------------------------------------------------------------


def test_spearman_is_a_rank_correlation():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 50))
    assert spearman(a, np.exp(3 * a)) == pytest.approx(1.0)  # any increasing map keeps the ranks
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert abs(spearman(a, rng.normal(size=a.shape))) < 0.15
    assert np.isnan(spearman(a, np.zeros_like(a)))
    from scipy import stats
    b = a + rng.normal(size=a.shape)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a.ravel(), b.ravel()).statistic)
    with pytest.raises(ValueError, match="different shapes"):
        spearman(a, a.T)


def test_compare_scores_reports_jaccard_per_p_and_chance_is_low():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(6, 1000))
    same = compare_scores(scores, scores * 2, [0.1, 1.0])
    assert same == {"Spearman": pytest.approx(1.0), "Jaccard top 0.1%": 1.0, "Jaccard top 1%": 1.0}
    other = compare_scores(scores, rng.normal(size=scores.shape), [1.0])
    assert other["Jaccard top 1%"] < 0.2
    # chance level: two random sets of 60 among 6,000 share 0.6 neurons on average
    assert random_jaccard(6000, 1.0) == pytest.approx(0.6 / 119.4)
    simulated = np.mean([compare_scores(rng.normal(size=(60, 100)), rng.normal(size=(60, 100)), [10])["Jaccard top 10%"]
                         for _ in range(200)])
    assert simulated == pytest.approx(random_jaccard(6000, 10), rel=0.1)


# --- run comparisons -----------------------------------------------------------------------------


def test_matching_pairs_restricts_a_run_to_another_runs_pairs():
    attributions = np.arange(4 * 4 * 2 * 5, dtype=float).reshape(4, 4, 2, 5)
    run = toy_result(attributions, [0.9, 0.2, 0.8, 0.7], ids=["a", "b", "c", "e"])
    subset = matching_pairs(run, ["c", "a"], ["dc", "da"])
    assert subset.query_ids.tolist() == ["c", "a"] and subset.score.tolist() == [0.8, 0.9]
    np.testing.assert_array_equal(subset.attributions, attributions[[2, 0]])
    assert subset.manifest["n_pairs"] == 2 and subset.manifest["n_correct"] == 2
    assert matching_pairs(run, ["a", "z"], ["da", "dz"]) is None
    assert matching_pairs(run, ["a"], ["db"]) is None  # the query alone does not make the pair


def test_compare_runs_skips_a_dataset_without_correct_pairs():
    rng = np.random.default_rng(3)
    attributions = rng.normal(size=(3, 4, 2, 500))
    reference = {"in": toy_result(attributions, [0.9, 0.9, 0.9]), "out": toy_result(attributions, [0.1, 0.2, 0.3]),
                 "late": toy_result(attributions, [0.9, 0.9, 0.9])}
    variant = {"in": toy_result(attributions * 1.5, [0.9, 0.9, 0.4]), "out": toy_result(attributions, [0.9, 0.9, 0.9]),
               "late": None}
    rows = compare_runs(reference, variant, [1.0])
    assert [r["dataset"] for r in rows] == ["in", "out", "late"]
    assert rows[0]["pairs (default)"] == "3/3" and rows[0]["pairs (variant)"] == "2/3" and rows[0]["note"] == ""
    assert rows[0]["class"] == "relevant" and 0 < rows[0]["Jaccard top 1%"] < 1 and rows[0]["Spearman"] > 0.3
    assert np.isnan(rows[1]["Spearman"]) and np.isnan(rows[1]["Jaccard top 1%"])
    assert "default run: skipped" in rows[1]["note"]
    assert rows[2]["pairs (variant)"] == "not computed" and "variant run: skipped" in rows[2]["note"]
    assert np.isnan(rows[2]["Jaccard top 1%"])


