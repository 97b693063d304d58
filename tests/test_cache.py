"""Faults of a long-lived results cache: damaged entries, other versions, two processes, a full disk.

Each fault is repaired (the entry goes to quarantine and is computed again, with the same result as a
clean cache) or explained in one line.
"""
from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import time
import warnings
from collections import namedtuple
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import neuron_ig
import neuron_ig.runtime.cache as cache
import neuron_ig.studies.results as results
from neuron_ig.engine.models import random_cross_encoder

LIB = Path(neuron_ig.__file__).resolve().parents[1]
Pair = namedtuple("Pair", "query_id doc_id query passage label")
PAIRS = [Pair(f"q{i}", f"d{i}", f"query number {i} about wings", f"passage {i} on the lift of a wing at speed {i}", 1) for i in range(7)]
PARAMETERS = {"model": "random-bert", "dataset": "toy/test", "label": 1, "baseline": "PAD_QUERY", "steps": 5, "rule": "left", "max_length": 32}


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_IG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def load():
    return random_cross_encoder(num_layers=2, seed=3)


def nig(parameters=PARAMETERS, **kwargs):
    return results.cached_nig(load, PAIRS, parameters, chunk_pairs=3, progress=False, **kwargs)


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def leftovers(root: Path) -> list[Path]:
    """Temporary files and folders, and files without their manifest, anywhere under the cache."""
    tmp = [p for p in root.rglob(".*") if p.name.endswith(".tmp") or ".tmp" in p.name]
    orphans = [p for p in root.rglob("*.npz") if not cache.manifest_path(p).exists()]
    return tmp + orphans


# --- verify what is read ---------------------------------------------------------------------------

def test_an_entry_records_its_files_and_versions_and_a_damaged_one_goes_to_quarantine(root):
    path = root / "pruning" / "m" / "d" / "k.npz"
    cache.save_arrays(path, scores=np.arange(5, dtype=np.float32))
    manifest = cache.read_manifest(path)
    assert manifest["files"]["."]["size"] == path.stat().st_size
    assert manifest["versions"] == {"cache format": str(cache.FORMAT), "torch": metadata.version("torch"),
                                    "transformers": metadata.version("transformers")}
    assert cache.ready(path) and list(cache.load_arrays(path)["scores"]) == [0, 1, 2, 3, 4]

    truncate(path)
    with pytest.raises(cache.DamagedEntry, match=f"cache entry {path}: k.npz has .* bytes"):
        cache.load_arrays(path)
    with pytest.warns(cache.CacheWarning, match=f"cache entry {path}: .*truncated.*moved to .*quarantine"):
        assert not cache.ready(path)
    assert not path.exists() and not cache.manifest_path(path).exists()
    [kept] = (root / "quarantine").iterdir()
    assert sorted(p.name for p in kept.iterdir()) == ["WHY.txt", "k.npz", "k.npz.entry.json"]
    assert "truncated" in (kept / "WHY.txt").read_text()


def test_same_size_damage_is_caught_by_the_hash_and_a_file_without_manifest_is_incomplete(root):
    path = root / "effectiveness" / "x.json"
    cache.save_json(path, {"nDCG@10": 0.5})
    path.write_text(path.read_text().replace("0.5", "0.7"))
    with pytest.warns(cache.CacheWarning, match="does not match its sha256"):
        assert not cache.ready(path)
    path.write_text("{}")  # written by an older neuron_ig: no manifest
    with pytest.warns(cache.CacheWarning, match="no manifest"):
        assert not cache.ready(path)
    assert not cache.ready(path), "absent"


def test_the_temporary_file_of_a_killed_writer_goes_at_the_next_write_of_its_entry(root):
    path = root / "pruning" / "m" / "d" / "k.npz"
    path.parent.mkdir(parents=True)
    killed = path.with_name(".k.npz.a1b2c3d4.tmp")  # what `kill -9` during np.savez leaves
    killed.write_bytes(b"half")
    cache.save_arrays(path, scores=np.zeros(3))
    assert not killed.exists() and cache.ready(path) and not leftovers(root)


def test_a_truncated_nig_result_is_recomputed_to_the_clean_cache_result(root, monkeypatch):
    clean = nig()
    folder = results.result_folder(clean.manifest["parameters"])
    truncate(folder / "nig.npz")  # was: zipfile.BadZipFile
    with pytest.warns(cache.CacheWarning, match=r"nig\.npz has \d+ bytes"):
        repaired = nig()
    np.testing.assert_array_equal(repaired.attributions, clean.attributions)
    np.testing.assert_array_equal(repaired.score, clean.score)
    assert len(list((root / "quarantine").iterdir())) == 1 and not leftovers(root)
    monkeypatch.setattr(results, "_compute_chunk", lambda *a, **k: pytest.fail("recomputed a repaired result"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", cache.CacheWarning)
        nig()


def test_a_damaged_chunk_of_an_interrupted_run_is_recomputed(root, monkeypatch):
    reference = nig(dict(PARAMETERS, dataset="toy/reference"))
    compute, calls = results._compute_chunk, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return compute(*args, **kwargs)

    monkeypatch.setattr(results, "_compute_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nig()
    folder = results.result_folder(dict(PARAMETERS, pairs_fingerprint=results.pairs_fingerprint(PAIRS)))
    truncate(folder / "parts" / "00001.npz", keep=0.9)
    calls.clear()
    monkeypatch.setattr(results, "_compute_chunk", lambda *a, **k: calls.append(1) or compute(*a, **k))
    with pytest.warns(cache.CacheWarning, match="00001.npz"):
        resumed = nig()
    assert len(calls) == 2, "the damaged chunk and the missing one"
    np.testing.assert_allclose(resumed.attributions, reference.attributions, rtol=1e-5, atol=1e-8)


def test_a_result_written_with_another_torch_is_recomputed(root, monkeypatch):
    clean = nig()
    folder = results.result_folder(clean.manifest["parameters"])
    manifest = cache.manifest_path(folder / "nig.npz")
    recorded = json.loads(manifest.read_text())
    recorded["versions"]["torch"] = "1.0.0"  # a cache copied from another machine
    manifest.write_text(json.dumps(recorded))
    calls = []
    compute = results._compute_chunk
    monkeypatch.setattr(results, "_compute_chunk", lambda *a, **k: calls.append(1) or compute(*a, **k))
    with pytest.warns(cache.CacheWarning, match=r"written with torch 1\.0\.0 \(this is torch \S+\)"):
        again = nig()
    assert len(calls) == 3
    np.testing.assert_array_equal(again.attributions, clean.attributions)
    assert cache.read_manifest(folder / "nig.npz")["versions"]["torch"] != "1.0.0"


def test_a_damaged_embedded_collection_and_bm25_index_are_rebuilt(neuron_ig_cache):
    from neuron_ig.ir import embedded
    from neuron_ig.ir.retrieval import _index_dir, _load, bm25_run

    folder = embedded.collection_dir("hpo")
    docs = (folder / "docs.jsonl").read_bytes()
    run = bm25_run("neuron-ig/hpo/test", k=5)
    truncate(folder / "docs.jsonl")
    index = _index_dir("neuron-ig/hpo/test")
    truncate(next(p for p in index.iterdir() if p.suffix == ".npy"), keep=0.3)
    _load.cache_clear()
    with pytest.warns(cache.CacheWarning) as record:
        assert (embedded.collection_dir("hpo") / "docs.jsonl").read_bytes() == docs
        assert bm25_run("neuron-ig/hpo/test", k=5) == run
    damaged = [Path(str(w.message).removeprefix("cache entry ").split(":")[0]) for w in record]
    assert sorted(path.relative_to(neuron_ig_cache).parts[0] for path in damaged) == ["bm25", "embedded"]


@pytest.mark.slow
def test_a_truncated_trained_model_is_trained_again_to_the_same_weights(neuron_ig_cache):
    from safetensors.numpy import load_file

    from neuron_ig.embedded_model.training import TrainingConfig, embedded_model_path

    tiny = TrainingConfig(train_dataset="neuron-ig/hpo/test", steps=2, groups_per_step=2, negatives=1, bm25_depth=10,
                          max_length=32, warmup_steps=1, rag_semantic_negatives=0, word_groups_per_step=0)  # hpo: built by the test above, in this module's cache
    folder = embedded_model_path(tiny, progress=False)
    clean = load_file(folder / "model.safetensors")
    assert cache.read_manifest(folder)["meta"]["training config"]["steps"] == 2
    truncate(folder / "model.safetensors")  # was: SafetensorError: invalid header length
    with pytest.warns(cache.CacheWarning, match=r"minilm-l6-cross-encoder-\w+: model\.safetensors has \d+ bytes"):
        assert embedded_model_path(tiny, progress=False) == folder
    repaired = load_file(folder / "model.safetensors")
    assert repaired.keys() == clean.keys()
    for name, weights in clean.items():
        np.testing.assert_allclose(repaired[name], weights, rtol=1e-5, atol=1e-7)

    manifest = cache.manifest_path(folder)  # trained with another transformers: not reused
    recorded = json.loads(manifest.read_text())
    recorded["versions"]["transformers"] = "4.0.0"
    manifest.write_text(json.dumps(recorded))
    assert cache.problem(folder).startswith("written with transformers 4.0.0 (this is transformers ")


# --- several processes -----------------------------------------------------------------------------

WORKER = """
import json, sys, time
from collections import namedtuple
from pathlib import Path
import numpy as np
import neuron_ig.studies.results as results
from neuron_ig.engine.models import random_cross_encoder

Pair = namedtuple("Pair", "query_id doc_id query passage label")
pairs = [Pair(*p) for p in json.loads(sys.argv[2])]
compute, calls = results._compute_chunk, []
def slow(*args, **kwargs):
    calls.append(1)
    time.sleep(1)  # long enough for the other process to wait on the entry's lock (it says so after 2 s)
    return compute(*args, **kwargs)
results._compute_chunk = slow
start = Path(sys.argv[1])
Path(sys.argv[5]).touch()  # imported: ready to start
while not start.exists():
    time.sleep(0.01)
result = results.cached_nig(lambda: random_cross_encoder(num_layers=2, seed=3), pairs, json.loads(sys.argv[3]),
                            chunk_pairs=3, progress=False)
np.save(sys.argv[4], result.attributions)
print(json.dumps({"computed": len(calls)}))
"""


@pytest.mark.slow
def test_two_processes_on_the_same_entries_compute_each_once_and_both_get_the_result(root, tmp_path):
    start = tmp_path / "start"
    env = {**os.environ, "PYTHONPATH": str(LIB), "NEURON_IG_CACHE": str(root)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(start), json.dumps(PAIRS), json.dumps(PARAMETERS),
                                 str(tmp_path / f"out{i}.npy"), str(tmp_path / f"ready{i}")],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    waited = time.monotonic()
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() - waited < 120:
        time.sleep(0.05)
    start.touch()  # both at once
    outputs = [worker.communicate(timeout=300) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    computed = sorted(json.loads(out.strip().splitlines()[-1])["computed"] for out, _ in outputs)
    assert computed == [0, 3], "each of the 3 chunks computed once, by one process; the other waited and read"
    assert any("waiting for another process" in err for _, err in outputs)
    first, second = (np.load(tmp_path / f"out{i}.npy") for i in range(2))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, nig().attributions, rtol=1e-5, atol=1e-8)
    folder = results.result_folder(dict(PARAMETERS, pairs_fingerprint=results.pairs_fingerprint(PAIRS)))
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "manifest.json.entry.json", "manifest.json.lock",
                                                        "nig.npz", "nig.npz.entry.json", "nig.npz.lock"]
    assert not leftovers(root) and not (root / "quarantine").exists()


def test_a_second_build_of_one_checkout_is_refused_in_one_line(tmp_path):
    from neuron_ig.report import runner

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from neuron_ig.report.runner import one_build_at_a_time; "
                               "held = one_build_at_a_time(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)",
                               str(tmp_path)], env={**os.environ, "PYTHONPATH": str(LIB)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(runner.RunnerError, match=r"^another build of this checkout is running \(it holds "
                           r".*book/generated\.lock\): wait for it to finish, or build from another checkout$"):
            runner.run(tmp_path, tmp_path / "params.yml")
    finally:
        holder.kill()
        holder.communicate()
    runner.one_build_at_a_time(tmp_path).release()  # free again once the first build ends


# --- a full disk -----------------------------------------------------------------------------------

def no_space_after(nbytes: int):
    """A stand-in for ``np.savez`` on a full disk: writes ``nbytes``, then fails as the kernel does."""
    def savez(handle, **arrays):
        handle.write(b"x" * nbytes)
        raise OSError(errno.ENOSPC, "No space left on device")
    return savez


def test_a_full_disk_keeps_the_previous_entries_and_leaves_no_temporary_file(root, monkeypatch):
    clean = nig()
    with monkeypatch.context() as patch, pytest.raises(cache.CacheFull) as raised:
        patch.setattr(np, "savez", no_space_after(100))
        nig(dict(PARAMETERS, dataset="toy/other"))
    message = str(raised.value)
    assert "\n" not in message and raised.value.errno == errno.ENOSPC
    assert message.startswith(f"no space left for the cache in {root}: writing {root}/nig/")
    assert re.search(r"00000\.npz needs about [1-9][\d.]* kB and [\d,.]+ [kMG]B are free; free some space", message)
    assert "NEURON_IG_CACHE" in message
    assert not leftovers(root)
    monkeypatch.setattr(results, "_compute_chunk", lambda *a, **k: pytest.fail("a previous entry was lost"))
    np.testing.assert_array_equal(nig().attributions, clean.attributions)


def test_a_full_disk_while_writing_a_folder_or_a_manifest_leaves_nothing_behind(root, monkeypatch):
    def write(folder: Path):
        (folder / "a.bin").write_bytes(b"y" * 3_000_000)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(cache.CacheFull, match=r"writing .*bm25/c/k needs about 3\.0 MB"):
        cache.write_folder_atomic(root / "bm25" / "c" / "k", write)
    assert [p.name for p in (root / "bm25" / "c").iterdir()] == ["k.lock"]

    def manifest_fails(path, meta=None):
        raise cache._full(cache.manifest_path(path), 1000)

    monkeypatch.setattr(cache, "_write_manifest", manifest_fails)
    with pytest.raises(cache.CacheFull, match=r"e\.json\.entry\.json needs about 1\.0 kB"):
        cache.save_json(root / "effectiveness" / "e.json", {"a": 1})
    assert [p.name for p in (root / "effectiveness").iterdir()] == ["e.json.lock"], "no data without its manifest"


# --- the command line ------------------------------------------------------------------------------

def test_the_command_line_shows_sizes_per_kind_and_removes_what_is_named_after_a_dry_run(root, capsys):
    for model in ("bert-a", "bert-b"):
        for dataset in ("beir_nfcorpus_test", "cranfield"):
            cache.save_arrays(root / "nig" / model / dataset / "relevant-1" / "nig.npz", a=np.zeros(1000))
            cache.save_arrays(root / "pruning" / model / dataset / "k.npz", scores=np.zeros(10))
    legacy = root / "pruning" / "bert-a" / "cranfield" / "old.npz"
    legacy.write_bytes(b"written before manifests")
    assert cache.main([]) == 0
    out = capsys.readouterr().out
    assert f"cache: {root}" in out
    assert [line.split()[:2] for line in out.splitlines()[2:4]] == [["nig", "4"], ["pruning", "5"]]

    assert cache.main(["--remove", "--model", "org/bert-a", "--dataset", "beir/nfcorpus/test"]) == 0
    out = capsys.readouterr().out
    assert out.count("would remove") == 2 and "dry run: 2 entries" in out and "--yes" in out
    assert (root / "nig" / "bert-a" / "beir_nfcorpus_test" / "relevant-1").exists(), "a dry run removes nothing"
    assert cache.main(["--remove", "--model", "org/bert-a", "--dataset", "beir/nfcorpus/test", "--yes"]) == 0
    assert not (root / "nig" / "bert-a" / "beir_nfcorpus_test" / "relevant-1").exists()
    assert not (root / "pruning" / "bert-a" / "beir_nfcorpus_test" / "k.npz.entry.json").exists()
    assert (root / "nig" / "bert-b" / "beir_nfcorpus_test" / "relevant-1" / "nig.npz").exists()

    capsys.readouterr()
    assert cache.main(["--remove", "--older-than", "0.1.0", "--yes"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out and not legacy.exists(), "only the entry of no known version"
    assert cache.main(["--remove", "--older-than", "99.0", "--kind", "nig", "--yes"]) == 0
    assert not list((root / "nig").rglob("*.npz")) and len(list((root / "pruning").rglob("*.npz"))) == 3
    assert cache.main(["--remove"]) == 2 and "needs a selector" in capsys.readouterr().err


def test_python_dash_m_neuron_ig_cache_runs(root):
    cache.save_json(root / "effectiveness" / "x.json", {"a": 1})
    shown = subprocess.run([sys.executable, "-m", "neuron_ig.runtime.cache"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(LIB)}, check=True).stdout
    assert f"cache: {root}" in shown and "effectiveness" in shown
