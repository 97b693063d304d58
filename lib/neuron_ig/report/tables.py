"""How the report writes numbers in its tables: three significant digits, integers as integers, nothing for a
missing value, so that a table reads at a glance and fits the text column."""
from __future__ import annotations

import math

import pandas as pd
from pandas.io.formats.style import Styler


def number_text(value) -> str:
    """Three significant digits; integers as integers; empty for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    value = float(value)
    if value.is_integer() and abs(value) < 1e6:
        return f"{int(value)}"
    return f"{value:.3g}"


def compact_table(table: pd.DataFrame) -> Styler:
    """``table`` without its index, every number written by :func:`number_text`."""
    return table.style.hide(axis="index").format(number_text, subset=list(table.select_dtypes("number").columns))
