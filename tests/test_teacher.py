"""The bi-encoder teacher: cosine similarities, and re-ranking the same BM25 candidates as the cross-encoder."""
import pytest
import torch

from neuron_ig.embedded_model import teacher


def test_similarity_prefers_the_passage_that_answers_the_query():
    queries = ["big head", "big head", "muscle pain"]
    passages = ["Macrocephaly. Head circumference above the 97th centile.", "Syntax error in a Python function.",
                "Myalgia. Pain in a muscle or group of muscles."]
    cosine = teacher.similarity(queries, passages)
    assert cosine.shape == (3,) and cosine[0] > cosine[1] and cosine[2] > cosine[1]
    assert torch.all(cosine <= 1.0001) and cosine[0] == pytest.approx(float(teacher.similarity(queries[:1], passages[:1])[0]), abs=1e-5)
    with pytest.raises(ValueError, match="one passage per query"):
        teacher.similarity(["a"], [])


def test_teacher_rerank_scores_the_bm25_candidates_of_the_cross_encoder(ir_datasets_home, neuron_ig_cache):
    from neuron_ig.ir.datasets import load_dataset
    from neuron_ig.studies.effectiveness import rerank_inputs

    bm25, run = teacher.teacher_rerank("cranfield", depth=5, max_queries=4, seed=1)
    inputs = rerank_inputs(teacher._bi_encoder()[0], "cranfield", depth=5, max_queries=4, seed=1)
    assert inputs.first_stage == bm25 and {q: set(r) for q, r in run.items()} == {q: set(r) for q, r in bm25.items()}
    query_id, ranking = next(iter(run.items()))
    doc_id = next(iter(ranking))
    dataset = load_dataset("cranfield")
    query = next(q.default_text() for q in dataset.queries_iter() if q.query_id == query_id)
    passage = dataset.docs_store().get(doc_id).default_text()
    assert ranking[doc_id] == pytest.approx(float(teacher.similarity([query], [passage])[0]), abs=1e-5)
    values = teacher.teacher_effectiveness("cranfield", depth=5, max_queries=4, seed=1)
    assert 0 <= values["teacher nDCG@10"] <= 1 and list((neuron_ig_cache / "effectiveness").glob("teacher-cranfield-*.json"))


def test_the_teacher_scoring_only_the_informative_queries_changes_no_measure(ir_datasets_home, neuron_ig_cache):
    from neuron_ig.ir.measures import evaluate, qrels_dict

    bm25, full = teacher.teacher_rerank("cranfield", depth=5, max_queries=12, seed=1)
    _, part = teacher.teacher_rerank("cranfield", depth=5, max_queries=12, seed=1, informative_only=True)
    qrels = qrels_dict("cranfield")
    assert part != full and evaluate(part, qrels) == pytest.approx(evaluate(full, qrels))
