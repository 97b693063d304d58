"""The results cache: a folder of arrays and JSON manifests, each keyed by every parameter that changes
it, each written atomically (a reader never sees half a file; an interrupted run leaves only whole
files behind).

One cache, whatever the entry point (the book's runner, a notebook in JupyterLab, ``import neuron_ig``
in a Python session), found by this rule:

1. ``$NEURON_IG_CACHE``, if set;
2. else, when this package is imported from a source checkout (``lib/neuron_ig`` inside a folder that
   holds ``pyproject.toml`` and ``_toc.yml``, as with ``pip install -e .``), ``<checkout>/.cache/neuron_ig``,
   the folder the runner uses when it builds the book of that checkout;
3. else (an installed wheel) ``~/.cache/neuron_ig``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np


def source_checkout() -> Path | None:
    """The checkout this package is imported from (the folder above ``lib/neuron_ig`` that holds
    ``pyproject.toml`` and ``_toc.yml``), or None for an installed package."""
    package = Path(__file__).resolve().parent
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


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_folder_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_folder)`` on a new folder beside ``path``, then rename it onto ``path``.

    The folder appears whole or not at all; if a concurrent build renamed its folder first, that one is kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        write(tmp)
        tmp.chmod(0o755)
        os.replace(tmp, path)
    except OSError:
        if not path.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def save_json(path: Path, data) -> Path:
    def write(tmp: Path):
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    return write_atomic(path, write)


def load_json(path: Path):
    return json.loads(Path(path).read_text())


def save_arrays(path: Path, **arrays: np.ndarray) -> Path:
    """Save named arrays as one ``.npz`` file, atomically."""
    def write(tmp: Path):
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return write_atomic(path, write)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def file_fingerprint(paths: list[Path]) -> str:
    """sha256 of the contents of some files (e.g. a model's weights), 16 hex digits."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
