"""The software that made a result: package versions, the git commit of the checkout, the device.

:func:`software_versions` is stored with every cached result and shown on every page
(:mod:`neuron_ig.report.provenance`).
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

#: Distributions whose versions are reported, by the name the report shows.
PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "captum": "captum",
    "ir_datasets": "ir_datasets",
    "ir_measures": "ir-measures",
    "bm25s": "bm25s",
    "altair": "altair",
    "neuron_ig": "neuron-ig",
}


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from, marked ``(modified)`` if the tree is dirty."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit} (modified)" if dirty else commit


def _cuda_device() -> str | None:
    """The name of the first CUDA device, or None without one (or without torch)."""
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def software_versions() -> dict[str, str]:
    """Versions of Python and of the packages behind the results, plus git commit and CUDA device if any."""
    versions = {"python": platform.python_version()}
    for shown, distribution in PACKAGES.items():
        try:
            versions[shown] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[shown] = "not installed"
    commit = _git_commit()
    if commit:
        versions["git commit"] = commit
    device = _cuda_device()
    if device:
        versions["CUDA device"] = device
    return versions


