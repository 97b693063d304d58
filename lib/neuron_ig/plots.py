"""Altair charts that work offline: a colour-blind-safe theme and inline SVG output.

Importing this module registers and enables the ``neuron_ig`` theme (the Okabe-Ito palette, Okabe &
Ito 2008, safe for the common colour-vision deficiencies) and altair's ``svg`` renderer, which draws
charts with vl-convert-python instead of loading vega from a CDN. In a notebook, ``show(chart)``
displays a chart as inline SVG, so the built book holds the drawing itself and needs no JavaScript.
"""

from __future__ import annotations

import io
import itertools
import re

import altair as alt
from IPython.display import display

#: Okabe-Ito colours, in their usual order (orange, sky blue, bluish green, yellow, blue,
#: vermillion, reddish purple, black).
OKABE_ITO = [
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
]

THEME_NAME = "neuron_ig"

_chart_numbers = itertools.count()


def theme() -> dict:
    """The chart configuration of the book: Okabe-Ito categories, colour-blind-safe ramps, plain fonts."""
    return {
        "config": {
            "range": {
                "category": OKABE_ITO,
                "ordinal": {"scheme": "viridis"},
                "ramp": {"scheme": "viridis"},
                "diverging": {"scheme": "blueorange"},
            },
            "font": "DejaVu Sans, Helvetica, Arial, sans-serif",
            "view": {"stroke": None},
            "axis": {"labelFontSize": 11, "titleFontSize": 12},
            "legend": {"labelFontSize": 11, "titleFontSize": 12},
        }
    }


def enable() -> None:
    """Register and enable the book's theme and altair's offline ``svg`` renderer."""
    alt.theme.register(THEME_NAME, enable=True)(theme)
    alt.renderers.enable("svg")


def to_svg(chart: alt.TopLevelMixin) -> str:
    """The chart drawn as an SVG document by vl-convert, with ids made unique to this chart.

    Vega names clip paths and gradients ``clip1``, ``gradient_0``...: two charts inlined in one page
    would share those ids, so every id gets a prefix of its own.
    """
    buffer = io.StringIO()
    chart.save(buffer, format="svg")
    svg = buffer.getvalue()
    prefix = f"nig-chart{next(_chart_numbers)}-"
    ids = set(re.findall(r'\bid="([^"]+)"', svg))
    for old in sorted(ids, key=len, reverse=True):
        new = prefix + old
        svg = svg.replace(f'id="{old}"', f'id="{new}"')
        svg = svg.replace(f"url(#{old})", f"url(#{new})")
        svg = svg.replace(f'href="#{old}"', f'href="#{new}"')
    return svg


def show(chart: alt.TopLevelMixin) -> None:
    """Display the chart as inline SVG (``text/html`` for the book, ``image/svg+xml`` for JupyterLab)."""
    svg = to_svg(chart)
    display(
        {"text/html": svg, "image/svg+xml": svg, "text/plain": f"<{type(chart).__name__} as SVG>"},
        raw=True,
    )


enable()
