"""The convergence study's measures and its choice of a cheaper setting, on ladders of known error."""

import numpy as np
import pytest
import torch

from neuron_ig.engine.step_ladder import StepLadder, dividing_steps
from neuron_ig.studies.convergence import (
    ATTRIBUTION,
    COMPLETENESS,
    cheapest_match,
    convergence_table,
    spread,
)

STEPS = dividing_steps(40, 4)  # 4, 5, 8, 10, 20, 40


def known_ladder(pairs: int, seed: int, *, error: float = 1.0) -> StepLadder:
    """NIG that the left and right rules miss by +-error/m (first order), so that their mean, the trapezoid, is
    exact; the cut misses F(x) - F(x') the same way."""
    rng = np.random.default_rng(seed)
    truth = torch.from_numpy(rng.normal(size=(pairs, 2, 50))).float()
    direction = torch.from_numpy(rng.normal(size=(pairs, 2, 50))).float()
    change = torch.from_numpy(rng.uniform(0.2, 0.6, pairs)).float()
    inverse = torch.tensor([error / m for m in STEPS])
    left = truth[None] + inverse[:, None, None, None] * direction[None]
    right = truth[None] - inverse[:, None, None, None] * direction[None]
    cut_left, cut_right = change[None] + inverse[:, None] * change[None], change[None] - inverse[:, None] * change[None]
    return StepLadder(steps=list(STEPS), nig={"left": left, "right": right, "trapezoid": (left + right) / 2},
                      cut={"left": cut_left, "right": cut_right, "trapezoid": (cut_left + cut_right) / 2},
                      score=0.5 + change, baseline_score=torch.full((pairs,), 0.5))


@pytest.fixture(scope="module")
def table():
    ladders = {("a", 1): known_ladder(5, 0), ("a", 0): known_ladder(4, 1), ("b", 1): known_ladder(3, 2)}
    return convergence_table(ladders, [1.0, 10.0], n_bootstrap=50)


def test_spread():
    assert spread(16, 3) == [6, 5, 5]
    assert spread(2, 3) == [1, 1, 0]


def test_errors_shrink_as_one_over_the_steps_and_the_reference_agrees_with_itself(table):
    left = table[(table["rule"] == "left") & (table["measure"] == COMPLETENESS)].set_index("steps")["value"]
    assert np.allclose(left.to_numpy(), [1 / m for m in STEPS], rtol=1e-4)
    trapezoid = table[table["rule"] == "trapezoid"]
    assert np.allclose(trapezoid.loc[trapezoid["measure"].isin([COMPLETENESS, ATTRIBUTION]), "value"], 0, atol=1e-5)
    overlaps = trapezoid[trapezoid["measure"].str.startswith("Jaccard")]
    assert set(overlaps["measure"]) == {"Jaccard top 1% (relevant)", "Jaccard top 1% (non-relevant)",
                                        "Jaccard top 10% (relevant)", "Jaccard top 10% (non-relevant)"}
    assert (overlaps["value"] == 1).all()
    assert (table["low"] <= table["value"] + 1e-9).all() and (table["value"] <= table["high"] + 1e-9).all()
    assert set(table.loc[table["measure"] == COMPLETENESS, "pairs"]) == {12}
    assert set(table.loc[table["measure"] == "Jaccard top 1% (relevant)", "pairs"]) == {8}


def test_the_cheapest_match_is_the_exact_rule_at_the_fewest_steps(table):
    match = cheapest_match(table, rule="left", steps=20)
    assert match == {"rule": "trapezoid", "steps": 4, "cost": pytest.approx(5 / 21)}


def test_no_match_when_nothing_cheaper_is_as_good(table):
    one_sided = table[table["rule"] != "trapezoid"]
    assert cheapest_match(one_sided, rule="left", steps=20) is None
    assert cheapest_match(table, rule="trapezoid", steps=4) is None
    with pytest.raises(ValueError, match="not on the ladder"):
        cheapest_match(table, rule="left", steps=50)


def test_no_ladder_is_refused():
    with pytest.raises(ValueError, match="no ladder"):
        convergence_table({}, [1.0])
