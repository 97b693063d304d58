"""Data-parallel builds: the runner under ``torchrun``, its ranks sharing the expensive cache entries.

``torchrun --nproc_per_node=N -m neuron_ig.report.runner --params params/paper.yml`` (with ``--nnodes`` and a
rendezvous for several machines) starts N runners. Every rank executes every page, so no list of the work
can drift from the pages; the expensive units the pages ask for are shared out by rank: the chunks of
pairs of each NIG result (:func:`neuron_ig.studies.results.cached_nig`) and the re-rankings of each pruning study
(:func:`neuron_ig.studies.pruning.pruning_study`). Unit ``i`` of a call's list is computed by rank ``i mod world``
(:func:`share`), which writes it to the cache atomically, exactly as one process would; the other ranks wait
for it and read it. The chunking, the batches within a chunk and the order of the units do not depend on the
number of ranks, so the cache, and the book, are those of a one-process run. Rank 0 writes the book's
pages and builds the book; the other ranks execute the pages into a scratch folder and exit.

The runner joins the ranks in a ``gloo`` process group (:func:`join`) only to check, before any page runs,
that every rank runs the same book and parameters and sees the same cache folder (on several machines:
``NEURON_IG_CACHE`` on a shared filesystem), and gives each rank its GPU (``CUDA_VISIBLE_DEVICES`` =
the ``LOCAL_RANK``-th visible one). A rank that dies stops the job (torchrun stops the others); a rerun
resumes from the units already in the cache.

Test hooks (environment variables, for the tests of a killed rank; no build sets them):
``NEURON_IG_TEST_CRASH_AFTER=RANK:N`` makes rank RANK's process exit abruptly (status 75) after it has
computed N units; ``NEURON_IG_UNITS_LOG=FILE`` appends one line per unit computed (rank, seconds, entry).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from neuron_ig.runtime import cache

SHARD_VARIABLE = "NEURON_IG_SHARD"  # "RANK/WORLD", set by the runner for its notebooks' kernels
CRASH_VARIABLE = "NEURON_IG_TEST_CRASH_AFTER"  # test hook: "RANK:N"
UNITS_LOG_VARIABLE = "NEURON_IG_UNITS_LOG"  # test hook: a file, one line per unit computed
CRASH_STATUS = 75
WAIT_MESSAGE_S = 60.0  # while waiting for other ranks' units, one line this often
POLL_S = 0.5

_computed = 0  # units computed by this process (for the crash hook)


class LaunchError(Exception):
    """The ranks of a torchrun launch cannot build together; its message is one line that names the fix."""


@dataclass(frozen=True)
class Launch:
    """This process's place in a torchrun launch: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int
    world_size: int
    local_rank: int


def launch() -> Launch | None:
    """The torchrun launch this process belongs to (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), or None when it
    was not started by torchrun or is its only process."""
    if "WORLD_SIZE" not in os.environ:
        return None
    try:
        rank, world, local = (int(os.environ.get(name, "0")) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise LaunchError("RANK, WORLD_SIZE and LOCAL_RANK must be integers: start the runner with torchrun, "
                          "which sets them") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise LaunchError(f"RANK={rank} is outside WORLD_SIZE={world}: start the runner with torchrun, which sets them")
    return Launch(rank, world, local)


def shard() -> tuple[int, int]:
    """``(rank, world)`` of this process's share of the units (``NEURON_IG_SHARD``), ``(0, 1)`` alone."""
    value = os.environ.get(SHARD_VARIABLE)
    if not value:
        return 0, 1
    rank, world = (int(part) for part in value.split("/"))
    return rank, world


def share(units: Sequence[tuple[Path, Callable[[], object]]], *, finished: Callable[[], bool] = lambda: False) -> None:
    """Make the cache entries of ``units`` ready, sharing them with the other ranks of :func:`shard`.

    ``units``: ``(path, compute)`` in an order every rank agrees on; ``compute()`` writes entry ``path``. Of the
    units with distinct paths, unit ``i`` is rank ``i mod world``'s: this rank computes its own that are not ready
    (each under the entry's lock, so two launches on one cache never compute an entry twice), then waits until
    the others' are ready or ``finished()`` (e.g. another rank has already merged them). Alone, it computes
    every unit that is not ready, in order.
    """
    rank, world = shard()
    unique = list({Path(path): compute for path, compute in units}.items())
    for index, (path, compute) in enumerate(unique):
        if index % world == rank and not finished():
            with cache.computing(path) as done:
                if not done and not finished():  # under the lock: a rank that merged the units removes them under it
                    _compute(path, compute, rank)
    _wait([(path, index % world) for index, (path, _) in enumerate(unique) if index % world != rank], finished, rank, world)


def _compute(path: Path, compute: Callable[[], object], rank: int) -> None:
    global _computed
    start = time.monotonic()
    compute()
    _computed += 1
    log = os.environ.get(UNITS_LOG_VARIABLE)
    if log:
        with open(log, "a") as handle:  # one short append per line: whole lines from every rank
            handle.write(f"{rank}\t{time.monotonic() - start:.2f}\t{path}\n")
    crash = os.environ.get(CRASH_VARIABLE)
    if crash and crash.split(":") == [str(rank), str(_computed)]:
        print(f"{CRASH_VARIABLE}={crash}: rank {rank} exits after {_computed} units (a test of a killed rank)",
              file=sys.stderr, flush=True)
        os._exit(CRASH_STATUS)


def _wait(pending: list[tuple[Path, int]], finished: Callable[[], bool], rank: int, world: int) -> None:
    """Until every entry of ``pending`` (``(path, rank that computes it)``) is ready, or ``finished()``."""
    started = last = time.monotonic()
    while pending and not finished():
        # problem() only reads: a waiting rank never moves a peer's entry to quarantine (its owner does)
        pending = [(path, owner) for path, owner in pending if cache.problem(path) is not None]
        if not pending:
            break
        if time.monotonic() - last >= WAIT_MESSAGE_S:
            last = time.monotonic()
            ranks = ", ".join(str(owner) for owner in sorted({owner for _, owner in pending}))
            print(f"rank {rank}/{world}: waiting {(last - started) / 60:.1f} min for {len(pending)} cache entries of "
                  f"rank(s) {ranks} (next: {pending[0][0]})", file=sys.stderr, flush=True)
        time.sleep(POLL_S)


# --- the runner's side: joining the ranks --------------------------------------------------------

def join(launched: Launch, fingerprint: str, cache_folder: Path) -> None:
    """Join the launch's process group and check, on every rank at once, that the ranks can build together.

    Raises :class:`LaunchError` on every rank when one runs another book or parameters (``fingerprint``
    differs), does not see rank 0's cache folder, or has no GPU of its own. Then sets, for the notebooks'
    kernels, :data:`SHARD_VARIABLE` and, where CUDA is present, ``CUDA_VISIBLE_DEVICES`` to this rank's GPU.
    """
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")  # only for these checks: the kernels do the computing
    host = socket.gethostname()
    gpu = _own_gpu(launched.local_rank, torch)
    seen = [None] * launched.world_size
    dist.all_gather_object(seen, (fingerprint, host, gpu is not False))
    for rank, (other, other_host, has_gpu) in enumerate(seen):
        if other != seen[0][0]:
            raise LaunchError(f"rank {rank} (on {other_host}) runs another book or params file than rank 0 (on "
                              f"{seen[0][1]}): give every machine the same checkout, params file and --only")
        if not has_gpu:
            raise LaunchError(f"rank {rank} (on {other_host}) has no GPU of its own: start at most as many processes "
                              "per machine (--nproc_per_node) as it has GPUs")
    _check_shared_cache(launched, Path(cache_folder), host, dist)
    os.environ[SHARD_VARIABLE] = f"{launched.rank}/{launched.world_size}"
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def _own_gpu(local_rank: int, torch) -> str | None | bool:
    """This rank's GPU among the visible ones (``CUDA_VISIBLE_DEVICES`` entry), None without CUDA, False if none left."""
    count = torch.cuda.device_count()
    if count == 0:
        return None
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()] or [str(i) for i in range(count)]
    return visible[local_rank] if local_rank < min(count, len(visible)) else False


def _check_shared_cache(launched: Launch, folder: Path, host: str, dist) -> None:
    token = [secrets.token_hex(8) if launched.rank == 0 else None]
    dist.broadcast_object_list(token, src=0)
    probe = folder / f".ranks-{token[0]}"
    if launched.rank == 0:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_text(token[0])
    dist.barrier()
    try:
        sees = probe.read_text() == token[0]
    except OSError:
        sees = False
    seen = [None] * launched.world_size
    dist.all_gather_object(seen, (sees, host, str(folder)))
    dist.barrier()
    if launched.rank == 0:
        probe.unlink(missing_ok=True)
    for rank, (ok, other_host, other_folder) in enumerate(seen):
        if not ok:
            raise LaunchError(f"rank {rank} (on {other_host}) does not see rank 0's cache folder ({seen[0][2]} on "
                              f"{seen[0][1]}; its own is {other_folder}): set NEURON_IG_CACHE on every machine to one "
                              "folder of a filesystem they share")


def leave() -> None:
    """Leave the process group (if joined) and clear the shard of the notebooks' kernels."""
    os.environ.pop(SHARD_VARIABLE, None)
    if "torch.distributed" in sys.modules:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def fingerprint(*texts: str, files: Sequence[Path] = ()) -> str:
    """sha256 of some texts and the contents of some files: what every rank must agree on."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode() + b"\0")
    for path in sorted(Path(p) for p in files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
