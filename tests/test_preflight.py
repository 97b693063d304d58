"""The checks before a build: every model and dataset the pages need, in the local caches or not, and the device.

Datasets are read from the test's ``IR_DATASETS_HOME`` (Cranfield only, see conftest.py); the Hugging Face cache
is an empty folder, and the Hub is offline (conftest.py), so nothing here touches the network.
"""
import pytest
import torch

from neuron_ig.report import preflight

MODEL = "castorini/monobert-large-msmarco"


def steps(**parameters):
    """The runner's steps for one page with ``parameters``."""
    return [("nig_worked_example", "nig_worked_example", parameters, {})]


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def one_line_error(parameters) -> str:
    with pytest.raises(preflight.PreflightError) as caught:
        preflight.check(steps(**parameters))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_ids_of_every_page_are_collected_by_kind():
    wanted = preflight.wanted([
        ("a", "n", {"model": "m/one", "dataset": "cranfield", "steps": 50, "label": 1}, {}),
        ("b", "n", {"model": "m/one", "datasets": ["cranfield", "beir/nfcorpus/test"], "teacher_model": "m/two",
                    "other": "beir/scifact/test", "baseline": "PAD_QUERY"}, {}),
    ])
    assert wanted == {("model", "m/one"): ["a", "b"], ("dataset", "cranfield"): ["a", "b"],
                      ("dataset", "beir/nfcorpus/test"): ["b"], ("model", "m/two"): ["b"],
                      ("dataset", "beir/scifact/test"): ["b"]}


def test_embedded_ids_and_cached_datasets_pass(ir_datasets_home, empty_hub):
    preflight.check(steps(model="neuron-ig/minilm-l6-cross-encoder", datasets=["neuron-ig/gcide/test", "cranfield"]))
    statuses = {need.id: need.status for need in preflight.needs(steps(model="neuron-ig/minilm-l6-cross-encoder",
                                                                        dataset="cranfield"))}
    assert statuses == {"neuron-ig/minilm-l6-cross-encoder": "built locally", "cranfield": "in cache"}


def test_a_model_missing_offline_is_one_line_naming_the_cache(ir_datasets_home, empty_hub):
    message = one_line_error({"model": MODEL, "dataset": "cranfield"})
    assert message.startswith(f"model {MODEL} (page nig_worked_example) is not in the local cache and HF_HUB_OFFLINE is set")
    assert f"hf download {MODEL}" in message and str(empty_hub) in message


def test_a_beir_dataset_missing_offline_is_one_line_not_a_requests_traceback(ir_datasets_home, empty_hub):
    message = one_line_error({"model": "neuron-ig/minilm-l6-cross-encoder", "datasets": ["cranfield", "beir/nfcorpus/test"]})
    assert message.startswith("dataset beir/nfcorpus/test (page nig_worked_example) is not in the local cache")
    assert "ir_datasets export beir/nfcorpus/test docs" in message and str(ir_datasets_home) in message
    need = preflight.dataset_need("beir/nfcorpus/test")
    assert need.status == "missing" and need.size == 2448432  # nfcorpus.zip, from ir_datasets' downloads.json


def test_robust04_without_the_trec_disks_says_where_ir_datasets_expects_them(ir_datasets_home, empty_hub):
    message = one_line_error({"model": "neuron-ig/minilm-l6-cross-encoder", "datasets": ["disks45/nocr/trec-robust-2004"]})
    assert "TREC disks 4 and 5" in message and "https://trec.nist.gov/data/cd45/index.html" in message
    assert str(ir_datasets_home / "disks45" / "corpus") in message and "NEWS_data/FBIS" in message


def test_an_unknown_dataset_id_is_refused(ir_datasets_home):
    assert "is not an ir_datasets id" in one_line_error({"datasets": ["beir/nfcorpus/tset"]})


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_only_settings_are_refused_on_a_machine_without_cuda(ir_datasets_home):
    assert "device 'cuda' needs CUDA, and this machine has none" in one_line_error({"device": "cuda", "dataset": "cranfield"})
    assert "needs CUDA" in one_line_error({"device": "cuda:1", "dataset": "cranfield"})


def test_an_unknown_baseline_rule_or_precision_is_refused_before_anything_runs(ir_datasets_home):
    assert one_line_error({"baseline": "PAD_QUERIES", "dataset": "cranfield"}).endswith(
        "unknown baseline 'PAD_QUERIES': use one of PAD_QUERY, PAD_QUERY_AND_PASSAGE, PAD_ALL, NEUTRAL")
    assert "unknown rule 'middle': use one of left, right" in one_line_error({"rule": "middle", "dataset": "cranfield"})
    assert "unknown precision 'fp16'" in one_line_error({"precision": "fp16", "dataset": "cranfield"})
    preflight.check(steps(baseline="pad_all", rule="right", dataset="cranfield"))  # case as Baseline.parse reads it


def test_tf32_needs_cuda_and_an_unknown_device_is_refused(ir_datasets_home):
    assert "precision 'tf32' needs a CUDA device, and device 'cpu' is the CPU" in one_line_error({"device": "cpu", "precision": "tf32", "dataset": "cranfield"})
    assert "unknown device 'gpu'" in one_line_error({"device": "gpu", "dataset": "cranfield"})
    preflight.check(steps(device="cpu", precision="bf16", dataset="cranfield"))


def test_the_dry_run_report_lists_status_size_and_device(ir_datasets_home, empty_hub):
    lines = preflight.report(steps(model=MODEL, datasets=["cranfield", "beir/nfcorpus/test"]), ask_hub=False)
    by_id = {line.split()[1]: line for line in lines if line.startswith(("model", "dataset"))}
    assert "missing, size unknown to download" in by_id[MODEL]
    assert "in cache" in by_id["cranfield"] and "missing, 2.4 MB to download" in by_id["beir/nfcorpus/test"]
    assert any(line.startswith("device  auto: ") for line in lines)
    assert lines[-1] == "1 of 3 available locally; 2 missing (2.4 MB known to download, some sizes unknown)"
