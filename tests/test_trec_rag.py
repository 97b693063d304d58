"""TREC RAG 2024 queries and passages read from the ir-axioms wheel that `make venv` downloads."""
import pytest

from neuron_ig.ir import trec_rag


def test_the_wheel_holds_301_queries_with_20_passages_split_train_and_dev():
    queries = trec_rag.rag_queries()
    train, dev = trec_rag.rag_queries("train"), trec_rag.rag_queries("dev")
    assert len(queries) == 301 and len(train) + len(dev) == 301 and 50 <= len(dev) <= 80
    assert not {q.topic for q in train} & {q.topic for q in dev}
    assert all(len(q.passage_ids) == len(q.passages) == 20 and q.query and all(q.passages) for q in queries)
    assert queries == sorted(queries) and trec_rag.rag_queries("dev") == dev


def test_a_missing_wheel_names_the_make_target(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURON_IG_IR_AXIOMS_WHEEL", str(tmp_path / "missing.whl"))
    with pytest.raises(FileNotFoundError, match="run `make venv`"):
        trec_rag.rag_queries()
    with pytest.raises(ValueError, match="unknown split 'test'"):
        trec_rag.rag_queries("test")
