"""The minimum relevance grade, on a graded collection that ships its own first-stage run (scoreddocs).

The fixture is registered in `ir_datasets` from files in a temporary folder (TSV docs and queries, TREC qrels
graded 0-3, an MS MARCO-style run of `qid did` lines without scores, as TREC DL's top-1000 files), and read
through the same `ir_datasets.load` as any collection.
"""
import math

import ir_datasets
import pytest
from ir_datasets.datasets.base import Dataset
from ir_datasets.formats import TrecQrels, TrecScoredDocs, TsvDocs, TsvQueries
from ir_datasets.util import LocalDownload

from neuron_ig.ir import grades
from neuron_ig.ir.datasets import relevant_qrels
from neuron_ig.ir.grades import min_grade
from neuron_ig.ir.measures import collection_summary, evaluate, qrels_dict
from neuron_ig.ir.pairs import relevance_pairs
from neuron_ig.ir.retrieval import first_stage, first_stage_name, first_stage_run

GRADED = "neuron-ig-test/graded"
DOCS = {f"d{i}": text for i, text in enumerate(
    ["", "lift of a swept wing at high speed", "the wing of a bird", "boundary layer of a flat plate",
     "heat transfer in a supersonic boundary layer", "the boundary of a town", "lift and drag of wings",
     "stalls of a wing"], start=0) if i}
QUERIES = {"q4": "wing lift", "q5": "boundary layer heat", "q6": "wing stall", "q1": "flat plate"}  # q4-q6: selection side
QRELS = [("q4", "d1", 3), ("q4", "d2", 1), ("q4", "d6", 0), ("q5", "d4", 2), ("q5", "d3", 1), ("q6", "d7", 1),
         ("q1", "d3", 2)]
RUN = {"q4": ["d2", "d6", "d1", "d5"], "q5": ["d3", "d4", "d5"], "q6": ["d7", "d1"], "q1": ["d5", "d3"]}  # rank order


@pytest.fixture(scope="module")
def graded(tmp_path_factory, neuron_ig_cache):
    """The graded collection's id, registered once per test session."""
    if GRADED not in ir_datasets.registry._registered:
        folder = tmp_path_factory.mktemp("graded")
        (folder / "docs.tsv").write_text("".join(f"{d}\t{t}\n" for d, t in DOCS.items()), encoding="utf-8")
        (folder / "queries.tsv").write_text("".join(f"{q}\t{t}\n" for q, t in QUERIES.items()), encoding="utf-8")
        (folder / "qrels.txt").write_text("".join(f"{q} 0 {d} {g}\n" for q, d, g in QRELS), encoding="utf-8")
        (folder / "run.txt").write_text("".join(f"{q}\t{d}\n" for q, ds in RUN.items() for d in ds), encoding="utf-8")
        ir_datasets.registry.register(GRADED, Dataset(
            TsvDocs(LocalDownload(folder / "docs.tsv"), namespace=GRADED, lang="en"),
            TsvQueries(LocalDownload(folder / "queries.tsv"), namespace=GRADED, lang="en"),
            TrecQrels(LocalDownload(folder / "qrels.txt"), {0: "not", 1: "related", 2: "highly", 3: "perfectly"}),
            TrecScoredDocs(LocalDownload(folder / "run.txt"))))
    return GRADED


def test_the_table_names_the_trec_dl_passage_sets_and_an_override_wins():
    assert min_grade("msmarco-passage/trec-dl-2019/judged") == min_grade("msmarco-passage/trec-dl-2020") == 2
    assert min_grade("msmarco-passage-v2/trec-dl-2022/judged") == min_grade("beir/msmarco/test") == 2
    assert min_grade("beir/trec-covid") == min_grade("cord19/trec-covid/round5") == 1
    assert min_grade("beir/nfcorpus/test") == min_grade("cranfield") == min_grade("neuron-ig/gcide/test") == 1
    assert min_grade("msmarco-passage/dev/small") == min_grade("msmarco-document/trec-dl-2019") == 1
    assert min_grade("beir/nfcorpus/test", 2) == 2
    assert min_grade("cranfield", {"cranfield": 3}) == 3
    assert min_grade("msmarco-passage/trec-dl-2019", {"cranfield": 3}) == 2  # the table for the ids not named
    for bad in ("2", 1.5, True, {"cranfield": "high"}):
        with pytest.raises(ValueError, match=r"min_grade.* must be an int .*null for the documented table"):
            min_grade("cranfield", bad)


def test_relevant_pairs_and_judged_queries_follow_the_minimum_grade(graded, monkeypatch):
    assert relevant_qrels(graded) == {"q4": {"d1", "d2"}, "q5": {"d3", "d4"}, "q6": {"d7"}, "q1": {"d3"}}
    monkeypatch.setitem(grades.MIN_GRADES, graded, 2)  # the table's entry, as TREC DL's
    assert relevant_qrels(graded) == {"q4": {"d1"}, "q5": {"d4"}, "q1": {"d3"}} == relevant_qrels(graded, {graded: 2})
    assert relevant_qrels(graded, {"other": 1}) == relevant_qrels(graded) != relevant_qrels(graded, 1)  # table, override
    positives = relevance_pairs(graded, 2, 1, max_pairs_per_query=1)  # the selection side: q4, q5 (q6 not judged at 2)
    assert [(p.query_id, p.doc_id) for p in positives] == [("q4", "d1"), ("q5", "d4")]
    negatives = relevance_pairs(graded, 5, 0)  # from the run; a grade-1 document is a non-relevant pair at grade 2
    assert {(p.query_id, p.doc_id) for p in negatives} == {("q4", "d2"), ("q4", "d6"), ("q4", "d5"), ("q5", "d3"),
                                                          ("q5", "d5")}
    with pytest.raises(ValueError, match="has only 2 relevant pairs"):
        relevance_pairs(graded, 3, 1)
    assert len(relevance_pairs(graded, 3, 1, min_grade=1)) == 3  # d2 of q4 or d3 of q5, and q6's d7


def test_the_first_stage_is_the_shipped_run_and_no_index_is_built(graded, neuron_ig_cache):
    assert first_stage(graded) == "scoreddocs" and "scoreddocs" in first_stage_name(graded)
    run = first_stage_run(graded, k=3)
    assert {q: list(r) for q, r in run.items()} == {q: ds[:3] for q, ds in RUN.items()}  # the run's order, top 3
    assert run["q4"] == {"d2": -1.0, "d6": -2.0, "d1": -3.0}  # no scores in the file: minus the rank
    assert first_stage_run(graded, k=10, query_ids=["q6"]) == {"q6": {"d7": -1.0, "d1": -2.0}}
    with pytest.raises(ValueError, match="query ids not in"):
        first_stage_run(graded, query_ids=["nope"])
    relevance_pairs(graded, 3, 0, min_grade=1)
    row = collection_summary(graded, depth=10, min_grade=2)
    assert (row["first stage"], row["relevant grade"], row["queries"]) == ("scoreddocs", 2, 4)
    assert row["BM25 RR@10"] == pytest.approx((1 / 3 + 1 / 2 + 0 + 1 / 2) / 4)  # q6: judged, none relevant at 2
    assert not (neuron_ig_cache / "bm25").exists()  # nothing indexed: the collection's run was read


def test_rr_follows_the_minimum_grade_and_ndcg_keeps_graded_gains(graded):
    run, qrels = first_stage_run(graded, k=10), qrels_dict(graded)
    at_1, at_2 = evaluate(run, qrels, min_grade=1), evaluate(run, qrels, min_grade=2)
    # first relevant rank at grade 1: q4 1, q5 1, q6 1, q1 2; at grade 2: q4 3, q5 2, q6 none, q1 2
    assert at_1["RR@10"] == pytest.approx((1 + 1 + 1 + 1 / 2) / 4)
    assert at_2["RR@10"] == pytest.approx((1 / 3 + 1 / 2 + 0 + 1 / 2) / 4)
    dcg = {"q4": 1 + 3 / math.log2(4), "q5": 1 + 2 / math.log2(3), "q6": 1.0, "q1": 2 / math.log2(3)}
    ideal = {"q4": 3 + 1 / math.log2(3), "q5": 2 + 1 / math.log2(3), "q6": 1.0, "q1": 2.0}
    ndcg = sum(dcg[q] / ideal[q] for q in dcg) / 4
    assert at_1["nDCG@10"] == at_2["nDCG@10"] == pytest.approx(ndcg)


def test_effectiveness_counts_pairs_and_rr_at_the_grade_and_caches_each_grade_apart(graded, neuron_ig_cache):
    from neuron_ig.engine.models import random_cross_encoder
    from neuron_ig.studies.effectiveness import (
        effectiveness,
        effectiveness_pairs,
        rerank_inputs,
    )

    encoder = random_cross_encoder(seed=2)
    common = dict(depth=10, max_queries=10, n_pairs=2, progress=False)
    with pytest.raises(ValueError, match="has only 1 relevant pairs"):  # seed 1 draws the pairs of seed + 1: q4, q5
        effectiveness_pairs(encoder, graded, **common, min_grade=3)
    at = {g: effectiveness(encoder, graded, **common, min_grade=g) for g in (1, 2)}
    assert at[1]["queries"] == 4 and at[2]["queries"] == 3  # q6 is judged at grade 1 only
    assert at[1]["BM25 RR@10"] == pytest.approx((1 + 1 + 1 + 1 / 2) / 4)
    assert at[2]["BM25 RR@10"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 2) / 3)
    assert list(effectiveness_pairs(encoder, graded, **common, min_grade=2)[1]) == [1, 1, 0, 0]
    records = sorted((neuron_ig_cache / "effectiveness").glob("*.json"))
    assert len([r for r in records if not r.name.endswith(".entry.json")]) == 2
    inputs = {g: rerank_inputs(encoder.tokenizer, graded, depth=10, max_queries=10, min_grade=g) for g in (1, 2)}
    assert inputs[1].min_grade == 1 and inputs[2].min_grade == 2
    assert inputs[1].parameters["first_stage"] == "scoreddocs" and "min_grade" not in inputs[1].parameters
    assert inputs[2].parameters["min_grade"] == 2  # the pruning study's cached scores are keyed apart
    assert len(inputs[2].first_stage) == 3 < len(inputs[1].first_stage) == 4
    assert not (neuron_ig_cache / "bm25").exists()
