"""Tests of the offline altair helpers: theme, SVG renderer, interactive charts that load nothing."""

import re

import altair as alt
import pandas as pd
import pytest

from neuron_ig.report import plots

pytestmark = pytest.mark.usefixtures("neuron_ig_cache")  # the Vega libraries are cached there


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


def shown(monkeypatch, charts) -> list[dict]:
    """The bundles ``plots.show`` publishes for ``charts``, shown first in a fresh kernel."""
    published = []
    monkeypatch.setattr(plots, "display", lambda bundle, raw: published.append(bundle) if raw else None)
    monkeypatch.setattr(plots, "_libraries_shown", False)
    for chart in charts:
        plots.show(chart)
    return published


def test_show_publishes_the_libraries_once_then_charts_over_their_svg(monkeypatch):
    first, second = shown(monkeypatch, [bar_chart(), bar_chart()])
    assert first["image/svg+xml"].startswith("<svg") and first["image/svg+xml"] in first["text/html"]
    assert "window.vegaEmbed=" in first["text/html"] and "window.vegaEmbed=" not in second["text/html"]
    assert len(second["text/html"]) < 50_000 < len(first["text/html"])  # the 0.9 MB of libraries come once
    for bundle in (first, second):
        assert bundle["text/html"].count("<script") == bundle["text/html"].count("</script>")


def test_the_books_charts_have_tooltips():
    counts = pd.DataFrame({"set": ["a", "b"], "layer": [0, 0], "neurons": [3, 2], "p": [1.0, 1.0]})
    spec = plots.layer_count_chart(counts, plots.set_colours(["a", "b"])).to_dict()
    tooltip = [field["field"] for field in spec["spec"]["encoding"]["tooltip"]]
    assert {"set", "layer", "neurons"} <= set(tooltip)


def test_charts_render_with_tooltips_in_a_real_browser_and_load_nothing(monkeypatch, tmp_path, browser):
    scores = pd.DataFrame({"neuron": ["L0.U7", "L3.U12"], "score": [0.25, 0.5]})
    chart = alt.Chart(scores).mark_bar().encode(x="neuron:N", y="score:Q", tooltip=["neuron", "score"])
    page = tmp_path / "page.html"
    page.write_text("<html><body>" + "".join(b["text/html"] for b in shown(monkeypatch, [chart, bar_chart()])) + "</body></html>")
    requests, errors = [], []
    tab = browser.new_page()
    tab.on("request", lambda request: requests.append(request.url))
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(page.as_uri(), wait_until="networkidle")
    tab.wait_for_function("document.querySelectorAll('.nig-chart .vega-embed svg.marks').length === 2", timeout=20_000)
    assert tab.locator(".nig-chart > svg").count() == 0, "vega-embed replaced both static drawings"
    tab.locator(".nig-chart .vega-embed path.mark-rect, .nig-chart .vega-embed .mark-rect path").first.hover()
    tooltip = tab.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible", timeout=10_000)
    assert "L0.U7" in tooltip.inner_text() and "0.25" in tooltip.inner_text()
    assert errors == []
    assert [url for url in requests if not url.startswith(("file:", "data:", "about:", "blob:"))] == []


def test_change_chart_draws_every_pair_and_the_threshold():
    from neuron_ig.studies.change import change_distribution

    class Result:  # the fields change_distribution reads, as DatasetNIG has them
        score, baseline_score, labels = [0.9, 0.8], [0.1, 0.85], [0, 0]

    distribution = change_distribution({"d": Result()})
    svg = plots.to_svg(plots.change_chart(distribution, threshold=0.05, title="changes"))
    assert "changes" in svg and svg.count("<path") >= 2


def page_charts() -> dict[str, alt.TopLevelMixin]:
    """Each page chart of the library on a small table of the shape its page gives it."""
    pairs = ["relevant", "non-relevant"]
    layers = pd.DataFrame([{"layer": l, "pair": p, "NIG": 0.1 * l - 0.05} for l in range(3) for p in pairs])
    segments = pd.DataFrame([{"pair": p, "segment": s, "layer": l, "NIG": 0.01 * l}
                             for p in pairs for s in ("CLS", "query", "SEP", "passage") for l in range(3)])
    curve = pd.DataFrame([{"step": s, "quantity": q, "value": 1.0 / (s + 1)} for s in range(5) for q in ("loss", "accuracy")])
    bins = pd.DataFrame([{"collection": c, "bin": b, "mean P": b / 10 + 0.05, "share relevant": b / 10, "pairs": 3}
                         for c in ("a", "b") for b in range(10)])
    long = pd.DataFrame([{"variant": v, "dataset": d, "class": c, "measure": m, "value": 0.5, "note": ""}
                         for v in ("PAD_ALL", "200 steps") for d in ("a", "b") for c in pairs for m in ("Spearman", "Jaccard top 1%")])
    agreement = pd.DataFrame([{"class": c, "compared": k, "kind": k, "Jaccard": 0.3, "RBO": 0.6}
                              for c in pairs for k in ("within a", "a / b")])
    path = pd.DataFrame([{"alpha": k / 4, "quantity": q, "value": k} for k in range(5) for q in ("score", "activation")])
    per_layer = pd.DataFrame([{"class": c, "panel": f"a ({c})", "dataset": "a", "layer": l, "token type": t, "NIG": 0.1, "note": ""}
                              for c in pairs for l in range(2) for t in ("CLS", "query", "SEP", "passage")])
    return {
        "layer_sum": plots.layer_sum_chart(layers),
        "segment": plots.segment_chart(segments, ["CLS", "query", "SEP", "passage"]),
        "training": plots.training_chart(curve),
        "reliability": plots.reliability_chart(bins),
        "variant": plots.variant_chart(long, measures=["Spearman", "Jaccard top 1%"], variants=["PAD_ALL", "200 steps"],
                                       datasets=["a", "b"], classes=pairs, stable_jaccard=0.5),
        "agreement": plots.agreement_chart(agreement, title="agreement"),
        "path": plots.path_chart(path, ["score", "activation"], title="path"),
        "token_type": plots.token_type_chart(per_layer, ["CLS", "query", "SEP", "passage"], pairs),
        "forest": plots.forest_chart(pd.DataFrame([
            {"class": "positive", "claim": "a", "statistic": "share", "observed": 0.4, "reference": 0.2,
             "interval low": 0.1, "interval high": 0.3, "p (Holm)": 0.01, "verdict": "supported"},
            {"class": "negative", "claim": "b", "statistic": "delta", "observed": -0.01, "reference": 0.0,
             "interval low": -0.05, "interval high": 0.04, "p (Holm)": 0.6, "verdict": "inconclusive"},
            {"class": "negative", "claim": "c", "observed": None, "interval low": None, "verdict": "not computed"}])),
        "convergence": plots.convergence_chart(pd.DataFrame([
            {"rule": r, "steps": m, "measure": q, "value": v, "low": v / 2, "high": v * 2, "pairs": 4}
            for r in ("left", "trapezoid") for m in (10, 20, 40)
            for q, v in (("completeness error", 1 / m), ("Jaccard top 1% (relevant)", 1 - 1 / m))]),
            default=("left", 20), measures=["completeness error", "Jaccard top 1% (relevant)"]),
        "verdict_grid": plots.verdict_grid_chart(pd.DataFrame([
            {"class": c, "claim": "a claim", "short": "claim", "variant": v, "verdict": "supported" if v == "as built" else "inconclusive",
             "effect": 1.5, "p (Holm)": 0.01} for c in ("positive", "negative") for v in ("as built", "baseline X")]),
            variants=["as built", "baseline X"]),
    }


@pytest.mark.parametrize("name", list(page_charts()))
def test_every_page_chart_draws_offline(name):
    svg = plots.to_svg(page_charts()[name])
    assert svg.startswith("<svg") and "<path" in svg and "http" not in svg.replace("http://www.w3.org", "")
