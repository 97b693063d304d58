"""A page's provenance block: the software versions (:func:`neuron_ig.runtime.versions.software_versions`) and
the parameters it ran with, as a folded Markdown table that the book and JupyterLab both render, so the figures
come first. A notebook calls ``show_provenance(params)`` in its first cell after the parameters.
"""
from __future__ import annotations

import pandas as pd
from IPython.display import Markdown, display

from neuron_ig.runtime.versions import software_versions


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
