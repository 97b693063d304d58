"""The sensitivity page's variants, claims per variant, surviving neurons and token-type shares."""

import numpy as np
import pandas as pd
import pytest
from test_figures_robustness import toy_result

from neuron_ig.studies.sensitivity import (
    AS_BUILT,
    Variant,
    baseline_survivors,
    conditional_claims,
    sensitivity_claims,
    sensitivity_variants,
    top_set_segment_shares,
)
from neuron_ig.studies.settings import NIGParameters


def test_variants_change_one_choice_each_and_skip_the_books_own_values():
    variants = sensitivity_variants(NIGParameters(), baselines=["PAD_QUERY", "pad_all", "NEUTRAL"], rules=["left", "right"],
                                    min_changes=[0.0, 0.05])
    assert [v.name for v in variants] == [AS_BUILT, "baseline PAD_ALL", "baseline NEUTRAL", "rule right", "min_change 0.05",
                                          "every drawn pair"]
    assert variants[1].overrides == {"baseline": "PAD_ALL"} and variants[-1].correct_only is False
    assert variants[4].overrides == {"min_change": 0.05}


@pytest.mark.parametrize("kwargs, message", [
    ({"baselines": ["PAD_NOTHING"]}, "unknown baseline 'PAD_NOTHING': use one of PAD_QUERY"),
    ({"rules": ["middle"]}, "unknown rule 'middle': use one of left, right, trapezoid"),
])
def test_bad_names_are_refused_before_anything_runs(kwargs, message):
    arguments = {"baselines": ["PAD_QUERY"], "rules": ["left"], "min_changes": [0.0], **kwargs}
    with pytest.raises(ValueError, match=message):
        sensitivity_variants(NIGParameters(), **arguments)


def noise_results(seed: int, pairs: int = 8) -> dict:
    """Per class, three datasets of pure noise: NIG with no structure (every claim should fail)."""
    rng = np.random.default_rng(seed)
    return {label: {d: toy_result(rng.normal(size=(pairs, 4, 2, 60)), np.full(pairs, 0.9), label=label, dataset=d)
                    for d in ("in", "out1", "out2")} for label in (1, 0)}


def test_claims_are_tested_per_variant_and_noise_passes_none():
    variants = [Variant(AS_BUILT, "as built", "x"), Variant("baseline B", "baseline", "B", {"baseline": "B"})]
    results = {AS_BUILT: noise_results(0), "baseline B": noise_results(1)}
    table = sensitivity_claims(results, variants, "in", 5.0, class_names={1: "positive", 0: "negative"},
                               n_resamples=99, ood_resamples=49)
    assert len(table) == 2 * 2 * 4  # variants x classes x claims
    assert set(table["variant"]) == {AS_BUILT, "baseline B"} and set(table["pairs"]) == {24}
    assert list(table["short"][:4]) == ["concentration", "common core", "relevance", "OOD neurons"]
    assert table["p"].notna().all()  # both classes' pairs give every claim its data
    assert (table["verdict"] != "supported").all()


def test_a_collection_below_target_is_left_out_of_the_relevance_and_ood_claims():
    variants = [Variant(AS_BUILT, "as built", "x")]
    table = sensitivity_claims({AS_BUILT: noise_results(0)}, variants, "in", 5.0, class_names={1: "positive"},
                               below_target={"out1": ["nDCG@10 minus BM25's"], "out2": ["relevant pairs in their class"]},
                               n_resamples=19, ood_resamples=19)
    ood = table[table["short"] == "OOD neurons"].iloc[0]
    assert ood["verdict"] == "model below target: not tested" and ood["note"].endswith("below target: out1, out2")
    relevance = table[table["short"] == "relevance"].iloc[0]
    assert np.isfinite(relevance["p"]) and "not tested where the model is below target" in relevance["note"]


def test_conditional_claims_are_those_whose_verdict_moves_with_the_choice():
    table = pd.DataFrame([
        {"class": "positive", "claim": "a", "variant": AS_BUILT, "choice": "as built", "verdict": "supported"},
        {"class": "positive", "claim": "a", "variant": "baseline B", "choice": "baseline", "verdict": "inconclusive"},
        {"class": "positive", "claim": "a", "variant": "rule right", "choice": "rule", "verdict": "supported"},
        {"class": "positive", "claim": "b", "variant": AS_BUILT, "choice": "as built", "verdict": "supported"},
        {"class": "positive", "claim": "b", "variant": "baseline B", "choice": "baseline", "verdict": "supported"},
        {"class": "positive", "claim": "b", "variant": "rule right", "choice": "rule", "verdict": "not supported"},
        {"class": "positive", "claim": "a", "variant": "min_change 0.05", "choice": "min_change", "verdict": "not computed"},
        {"class": "positive", "claim": "b", "variant": "min_change 0.05", "choice": "min_change", "verdict": "not computed"},
    ])
    table["short"] = table["claim"]
    assert list(conditional_claims(table, choice="baseline").index) == [("positive", "a")]
    assert list(conditional_claims(table, choice="rule").index) == [("positive", "b")]
    assert conditional_claims(table, choice="min_change").empty


def test_survivors_are_in_every_baselines_top_set():
    base = np.arange(100, dtype=float).reshape(2, 50)  # top 10%: the 10 largest, 90..99
    shifted = base.copy()
    shifted[1, 49] = -1  # 99 leaves the top set; 89 enters
    row = baseline_survivors({"A": base, "B": shifted, "C": base}, 10.0)
    assert row["set size"] == 10 and row["count"] == 9
    assert row["highest Jaccard"] == 1.0 and row["lowest Jaccard"] == pytest.approx(9 / 11)


def test_segment_shares_of_the_top_set():
    attributions = np.zeros((2, 4, 2, 50))
    attributions[:, 1, 0, :5] = 2.0  # query tokens carry the top neurons' NIG
    attributions[:, 3, 0, :5] = 1.0  # passage half as much
    attributions[:, 3, 1, 10:] = 0.01  # outside the top set: not counted
    shares = top_set_segment_shares(toy_result(attributions, [0.9, 0.9]), 5.0)
    assert shares == pytest.approx({"CLS": 0.0, "query": 2 / 3, "SEP": 0.0, "passage": 1 / 3})
