"""The results cache: a folder of entries (arrays, JSON files, folders), each keyed by every parameter that
changes it.

An entry ``X`` (a file or a folder) is written atomically (a reader never sees half of it; an interrupted
run leaves only whole files behind), then its manifest ``X.entry.json`` beside it, last: the size and
sha256 of each of its files, the cache format and the versions of the packages that change its numbers.
:func:`ready` checks an entry against its manifest (sizes always, hashes once per process and file) and
moves a damaged, incomplete or other-version entry to ``<cache>/quarantine/`` with a ``WHY.txt``, with a
one-line warning, so that the caller computes it again. A lock file ``X.lock`` beside each entry
(:func:`lock`, ``filelock``) keeps two processes from computing the same entry at once: the second waits,
then reads the first's result. A full disk gives one line naming the cache and the space needed
(:class:`CacheFull`). ``python -m neuron_ig.runtime.cache`` shows the cache's size per kind and removes entries.

One cache, whatever the entry point (the book's runner, a notebook in JupyterLab, ``import neuron_ig``
in a Python session), found by this rule:

1. ``$NEURON_IG_CACHE``, if set;
2. else, when this package is imported from a source checkout (``lib/neuron_ig`` inside a folder that
   holds ``pyproject.toml`` and ``_toc.yml``, as with ``pip install -e .``), ``<checkout>/.cache/neuron_ig``,
   the folder the runner uses when it builds the book of that checkout;
3. else (an installed wheel) ``~/.cache/neuron_ig``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

import filelock
import numpy as np

#: Layout of entries and manifests; bumped when a change of this library changes what an entry means.
FORMAT = 1
MANIFEST_SUFFIX = ".entry.json"
LOCK_SUFFIX = ".lock"
QUARANTINE = "quarantine"
#: The distributions whose version changes the numbers of an entry, by kind (first folder under the cache).
NUMBER_PACKAGES = {
    "nig": ("torch", "transformers"), "pruning": ("torch", "transformers"), "models": ("torch", "transformers"),
    "effectiveness": ("torch", "transformers", "ir-measures", "bm25s"), "bm25": ("bm25s",), "embedded": (),
}
DEFAULT_PACKAGES = ("torch", "transformers")


class CacheWarning(UserWarning):
    """A cache entry was damaged, incomplete or written by other versions: moved to quarantine, recomputed."""


class CacheFull(OSError):
    """No space left on the cache's device while writing an entry (errno ENOSPC); its message is one line."""

    def __str__(self) -> str:
        return str(self.strerror)


class DamagedEntry(ValueError):
    """An entry read without :func:`ready` first does not match its manifest."""


def source_checkout() -> Path | None:
    """The checkout this package is imported from (the folder above ``lib/neuron_ig`` that holds
    ``pyproject.toml`` and ``_toc.yml``), or None for an installed package."""
    package = Path(__file__).resolve().parents[1]  # lib/neuron_ig, above runtime/
    checkout = package.parents[1]
    if package.parent.name == "lib" and (checkout / "pyproject.toml").is_file() and (checkout / "_toc.yml").is_file():
        return checkout
    return None


def cache_root() -> Path:
    """The cache folder: ``$NEURON_IG_CACHE`` if set, else ``<checkout>/.cache/neuron_ig`` when imported
    from a source checkout, else ``~/.cache/neuron_ig`` (the rule of the module docstring)."""
    if os.environ.get("NEURON_IG_CACHE"):
        return Path(os.environ["NEURON_IG_CACHE"])
    checkout = source_checkout()
    return checkout / ".cache" / "neuron_ig" if checkout else Path.home() / ".cache" / "neuron_ig"


def parameters_key(parameters: dict) -> str:
    """A short stable hash of a JSON-able parameter dict (key order does not matter)."""
    text = json.dumps(parameters, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def slug(text: str) -> str:
    """A file-name-safe rendering of a model or dataset id: ``beir/nfcorpus/test`` -> ``beir_nfcorpus_test``."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", str(text)).strip("_")


# --- entries: manifests, verification, quarantine ------------------------------------------------

def manifest_path(path: Path) -> Path:
    """The manifest of entry ``path``: ``X.entry.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + MANIFEST_SUFFIX)


def kind(path: Path) -> str:
    """The kind of an entry: its first folder under the cache root (``nig``, ``pruning``, ``bm25``...)."""
    try:
        return Path(path).resolve().relative_to(cache_root().resolve()).parts[0]
    except (ValueError, IndexError):
        return ""


@functools.lru_cache(maxsize=None)
def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def current_versions(path: Path) -> dict[str, str]:
    """What an entry at ``path`` records and must match: the cache format and the versions of its kind's packages."""
    packages = NUMBER_PACKAGES.get(kind(path), DEFAULT_PACKAGES)
    return {"cache format": str(FORMAT), **{name: _version(name) for name in packages}}


def _files(path: Path) -> dict[str, Path]:
    """The files of an entry, by name relative to it (``"."`` for a file entry)."""
    if path.is_dir():
        return {p.relative_to(path).as_posix(): p for p in sorted(path.rglob("*")) if p.is_file()}
    return {".": path}


_hashes: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, so a file is hashed once per process


def sha256(path: Path) -> str:
    """sha256 of a file's bytes, remembered for as long as its size and modification time do not change."""
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def _write_manifest(path: Path, meta: dict | None = None) -> None:
    files = {name: {"size": file.stat().st_size, "sha256": sha256(file)} for name, file in _files(path).items()}
    manifest = {"versions": current_versions(path), "neuron_ig": _version("neuron-ig"),
                "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "files": files, "meta": meta or {}}
    text = json.dumps(manifest, indent=1, sort_keys=True, default=str)
    _replace_atomically(manifest_path(path), lambda tmp: tmp.write_text(text), len(text))


def read_manifest(path: Path) -> dict:
    """The manifest of entry ``path`` (``{}`` if it has none)."""
    try:
        return json.loads(manifest_path(path).read_text())
    except (OSError, ValueError):
        return {}


def problem(path: Path) -> str | None:
    """Why entry ``path`` cannot be used (one phrase), or None if it matches its manifest.

    ``"absent"`` when neither the entry nor its manifest exists.
    """
    path = Path(path)
    if not manifest_path(path).exists():
        return "absent" if not path.exists() else "no manifest (written by an older neuron_ig, or interrupted)"
    manifest = read_manifest(path)
    if not manifest.get("files"):
        return f"unreadable manifest {manifest_path(path).name}"
    recorded, current = manifest.get("versions", {}), current_versions(path)
    if recorded != current:
        changed = [f"{name} {recorded.get(name, 'unknown')}" for name in current if recorded.get(name) != current[name]]
        now = [f"{name} {current[name]}" for name in current if recorded.get(name) != current[name]]
        return f"written with {', '.join(changed)} (this is {', '.join(now)})"
    for name, expected in manifest["files"].items():
        file = path if name == "." else path / name
        try:
            size = file.stat().st_size
        except OSError:
            return f"{name} is missing"
        if size != expected["size"]:
            return f"{file.name} has {size} bytes, {expected['size']} when written (truncated or overwritten)"
        if sha256(file) != expected["sha256"]:
            return f"{file.name} does not match its sha256 (damaged)"
    return None


def ready(path: Path) -> bool:
    """True if entry ``path`` is complete and matches its manifest, else False: the caller computes it.

    A damaged, incomplete or other-version entry is first moved to quarantine (under the entry's lock, so
    a half-written entry of another process is never taken for a damaged one), with a one-line warning.
    """
    path = Path(path)
    why = problem(path)
    if why in (None, "absent"):
        return why is None
    with lock(path):
        why = problem(path)
        if why is None:
            return True
        if why != "absent":
            quarantine(path, why)
        return False


def quarantine(path: Path, why: str) -> Path:
    """Move entry ``path`` and its manifest to ``<cache>/quarantine/<time>-<name>/`` with a ``WHY.txt``; warn."""
    path = Path(path)
    root = cache_root()
    try:
        name = slug(path.resolve().relative_to(root.resolve()).as_posix())
    except ValueError:
        name = slug(path.name)
    target = Path(tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%dT%H%M%S')}-{name}-", dir=_mkdir(root / QUARANTINE)))
    for item in (path, manifest_path(path)):
        if item.exists():
            shutil.move(str(item), target / item.name)
    (target / "WHY.txt").write_text(f"{path}\n{why}\nmoved here {time.strftime('%Y-%m-%d %H:%M:%S')}; "
                                    "the entry was computed again\n")
    warnings.warn(f"cache entry {path}: {why}; moved to {target}, computing it again", CacheWarning, stacklevel=3)
    return target


def check(path: Path) -> Path:
    """``path`` itself if its entry matches its manifest; else a one-line :class:`DamagedEntry`."""
    why = problem(path)
    if why is not None:
        raise DamagedEntry(f"cache entry {path}: {why}; remove it (python -m neuron_ig.runtime.cache --remove --path {path} --yes) "
                           "or call the function that computes it")
    return Path(path)


def remove(path: Path) -> None:
    """Delete entry ``path`` and its manifest (its lock file stays: another process may be waiting on it)."""
    path = Path(path)
    with lock(path):
        manifest_path(path).unlink(missing_ok=True)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


# --- locks ---------------------------------------------------------------------------------------

def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def lock_path(path: Path) -> Path:
    """The lock file of entry ``path``: ``X.lock`` beside it (not inside, so the entry can move)."""
    path = Path(path)
    return path.with_name(path.name + LOCK_SUFFIX)


@contextlib.contextmanager
def lock(path: Path, wait_message: bool = True) -> Iterator[None]:
    """Hold entry ``path``'s lock (re-entrant within a process); says so on stderr if another process has it."""
    _mkdir(Path(path).parent)
    held = filelock.FileLock(lock_path(path), is_singleton=True)
    try:
        held.acquire(timeout=2)
    except filelock.Timeout:
        if wait_message:
            print(f"waiting for another process to finish the cache entry {path}", file=sys.stderr, flush=True)
        held.acquire()
    try:
        yield
    finally:
        held.release()


@contextlib.contextmanager
def computing(path: Path) -> Iterator[bool]:
    """``with computing(path) as done:``: ``done`` if entry ``path`` is ready to read; otherwise the caller
    computes and writes it inside the block, holding its lock (a second process waits, then reads it)."""
    if ready(path):
        yield True
        return
    with lock(path):
        yield ready(path)


# --- writing -------------------------------------------------------------------------------------

def _size(path: Path) -> int:
    try:
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size
    except OSError:
        return 0


def _megabytes(size: float) -> str:
    """``size`` bytes for a person: kB below a megabyte, MB below a gigabyte, else GB."""
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if size < scale * 1e3:
            return f"{size / scale:,.1f} {unit}"
    return f"{size / 1e9:,.1f} GB"


def _full(path: Path, needed: int) -> CacheFull:
    root = cache_root()
    try:
        free = shutil.disk_usage(_existing_parent(path)).free
    except OSError:
        free = 0
    return CacheFull(errno.ENOSPC, f"no space left for the cache in {root}: writing {path} needs about "
                     f"{_megabytes(max(needed, 1))} and {_megabytes(free)} are free; free some space "
                     "(python -m neuron_ig.runtime.cache lists what it holds) or move the cache (NEURON_IG_CACHE=/a/bigger/disk)")


def _existing_parent(path: Path) -> Path:
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _replace_atomically(path: Path, write: Callable[[Path], None], estimate: int = 0) -> None:
    """``write(tmp)`` a temporary file or folder beside ``path``, then rename it onto ``path``; never leaves it behind.

    Called holding the entry's lock, so any other temporary file of this entry is a killed writer's: removed.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.????????.tmp"):  # mkstemp's 8 random characters
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    tmp = Path(tmp)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as error:
        if error.errno == errno.ENOSPC and not isinstance(error, CacheFull):
            raise _full(path, max(estimate, _size(tmp))) from None
        raise
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_atomic(path: Path, write: Callable[[Path], None], *, estimate: int = 0, meta: dict | None = None) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, rename it onto ``path``, then write its manifest.

    Holds the entry's lock. ``estimate``: bytes it will take, for the message of a full disk (:class:`CacheFull`);
    ``meta``: anything JSON-able to record in the manifest. On any failure neither a temporary file nor
    a file without its manifest is left.
    """
    path = Path(path)
    _mkdir(path.parent)
    with lock(path, wait_message=False):
        _replace_atomically(path, write, estimate)  # an old manifest no longer matches: readers wait on the lock
        try:
            _write_manifest(path, meta)
        except BaseException:
            path.unlink(missing_ok=True)
            manifest_path(path).unlink(missing_ok=True)
            raise
    return path


def write_folder_atomic(path: Path, write: Callable[[Path], None], *, meta: dict | None = None) -> Path:
    """Call ``write(tmp_folder)`` on a new folder beside ``path``, rename it onto ``path``, then write its manifest.

    The folder appears whole or not at all, holding the entry's lock; an entry already there that is
    :func:`ready` is kept (a damaged one goes to quarantine first).
    """
    path = Path(path)
    _mkdir(path.parent)
    with lock(path, wait_message=False):
        if ready(path):  # a damaged entry goes to quarantine here
            return path

        def write_folder(tmp: Path) -> None:
            tmp.unlink()
            tmp.mkdir()
            write(tmp)
            tmp.chmod(0o755)

        _replace_atomically(path, write_folder)
        try:
            _write_manifest(path, meta)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
    return path


def save_json(path: Path, data, *, meta: dict | None = None) -> Path:
    """Save JSON-able ``data`` as an entry, atomically, with its manifest."""
    text = json.dumps(data, indent=2, sort_keys=True, default=str)
    return write_atomic(path, lambda tmp: tmp.write_text(text), estimate=len(text), meta=meta)


def load_json(path: Path):
    """The data of JSON entry ``path``, checked against its manifest (:class:`DamagedEntry` if it does not match)."""
    return json.loads(check(path).read_text())


def save_arrays(path: Path, **arrays: np.ndarray) -> Path:
    """Save named arrays as one ``.npz`` entry, atomically, with its manifest."""
    def write(tmp: Path):
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return write_atomic(path, write, estimate=sum(np.asarray(a).nbytes for a in arrays.values()))


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of ``.npz`` entry ``path``, checked against its manifest (:class:`DamagedEntry` if not)."""
    with np.load(check(path), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def file_fingerprint(paths: list[Path]) -> str:
    """sha256 of the contents of some files (e.g. a model's weights), 16 hex digits."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


# --- the command line: what the cache holds, and removing some of it ------------------------------

#: How deep under its kind's folder an entry lies (``nig/<model>/<dataset>/<class>-<key>/``, ...).
DEPTH = {"nig": 3, "pruning": 3, "bm25": 2, "embedded": 2, "models": 1, "effectiveness": 1, QUARANTINE: 1}


def entries(root: Path | None = None) -> list[tuple[str, Path]]:
    """Every entry of the cache as ``(kind, path)``: result folders, files and folders, without manifests and locks."""
    root = Path(root or cache_root())
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        items = [folder]
        for _ in range(DEPTH.get(folder.name, 1)):
            items = [c for p in items if p.is_dir() for c in sorted(p.iterdir())]
        found += [(folder.name, p) for p in items
                  if not p.name.startswith(".") and not p.name.endswith((MANIFEST_SUFFIX, LOCK_SUFFIX))]
    return found


def entry_size(path: Path) -> int:
    """Bytes of an entry with its manifest."""
    return _size(path) + _size(manifest_path(path))


def entry_version(path: Path) -> str | None:
    """The oldest neuron_ig version that wrote (part of) an entry; None for an entry without a manifest."""
    from packaging.version import Version

    manifests = [manifest_path(path)] + (sorted(path.rglob(f"*{MANIFEST_SUFFIX}")) if path.is_dir() else [])
    versions = [json.loads(m.read_text()).get("neuron_ig") for m in manifests if m.is_file()]
    versions = [v for v in versions if v]
    return min(versions, key=Version) if versions else None


def _of_model(kind_: str, parts: tuple[str, ...], path: Path, model: str) -> bool:
    name = slug(Path(str(model).rstrip("/")).name)
    if kind_ in ("nig", "pruning"):
        return parts[1] == name
    if kind_ == "models":
        return parts[1].startswith(name)
    if kind_ == "effectiveness":
        try:
            return slug(Path(json.loads(path.read_text())["parameters"]["model"].rstrip("/")).name) == name
        except (OSError, ValueError, KeyError):
            return False
    return False


def _of_dataset(kind_: str, parts: tuple[str, ...], dataset: str) -> bool:
    if kind_ in ("nig", "pruning"):
        return parts[2] == slug(dataset)
    if kind_ == "effectiveness":
        return parts[1].startswith(slug(dataset) + "-")
    if kind_ == "bm25":  # the index of the dataset's documents: bm25/<collection with __ for />/
        return f"{dataset}/".startswith(parts[1].replace("__", "/") + "/")
    return False


def selected(kind_: str, path: Path, *, model=None, dataset=None, older_than=None, kinds=None, inside=None) -> bool:
    """Whether entry ``path`` of ``kind_`` matches every selector given (see ``python -m neuron_ig.runtime.cache -h``)."""
    from packaging.version import Version

    root = cache_root().resolve()
    parts = path.resolve().relative_to(root).parts if path.resolve().is_relative_to(root) else (kind_, path.name)
    if kinds and kind_ not in kinds:
        return False
    if inside and not any(path.resolve().is_relative_to(p) for p in inside):
        return False
    if model is not None and not _of_model(kind_, parts, path, model):
        return False
    if dataset is not None and not _of_dataset(kind_, parts, dataset):
        return False
    if older_than is not None:
        version = entry_version(path)
        if version is not None and Version(version) >= Version(older_than):
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m neuron_ig.runtime.cache``: the cache's size per kind; ``--remove`` with selectors: a dry run, or ``--yes``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m neuron_ig.runtime.cache", description=main.__doc__.split(":")[0] + ": "
                                     "size per kind of entry; with --remove, what the selectors name (removed only with --yes)")
    parser.add_argument("--remove", action="store_true", help="list the entries the selectors name (a dry run; add --yes to remove them)")
    parser.add_argument("--yes", action="store_true", help="with --remove: really remove them")
    parser.add_argument("--model", help="entries of this model (NIG, pruned runs, effectiveness, trained model): an id or folder")
    parser.add_argument("--dataset", help="entries of this dataset id (NIG, pruned runs, effectiveness, its BM25 index)")
    parser.add_argument("--older-than", metavar="VERSION", help="entries written by a neuron_ig older than VERSION (or of unknown version)")
    parser.add_argument("--kind", nargs="+", choices=sorted(DEPTH), help="entries of these kinds only")
    parser.add_argument("--path", nargs="+", type=Path, help="these entries, or the entries under these folders")
    parser.add_argument("--all", action="store_true", help="with --remove: every entry")
    args = parser.parse_args(argv)
    root = cache_root()
    found = entries(root)
    if not args.remove:
        print(f"cache: {root} (set NEURON_IG_CACHE to use another folder)")
        by_kind: dict[str, list[int]] = {}
        for kind_, path in found:
            by_kind.setdefault(kind_, []).append(entry_size(path))
        print(f"{'kind':<15}{'entries':>8}{'size':>14}")
        for kind_, sizes in sorted(by_kind.items()):
            print(f"{kind_:<15}{len(sizes):>8}{_megabytes(sum(sizes)):>14}")
        total = _size(root) if root.is_dir() else 0
        print(f"{'total':<15}{len(found):>8}{_megabytes(total):>14}  (with lock files and temporary files)")
        return 0
    chosen = {"model": args.model, "dataset": args.dataset, "older_than": args.older_than, "kinds": args.kind,
              "inside": [p.resolve() for p in args.path] if args.path else None}
    if not args.all and not any(v is not None for v in chosen.values()):
        print("error: --remove needs a selector (--model, --dataset, --older-than, --kind, --path) or --all", file=sys.stderr)
        return 2
    doomed = [(k, p) for k, p in found if selected(k, p, **chosen)]
    size = sum(entry_size(p) for _, p in doomed)
    for kind_, path in doomed:
        print(f"{'removing' if args.yes else 'would remove'} {kind_:<13} {_megabytes(entry_size(path)):>11}  {path}")
    if not args.yes:
        print(f"dry run: {len(doomed)} entries, {_megabytes(size)}; add --yes to remove them")
        return 0
    for kind_, path in doomed:
        if kind_ == QUARANTINE:
            shutil.rmtree(path, ignore_errors=True)
        else:
            remove(path)
    print(f"removed {len(doomed)} entries, {_megabytes(size)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
