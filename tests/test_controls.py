"""Random controls of a pruned set and the test against them: a control tested as if it were a set gets a
uniform p-value; the old paired test against the mean of two controls does not; matched controls keep the
per-layer counts and the activation profile; the mean activation is read over real tokens only."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.models import random_cross_encoder
from neuron_ig.stats.controls import (
    PREDICTION_INTERVAL,
    RANK,
    activation_matched_control,
    activation_matched_controls,
    control_method,
    control_test,
    control_test_table,
    controls_as_sets,
    detectable_power,
    layer_matched_controls,
    prediction_interval_p_value,
    queries_for_power,
    query_control_test,
    random_control,
    rank_p_value,
    set_and_control_deltas,
    set_and_control_per_query,
)
from neuron_ig.studies.pruning import mean_activation


def test_rank_p_value_counts_the_controls_that_hurt_as_much():
    controls = [0.1, 0.2, -0.3]
    assert rank_p_value(-0.5, controls) == pytest.approx(1 / 4)
    assert rank_p_value(0.15, controls) == pytest.approx(3 / 4)
    assert rank_p_value(-0.3, controls) == pytest.approx(2 / 4)  # a tie counts against the set


def test_prediction_interval_p_value_is_the_t_formula():
    controls = np.array([-0.01, 0.02, 0.0, -0.03, 0.01])
    t, p = prediction_interval_p_value(-0.1, controls)
    expected = (-0.1 - controls.mean()) / (controls.std(ddof=1) * np.sqrt(1 + 1 / 5))
    assert t == pytest.approx(expected) and p == pytest.approx(stats.t.cdf(expected, 4))
    # controls that all agree leave the spread unknown: the rank p-value, not 0
    assert prediction_interval_p_value(-0.1, [0.0, 0.0]) == (-np.inf, pytest.approx(1 / 3))
    assert prediction_interval_p_value(0.0, [0.0, 0.0]) == (0.0, 1.0)  # a tie counts against the set
    with pytest.raises(ValueError, match="at least 19 per set"):
        rank_p_value(0.0, [0.1])


def test_the_method_is_chosen_for_the_family():
    assert control_method(19, 1) == RANK            # floor 0.05 = 0.05 / 1
    assert control_method(19, 2) == PREDICTION_INTERVAL
    assert control_method(99, 8) == PREDICTION_INTERVAL  # floor 0.01 > 0.05 / 8
    assert control_method(999, 8) == RANK
    result = control_test(-0.1, np.linspace(-0.02, 0.02, 19), family_size=4)
    assert result["method"] == PREDICTION_INTERVAL and result["p"] == result["p t"] and result["effect"] == pytest.approx(-0.1)
    assert result["interval low"] < 0 < result["interval high"]


def per_set_deltas(rng, sets: int, queries: int = 30, set_sd: float = 0.01, query_sd: float = 0.05) -> np.ndarray:
    """Per-query delta nDCG@10 of random sets, ``[sets, queries]``: each set has its own effect on every query
    (it prunes other neurons) plus per-query noise."""
    return rng.normal(-0.02, set_sd, size=(sets, 1)) + rng.normal(0, query_sd, size=(sets, queries))


def test_a_control_tested_as_a_set_gets_a_uniform_p_value():
    """2,000 seeds, R = 19: the t prediction-interval p-value passes a KS test against uniform, the rank
    p-value takes each of its 20 values equally often (chi-square); both reject at 5% about 5% of the time."""
    rng = np.random.default_rng(0)
    p_t, p_rank = [], []
    for _ in range(2000):
        deltas = per_set_deltas(rng, 20).mean(axis=1)
        p_t.append(prediction_interval_p_value(deltas[0], deltas[1:])[1])
        p_rank.append(rank_p_value(deltas[0], deltas[1:]))
    assert stats.kstest(p_t, "uniform").pvalue > 0.01
    counts = np.bincount(np.rint(np.array(p_rank) * 20).astype(int), minlength=21)[1:]
    assert stats.chisquare(counts).pvalue > 0.01
    # binomial(2000, 0.05) stays within 75-125 with probability > 99.9%
    assert 75 <= (np.array(p_t) <= 0.05).sum() <= 125 and 75 <= (np.array(p_rank) <= 0.05).sum() <= 125


def test_the_old_paired_test_against_two_controls_calls_a_control_a_finding():
    """The page's old test compared a set with the per-query mean of 2 random sets over queries: the spread
    between sets is not in its null, so with many queries a random set 'hurts more than random' far more often
    than 5% (the paper's 1,000 queries make it worse)."""
    rng = np.random.default_rng(1)
    old, new = 0, 0
    for _ in range(400):
        deltas = per_set_deltas(rng, 20, queries=100)
        old += stats.ttest_rel(deltas[0], deltas[1:3].mean(axis=0), alternative="less").pvalue <= 0.05
        new += control_test(deltas[0].mean(), deltas[1:].mean(axis=1))["p"] <= 0.05
    assert old / 400 > 0.15 and new / 400 < 0.1, (old, new)


# --- matched controls ----------------------------------------------------------------------------

def test_layer_matched_controls_are_the_pruning_studys_controls():
    mask = np.zeros((3, 50), dtype=bool)
    mask[0, :4] = mask[2, 10:13] = True
    controls = layer_matched_controls(mask, 5, seed=7)
    assert all((c.sum(axis=1) == mask.sum(axis=1)).all() for c in controls)
    assert all((c == random_control(mask, 7 + i)).all() for i, c in enumerate(controls))
    assert len({c.tobytes() for c in controls}) == 5


def test_activation_matched_controls_keep_the_activation_profile():
    rng = np.random.default_rng(0)
    activation = rng.lognormal(size=(2, 200))
    mask = np.zeros((2, 200), dtype=bool)
    mask[0, np.argsort(activation[0])[-6:]] = True  # the busiest units of layer 0
    mask[1, np.argsort(activation[1])[:3]] = True   # the quietest of layer 1
    controls = activation_matched_controls(mask, activation, 20, seed=3)
    for control in controls:
        assert (control.sum(axis=1) == mask.sum(axis=1)).all()
        assert np.sort(activation[0][control[0]]).min() >= np.quantile(activation[0], 0.9) - 1e-12
        assert activation[1][control[1]].max() <= np.quantile(activation[1], 0.1) + 1e-12
    assert (activation_matched_control(mask, activation, 3) == controls[0]).all()
    plain = np.mean([activation[0][random_control(mask, s)[0]].mean() for s in range(20)])
    matched = np.mean([activation[0][c[0]].mean() for c in controls])
    assert matched > 2 * plain
    with pytest.raises(ValueError, match="mean activation of every neuron"):
        activation_matched_control(mask, activation[:1], 0)


@pytest.fixture(scope="module")
def encoder():
    return random_cross_encoder(num_layers=2, intermediate_size=32, seed=4)


def test_mean_activation_averages_real_tokens_only(encoder):
    queries, passages = ["jet noise", "a swept wing in transonic flow at high angle"], ["engine", "boundary layer on a wing"]
    together = encode_pairs(encoder.tokenizer, queries, passages, max_length=32)
    assert (together.attention_mask == 0).any()
    alone = [encode_pairs(encoder.tokenizer, [q], [p], max_length=32) for q, p in zip(queries, passages)]
    # reference: capture every output, sum |activation| over real tokens
    sums, tokens = np.zeros((2, 32)), 0
    for encoded in alone:
        captured = []
        handles = [m.register_forward_hook(lambda m, i, out: captured.append(out.detach())) for m in encoder.ffn_layers().values()]
        with torch.no_grad():
            encoder.model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask, token_type_ids=encoded.token_type_ids)
        for h in handles:
            h.remove()
        sums += np.stack([out[0].abs().sum(dim=0).numpy() for out in captured])
        tokens += encoded.input_ids.shape[1]
    expected = sums / tokens
    np.testing.assert_allclose(mean_activation(encoder, together), expected, rtol=1e-5)
    np.testing.assert_allclose(mean_activation(encoder, [([0], alone[0]), ([1], alone[1])]), expected, rtol=1e-5)
    assert not any(m._forward_hooks for m in encoder.ffn_layers().values())
    signed = mean_activation(encoder, together, absolute=False)
    assert (signed <= mean_activation(encoder, together) + 1e-7).all() and (signed < 0).any()


# --- the table over a pruning study's per-query results --------------------------------------------------

def per_query_table(set_effect: float, controls: int = 19, queries: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for task in ("in", "out"):
        for q in range(queries):
            rows.append({"scheme": "unpruned", "variant": "set", "task": task, "query_id": str(q), "nDCG@10": 0.5})
            for scheme in ("relevant · top: in", "relevant · fusion"):
                effect = set_effect if scheme.endswith("in") else 0.0
                rows.append({"scheme": scheme, "variant": "set", "task": task, "query_id": str(q), "nDCG@10": 0.5 + effect})
                for s in range(controls):
                    rows.append({"scheme": scheme, "variant": f"random {s}", "task": task, "query_id": str(q),
                                 "nDCG@10": 0.5 + rng.normal(0, 0.01)})
    table = pd.DataFrame(rows)
    table["p"], table["class"] = 1.0, "relevant"
    table["set"] = table["scheme"].str.split(" · ").str[-1]
    return table


def test_control_test_table_tests_every_set_against_its_controls():
    per_query = per_query_table(-0.2)
    set_delta, deltas = set_and_control_deltas(per_query, "relevant · top: in", "in")
    assert set_delta == pytest.approx(-0.2) and len(deltas) == 19
    table = control_test_table(per_query)
    assert len(table) == 4 and set(table["family size"]) == {2}
    assert (table["method"] == PREDICTION_INTERVAL).all()  # 1/20 > 0.05/2
    top = table[table["set"] == "top: in"]
    assert (top["p vs controls (Holm)"] < 1e-6).all()
    assert (table[table["set"] == "fusion"]["p vs controls (Holm)"] > 0.01).all()
    one_family = control_test_table(per_query, family=())
    assert set(one_family["family size"]) == {4}
    with pytest.raises(ValueError, match="family columns"):
        control_test_table(per_query.drop(columns="set"))


def zero_heavy(rng: np.random.Generator, queries: int = 20) -> np.ndarray:
    """Per-query deltas of a pruned set bounded at 0 and mostly 0: pruning moves few rankings, and only down."""
    return np.where(rng.random(queries) < 0.85, 0.0, -rng.uniform(0, 0.3, queries))


def test_on_zero_heavy_bounded_deltas_the_old_rule_fires_and_the_query_control_test_keeps_its_level():
    """A set exchangeable with its 19 controls, deltas bounded at 0 and mostly 0 (as the default build's are):
    the t prediction interval (the old rule for a family of 8) calls it a finding twice as often as its level and
    down to p ~ 0.002; the query-and-control test stays at its level and never goes below the controls' floor."""
    old, new = [], []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        pruned, controls = zero_heavy(rng), np.stack([zero_heavy(rng) for _ in range(19)])
        old.append(control_test(pruned.mean(), controls.mean(axis=1), family_size=8)["p"])
        new.append(query_control_test(pruned, controls, n_bootstrap=499, seed=seed)["p"])
    old, new = np.array(old), np.array(new)
    assert np.mean(old <= 0.05) >= 0.08 and old.min() < 0.01
    assert np.mean(new <= 0.05) <= 0.06 and new.min() >= 1 / 20


def test_a_set_that_hurts_on_many_queries_passes_and_one_that_hurts_on_one_query_does_not():
    rng = np.random.default_rng(0)
    controls = np.stack([zero_heavy(rng) for _ in range(19)])
    broad = zero_heavy(rng) - 0.1  # every query loses 0.1 more than under a control
    result = query_control_test(broad, controls, n_bootstrap=999)
    assert result["p rank"] == pytest.approx(1 / 20) and result["p"] == pytest.approx(1 / 20)
    assert result["interval low"] < result["effect"] < result["interval high"] < 0
    one_query = np.zeros(20)
    one_query[3] = -5.0  # (impossible for nDCG, but) a single query carries the whole mean
    narrow = query_control_test(one_query, controls, n_bootstrap=999)
    assert narrow["p rank"] == pytest.approx(1 / 20) and narrow["p queries"] > 0.2 and narrow["p"] > 0.2


def test_the_per_query_deltas_come_from_the_study_table_and_the_power_follows_the_spread():
    rows = [{"task": "t", "scheme": "unpruned", "variant": "set", "query_id": q, "nDCG@10": 0.5} for q in "abc"]
    rows += [{"task": "t", "scheme": "s", "variant": "set", "query_id": q, "nDCG@10": v} for q, v in zip("abc", (0.4, 0.5, 0.3))]
    rows += [{"task": "t", "scheme": "s", "variant": f"random {i}", "query_id": q, "nDCG@10": 0.5 - 0.1 * i * (q == "b")}
             for i in range(3) for q in "abc"]
    pruned, controls = set_and_control_per_query(pd.DataFrame(rows), "s", "t")
    assert pruned.tolist() == pytest.approx([-0.1, 0.0, -0.2]) and controls.shape == (3, 3)
    assert controls[:, 1].tolist() == pytest.approx([0.0, -0.1, -0.2]) and not controls[:, [0, 2]].any()
    rng = np.random.default_rng(1)
    noisy = rng.normal(0, 0.2, (10, 100))
    assert detectable_power(noisy, -0.05) > detectable_power(noisy[:, :20], -0.05) > 0.05


def test_controls_treated_as_sets_fire_at_most_at_the_level_while_the_query_bootstrap_alone_would_not():
    """Random sets that differ in how much they hurt (each its own mean, as real random sets do): one of them tested as
    the set against the others often hurts more over the queries (p queries small), but it ranks among its controls
    as chance has it, so the rule fires at most at its level."""
    fired, query_only, total = 0, 0, 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        own = -rng.exponential(0.02, (20, 1))  # each control's own harm
        controls = np.clip(own + rng.normal(0, 0.05, (20, 40)) * (rng.random((20, 40)) < 0.3), -1, 0)
        table = controls_as_sets(controls, n_bootstrap=99, seed=seed)
        assert table["control"].tolist() == list(range(20)) and (table["p"] >= 1 / 20).all()
        fired, query_only, total = fired + table["fires"].sum(), query_only + (table["p queries"] <= 0.05).sum(), total + 20
    assert fired / total <= 0.05 < query_only / total
    with pytest.raises(ValueError, match="3 controls or more"):
        controls_as_sets(np.zeros((2, 5)))


def test_power_uses_the_sets_own_spread_when_given_and_the_queries_needed_reach_the_power():
    rng = np.random.default_rng(3)
    controls = rng.normal(0, 0.02, (10, 12))  # random sets barely move the queries
    wild = rng.normal(-0.05, 0.2, 12)  # the set moves some queries far
    assert detectable_power(controls, -0.05) > 0.99 > 0.5 > detectable_power(controls, -0.05, set_per_query=wild)
    needed = queries_for_power(controls, -0.05, set_per_query=wild)
    spread = np.std(wild - controls.mean(axis=0), ddof=1)
    assert abs(needed - ((1.6448536 + 0.8416212) * spread / 0.05) ** 2) <= 1
    assert queries_for_power(controls[:1], -0.05) != queries_for_power(controls[:1], -0.05)  # NaN: one control
