"""Datasets by id (errors that name the fix) and relevance pairs, on Cranfield."""
import pytest

from neuron_ig.ir.datasets import collection_fingerprint, load_dataset, relevant_qrels
from neuron_ig.ir.pairs import Pair, mismatched_pairs, relevance_pairs
from neuron_ig.ir.retrieval import bm25_run


@pytest.fixture(scope="module")
def cranfield(ir_datasets_home, neuron_ig_cache):
    return "cranfield"


def test_load_cranfield(cranfield):
    dataset = load_dataset(cranfield)
    assert sum(1 for _ in dataset.queries_iter()) == 225
    assert dataset.docs_store().get("1").title.startswith("experimental investigation")


def test_unknown_id_suggests_close_ids():
    with pytest.raises(ValueError, match=r"unknown dataset id 'beir/nfcorpuss': did you mean 'beir/nfcorpus/"):
        load_dataset("beir/nfcorpuss")
    with pytest.raises(ValueError, match="ir_datasets list"):
        load_dataset("no-such-collection-at-all")


def test_dataset_without_queries_or_qrels_is_refused():
    with pytest.raises(ValueError, match=r"has no qrels: .* e\.g\. 'beir/nfcorpus/"):
        load_dataset("beir/nfcorpus")


def test_relevance_pairs_have_the_right_labels(cranfield):
    relevant = relevant_qrels(cranfield)
    positives = relevance_pairs(cranfield, 60, 1)
    negatives = relevance_pairs(cranfield, 60, 0, bm25_depth=20)
    assert len(positives) == len(negatives) == 60
    assert all(isinstance(p, Pair) and p.label == 1 and p.doc_id in relevant[p.query_id] for p in positives)
    assert all(p.label == 0 and p.doc_id not in relevant.get(p.query_id, ()) for p in negatives)
    top = bm25_run(cranfield, k=20, query_ids=sorted({p.query_id for p in negatives}))
    assert all(p.doc_id in top[p.query_id] for p in negatives)
    for pairs in (positives, negatives):
        assert pairs == sorted(pairs) and len({(p.query_id, p.doc_id) for p in pairs}) == len(pairs)
        assert all(p.query and p.passage for p in pairs)
    assert len({p.query_id for p in positives}) == 60  # spread: one pair per query while queries last


def test_mismatched_pairs_keep_each_passage_with_another_query_that_does_not_judge_it_relevant(cranfield):
    relevant = relevant_qrels(cranfield)
    positives = relevance_pairs(cranfield, 40, 1, max_pairs_per_query=2)
    mismatched = mismatched_pairs(cranfield, positives, seed=1)
    assert [p.doc_id for p in mismatched] == [p.doc_id for p in positives]
    assert [p.passage for p in mismatched] == [p.passage for p in positives]
    assert all(m.label == 0 and m.query_id != p.query_id and m.doc_id not in relevant[m.query_id]
               for m, p in zip(mismatched, positives))
    assert sorted(m.query_id for m in mismatched) == sorted(p.query_id for p in positives)  # the same queries, permuted
    queries = {q.query_id: q.default_text() for q in load_dataset(cranfield).queries_iter()}
    assert all(m.query == queries[m.query_id] for m in mismatched)
    assert mismatched == mismatched_pairs(cranfield, positives, seed=1) != mismatched_pairs(cranfield, positives, seed=2)
    one_query = [p for p in positives if p.query_id == positives[0].query_id]
    with pytest.raises(ValueError, match="at least two queries .* draw more pairs"):
        mismatched_pairs(cranfield, one_query)


def test_relevance_pairs_depend_on_the_seed_only(cranfield):
    assert relevance_pairs(cranfield, 40, 1, seed=3) == relevance_pairs(cranfield, 40, 1, seed=3)
    assert relevance_pairs(cranfield, 40, 1, seed=3) != relevance_pairs(cranfield, 40, 1, seed=4)
    assert relevance_pairs(cranfield, 40, 0, seed=3) != relevance_pairs(cranfield, 40, 0, seed=4)


def test_relevance_pairs_errors(cranfield):
    with pytest.raises(ValueError, match="n must be positive"):
        relevance_pairs(cranfield, 0, 1)
    with pytest.raises(ValueError, match="label must be 1"):
        relevance_pairs(cranfield, 10, 2)
    with pytest.raises(ValueError, match="has only .* relevant pairs with at most 1 per query.*raise max_pairs"):
        relevance_pairs(cranfield, 1000, 1, max_pairs_per_query=1)
    with pytest.raises(ValueError, match="lower n"):
        relevance_pairs(cranfield, 10**6, 1)


def test_fingerprint_is_stable(cranfield):
    assert collection_fingerprint(cranfield) == collection_fingerprint(cranfield)


def test_pairs_come_from_the_selection_queries_and_rerank_inputs_from_the_evaluation_queries(cranfield):
    from neuron_ig.engine.models import random_cross_encoder
    from neuron_ig.ir.query_split import (
        EVALUATION,
        SELECTION,
        queries_in_part,
        query_part,
    )
    from neuron_ig.studies.effectiveness import rerank_inputs

    pairs = relevance_pairs(cranfield, 40, 1) + relevance_pairs(cranfield, 40, 0, bm25_depth=20)
    assert {query_part(p.query_id) for p in pairs} == {SELECTION}
    every = {p.query_id for p in relevance_pairs(cranfield, 40, 1, part=None)}
    assert {query_part(q) for q in every} == {SELECTION, EVALUATION}  # the split is a choice, not the data's
    inputs = rerank_inputs(random_cross_encoder().tokenizer, cranfield, depth=5, max_queries=6, part=EVALUATION)
    assert len(inputs.first_stage) == 6 and {query_part(q) for q in inputs.first_stage} == {EVALUATION}
    assert inputs.parameters["part"] == EVALUATION
    assert queries_in_part(["a", "b"], None) == ["a", "b"]
    with pytest.raises(ValueError, match="query part"):
        queries_in_part(["a"], "train")
