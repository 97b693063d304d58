"""Null references: batched top-p% sets equal the selection's, the drop rule inside the null equals
fewest_shared, split halves are disjoint, the agreement ratio is 1 for datasets drawn alike and below 1 for
datasets that differ, and resampling is deterministic."""

import numpy as np
import pytest

from neuron_ig.stats.nulls import (
    agreement_ratio,
    dataset_permutation_null,
    fewest_shared_rows,
    intersection_rows,
    pairs_bootstrap,
    sign_flip_null,
    split_half_agreement,
    top_share_rows,
    upper_p_value,
)
from neuron_ig.stats.selection import (
    fewest_shared,
    intersection,
    top_count,
    top_masks,
    top_p_percent,
    top_share,
)
from neuron_ig.studies.aggregation import pair_nig
from neuron_ig.studies.results import DatasetNIG


def test_batched_top_sets_and_shares_equal_the_selections():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(5, 3, 40))
    for p in (0.5, 2.0, 10.0, 100.0):
        masks = top_masks(scores.reshape(5, -1), p)
        for row, mask in zip(scores, masks):
            assert (mask.reshape(3, 40) == top_p_percent(row, p)).all()
        shares = top_share_rows(scores.reshape(5, -1), p)
        assert shares == pytest.approx([top_share(row, p) for row in scores])
    assert top_count(120, 1.0) == 2
    with pytest.raises(ValueError, match="p must be a percentage"):
        top_count(10, 0)


def test_the_drop_rule_inside_the_null_is_fewest_shared():
    rng = np.random.default_rng(1)
    for trial in range(20):
        scale = rng.lognormal(size=(2, 50))
        means = {name: scale * rng.normal(size=(2, 50)) + (trial % 3 == i) * rng.normal(size=(2, 50))
                 for i, name in enumerate("abcd")}
        rows = fewest_shared_rows({n: m.reshape(1, -1) for n, m in means.items()}, [1.0, 5.0], 2)
        assert rows[0] == fewest_shared(means, [1.0, 5.0], 2)
        kept = {n: top_p_percent(m, 5.0) for n, m in means.items() if n not in rows[0]}
        assert intersection_rows({n: m.reshape(1, -1) for n, m in means.items()}, 5.0, rows)[0] == intersection(kept).sum()
    assert fewest_shared_rows({"a": np.zeros((3, 4)), "b": np.ones((3, 4))}, [50.0], 1) == [[], [], []]


def test_sign_flips_keep_scale_and_are_deterministic():
    rng = np.random.default_rng(2)
    per_pair = {"a": rng.normal(size=(8, 2, 5)) + 3.0}
    means = []
    null = sign_flip_null(per_pair, lambda m: means.append(m["a"]) or m["a"].sum(axis=1), n_resamples=300, seed=4, chunk=64)
    assert null.shape == (300,) and (null == sign_flip_null(per_pair, lambda m: m["a"].sum(axis=1), n_resamples=300, seed=4)).all()
    flipped = np.concatenate(means)
    assert abs(flipped.mean()) < 0.3  # the consistent +3 is gone
    # every resample's mean is a signed average of the same pairs: its |value| cannot exceed the mean |NIG|
    assert (np.abs(flipped) <= np.abs(per_pair["a"]).reshape(8, -1).mean(axis=0) + 1e-12).all()
    with pytest.raises(ValueError, match="n_resamples must be a positive int"):
        sign_flip_null(per_pair, lambda m: m["a"].sum(axis=1), n_resamples=0)


def test_dataset_permutation_keeps_sizes_and_pools_the_pairs():
    per_pair = {"a": np.zeros((3, 1, 2)), "b": np.ones((5, 1, 2))}
    null = dataset_permutation_null(per_pair, lambda d: (len(d["a"]), d["a"].sum(), d["b"].shape[1]), n_resamples=50, seed=0)
    assert null.shape == (50, 3) and (null[:, 0] == 3).all() and (null[:, 2] == 1).all()
    assert set(null[:, 1]) <= {0.0, 2.0, 4.0, 6.0} and len(set(null[:, 1])) > 1


def test_upper_p_value():
    assert upper_p_value(5, np.array([1, 2, 5, 6])) == pytest.approx(3 / 5)
    assert upper_p_value(100, np.arange(99)) == pytest.approx(0.01)


def scaled(rng, pairs, shift=None):
    scale = np.linspace(0.2, 3.0, 300).reshape(3, 100)
    a = scale * rng.normal(size=(pairs, 3, 100))
    return a if shift is None else a + shift


def test_split_halves_agree_with_themselves_and_the_ratio_is_one_for_datasets_drawn_alike():
    rng = np.random.default_rng(3)
    signal = np.zeros((3, 100))
    signal[0, :10] = 2.0
    alike = {name: scaled(rng, 30, signal) for name in ("a", "b")}
    signal_c = np.zeros((3, 100))
    signal_c[1, 50:60] = 2.0
    alike["c"] = scaled(rng, 30, signal_c)
    within = split_half_agreement(alike["a"], 5.0, n_splits=30)
    assert within.shape == (30,) and 0.3 < within.mean() <= 1
    table = agreement_ratio(alike, 5.0, n_splits=10, n_bootstrap=40)
    assert list(table.index) == [("a", "b"), ("a", "c"), ("b", "c")]
    same, other = table.loc[("a", "b")], table.loc[("a", "c")]
    assert 0.8 < same["ratio"] < 1.25 and same["ratio low"] < 1 < same["ratio high"]
    assert other["ratio"] < 0.7 and other["ratio high"] < same["ratio low"]
    assert ((table["ratio low"] <= table["ratio"]) & (table["ratio"] <= table["ratio high"])).all()  # half-samples hold it
    assert table["chance Jaccard"].tolist() == pytest.approx([15 * 15 / 300 / (30 - 15 * 15 / 300)] * 3)
    assert same["Jaccard"] > 10 * same["chance Jaccard"]
    with pytest.raises(ValueError, match="two datasets or more"):
        agreement_ratio({"a": alike["a"]}, 5.0)
    with pytest.raises(ValueError, match="fewer than 2 pairs"):
        agreement_ratio({"a": alike["a"], "b": alike["b"][:1]}, 5.0)


def test_pair_nig_keeps_the_correct_pairs_of_each_dataset():
    rng = np.random.default_rng(4)

    def result(scores):
        n = len(scores)
        return DatasetNIG(attributions=rng.normal(size=(n, 4, 2, 3)).astype(np.float32), score=np.array(scores),
                          baseline_score=np.full(n, 0.5), relevance=np.array(scores), labels=np.ones(n),
                          query_ids=np.arange(n).astype(str), doc_ids=np.arange(n).astype(str), layer_names=["0", "1"],
                          manifest={"parameters": {"dataset": "x"}})

    results = {"a": result([0.9, 0.2, 0.8]), "none": result([0.1, 0.3])}
    per_pair = pair_nig(results)
    assert list(per_pair) == ["a"] and per_pair["a"].shape == (2, 2, 3)
    np.testing.assert_allclose(per_pair["a"], results["a"].total()[[0, 2]], rtol=1e-6)
    assert pair_nig(results, correct_only=False)["none"].shape == (2, 2, 3)


def test_the_intersection_ratio_is_one_for_datasets_drawn_alike_and_lower_otherwise():
    from neuron_ig.stats.nulls import intersection_ratio

    rng = np.random.default_rng(5)
    signal = np.zeros((3, 100))
    signal[0, :12] = 2.0
    alike = {name: scaled(rng, 36, signal) for name in ("a", "b", "c")}
    result = intersection_ratio(alike, 5.0, n_splits=30, n_bootstrap=40)
    assert 0.75 < result["ratio"] < 1.33 and result["ratio low"] <= 1 <= result["ratio high"]
    assert result["intersection"] >= 8 and result["uniform chance"] == pytest.approx(300 * (15 / 300) ** 3)
    assert result["within"] > 8
    other = np.zeros((3, 100))
    other[2, 40:52] = 2.0
    differ = dict(alike, c=scaled(rng, 36, other))
    lower = intersection_ratio(differ, 5.0, n_splits=30, n_bootstrap=40)
    assert lower["ratio"] < 0.3 and lower["ratio high"] < result["ratio low"]
    for found in (result, lower):
        assert found["ratio low"] <= found["ratio"] <= found["ratio high"]
    with pytest.raises(ValueError, match="fewer than 3 pairs"):
        intersection_ratio(dict(alike, c=alike["c"][:2]), 5.0)


def test_the_pairs_bootstrap_interval_covers_the_mean_at_its_level_and_narrows_with_more_pairs():
    """A mean of n normal pairs (one neuron, one dataset): its 95% bootstrap interval covers the true mean 0 in
    about 95% of 200 seeds (at least 88%), and is about half as wide with 4 times the pairs."""
    def first_neuron(means):
        return means["d"][:, 0]

    covered, widths = 0, {16: [], 64: []}
    for seed in range(200):
        rng = np.random.default_rng(seed)
        for n in widths:
            low, high = pairs_bootstrap({"d": rng.normal(size=(n, 1, 2))}, first_neuron, n_resamples=199, seed=seed)
            widths[n].append(high - low)
            covered += n == 64 and low <= 0 <= high
    assert covered >= 176
    assert 0.4 < np.mean(widths[64]) / np.mean(widths[16]) < 0.6
