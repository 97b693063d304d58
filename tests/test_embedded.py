"""The embedded collections: plain ir_datasets ids, sizes, qrels, reproducible builds, BM25 difficulty."""
import ir_datasets
import pytest

import neuron_ig.ir.datasets  # noqa: F401  (registers the neuron-ig/... ids)
from neuron_ig.ir import embedded
from neuron_ig.ir.datasets import collection_fingerprint
from neuron_ig.ir.measures import evaluate, qrels_dict
from neuron_ig.ir.pairs import relevance_pairs
from neuron_ig.ir.retrieval import bm25_run

TEST_SPLITS = ["neuron-ig/gcide/test", "neuron-ig/hpo/test", "neuron-ig/pystdlib/test"]


@pytest.fixture(scope="module")
def built(neuron_ig_cache):
    """Every collection built once into this module's cache: {name: meta}."""
    return {name: embedded.meta(name) for name in embedded.COLLECTIONS}


def test_at_least_three_collections_with_an_in_domain_train_split():
    assert len(embedded.COLLECTIONS) >= 3
    assert "train" in embedded.gcide.SPLITS


@pytest.mark.parametrize("dataset_id", TEST_SPLITS)
def test_test_split_loads_through_plain_ir_datasets(built, dataset_id):
    dataset = ir_datasets.load(dataset_id)
    queries = list(dataset.queries_iter())
    qrels = list(dataset.qrels_iter())
    doc_ids = {d.doc_id for d in dataset.docs_iter()}
    print(f"{dataset_id}: {len(doc_ids)} docs, {len(queries)} queries, {len(qrels)} qrels")
    assert len(queries) >= 200 and len(doc_ids) >= 2000 and dataset.docs_count() == len(doc_ids)
    judged = {}
    for qrel in qrels:
        assert qrel.relevance > 0 and qrel.doc_id in doc_ids
        judged.setdefault(qrel.query_id, []).append(qrel.doc_id)
    assert {q.query_id for q in queries} == set(judged)  # every query has a relevant document
    store = dataset.docs_store()
    for query in queries:  # the query is not copied into its relevant documents
        for doc in store.get_many(judged[query.query_id]).values():
            assert query.default_text().lower() not in doc.default_text().lower()


def test_gcide_train_split_is_large_and_disjoint_from_test(built):
    assert built["gcide"]["splits"]["train"]["queries"] >= 5000
    words = {s: {q.headword for q in ir_datasets.load(f"neuron-ig/gcide/{s}").queries_iter()}
             for s in ("train", "test")}
    assert not words["train"] & words["test"]


def test_gcide_train_holds_no_held_out_example_and_no_variant_of_a_held_out_headword(built):
    from neuron_ig.ir.embedded.gcide import held_out_key

    splits = {s: list(ir_datasets.load(f"neuron-ig/gcide/{s}").queries_iter()) for s in ("train", "dev", "test")}
    held_out = splits["dev"] + splits["test"]
    examples = {q.example.lower() for q in held_out}
    words = {held_out_key(q.headword) for q in held_out}
    assert not [q for q in splits["train"] if q.example.lower() in examples]
    assert not [q for q in splits["train"] if held_out_key(q.headword) in words]
    assert held_out_key("Banks") == held_out_key("bank") == held_out_key("banking")
    assert held_out_key("carried") == held_out_key("carry") and held_out_key("sea horse") == "sea hors"


@pytest.mark.slow
def test_builds_are_reproducible(built, tmp_path, monkeypatch):
    first = {d: collection_fingerprint(d) for d in TEST_SPLITS}
    monkeypatch.setenv("NEURON_IG_CACHE", str(tmp_path))
    second = {d: collection_fingerprint(d) for d in TEST_SPLITS}
    assert (tmp_path / "embedded").is_dir()
    assert first == second


@pytest.mark.parametrize("dataset_id", TEST_SPLITS)
def test_bm25_is_neither_perfect_nor_useless(built, dataset_id):
    result = evaluate(bm25_run(dataset_id), qrels_dict(dataset_id))
    print(f"BM25 on {dataset_id}: {result}")
    assert 0.1 < result["nDCG@10"] < 0.9


def test_relevance_pairs_on_an_embedded_collection(built):
    pairs = relevance_pairs("neuron-ig/hpo/test", 20, 0) + relevance_pairs("neuron-ig/hpo/test", 20, 1)
    assert [p.label for p in pairs] == [0] * 20 + [1] * 20
    assert all(p.query and p.passage for p in pairs)
