"""Altair charts that work offline: a colour-blind-safe theme, interactive charts that load nothing.

Importing this module registers and enables the ``neuron_ig`` theme (the Okabe-Ito palette, Okabe &
Ito 2008, safe for the common colour-vision deficiencies) and altair's ``svg`` renderer, which draws
charts with vl-convert-python instead of loading vega from a CDN. In a notebook, ``show(chart)``
displays a chart as HTML that vega-embed renders interactively (tooltips), over a static SVG drawing
that stays where JavaScript does not run. The Vega, Vega-Lite and Vega-Embed libraries travel with
the first chart a kernel shows (one copy per page of the book, from vl-convert-python's bundle), so
neither the built book nor JupyterLab fetches anything from the network.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import uuid
from importlib import metadata
from typing import Mapping, Sequence

import altair as alt
import pandas as pd
import vl_convert
from IPython.display import display

from neuron_ig.runtime import cache

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


def vega_libraries() -> str:
    """Vega, Vega-Lite (the version altair writes) and Vega-Embed as one script, defining ``window.vegaEmbed``.

    Made by vl-convert-python (about 0.9 MB, 3 s) and kept in the cache, keyed by both versions.
    """
    vegalite = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    key = cache.slug(f"vl-convert-{metadata.version('vl-convert-python')}-vega-lite-{vegalite}")
    path = cache.cache_root() / "vega" / f"{key}.js"
    if not path.is_file():
        bundle = vl_convert.javascript_bundle(vl_version=vegalite)
        cache.write_atomic(path, lambda tmp: tmp.write_text(bundle))
    return path.read_text()


_libraries_shown = False  # whether this kernel has displayed the libraries (once per page)
_KERNEL_TAG = uuid.uuid4().hex[:8]


def to_html(chart: alt.TopLevelMixin, *, libraries: bool = False, svg: str | None = None) -> str:
    """The chart as HTML: a box holding its SVG drawing, and a script that vega-embed renders it with.

    The script replaces the drawing by the interactive chart (tooltips) once ``window.vegaEmbed`` exists;
    without it (no JavaScript, or no libraries on the page) the SVG stays. ``libraries`` puts the
    libraries' script (:func:`vega_libraries`) first, wrapped so that a second copy on a page is skipped.
    ``svg``: the chart's :func:`to_svg` drawing, if already made.
    """
    box = f"nig-chart-{_KERNEL_TAG}-{next(_chart_numbers)}"  # unique among the notebooks of one JupyterLab
    spec = json.dumps(chart.to_dict()).replace("</", "<\\/")  # no "</script>" inside the script
    options = json.dumps({"renderer": "svg", "actions": False})
    parts = []
    if libraries:
        parts.append("<script>if (!window.vegaEmbed) { (function () {\n" + vega_libraries() + "\n})(); }</script>")
    parts.append(f'<div id="{box}" class="nig-chart">{svg or to_svg(chart)}</div>')
    parts.append(
        "<script>(function () {\n"
        f'  var box = document.getElementById("{box}");\n'
        "  if (!box || !window.vegaEmbed) return;  // the static SVG stays\n"
        '  var chart = document.createElement("div");\n'
        f"  vegaEmbed(chart, {spec}, {options})\n"
        "    .then(function () { box.replaceChildren(chart); })\n"
        "    .catch(function (error) { console.error(error); });\n"
        "})();</script>"
    )
    return "\n".join(parts)


def show(chart: alt.TopLevelMixin) -> None:
    """Display the chart: ``text/html`` (:func:`to_html`, the libraries with the kernel's first chart)
    for the book and JupyterLab, ``image/svg+xml`` for frontends that run no script."""
    global _libraries_shown
    svg = to_svg(chart)
    page = to_html(chart, libraries=not _libraries_shown, svg=svg)
    _libraries_shown = True
    display({"text/html": page, "image/svg+xml": svg, "text/plain": f"<{type(chart).__name__}>"}, raw=True)


enable()


# --- charts of relevance-neuron sets ---------------------------------------------------------------

def set_colours(names: Sequence[str], black: Sequence[str] = ("intersection",)) -> dict[str, str]:
    """A fixed colour per set: Okabe-Ito colours in the order of ``names``, black for the names in ``black``.

    Give every dataset of the book in the same order on every page, so a dataset keeps its colour when
    a page leaves it out. More names than colours (7 besides black) is an error.
    """
    palette = [c for c in OKABE_ITO if c != "#000000"]
    coloured = [n for n in names if n not in black]
    if len(coloured) > len(palette):
        raise ValueError(f"{len(coloured)} sets but only {len(palette)} colour-blind-safe colours: show fewer sets per chart")
    colours = dict(zip(coloured, palette))
    colours.update({n: "#000000" for n in names if n in black})
    return {n: colours[n] for n in names}


def layer_count_chart(
    counts: pd.DataFrame,
    colours: Mapping[str, str],
    *,
    column: str | None = "p",
    row: str | None = None,
    title: str | None = None,
    width: int = 200,
    height: int = 180,
) -> alt.FacetChart | alt.Chart:
    """Neurons per layer, bars grouped by set, one facet per value of ``column`` (and ``row``).

    ``counts`` is a :func:`neuron_ig.stats.selection.layer_count_table` (columns ``set``, ``layer``,
    ``neurons``, and the facet fields); ``colours`` maps each set to show to its colour
    (:func:`set_colours`), in legend order; sets not in it are not drawn. A facet on ``p`` is labelled
    "top p%". Each facet has its own count axis: the sets grow with p.
    """
    data = counts[counts["set"].isin(list(colours))]
    chart = alt.Chart(data).mark_bar().encode(
        x=alt.X("layer:O", title="layer", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("set:N", sort=list(colours)),
        y=alt.Y("neurons:Q", title="neurons", axis=alt.Axis(tickMinStep=1, format="d")),
        color=alt.Color("set:N", title=None, scale=alt.Scale(domain=list(colours), range=list(colours.values())),
                        legend=alt.Legend(orient="bottom", columns=min(len(colours), 4), labelLimit=320)),
        tooltip=[*(f for f in (column, row) if f), "set", "layer", "neurons"],
    ).properties(width=width, height=height)
    facets = _facets(data, column, row)
    if facets:
        chart = chart.facet(**facets).resolve_scale(y="independent")
    return chart.properties(title=title) if title else chart


def _facets(data: pd.DataFrame, column: str | None, row: str | None) -> dict[str, alt.Facet]:
    """Facet channels for the fields given, in data order; a ``p`` field is labelled "top p%"."""
    facets = {}
    for channel, field in (("column", column), ("row", row)):
        if field:
            label = "'top ' + datum.value + '%'" if field == "p" else "datum.value"
            facets[channel] = alt.Facet(f"{field}:O", title=None, sort=list(dict.fromkeys(data[field])),
                                        header=alt.Header(labelExpr=label, labelFontSize=12))
    return facets


def heatmap(
    values: pd.DataFrame,
    x: str,
    y: str,
    value: str,
    *,
    column: str | None = None,
    row: str | None = None,
    domain: tuple[float, float] = (0.0, 1.0),
    diverging: bool = False,
    text_format: str = ".2f",
    title: str | None = None,
    size: int = 150,
    height: int | None = None,
) -> alt.FacetChart | alt.LayerChart:
    """A heat map of ``value`` over ``x`` by ``y`` (long format), the values written in the cells, faceted.

    Colours: viridis over ``domain``, the text white on the dark (low) half and black on the light half;
    or, ``diverging``, orange (below the middle of ``domain``) through white to blue, the text white
    on the strong ends. Facets share their axes, unless their ``x`` or ``y`` categories differ: then
    each has its own.
    """
    order_x, order_y = list(dict.fromkeys(values[x])), list(dict.fromkeys(values[y]))
    base = alt.Chart().encode(x=alt.X(f"{x}:N", sort=order_x, title=None, axis=alt.Axis(labelAngle=-30, labelLimit=200)),
                              y=alt.Y(f"{y}:N", sort=order_y, title=None, axis=alt.Axis(labelLimit=320)))
    middle = (domain[0] + domain[1]) / 2
    if diverging:
        scale = alt.Scale(scheme="blueorange", reverse=True, domain=[domain[0], middle, domain[1]], clamp=True)
        light = f"abs(datum['{value}'] - {middle}) < {0.3 * (domain[1] - domain[0])}"
    else:
        scale = alt.Scale(scheme="viridis", domain=list(domain))
        light = f"datum['{value}'] > {middle}"
    cells = base.mark_rect().encode(color=alt.Color(f"{value}:Q", scale=scale, title=value),
                                    tooltip=[*(f for f in (column, row) if f), x, y, alt.Tooltip(f"{value}:Q", format=".3f")])
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text(f"{value}:Q", format=text_format),
        color=alt.condition(light, alt.value("black"), alt.value("white")))
    chart = alt.layer(cells, text, data=values).properties(width=size, height=height or size)
    facets = _facets(values, column, row)
    if facets:
        chart = chart.facet(**facets)
        fields = [f for f in (column, row) if f]
        categories = {frozenset(group[x]) | frozenset(group[y]) for _, group in values.groupby(fields, sort=False)}
        if len(categories) > 1:
            chart = chart.resolve_scale(x="independent", y="independent")
    return chart.properties(title=title) if title else chart


def pairs_chart(used: pd.DataFrame, *, column: str | None = None, title: str | None = None, width: int = 260) -> alt.Chart | alt.FacetChart:
    """How many pairs each class mean rests on: per dataset, the sampled pairs split into correct and misclassified.

    ``used`` is a :func:`neuron_ig.studies.aggregation.pairs_used` table (index ``dataset``, columns ``sampled`` and
    ``correct``), with a ``column`` field to facet on when given (e.g. the class).
    """
    keep = ["dataset", "sampled", "correct", *([column] if column else [])]
    data = used.reset_index()[keep].assign(misclassified=lambda t: t["sampled"] - t["correct"])
    data = data.melt([f for f in keep if f not in ("sampled", "correct")] + ["sampled"], ["correct", "misclassified"],
                     var_name="pairs", value_name="count")
    chart = alt.Chart(data).mark_bar().encode(
        y=alt.Y("dataset:N", sort=list(dict.fromkeys(data["dataset"])), title=None, axis=alt.Axis(labelLimit=240)),
        x=alt.X("count:Q", title="pairs", stack=True, axis=alt.Axis(tickMinStep=1, format="d")),
        color=alt.Color("pairs:N", title=None, sort=["correct", "misclassified"],
                        scale=alt.Scale(domain=["correct", "misclassified"], range=[OKABE_ITO[4], "#BBBBBB"]),
                        legend=alt.Legend(orient="bottom")),
        order=alt.Order("pairs:N", sort="ascending"),
        tooltip=[*([column] if column else []), "dataset", "pairs", "count", "sampled"],
    ).properties(width=width, height=alt.Step(22))
    if column:
        chart = chart.facet(column=alt.Facet(f"{column}:N", title=None, sort=list(dict.fromkeys(data[column]))))
    return chart.properties(title=title) if title else chart


# --- charts of the pruning study --------------------------------------------------------------------

def control_band_chart(table: pd.DataFrame, *, y: str = "scheme", column: str | None = "task", row: str | None = "p",
                       colour: str | None = "class", title: str | list[str] | None = None, width: int = 200) -> alt.FacetChart:
    """Each pruned set's delta nDCG@10 (a point) against its random controls (grey bar: min to max, tick: mean).

    ``table`` is a :func:`neuron_ig.studies.pruning.pruning_study` table (columns ``delta``, ``random min``,
    ``random delta``, ``random max``) with the fields ``y``, ``column``, ``row`` and ``colour``. A point
    left of its bar hurts more than every random set of the same per-layer counts.
    """
    order = list(dict.fromkeys(table[y]))
    fields = [f for f in (column, row, colour) if f]
    base = alt.Chart().encode(y=alt.Y(f"{y}:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)))
    band = base.mark_rule(color="#BBBBBB", strokeWidth=6).encode(
        x=alt.X("random min:Q", title="delta nDCG@10"), x2="random max:Q")
    mean = base.mark_tick(color="#777777", thickness=2, size=12).encode(x="random delta:Q")
    zero = alt.Chart().mark_rule(color="#000000", strokeDash=[3, 3]).encode(x=alt.datum(0))
    colour_channel = {"color": alt.Color(f"{colour}:N", title=None, legend=alt.Legend(orient="bottom"))} if colour else {}
    point = base.mark_point(filled=True, size=60).encode(
        x="delta:Q", **colour_channel,
        tooltip=[*fields, y, "neurons", alt.Tooltip("delta:Q", format=".4f"), alt.Tooltip("random delta:Q", format=".4f"),
                 alt.Tooltip("p vs unpruned:Q", format=".3g"), alt.Tooltip("p vs random:Q", format=".3g")])
    chart = alt.layer(band, mean, zero, point, data=table).properties(width=width, height=alt.Step(16))
    facets = _facets(table, column, row)
    chart = chart.facet(**facets) if facets else chart
    return chart.properties(title=title) if title else chart


def p_curve_chart(table: pd.DataFrame, *, column: str = "task", title: str | list[str] | None = None, width: int = 200) -> alt.FacetChart:
    """Delta nDCG@10 of one pruned set as p grows (line), against its random controls (band: min to max).

    ``table``: a :func:`neuron_ig.studies.pruning.pruning_study` table of one scheme with a ``p`` column.
    """
    x = alt.X("p:O", title="top p% pruned", axis=alt.Axis(labelAngle=0))
    band = alt.Chart().mark_area(color="#BBBBBB", opacity=0.6).encode(
        x=x, y=alt.Y("random min:Q", title="delta nDCG@10"), y2="random max:Q")
    control = alt.Chart().mark_line(color="#777777", strokeDash=[4, 3]).encode(x=x, y="random delta:Q")
    zero = alt.Chart().mark_rule(color="#000000", strokeDash=[3, 3]).encode(y=alt.datum(0))
    pruned = alt.Chart().mark_line(point=alt.OverlayMarkDef(color=OKABE_ITO[5], size=50), color=OKABE_ITO[5]).encode(
        x=x, y="delta:Q",
        tooltip=[column, "p", "neurons", alt.Tooltip("delta:Q", format=".4f"), alt.Tooltip("random delta:Q", format=".4f"),
                 alt.Tooltip("p vs random:Q", format=".3g")])
    chart = alt.layer(band, control, zero, pruned, data=table).properties(width=width, height=180)
    chart = chart.facet(column=alt.Facet(f"{column}:N", title=None, sort=list(dict.fromkeys(table[column]))))
    return chart.properties(title=title) if title else chart


def change_chart(distribution: pd.DataFrame, *, threshold: float = 0.0, title: str | None = None,
                 width: int = 320) -> alt.LayerChart:
    """Every pair's change F(x) - F(x') (a tick per pair) per dataset, coloured by correct classification.

    ``distribution`` is :func:`neuron_ig.studies.change.change_distribution` output; a dashed rule marks ``threshold``
    (the change below which a pair is flagged) and a black one 0.
    """
    # Vega field names cannot hold quotes: F(x') is renamed for the chart
    data = distribution.rename(columns={"F(x)": "F at the pair", "F(x')": "F at the baseline", "F(x) - F(x')": "change"})
    base = alt.Chart().mark_tick(thickness=2, size=14).encode(
        x=alt.X("change:Q", title="F(x) - F(x'): the change NIG distributes"),
        y=alt.Y("dataset:N", title=None, axis=alt.Axis(labelLimit=320)),
        color=alt.Color("correct:N", title="correctly classified", legend=alt.Legend(orient="bottom")),
        tooltip=["dataset", "class", "pair", alt.Tooltip("F at the pair:Q", format=".3f"),
                 alt.Tooltip("F at the baseline:Q", format=".3f"), alt.Tooltip("change:Q", format=".3f"), "correct"])
    zero = alt.Chart().mark_rule(color="#000000").encode(x=alt.datum(0))
    cut = alt.Chart().mark_rule(color="#D55E00", strokeDash=[4, 3]).encode(x=alt.datum(threshold))
    chart = alt.layer(base, zero, cut, data=data).properties(width=width)
    return chart.properties(title=title) if title else chart


def layer_sum_chart(layers: pd.DataFrame, *, title: str = "NIG summed over each layer's FFN neurons") -> alt.Chart:
    """Bars of NIG summed over each layer, side by side per pair: ``layers`` has columns ``layer``, ``pair``, ``NIG``."""
    return alt.Chart(layers, title=title).mark_bar().encode(
        x=alt.X("layer:O", title="layer"),
        xOffset="pair:N",
        y=alt.Y("NIG:Q", title="sum of NIG (probability)"),
        color=alt.Color("pair:N", title="pair"),
        tooltip=["layer", "pair", alt.Tooltip("NIG:Q", format=".4f")],
    ).properties(width=420, height=240)


def segment_chart(segments: pd.DataFrame, order: Sequence[str], *,
                  title: str = "NIG per layer and token type") -> alt.FacetChart:
    """Stacked bars of NIG per layer by token type (``order``), one facet per pair: columns ``pair``, ``segment``,
    ``layer``, ``NIG``."""
    return alt.Chart(segments, title=title).mark_bar().encode(
        x=alt.X("layer:O", title="layer"),
        y=alt.Y("NIG:Q", title="sum of NIG (probability)"),
        color=alt.Color("segment:N", title="token type", sort=list(order)),
        column=alt.Column("pair:N", title=None),
    ).properties(width=260, height=220)


def training_chart(curve: pd.DataFrame, *, title: str = "Fine-tuning (moving average over 20 steps)") -> alt.FacetChart:
    """One line per quantity against the training step, a row each with its own scale: columns ``step``,
    ``quantity``, ``value``."""
    return alt.Chart(curve, title=title).mark_line().encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("value:Q", title=None),
        color=alt.Color("quantity:N", title=None),
        row=alt.Row("quantity:N", title=None),
    ).properties(width=480, height=140).resolve_scale(y="independent")


def reliability_chart(bins: pd.DataFrame, *,
                      title: str = "Reliability of P(relevant), ten bins of 0.1") -> alt.LayerChart:
    """A reliability diagram: the share of relevant pairs against the mean P(relevant) of each bin, a line per
    collection, the diagonal dashed. ``bins`` is :func:`neuron_ig.studies.effectiveness.reliability` of each
    collection with a ``collection`` column."""
    diagonal = alt.Chart(pd.DataFrame({"x": [0, 1], "y": [0, 1]})).mark_line(
        color="lightgray", strokeDash=[4, 4]).encode(x="x:Q", y="y:Q")
    base = alt.Chart(bins).encode(
        x=alt.X("mean P:Q", title="P(relevant) of the pairs in a bin (mean)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("share relevant:Q", title="share of relevant pairs in the bin", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("collection:N", title=None, legend=alt.Legend(orient="bottom", columns=1)))
    lines = base.mark_line(strokeWidth=1.5)  # size on a line mark would break it into segments of varying width
    points = base.mark_circle(opacity=0.9).encode(size=alt.Size("pairs:Q", title="pairs", scale=alt.Scale(range=[20, 300])),
                                                   tooltip=["collection", "bin", "mean P", "share relevant", "pairs"])
    return (diagonal + lines + points).properties(width=360, height=360, title=title)


def variant_chart(long: pd.DataFrame, *, measures: Sequence[str], variants: Sequence[str], datasets: Sequence[str],
                  classes: Sequence[str], stable_jaccard: float) -> alt.VConcatChart:
    """The default run against each variant: bars of each measure per variant, a facet per dataset, a row per class,
    the dashed line at ``stable_jaccard``. ``long`` has columns ``variant``, ``dataset``, ``class``, ``measure``,
    ``value`` and ``note`` (one note per panel, shown in its corner; empty for none)."""
    panels = []
    for name in classes:
        part = long[long["class"] == name]
        bars = alt.Chart().mark_bar().encode(
            x=alt.X("measure:N", sort=list(measures), title=None, axis=alt.Axis(labelAngle=-40)),
            xOffset=alt.XOffset("variant:N", sort=list(variants)),
            y=alt.Y("value:Q", title="Spearman / Jaccard", scale=alt.Scale(domain=[min(0, part["value"].min()), 1])),
            color=alt.Color("variant:N", sort=list(variants), title="variant"),
            tooltip=["dataset", "class", "variant", "measure", alt.Tooltip("value:Q", format=".3f"), "note"],
        )
        threshold = alt.Chart().mark_rule(strokeDash=[4, 3], color="black").encode(y=alt.datum(stable_jaccard))
        note = alt.Chart().mark_text(fontSize=10, align="left").encode(
            text="note:N", x=alt.value(4), y=alt.value(12)).transform_filter(
            "datum.note != ''").transform_aggregate(note="min(note)")
        panels.append(alt.layer(bars, threshold, note, data=part).properties(width=190, height=170).facet(
            column=alt.Column("dataset:N", sort=list(datasets), title=None), title=f"{name} pairs"))
    return alt.vconcat(*panels, title=f"Default run against each variant (dashed: Jaccard {stable_jaccard:g}, called stable)")


def agreement_chart(agreement: pd.DataFrame, *, title: str) -> alt.Chart:
    """Jaccard against rank-biased overlap of each compared pair of halves, coloured by ``kind`` (within a dataset
    or between datasets), shaped by ``class``: :func:`neuron_ig.stats.nulls.agreement_table` rows."""
    return alt.Chart(agreement).mark_point(filled=True, size=70).encode(
        x=alt.X("Jaccard:Q", scale=alt.Scale(domain=[0, 1])), y=alt.Y("RBO:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("kind:N", title=None, legend=alt.Legend(orient="bottom")), shape="class:N",
        tooltip=["class", "compared", alt.Tooltip("Jaccard:Q", format=".3f"), alt.Tooltip("RBO:Q", format=".3f")],
    ).properties(width=300, height=300, title=title)


def path_chart(path: pd.DataFrame, order: Sequence[str], *, title: str) -> alt.FacetChart:
    """Quantities along the NIG path, a row each in ``order`` with its own scale: columns ``alpha`` (k / m),
    ``quantity`` and ``value`` (:func:`neuron_ig.engine.nig.path_trace`, melted)."""
    return alt.Chart(path, title=title).mark_line(point=True).encode(
        x=alt.X("alpha:Q", title="alpha = k / m"),
        y=alt.Y("value:Q", title=None),
        color=alt.Color("quantity:N", title=None, legend=None),
        row=alt.Row("quantity:N", title=None, sort=list(order), header=alt.Header(labelAngle=0, labelAlign="left")),
    ).properties(width=480, height=110).resolve_scale(y="independent")


def token_type_chart(per_layer: pd.DataFrame, order: Sequence[str], classes: Sequence[str]) -> alt.VConcatChart:
    """Mean NIG per layer stacked by token type (``order``), a facet per ``panel`` (a dataset and its pairs), a row
    per class; a panel's ``note`` (empty for none) is written across it. Columns: ``class``, ``panel``, ``dataset``,
    ``layer``, ``token type``, ``NIG``, ``note``."""
    per_layer = per_layer.assign(order=per_layer["token type"].map(list(order).index))
    panels = []
    for name in classes:
        part = per_layer[per_layer["class"] == name]
        bars = alt.Chart().mark_bar().encode(
            x=alt.X("layer:O", title="layer"),
            y=alt.Y("NIG:Q", title="mean NIG (probability)"),
            color=alt.Color("token type:N", sort=list(order), title="token type"),
            order=alt.Order("order:Q"),
            tooltip=["dataset", "class", "layer", "token type", alt.Tooltip("NIG:Q", format=".4f")],
        )
        note = alt.Chart().mark_text(fontSize=12).encode(text="note:N", x=alt.value(110), y=alt.value(80)).transform_filter(
            "datum.note != ''").transform_aggregate(note="min(note)")
        panels.append(alt.layer(bars, note, data=part).properties(width=220, height=160).facet(
            column=alt.Column("panel:N", sort=list(dict.fromkeys(part["panel"])), title=None),
            title=f"{name} pairs (number of correctly classified pairs averaged over)"))
    return alt.vconcat(*panels, title="Mean NIG per layer, summed over the layer's FFN neurons, by token type")


def forest_chart(claims: pd.DataFrame, *, title: str = "Each claim's statistic (point, with its own interval as a "
                 "line where it has one), its reference (tick) and interval (bar: the null's; for pruning, the effect's)"
                 ) -> alt.FacetChart:
    """A forest plot of a page's claims: per claim (a row, each with its own scale), the interval as a bar (the
    null's 95% range, or a pruning effect's bootstrap interval), the reference as a tick, and the observed statistic
    as a point coloured by the verdict, with its own interval (``observed low``/``observed high``) as a thin line.
    ``claims`` are :func:`neuron_ig.studies.verdicts.page_verdicts` rows; claims without a statistic are left out."""
    drawn = {"observed", "interval low"} <= set(claims)  # a page whose claims were all not computed has neither
    data = (claims.dropna(subset=["observed", "interval low"]) if drawn else claims.iloc[0:0]).copy()
    data["label"] = [f"{c} · {claim[:60]}" if c else claim[:60] for c, claim in
                     zip(data.get("class", [""] * len(data)), data["claim"])]
    verdicts = ["supported", "inconclusive", "not supported", "not computed"]
    colours = ["#009E73", "#E69F00", "#D55E00", "#BBBBBB"]
    base = alt.Chart().encode(y=alt.Y("label:N", title=None, axis=alt.Axis(labels=False, ticks=False)))
    bar = base.mark_rule(strokeWidth=6, opacity=0.35, color="#777777").encode(
        x=alt.X("interval low:Q", title=None, scale=alt.Scale(zero=False), axis=alt.Axis(tickCount=5, labelOverlap=True)),
        x2="interval high:Q")
    tick = base.mark_tick(color="#333333", thickness=2).encode(x="reference:Q")
    point = base.mark_point(filled=True, size=90).encode(
        x="observed:Q", color=alt.Color("verdict:N", scale=alt.Scale(domain=verdicts, range=colours), title=None,
                                        legend=alt.Legend(orient="bottom")),
        tooltip=["class", "claim", "statistic", alt.Tooltip("observed:Q", format=".3g"),
                 alt.Tooltip("reference:Q", format=".3g"), alt.Tooltip("p (Holm):Q", format=".3g"), "verdict"])
    layers = [bar, tick, point]
    if "observed low" in data:
        layers.insert(2, base.mark_rule(color="#000000", strokeWidth=1.5).encode(x="observed low:Q", x2="observed high:Q"))
    return alt.layer(*layers, data=data).properties(width=560, height=28).facet(
        row=alt.Row("label:N", title=None, sort=list(data["label"]), header=alt.Header(labelAngle=0, labelAlign="left",
                                                                                         labelLimit=560, labelOrient="top")),
        title=title).resolve_scale(x="independent")


def convergence_chart(table: pd.DataFrame, *, default: tuple[str, int], measures: Sequence[str],
                      title: str = "Error and agreement with the finest trapezoid, against the number of steps") -> alt.VConcatChart:
    """One panel per measure, two per row of :func:`neuron_ig.studies.convergence.convergence_table` (``measures``, in order): the
    value against the steps (log scale) per rule, a line with the bootstrap interval as a band; errors on a log
    scale, where an error of exactly 0 (the reference against itself) is left out. The book's ``default`` (rule,
    steps) is ringed."""
    data = table[table["measure"].isin(measures)].copy()
    errors = data["measure"].str.endswith("error")
    data = data[~errors | (data["value"] > 0)].copy()
    errors = data["measure"].str.endswith("error")
    if errors.any():  # a band that reaches 0 is drawn down to a tenth of the smallest error shown
        data.loc[errors, ["low", "high"]] = data.loc[errors, ["low", "high"]].clip(lower=data.loc[errors, "value"].min() / 10)
    data["default"] = [(r, s) == tuple(default) for r, s in zip(data["rule"], data["steps"])]
    steps = sorted(data["steps"].unique())
    panels = []
    for measure in measures:
        log = measure.endswith("error")
        scale = alt.Scale(type="log") if log else alt.Scale(domain=[0, 1])
        y = alt.Y("value:Q", title=measure, scale=scale)
        base = alt.Chart(data[data["measure"] == measure]).encode(
            x=alt.X("steps:Q", scale=alt.Scale(type="log"), axis=alt.Axis(values=steps), title="steps"),
            color=alt.Color("rule:N", title="rule", legend=alt.Legend(orient="bottom")))
        band = base.mark_area(opacity=0.15).encode(y=alt.Y("low:Q", scale=scale), y2="high:Q")
        line = base.mark_line(point=True).encode(
            y=y, tooltip=["rule", "steps", alt.Tooltip("value:Q", format=".3g"), alt.Tooltip("low:Q", format=".3g"),
                          alt.Tooltip("high:Q", format=".3g"), "pairs"])
        ring = base.transform_filter("datum.default").mark_point(size=220, color="#000000", filled=False).encode(y=y)
        panels.append(alt.layer(band, line, ring).properties(width=260, height=180))
    return alt.vconcat(*[alt.hconcat(*panels[i:i + 2]) for i in range(0, len(panels), 2)], title=title)


def verdict_grid_chart(table: pd.DataFrame, *, variants: Sequence[str],
                       title: str = "Verdict of each claim under each choice") -> alt.Chart:
    """Claims (rows: class and claim in a few words, ``short``) against variants (columns), each cell coloured by its
    verdict, as on the scorecard. ``table``: rows with ``class``, ``short``, ``claim``, ``variant``, ``verdict`` and
    optionally ``effect`` and ``p (Holm)`` (tooltips)."""
    data = table.copy()
    data["row"] = [f"{c} · {short}" for c, short in zip(data["class"], data["short"])]
    verdicts = ["supported", "inconclusive", "not supported", "not computed"]
    colours = ["#009E73", "#E69F00", "#D55E00", "#BBBBBB"]
    tooltip = ["class", "claim", "variant", "verdict"] + [alt.Tooltip(f"{c}:Q", format=".3g") for c in ("effect", "p (Holm)") if c in data]
    return alt.Chart(data).mark_rect(stroke="#ffffff", strokeWidth=2).encode(
        x=alt.X("variant:N", sort=list(variants), title=None, axis=alt.Axis(labelAngle=-30, labelLimit=160, orient="top")),
        y=alt.Y("row:N", sort=list(dict.fromkeys(data["row"])), title=None, axis=alt.Axis(labelLimit=220)),
        color=alt.Color("verdict:N", scale=alt.Scale(domain=verdicts, range=colours), title=None,
                        legend=alt.Legend(orient="bottom")),
        tooltip=tooltip,
    ).properties(width=alt.Step(46), height=alt.Step(22), title=title)


def presence_chart(table: pd.DataFrame, *, datasets: Sequence[str], title: str) -> alt.FacetChart:
    """Where mismatched pairs fall between non-relevant (0) and relevant pairs (1), per group of neurons (a row of
    :func:`neuron_ig.studies.aggregation.presence_positions`): the position as a point with its bootstrap interval,
    one panel per dataset, with the two reference positions as dashed rules; the axis is clipped to -1.5 to 2.5 (the
    table gives every interval)."""
    data = table.dropna(subset=["position"]).copy()
    colours = set_colours(list(datasets), black=())
    base = alt.Chart().encode(y=alt.Y("group:N", title=None, sort=list(dict.fromkeys(table["group"]))))
    rules = [alt.Chart().mark_rule(strokeDash=[4, 3], color="#777777").encode(x=alt.datum(x)) for x in (0.0, 1.0)]
    scale = alt.Scale(domain=[-1.5, 2.5], clamp=True)  # a group of a few neurons has a wide, uninformative interval
    colour = alt.Color("dataset:N", scale=alt.Scale(domain=list(colours), range=list(colours.values())), legend=None)
    interval = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("position low:Q", scale=scale,
                title="position of the mismatched pairs (0: as non-relevant, 1: as relevant; clipped to -1.5 to 2.5)"),
        x2="position high:Q", color=colour)
    point = base.mark_point(filled=True, size=80).encode(
        x=alt.X("position:Q", scale=scale), color=colour,
        tooltip=["dataset", "group", alt.Tooltip("neurons:Q", format=".1f"), alt.Tooltip("position:Q", format=".3g"),
                 alt.Tooltip("position low:Q", format=".3g"), alt.Tooltip("position high:Q", format=".3g"),
                 alt.Tooltip("relevant - mismatched:Q", format=".3g")])
    return alt.layer(*rules, interval, point, data=data).properties(width=520, height=110).facet(
        row=alt.Row("dataset:N", title=None, sort=list(datasets), header=alt.Header(labelAngle=0, labelAlign="left",
                                                                                      labelOrient="top")),
        title=title)


def effectiveness_chart(table: pd.DataFrame, gain: pd.DataFrame, *, datasets: Sequence[str], depth: int) -> alt.HConcatChart:
    """nDCG@10 of BM25, the bi-encoder and the cross-encoder per collection (bars, from the cross-encoder page's
    ``table``), beside the cross-encoder's gain over BM25 with its 95% interval, coloured by whether it meets its
    stand-in target (``gain``: the nDCG@10 rows of :func:`neuron_ig.studies.effectiveness.stand_in_checks`)."""
    rankers = {"BM25 nDCG@10": "BM25", "teacher nDCG@10": "bi-encoder (teacher)", "re-ranked nDCG@10": "cross-encoder"}
    bars = (table[list(rankers)].rename(columns=rankers).astype(float).rename_axis("collection").reset_index()
            .melt("collection", var_name="ranker", value_name="nDCG@10"))
    y = alt.Y("collection:N", sort=list(datasets), title=None)
    ndcg = alt.Chart(bars, title=f"nDCG@10, BM25's top {depth} re-ranked").mark_bar().encode(
        y=y, yOffset=alt.YOffset("ranker:N", sort=list(rankers.values())),
        x=alt.X("nDCG@10:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("ranker:N", sort=list(rankers.values()), title=None, legend=alt.Legend(orient="bottom")),
        tooltip=["collection", "ranker", alt.Tooltip("nDCG@10:Q", format=".3f")],
    ).properties(width=240, height=240)
    verdicts = ["target met", "target missed"]
    difference = gain.rename_axis("collection").reset_index().assign(
        verdict=lambda d: d["met"].map({True: verdicts[0], False: verdicts[1]}))
    title = "cross-encoder minus BM25 (95% interval)"
    interval = alt.Chart(difference).mark_rule(strokeWidth=2).encode(y=y.axis(None), x=alt.X("low:Q", title=title), x2="high:Q")
    point = alt.Chart(difference).mark_point(filled=True, size=80).encode(
        y=y.axis(None), x=alt.X("observed:Q", title=title),
        color=alt.Color("verdict:N", title=None, scale=alt.Scale(domain=verdicts, range=["#009E73", "#D55E00"]),
                        legend=alt.Legend(orient="bottom")),
        shape=alt.Shape("verdict:N", title=None, scale=alt.Scale(domain=verdicts, range=["circle", "square"])),
        tooltip=["collection", "target", alt.Tooltip("observed:Q", format="+.3f"), alt.Tooltip("low:Q", format="+.3f"),
                 alt.Tooltip("high:Q", format="+.3f"), "met"])
    zero = alt.Chart().mark_rule(color="#000000", strokeDash=[4, 3]).encode(x=alt.datum(0))
    return (alt.hconcat(ndcg, alt.layer(interval, point, zero).properties(width=200, height=240, title="nDCG@10 gain"))
            .resolve_scale(color="independent", shape="independent"))
