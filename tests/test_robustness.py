"""Resampling the book's own pairs: membership probability, rank-biased overlap, agreement within and between datasets."""

import numpy as np
import pytest

from neuron_ig.stats.agreement import (
    membership_probability,
    membership_summary,
    rank_biased_overlap,
)
from neuron_ig.stats.nulls import agreement_table


def rbo_by_definition(a, b, persistence):
    """RBO_ext (Webber et al. 2010, eq. 32) from the top-k lists, the slow way."""
    order_a, order_b = list(np.argsort(-a, axis=None, kind="stable")), list(np.argsort(-b, axis=None, kind="stable"))
    n, total = len(order_a), 0.0
    for k in range(1, n + 1):
        total += len(set(order_a[:k]) & set(order_b[:k])) / k * persistence ** k
    overlap = len(set(order_a) & set(order_b)) / n
    return overlap * persistence ** n + (1 - persistence) / persistence * total


def test_rank_biased_overlap():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 20)), rng.normal(size=(3, 20))
    for persistence in (0.5, 0.9, 0.98):
        assert rank_biased_overlap(a, b, persistence=persistence) == pytest.approx(rbo_by_definition(a, b, persistence))
    assert rank_biased_overlap(a, a) == pytest.approx(1.0)
    swapped_top = a.copy()
    order = np.argsort(-a, axis=None)
    swapped_bottom = a.copy()
    swapped_top.flat[order[0]], swapped_top.flat[order[1]] = a.flat[order[1]], a.flat[order[0]]
    swapped_bottom.flat[order[-1]], swapped_bottom.flat[order[-2]] = a.flat[order[-2]], a.flat[order[-1]]
    assert rank_biased_overlap(a, swapped_top, persistence=0.9) < rank_biased_overlap(a, swapped_bottom, persistence=0.9)
    with pytest.raises(ValueError, match="different shapes"):
        rank_biased_overlap(a, b[:2])
    with pytest.raises(ValueError, match="persistence"):
        rank_biased_overlap(a, b, persistence=1.0)


def test_membership_probability_is_high_for_a_strong_neuron_and_sums_to_the_set_size():
    rng = np.random.default_rng(1)
    per_pair = rng.normal(size=(30, 2, 50))
    per_pair[:, 0, 7] += 3.0
    probability = membership_probability(per_pair, 2.0, n_bootstrap=100)
    assert probability.shape == (2, 50) and probability[0, 7] == 1.0
    assert probability.sum() == pytest.approx(2)  # every resample's set has ceil(2% of 100) = 2 neurons
    assert probability.max(initial=0, where=np.arange(100).reshape(2, 50) != 7) < 1.0
    assert (membership_probability(per_pair, 2.0, n_bootstrap=100) == probability).all()


def test_the_membership_summary_reads_the_neurons_actually_selected():
    rng = np.random.default_rng(3)
    per_pair = rng.normal(size=(30, 2, 50))
    per_pair[:, 0, 7] += 3.0                    # selected, always
    per_pair[0, 1, 9] += 60.0                   # selected by the full mean, carried by 1 pair of 30
    summary = membership_summary(per_pair, 2.0, n_bootstrap=200)
    probability = membership_probability(per_pair, 2.0, n_bootstrap=200)
    assert summary["set size"] == 2
    assert summary["mean probability of the selected"] == pytest.approx((probability[0, 7] + probability[1, 9]) / 2)
    assert probability[1, 9] < 0.9 and summary["selected with probability >= 0.9"] == 1  # the doubt is shown


def test_agreement_within_equals_agreement_between_datasets_drawn_alike():
    rng = np.random.default_rng(2)
    signal = np.zeros((2, 100))
    signal[0, :8] = 1.0
    per_pair = {name: rng.normal(size=(24, 2, 100)) + signal for name in ("a", "b")}
    per_pair["c"] = rng.normal(size=(24, 2, 100))
    table = agreement_table(per_pair, 4.0, n_splits=20)
    assert list(table.index) == ["within a", "within b", "within c", "a / b", "a / c", "b / c"]
    within = table.loc[["within a", "within b"]].mean()
    assert abs(table.loc["a / b", "Jaccard"] - within["Jaccard"]) < 0.1 and abs(table.loc["a / b", "RBO"] - within["RBO"]) < 0.1
    assert table.loc["a / c", "Jaccard"] < within["Jaccard"] / 2


def test_variant_runs_apply_the_pages_min_change_rule_to_both_runs(ir_datasets_home, neuron_ig_cache, tmp_path):
    from neuron_ig.engine.models import random_cross_encoder
    from neuron_ig.studies.change import score_change
    from neuron_ig.studies.robustness import variant_runs

    encoder = random_cross_encoder(num_layers=2, seed=10)  # calls some Cranfield pairs relevant, some not
    encoder.save(tmp_path / "m")
    defaults = dict(n_pairs=4, seed=0, steps=3, max_length=64, progress=False)
    variants = {"seed 1": {"seed": 1}}
    kept = variant_runs(str(tmp_path / "m"), ["cranfield"], 1, variants, **defaults)["seed 1"]
    threshold = 0.003  # the random model's changes are of this order: about half of the pairs fall below it
    dropped = variant_runs(str(tmp_path / "m"), ["cranfield"], 1, variants, min_change=threshold, **defaults)["seed 1"]
    for full, cut in zip(kept, dropped):  # the default run on the variant's pairs, then the variant
        change = score_change(full["cranfield"])
        assert len(cut["cranfield"].score) == int((change >= threshold).sum())
        assert (score_change(cut["cranfield"]) >= threshold).all()
    assert all(0 < len(cut["cranfield"].score) < len(full["cranfield"].score) for full, cut in zip(kept, dropped))
