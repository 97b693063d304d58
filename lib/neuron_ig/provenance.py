"""Provenance of a notebook's results: the software that made them and the parameters it ran with.

A notebook calls ``show_provenance(params)`` in its first cell after the parameters, so every page of
the book says which versions, which commit, which device and which parameter values produced it, in a
folded block (an HTML ``<details>``, which the book and JupyterLab both render) so the figures come first.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

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


def parameters_table(params: dict) -> pd.DataFrame:
    """The parameters as a two-column table (``parameter``, ``value``), in the order given."""
    return pd.DataFrame({"parameter": list(params), "value": list(params.values())}, dtype=object)


def markdown_table(rows: list[tuple[str, str]], header: tuple[str, str]) -> str:
    """A Markdown table of two columns; ``|`` in cells is escaped."""

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {cell(a)} | `{cell(b)}` |" for a, b in rows]
    return "\n".join(lines)


SUMMARY = "Software and parameters of this page"


def provenance_markdown(params: dict) -> str:
    """The software versions and the parameters as two Markdown tables in a folded ``<details>`` block."""
    versions = software_versions()
    table = parameters_table(params)
    software = markdown_table(list(versions.items()), ("software", "version"))
    parameters = markdown_table(
        [(name, repr(value)) for name, value in zip(table["parameter"], table["value"])], ("parameter", "value")
    )
    # the blank lines end the HTML blocks, so the tables between them are read as Markdown
    return (f'<details class="nig-provenance">\n<summary>{SUMMARY}</summary>\n\n'
            f"**Software**\n\n{software}\n\n**Parameters**\n\n{parameters}\n\n</details>")


def show_provenance(params: dict) -> None:
    """Display :func:`provenance_markdown`: the software and parameter tables, folded."""
    display(Markdown(provenance_markdown(params)))
