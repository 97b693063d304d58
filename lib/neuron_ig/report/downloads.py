"""A figure's data as a file the reader downloads from its page.

``data_file`` writes a table as CSV into the working directory, which is ``book/generated/`` when the
runner executes a page, and returns a MyST ``{download}`` link to it: Sphinx copies the file into the
built site (``_build/html/_downloads/``) and the link points there. The runner names the page it makes
in the environment variable ``NEURON_IG_PAGE``; the file is ``PAGE.NAME.csv``, so that the pages one
notebook makes do not overwrite each other's files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

PAGE_VARIABLE = "NEURON_IG_PAGE"


def data_file_name(name: str) -> str:
    """``PAGE.NAME.csv`` for the page being made (``NAME.csv`` outside the runner)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ValueError(f"data file name {name!r}: use letters, digits, '_' and '-' only (it becomes NAME.csv)")
    page = os.environ.get(PAGE_VARIABLE)
    return f"{page}.{name}.csv" if page else f"{name}.csv"


def data_file(table: pd.DataFrame, name: str, text: str, folder: Path | str = ".") -> str:
    """Write ``table`` (its index dropped) as CSV to ``folder/data_file_name(name)``; return the MyST link.

    The write is atomic (a temporary file renamed), so an interrupted run leaves no half file.
    """
    path = Path(folder) / data_file_name(name)
    partial = path.with_name(path.name + ".partial")
    table.to_csv(partial, index=False)
    partial.replace(path)
    return f"{{download}}`{text} <{path.name}>`"
