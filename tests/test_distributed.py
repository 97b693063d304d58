"""Data-parallel builds under torchrun: the units shared out by rank, the ranks' checks at the start, and the real
runner on two CPU ranks (gloo) against one process, with a rank killed mid-run and the run resumed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import neuron_ig
from neuron_ig.runtime import cache, distributed

pytestmark = pytest.mark.slow  # torchrun runs: `make test-fast` leaves them out

REPOSITORY = Path(__file__).resolve().parents[1]
LIB = Path(neuron_ig.__file__).resolve().parents[1]  # the kernels and the ranks import this checkout's library
PAGE = "pruning_negative_in_domain"  # NIG of one class, then a pruning study with random controls
PARAMS = {"book": {"datasets": ["cranfield"], "steps": 3, "max_length": 64, "n_pairs": 64, "seed": 0},  # 4 chunks of 16 pairs
          PAGE: {"p_values": [0.5, 1.0], "pruning_depth": 5, "pruning_queries": 6, "random_seeds": 2}}  # 7 re-rankings


# --- share(): which rank computes which unit -------------------------------------------------------

def units(folder: Path, count: int, computed: list) -> list:
    def compute(index):
        computed.append(index)
        cache.save_json(folder / f"{index}.json", {"unit": index})
    return [(folder / f"{index}.json", lambda index=index: compute(index)) for index in range(count)]


def test_a_rank_computes_its_own_units_and_waits_for_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_IG_CACHE", str(tmp_path))
    monkeypatch.setenv(distributed.SHARD_VARIABLE, "1/3")
    monkeypatch.setattr(distributed, "POLL_S", 0.01)
    cache.save_json(tmp_path / "4.json", {"unit": 4})  # a unit of this rank already done (an earlier, killed run)
    computed, by_peers = [], []
    plan = units(tmp_path, 7, computed)

    def peers():  # ranks 0 and 2, later than this one
        time.sleep(0.3)
        for index in (0, 2, 3, 5, 6):
            cache.save_json(tmp_path / f"{index}.json", {"unit": index})
            by_peers.append(index)

    thread = threading.Thread(target=peers)
    thread.start()
    distributed.share(plan + plan[:2])  # a repeated entry is one unit
    thread.join()
    assert computed == [1], "unit i is rank i mod 3's, whatever is already done; done units are not recomputed"
    assert len(by_peers) == 5 and all(cache.ready(path) for path, _ in plan), "it returned once the others' were ready"


def test_a_rank_stops_waiting_when_the_result_is_finished_and_alone_computes_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_IG_CACHE", str(tmp_path))
    monkeypatch.setattr(distributed, "POLL_S", 0.01)
    monkeypatch.setenv(distributed.SHARD_VARIABLE, "0/2")
    computed = []
    finished = threading.Timer(0.2, lambda: (tmp_path / "merged").touch())
    finished.start()
    distributed.share(units(tmp_path / "a", 4, computed), finished=lambda: (tmp_path / "merged").exists())
    assert computed == [0, 2]
    monkeypatch.delenv(distributed.SHARD_VARIABLE)
    computed.clear()
    distributed.share(units(tmp_path / "b", 3, computed))
    assert computed == [0, 1, 2]


@pytest.mark.parametrize("environment, expected", [
    ({}, None), ({"WORLD_SIZE": "1", "RANK": "0"}, None),
    ({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}, distributed.Launch(3, 4, 1)),
])
def test_the_launch_is_read_from_torchrun_variables(monkeypatch, environment, expected):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert distributed.launch() == expected


def test_a_rank_outside_the_world_is_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(distributed.LaunchError, match="RANK=2 is outside WORLD_SIZE=2"):
        distributed.launch()


def test_each_rank_of_a_machine_gets_its_own_visible_gpu_and_no_more_ranks_than_gpus(monkeypatch):
    from types import SimpleNamespace

    def with_gpus(count):  # torch's CUDA device count, on a machine without CUDA here
        return SimpleNamespace(cuda=SimpleNamespace(device_count=lambda: count))

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert distributed._own_gpu(0, with_gpus(0)) is None, "no CUDA: the ranks run on the CPU"
    assert [distributed._own_gpu(rank, with_gpus(2)) for rank in range(3)] == ["0", "1", False]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert [distributed._own_gpu(rank, with_gpus(2)) for rank in range(3)] == ["4", "6", False]


# --- torchrun ----------------------------------------------------------------------------------

def environment(cache_folder: Path, **extra: str) -> dict:
    env = {name: value for name, value in os.environ.items() if name not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**env, "PYTHONPATH": str(LIB), "NEURON_IG_CACHE": str(cache_folder), "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}


def torchrun(ranks: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]


JOIN_SCRIPT = """
import json, os, sys
from pathlib import Path
from neuron_ig.runtime import distributed

launched, base, said = distributed.launch(), Path(sys.argv[1]), []
for fingerprint, folder in [(f"book of rank {os.environ['RANK']}", "shared"), ("book", f"cache of rank {os.environ['RANK']}"),
                            ("book", "shared")]:
    try:
        distributed.join(launched, fingerprint, base / folder)
        said.append(os.environ[distributed.SHARD_VARIABLE])
    except distributed.LaunchError as error:
        said.append(str(error))
distributed.leave()
(base / f"rank {launched.rank}.json").write_text(json.dumps(said))
"""


def test_ranks_refuse_together_another_book_or_a_cache_they_do_not_share(tmp_path):
    script = tmp_path / "join.py"
    script.write_text(JOIN_SCRIPT)
    done = subprocess.run([*torchrun(2), str(script), str(tmp_path)], env=environment(tmp_path / "unused"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        another_book, unshared, joined = json.loads((tmp_path / f"rank {rank}.json").read_text())
        assert another_book.startswith("rank 1 (on ") and "runs another book or params file than rank 0" in another_book
        assert "does not see rank 0's cache folder" in unshared and "NEURON_IG_CACHE" in unshared
        assert joined == f"{rank}/2"
    assert not list((tmp_path / "shared").glob(".ranks-*")), "the probe of the shared cache is removed"


def make_root(tmp_path: Path, name: str, model: Path) -> tuple[Path, Path]:
    """A copy of the book's sources (the real notebooks) and a params file for it: ``(root, params file)``."""
    root = tmp_path / name
    root.mkdir()
    for item in ("_toc.yml", "_config.yml"):
        shutil.copy(REPOSITORY / item, root / item)
    shutil.copytree(REPOSITORY / "notebooks", root / "notebooks")
    params = {**PARAMS, "book": {**PARAMS["book"], "model": str(model)}}
    (root / "params.yml").write_text(json.dumps(params))  # JSON is YAML
    return root, root / "params.yml"


def build(root: Path, cache_folder: Path, ranks: int, **extra: str) -> subprocess.CompletedProcess:
    runner = ["-m", "neuron_ig.report.runner", "--params", "params.yml", "--only", PAGE, "--no-build"]
    command = [*torchrun(ranks), *runner] if ranks > 1 else [sys.executable, *runner]
    return subprocess.run(command, cwd=root, env=environment(cache_folder, **extra), capture_output=True, text=True,
                          timeout=300)


def results(cache_folder: Path) -> dict[str, Path]:
    """The NIG and pruning entries of a cache, by path under it (the parts of a finished NIG result are gone)."""
    return {path.relative_to(cache_folder).as_posix(): path
            for kind in ("nig", "pruning") for path in sorted((cache_folder / kind).rglob("*"))
            if path.is_file() and path.suffix in (".npz", ".json") and not path.name.endswith(cache.MANIFEST_SUFFIX)}


def glued(root: Path) -> dict:
    """The values the page glues (its tables), from its executed notebook."""
    notebook = json.loads((root / "book" / "generated" / f"{PAGE}.ipynb").read_text())
    return {output["metadata"]["scrapbook"]["name"]: output["data"] for cell in notebook["cells"]
            for output in cell.get("outputs", []) if "scrapbook" in output.get("metadata", {})}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, ir_datasets_home):
    """The page run by one process: its root, its cache and the folder of the model."""
    from neuron_ig.engine.models import random_cross_encoder

    tmp = tmp_path_factory.mktemp("distributed")
    encoder = random_cross_encoder(num_layers=2, seed=5)
    encoder.save(tmp / "model")
    root, _ = make_root(tmp, "one", tmp / "model")
    done = build(root, tmp / "cache-one", 1)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return tmp, root, tmp / "cache-one"


@pytest.fixture(scope="module")
def two_ranks(one_process):
    """The page run by two ranks: killed when rank 1 has written its first NIG chunk, then run again.

    Returns the root, the cache, the killed run and its units, the chunks on disk after it, the rerun and its units.
    """
    tmp, _, _ = one_process
    root, _ = make_root(tmp, "two", tmp / "model")
    two_cache, log = tmp / "cache-two", tmp / "units.log"
    killed = build(root, two_cache, 2, NEURON_IG_TEST_CRASH_AFTER="1:1", NEURON_IG_UNITS_LOG=str(log))
    first = [line.split("\t") for line in log.read_text().splitlines()]
    parts = sorted((two_cache / "nig").rglob("parts/*.npz"))
    assert not (two_cache / "pruning").exists(), "the killed run stopped in the NIG chunks: no re-ranking began"
    half_page = (root / "book" / "generated" / f"{PAGE}.ipynb").exists()
    log.unlink()
    resumed = build(root, two_cache, 2, NEURON_IG_UNITS_LOG=str(log))
    second = [line.split("\t") for line in log.read_text().splitlines()] if log.exists() else []
    return root, two_cache, killed, first, parts, half_page, resumed, second


def test_a_rank_killed_mid_run_stops_the_run_and_the_rerun_resumes_from_the_chunks_written(two_ranks):
    root, two_cache, killed, first, parts, half_page, resumed, second = two_ranks
    assert killed.returncode != 0 and "DeadKernelError" in killed.stderr, "rank 1's kernel exited, its runner failed"
    assert not half_page, "rank 0, stopped by torchrun, leaves no half-executed page to build on (PAGE.failed.ipynb)"
    assert [(rank, Path(path).name) for rank, _, path in first if rank == "1"] == [("1", "00001.npz")]
    assert {Path(path) for _, _, path in first} <= set(parts), "every chunk computed before the kill was written"

    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    again = {Path(path) for _, _, path in second}
    assert not again & set(parts), "no chunk written before the kill is computed again"
    assert parts[0].with_name("00003.npz") in again, "rank 1's second chunk, never begun, is computed"
    assert {rank for rank, _, _ in second} == {"0", "1"}, "both ranks computed re-rankings"
    assert not list(two_cache.rglob("parts")), "the chunks were merged into the result"
    assert not (root / "book" / "generated" / f"{PAGE}.failed.ipynb").exists()


def test_two_ranks_give_the_cache_and_the_page_of_one_process(one_process, two_ranks):
    _, one_root, one_cache = one_process
    root, two_cache, *_ = two_ranks
    expected, got = results(one_cache), results(two_cache)
    assert sorted(got) == sorted(expected) and len([name for name in got if name.startswith("pruning/")]) == 7
    for name, path in expected.items():
        if path.suffix == ".npz":  # the arrays of the same computation, in the same order, written the same way
            assert got[name].read_bytes() == path.read_bytes(), name
        else:
            manifests = [json.loads(p.read_text()) for p in (path, got[name])]
            for manifest in manifests:
                manifest.pop("seconds", None)
            assert manifests[0] == manifests[1]
    arrays = np.load(got[next(name for name in got if name.endswith("nig.npz"))])
    assert arrays["attributions"].shape == (64, 4, 2, 64)
    assert glued(root) == glued(one_root), "rank 0's page shows what the one-process page shows"
