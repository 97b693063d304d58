"""The change F(x) - F(x') per pair: flagged below a threshold, counted, dropped; the query split by hash and the
informative evaluation queries."""

import numpy as np
import pytest

from neuron_ig.ir.query_split import EVALUATION, SELECTION, query_part, split_queries
from neuron_ig.studies.aggregation import class_mean
from neuron_ig.studies.change import (
    change_distribution,
    change_table,
    drop_small_change,
    score_change,
    small_change,
)
from neuron_ig.studies.results import DatasetNIG


def result(score, baseline, label=0):
    n = len(score)
    rng = np.random.default_rng(n)
    return DatasetNIG(attributions=rng.normal(size=(n, 4, 2, 3)).astype(np.float32), score=np.array(score),
                      baseline_score=np.array(baseline), relevance=1 - np.array(score), labels=np.full(n, label),
                      query_ids=np.array([f"q{i}" for i in range(n)]), doc_ids=np.array([f"d{i}" for i in range(n)]),
                      layer_names=["0", "1"], manifest={"n_pairs": n, "n_correct": int((np.array(score) > 0.5).sum()),
                                                        "parameters": {"dataset": "x"}})


NON_RELEVANT = result([0.99, 0.88, 0.86, 0.95, 0.4], [0.87, 0.87, 0.87, 0.87, 0.87])


def test_small_change_flags_pairs_with_little_or_negative_change():
    assert score_change(NON_RELEVANT) == pytest.approx([0.12, 0.01, -0.01, 0.08, -0.47])
    assert small_change(NON_RELEVANT, 0.05).tolist() == [False, True, True, False, True]
    table = change_table({"x": NON_RELEVANT}, 0.05)
    row = table.loc["x"]
    assert row["pairs"] == 4 and row["below min_change"] == 2 and row["negative"] == 1  # correct pairs only
    assert row["smallest change"] == pytest.approx(-0.01) and row["median change"] == pytest.approx(0.045)
    long = change_distribution({"x": NON_RELEVANT})
    assert len(long) == 5 and long["class"].unique().tolist() == ["non-relevant"] and long["correct"].sum() == 4


def test_drop_small_change_keeps_the_other_pairs_and_says_so():
    kept = drop_small_change(NON_RELEVANT, 0.05)
    assert kept.query_ids.tolist() == ["q0", "q3"] and kept.attributions.shape == (2, 4, 2, 3)
    assert kept.manifest["n_pairs"] == 2 and kept.manifest["n_correct"] == 2
    assert kept.manifest["min_change"] == 0.05 and kept.manifest["n_small_change_dropped"] == 3
    np.testing.assert_allclose(class_mean(kept), NON_RELEVANT.total()[[0, 3]].mean(axis=0), rtol=1e-6)
    assert drop_small_change(NON_RELEVANT, -1.0).attributions.shape == NON_RELEVANT.attributions.shape


def test_the_query_split_depends_on_the_seed_and_the_id_only():
    ids = [f"q{i}" for i in range(2000)]
    parts = split_queries(ids, seed=3)
    assert sorted(parts[SELECTION] + parts[EVALUATION]) == sorted(ids) and not set(parts[SELECTION]) & set(parts[EVALUATION])
    assert 900 < len(parts[SELECTION]) < 1100  # binomial(2000, 0.5): sd 22
    assert split_queries(ids[:50], seed=3)[SELECTION] == [q for q in parts[SELECTION] if q in set(ids[:50])]
    assert query_part("q7", seed=3) == query_part("q7", seed=3) and split_queries(ids, seed=4) != parts
    assert 250 < len(split_queries(ids, seed=3, selection_share=0.15)[SELECTION]) < 350
    # fixed by SHA-256, on any machine: the split recorded on a page can be checked
    assert [query_part(q) for q in ("1", "2", "3", "4", "5", "6")] == [EVALUATION, EVALUATION, SELECTION, SELECTION,
                                                                       EVALUATION, EVALUATION]
    with pytest.raises(ValueError, match="selection_share"):
        query_part("q1", selection_share=1.0)


def test_informative_queries_have_a_relevant_document_in_the_reranked_depth():
    from neuron_ig.ir.query_split import informative_queries

    run = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d3": 1.0}, "q3": {}}
    qrels = {"q1": {"d2": 1, "d9": 2}, "q2": {"d3": 0, "d8": 1}, "q3": {"d1": 1}}
    assert informative_queries(run, qrels) == ["q1"]


def test_drop_small_changes_keeps_everything_at_zero_and_applies_the_rule_to_every_dataset():
    from neuron_ig.studies.change import drop_small_changes

    results = {"a": result([0.9, 0.6, 0.2], [0.1, 0.58, 0.4]), "b": result([0.9], [0.2])}
    assert drop_small_changes(results, 0) == results
    dropped = drop_small_changes(results, 0.05)
    assert [len(r.score) for r in dropped.values()] == [1, 1]
    with pytest.raises(ValueError, match="min_change"):
        drop_small_changes(results, -1)
