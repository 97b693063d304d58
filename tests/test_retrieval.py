"""BM25 through bm25s on Cranfield: plausible effectiveness, caching, query selection, the streamed index."""
import pytest

from neuron_ig.ir.measures import evaluate, qrels_dict
from neuron_ig.ir.retrieval import _index_dir, bm25_index, bm25_run, streamed_index


@pytest.fixture(scope="module")
def cranfield(ir_datasets_home, neuron_ig_cache):
    return "cranfield"


def test_bm25_on_cranfield_is_plausible(cranfield):
    run = bm25_run(cranfield, k=100)
    assert len(run) == 225 and all(len(r) <= 100 for r in run.values())
    result = evaluate(run, qrels_dict(cranfield))
    print(f"BM25 on Cranfield: {result}")
    assert 0.25 < result["nDCG@10"] < 0.5  # about 0.36-0.39 for standard BM25


def test_index_is_cached_on_disk(cranfield, neuron_ig_cache):
    index = bm25_index(cranfield)
    path = _index_dir(cranfield)
    assert path.is_relative_to(neuron_ig_cache) and (path / "doc_ids.json").exists()
    assert len(index.doc_ids) == 1400


def test_selected_queries_and_k(cranfield):
    run = bm25_run(cranfield, k=5, query_ids=["3", "1"])
    assert list(run) == ["3", "1"]
    assert all(len(r) == 5 for r in run.values())
    scores = list(run["1"].values())
    assert scores == sorted(scores, reverse=True)
    assert run == bm25_run(cranfield, k=5, query_ids=["3", "1"])


def test_unknown_query_id_is_refused(cranfield):
    with pytest.raises(ValueError, match="query ids not in cranfield"):
        bm25_run(cranfield, query_ids=["nope"])


def test_top_k_breaks_ties_by_row_and_drops_zero_scores():
    import numpy as np

    from neuron_ig.ir.retrieval import top_k

    scores = np.array([0.0, 2.0, 1.0, 2.0, 0.0, 2.0])
    assert top_k(scores, 2).tolist() == [1, 3]
    assert top_k(scores, 10).tolist() == [1, 3, 5, 2]
    assert top_k(np.zeros(3), 5).tolist() == []


def test_the_streamed_index_scores_as_the_in_memory_one(cranfield):
    """Every text and token list in memory (the index before streaming) against the streamed index: the same
    score for every document and query of Cranfield, hence the same rankings."""
    import bm25s
    import numpy as np

    from neuron_ig.ir.datasets import load_dataset
    from neuron_ig.ir.retrieval import first_stage, first_stage_run, tokenize

    dataset = load_dataset(cranfield)
    texts = [doc.default_text() for doc in dataset.docs_iter()] + ["", "the of and"]  # no words, stopwords only
    in_memory = bm25s.BM25()
    in_memory.index(tokenize(texts), show_progress=False)
    streamed = streamed_index(iter(texts))
    queries = tokenize([q.default_text() for q in dataset.queries_iter()])
    for tokens in queries:
        expected = in_memory.get_scores_from_ids(in_memory.get_tokens_ids(tokens))
        assert np.array_equal(streamed.get_scores_from_ids(streamed.get_tokens_ids(tokens)), expected)
    assert first_stage(cranfield) == "bm25s" and first_stage_run(cranfield, k=5, query_ids=["1"]) == bm25_run(
        cranfield, k=5, query_ids=["1"])
