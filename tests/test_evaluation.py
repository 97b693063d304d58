"""ir_measures wrappers: nDCG@10 against a hand computation, per-query values, runs from model scores."""
import math

import pytest

from neuron_ig.ir.measures import (
    evaluate,
    ndcg_at_10,
    per_query,
    qrels_dict,
    rerank_run,
)

QRELS = {"q1": {"d1": 1, "d2": 1, "d9": 0}, "q2": {"d5": 2}}


def test_ndcg_at_10_matches_a_hand_computation():
    run = {"q1": {"d3": 3.0, "d1": 2.0, "d2": 1.0}}  # relevant at ranks 2 and 3 of 2 relevant
    expected = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert ndcg_at_10(run, QRELS) == pytest.approx(expected)  # 0.6934
    assert expected == pytest.approx(0.6934, abs=1e-4)


def test_evaluate_and_per_query():
    run = {"q1": {"d1": 2.0, "d2": 1.0}, "q2": {"d0": 5.0, "d5": 1.0}}
    values = per_query(run, QRELS, "RR@10")
    assert values == pytest.approx({"q1": 1.0, "q2": 0.5})
    result = evaluate(run, QRELS)
    assert set(result) == {"nDCG@10", "RR@10"}
    assert result["RR@10"] == pytest.approx(0.75)
    assert per_query(run, QRELS)["q1"] == pytest.approx(1.0)


def test_empty_ranking_counts_zero_and_unjudged_queries_are_ignored():
    run = {"q1": {"d1": 1.0}, "q2": {}, "unjudged": {"d1": 1.0}}
    assert per_query(run, QRELS) == pytest.approx({"q1": 1 / (1 + 1 / math.log2(3)), "q2": 0.0})


def test_run_without_judged_queries_is_refused():
    with pytest.raises(ValueError, match="share no query id"):
        evaluate({"x": {"d1": 1.0}}, QRELS)


def test_rerank_run_groups_scores_by_query():
    scores = {("q1", "d1"): 0.2, ("q1", "d2"): 0.9, ("q2", "d5"): 1}
    assert rerank_run(scores) == {"q1": {"d1": 0.2, "d2": 0.9}, "q2": {"d5": 1.0}}
    assert ndcg_at_10(rerank_run(scores), QRELS) == pytest.approx(1.0)


def test_qrels_dict_of_cranfield(ir_datasets_home):
    qrels = qrels_dict("cranfield")
    assert len(qrels) == 225
    assert sum(len(d) for d in qrels.values()) == 1837


def test_rerank_scores_the_bm25_candidates_of_cranfield_with_a_cross_encoder(ir_datasets_home, neuron_ig_cache):
    from neuron_ig.engine.models import random_cross_encoder
    from neuron_ig.studies.effectiveness import effectiveness, rerank

    encoder = random_cross_encoder(seed=2)
    bm25, model = rerank(encoder, "cranfield", depth=10, max_queries=15, progress=False)
    assert len(bm25) == 15 and {q: set(r) for q, r in bm25.items()} == {q: set(r) for q, r in model.items()}
    log_odds = [s for r in model.values() for s in r.values()]  # the re-ranking score: log-odds of relevance
    assert all(math.isfinite(s) for s in log_odds) and len(set(log_odds)) > 1
    values = effectiveness(encoder, "cranfield", depth=10, max_queries=15, n_pairs=10, progress=False)
    assert values["BM25 nDCG@10"] == pytest.approx(evaluate(bm25, qrels_dict("cranfield"))["nDCG@10"])
    assert values["accuracy relevant"] + values["accuracy non-relevant"] > 0
    assert list((neuron_ig_cache / "effectiveness").glob("cranfield-*.json")), "cached"


def test_example_pairs_share_a_query_one_relevant_one_not(ir_datasets_home, neuron_ig_cache):
    from neuron_ig.ir.pairs import example_pairs

    relevant, non_relevant = example_pairs("cranfield", seed=3)
    qrels = qrels_dict("cranfield")
    assert relevant.query_id == non_relevant.query_id and relevant.query == non_relevant.query
    assert qrels[relevant.query_id][relevant.doc_id] > 0 and relevant.label == 1
    assert qrels[relevant.query_id].get(non_relevant.doc_id, 0) <= 0 and non_relevant.label == 0
    assert example_pairs("cranfield", seed=3) == (relevant, non_relevant)


def test_collection_summary_of_a_real_ir_datasets_id(ir_datasets_home, neuron_ig_cache):
    """What the collections page shows for an id a user adds to `datasets`: here Cranfield, not an embedded one."""
    from neuron_ig.ir.measures import collection_summary
    from neuron_ig.report import narrative

    row = collection_summary("cranfield", depth=20)
    assert (row["documents"], row["queries"]) == (1400, 225)
    assert row["qrels"] == sum(len(judged) for judged in qrels_dict("cranfield").values()) > row["queries"]
    assert 0.1 < row["BM25 nDCG@10"] < 0.8 and 0.1 < row["BM25 RR@10"] <= 1
    assert row["first stage"] == "bm25s" and row["relevant grade"] == 1
    assert narrative.other_collections_text(["cranfield"]).startswith("The book's `datasets` also name `cranfield`:")
    assert narrative.other_collections_text([]) == ""


def test_reliability_bins_probabilities_against_the_share_of_relevant_pairs():
    from neuron_ig.studies.effectiveness import reliability

    p = [0.05, 0.08, 0.15, 0.55, 0.95, 1.0, 0.97]
    y = [0, 0, 1, 1, 1, 0, 1]
    table = reliability(p, y, bins=10)
    assert table["bin"].tolist() == pytest.approx([0.0, 0.1, 0.5, 0.9])  # empty bins left out, P = 1 in the last
    assert table["pairs"].tolist() == [2, 1, 1, 3]
    assert table["share relevant"].tolist() == pytest.approx([0.0, 1.0, 1.0, 2 / 3])
    assert table["mean P"].tolist() == pytest.approx([0.065, 0.15, 0.55, (0.95 + 1.0 + 0.97) / 3])
    with pytest.raises(ValueError, match="log-odds"):
        reliability([2.5], [1])
    with pytest.raises(ValueError, match="one value per pair"):
        reliability([0.5, 0.2], [1])


def test_pair_probabilities_are_those_pair_accuracy_counts(ir_datasets_home, neuron_ig_cache):
    from neuron_ig.engine.models import random_cross_encoder
    from neuron_ig.studies.effectiveness import pair_accuracy, pair_probabilities

    encoder = random_cross_encoder(seed=2)
    p, labels = pair_probabilities(encoder, "cranfield", n=6, seed=1)
    assert labels.tolist() == [1] * 6 + [0] * 6 and ((p >= 0) & (p <= 1)).all()
    accuracy = pair_accuracy(encoder, "cranfield", n=6, seed=1)
    assert accuracy["relevant"] == pytest.approx((p[:6] > 0.5).mean())
    assert accuracy["non-relevant"] == pytest.approx((p[6:] <= 0.5).mean())


def test_scoring_only_the_informative_queries_changes_no_measure(ir_datasets_home, neuron_ig_cache):
    from neuron_ig.engine.models import random_cross_encoder
    from neuron_ig.ir.query_split import informative_queries
    from neuron_ig.studies.effectiveness import (
        effectiveness,
        informative_part,
        rerank,
        rerank_inputs,
    )

    encoder = random_cross_encoder(seed=2)
    bm25, full = rerank(encoder, "cranfield", depth=5, max_queries=30, progress=False)
    _, part = rerank(encoder, "cranfield", depth=5, max_queries=30, progress=False, informative_only=True)
    qrels = qrels_dict("cranfield")
    informative = informative_queries(bm25, qrels)
    assert 0 < len(informative) < len(bm25), "the test needs both kinds of queries"
    for q in informative:
        assert part[q] == pytest.approx(full[q])
    assert all(part[q] == bm25[q] for q in bm25 if q not in informative)  # left in first-stage order
    assert evaluate(part, qrels) == pytest.approx(evaluate(full, qrels))
    assert per_query(part, qrels) == pytest.approx(per_query(full, qrels))
    values = effectiveness(encoder, "cranfield", depth=5, max_queries=30, n_pairs=4, progress=False)
    assert values["re-ranked nDCG@10"] == pytest.approx(evaluate(full, qrels)["nDCG@10"])
    inputs = rerank_inputs(encoder.tokenizer, "cranfield", depth=5, max_queries=30)
    assert len(informative_part(inputs, encoder.tokenizer)[0].pairs) < len(inputs.pairs)


def test_stand_in_targets_give_the_observed_values_with_their_intervals():
    from neuron_ig.studies.effectiveness import target_rows

    model = {str(q): 0.5 + 0.01 * (q % 7) for q in range(40)}
    bm25 = {str(q): 0.4 for q in range(40)}
    labels = [1] * 100 + [0] * 100
    probabilities = [0.9] * 50 + [0.1] * 50 + [0.2] * 85 + [0.7] * 15  # 50% of relevant, 85% of non-relevant right
    rows = target_rows(model, bm25, probabilities, labels, in_domain=False)
    delta, relevant, non_relevant = rows
    assert delta["observed"] == pytest.approx(sum(model.values()) / 40 - 0.4) and delta["low"] < delta["observed"] < delta["high"]
    assert relevant["observed"] == 0.5 and (relevant["low"], relevant["high"]) == pytest.approx((0.4038, 0.5962), abs=1e-4)  # Wilson, by hand
    assert non_relevant["observed"] == 0.85 and non_relevant["met"] and relevant["met"] and delta["met"]
    in_domain = target_rows(model, bm25, probabilities, labels, in_domain=True)
    assert [r["met"] for r in in_domain] == [True, False, False], "90% of each class in domain"
    with pytest.raises(ValueError, match="at least 2"):
        target_rows({"1": 0.5}, {"1": 0.4}, probabilities, labels, in_domain=False)


def test_the_in_domain_well_above_bm25_rule_does_not_fire_on_noise():
    import numpy as np

    from neuron_ig.studies.effectiveness import target_rows

    def fires(shift, seed):
        rng = np.random.default_rng(seed)
        bm25 = {str(q): float(v) for q, v in enumerate(rng.uniform(0.2, 0.6, 100))}
        model = {q: v + shift + float(rng.normal(0, 0.2)) for q, v in bm25.items()}
        return target_rows(model, bm25, [0.9, 0.1], [1, 0], in_domain=True)[0]["met"]

    assert sum(fires(0.0, seed) for seed in range(200)) <= 12, "about 2.5% of null runs: one side of a 95% interval"
    assert all(fires(0.15, seed) for seed in range(20)), "a real gain of 0.15 over 100 queries is found"


def test_stand_in_checks_read_the_effectiveness_record(ir_datasets_home, neuron_ig_cache):
    from neuron_ig.engine.models import random_cross_encoder
    from neuron_ig.studies.effectiveness import effectiveness, stand_in_checks

    encoder = random_cross_encoder(seed=2)
    settings = dict(depth=10, max_queries=15, n_pairs=10, progress=False)
    values = effectiveness(encoder, "cranfield", **settings)
    delta, relevant, non_relevant = stand_in_checks(encoder, "cranfield", in_domain=False, **settings)
    assert delta["observed"] == pytest.approx(values["re-ranked nDCG@10"] - values["BM25 nDCG@10"])
    assert relevant["observed"] == values["accuracy relevant"] and non_relevant["observed"] == values["accuracy non-relevant"]
