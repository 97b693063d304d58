"""The step ladder: every (rule, step count) of one fine pass equals its own NIG pass."""

import pytest
import torch
from test_nig import LABELS, PASSAGES, QUERIES

from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.models import random_cross_encoder
from neuron_ig.engine.nig import RULES, neuron_integrated_gradients
from neuron_ig.engine.step_ladder import dividing_steps, step_ladder


@pytest.fixture(scope="module")
def encoder():
    return random_cross_encoder(num_labels=2, num_layers=2, seed=3)


@pytest.fixture(scope="module")
def encoded(encoder):
    return encode_pairs(encoder.tokenizer, QUERIES, PASSAGES, max_length=40)


def test_dividing_steps():
    assert dividing_steps(400, 10) == [10, 16, 20, 25, 40, 50, 80, 100, 200, 400]
    assert dividing_steps(12) == [1, 2, 3, 4, 6, 12]
    with pytest.raises(ValueError, match="positive int"):
        dividing_steps(0)


@pytest.mark.parametrize("baseline", ["PAD_QUERY", "PAD_ALL"])
def test_every_rung_equals_its_own_nig_pass(encoder, encoded, baseline):
    # batch_rows 7 cuts the 25 points into chunks whose grid points fall across chunk borders
    ladder = step_ladder(encoder, encoded, LABELS, finest=24, lowest=3, baseline=baseline, batch_rows=7)
    assert ladder.steps == [3, 4, 6, 8, 12, 24]
    for rule in RULES:
        for steps in ladder.steps:
            direct = neuron_integrated_gradients(encoder, encoded, LABELS, steps=steps, rule=rule, baseline=baseline)
            expected = direct.total()
            got = ladder.at(rule, steps)
            assert got.shape == expected.shape
            scale = expected.abs().max()
            assert scale > 1e-6
            assert torch.allclose(got, expected, atol=2e-5 * scale, rtol=1e-4), (rule, steps)
            assert torch.allclose(ladder.score, direct.score, atol=1e-6)
            assert torch.allclose(ladder.baseline_score, direct.baseline_score, atol=1e-6)


def test_rules_differ_and_trapezoid_is_their_mean(encoder, encoded):
    ladder = step_ladder(encoder, encoded, LABELS, finest=8, lowest=2)
    left, right, trapezoid = (ladder.at(rule, 2) for rule in RULES)
    assert not torch.allclose(left, right)
    assert torch.allclose(trapezoid, (left + right) / 2)


def test_cut_completeness_improves_with_steps_and_faster_with_the_trapezoid(encoder, encoded):
    name, module = list(encoder.layer_outputs().items())[-1]
    ladder = step_ladder(encoder, encoded, LABELS, finest=64, lowest=2, cut=(name, module))
    change = ladder.score - ladder.baseline_score
    gap = {rule: (ladder.cut[rule] - change).abs().max(dim=1).values for rule in RULES}  # [counts]
    for rule in RULES:
        assert gap[rule][-1] < gap[rule][0]
        assert gap[rule][-1] < 0.02 * change.abs().max()
    # second order against first: the trapezoid at 8 steps is closer than either one-sided rule at 64
    coarse, fine = ladder.steps.index(8), ladder.steps.index(64)
    assert gap["trapezoid"][coarse] < min(gap["left"][fine], gap["right"][fine])
    assert torch.isnan(step_ladder(encoder, encoded, LABELS, finest=4, lowest=2).cut["left"]).all()


def test_bad_ladders_are_refused(encoder, encoded):
    with pytest.raises(ValueError, match="lower `lowest`"):
        step_ladder(encoder, encoded, LABELS, finest=7, lowest=8)
    with pytest.raises(ValueError, match="labels must be 3 values"):
        step_ladder(encoder, encoded, [1, 2, 0], finest=4, lowest=2)
    ladder = step_ladder(encoder, encoded, LABELS, finest=4, lowest=2)
    with pytest.raises(ValueError, match="not on this ladder"):
        ladder.at("left", 3)
