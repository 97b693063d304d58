"""Tests of the offline altair helpers: theme, SVG renderer, inline SVG display."""

import re

import altair as alt
import pandas as pd

from neuron_ig import plots


def bar_chart() -> alt.Chart:
    data = pd.DataFrame({"layer": [0, 1, 2, 3], "neurons": [3, 1, 4, 1], "class": ["pos", "neg", "pos", "neg"]})
    return alt.Chart(data).mark_bar().encode(x="layer:O", y="neurons", color="class")


def test_import_enables_theme_and_svg_renderer():
    assert alt.theme.active == plots.THEME_NAME
    assert alt.renderers.active == "svg"
    assert plots.theme()["config"]["range"]["category"] == plots.OKABE_ITO


def test_to_svg_draws_with_the_colour_blind_safe_palette():
    svg = plots.to_svg(bar_chart())
    assert svg.startswith("<svg")
    colours = set(re.findall(r'fill="(#[0-9A-Fa-f]{6})"', svg))
    assert colours == set(plots.OKABE_ITO[:2])  # two classes: the first two Okabe-Ito colours


def test_ids_differ_between_charts_of_one_page():
    clipped = alt.Chart(pd.DataFrame({"x": [1, 2], "y": [1, 2]})).mark_line(clip=True).encode(
        x=alt.X("x", scale=alt.Scale(domain=[1, 1.5])), y="y")
    first, second = plots.to_svg(clipped), plots.to_svg(clipped)
    first_ids = set(re.findall(r'\bid="([^"]+)"', first))
    second_ids = set(re.findall(r'\bid="([^"]+)"', second))
    assert first_ids and not first_ids & second_ids
    for ident in first_ids:
        assert f"url(#{ident})" in first  # references follow their ids


def test_show_publishes_inline_svg(monkeypatch):
    published = []
    monkeypatch.setattr(plots, "display", lambda bundle, raw: published.append((bundle, raw)))
    plots.show(bar_chart())
    (bundle, raw), = published
    assert raw is True
    assert bundle["text/html"].startswith("<svg") and bundle["image/svg+xml"] == bundle["text/html"]
    assert "<script" not in bundle["text/html"]
