"""The real book at small parameters: every notebook executed by the runner (papermill) on a quickly
fine-tuned embedded model, the site built by jupyter-book, and the built pages opened in headless Chromium.

Assertions read the values each notebook records with ``myst_nb.glue``, so they check what the pages
computed, not only that they ran.
"""

import ast
import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from neuron_ig.report import runner

pytestmark = pytest.mark.slow  # `make test-fast` leaves these out

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["neuron-ig/gcide/test", "neuron-ig/hpo/test", "neuron-ig/pystdlib/test"]  # the small book's (conftest.SMALL)
TEXT_ONLY_PAGES = {"introduction", "ir_collections"}
# the pages one notebook makes per class, as in params/default.yml
CLASS_PAGES = runner.notebook_pages(REPO)  # {page: (notebook, its parameters)}: pages 03 to 06


def small_params(root: Path) -> dict:
    """The parameters the small book ran with (its params.yml)."""
    return yaml.safe_load((root / "params.yml").read_text())


def glued(root: Path, stem: str) -> dict:
    """The values a notebook recorded with ``myst_nb.glue``: {name: value}."""
    notebook = json.loads((root / "book" / "generated" / f"{stem}.ipynb").read_text())
    values = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                # a glued Markdown block reads as its source
                markdown = next((v for k, v in output["data"].items() if k.endswith("text/markdown")), None)
                text = markdown if markdown is not None else next(v for k, v in output["data"].items()
                                                                  if k.endswith("text/plain"))
                text = "".join(text) if isinstance(text, list) else text
                values[name] = text if markdown is not None else ast.literal_eval(text)
    return values


def generated_stems() -> list[str]:
    return runner.toc_pages(REPO)


#: phrases that quote the default build's value of a parameter (params/default.yml), each with the parameter; the small
#: book sets every one of these parameters to another value, so a page that typed the default's number into its prose
#: instead of reading the parameter shows it here
DEFAULT_NUMBERS = [
    (r"\b50 (?:path )?steps\b", "steps"), (r"\b64 (?:correctly classified )?pairs\b", "n_pairs"),
    (r"\b39 (?:random |activation-matched )?controls\b", "random_seeds"),
    (r"\b9 (?:random |activation-matched )?controls\b", "matched_seeds"),
    (r"\btop 20\b", "pruning_depth"), (r"\b20 (?:judged |evaluation )?queries\b", "pruning_queries"),
]


def page_text(root: Path, stem: str) -> str:
    """The text a reader sees on a built page (its main column), folded sections included."""
    from bs4 import BeautifulSoup

    html = (root / "_build" / "html" / "book" / "generated" / f"{stem}.html").read_text()
    main = BeautifulSoup(html, "html.parser").find("main")
    return " ".join(main.get_text(" ").split())


def declared_parameters(stem: str) -> set[str]:
    """The names the parameters cell of the page's notebook declares."""
    notebook = {page: notebook for page, (notebook, _) in CLASS_PAGES.items()}.get(stem, stem)
    source = (REPO / "notebooks" / f"{notebook}.md").read_text()
    cell = re.search(r":tags: \[parameters\]\n(.*?)```", source, re.S).group(1)
    return set(re.findall(r"^(\w+) =", cell, re.M))


def test_no_page_quotes_a_number_that_its_parameters_contradict(small_book):
    params = small_params(small_book)["book"]
    found = []
    for stem in generated_stems():
        text, declared = page_text(small_book, stem), declared_parameters(stem)
        for pattern, parameter in DEFAULT_NUMBERS:
            if parameter not in declared:
                continue
            assert params[parameter] != int(re.search(r"\d+", pattern.replace("\\b", "")).group()), parameter
            found += [f"{stem}: '{m.group()}' ({parameter} is {params[parameter]})" for m in re.finditer(pattern, text)]
    assert found == []


def test_every_notebook_ran_without_errors(small_book):
    for stem in generated_stems():
        notebook = json.loads((small_book / "book" / "generated" / f"{stem}.ipynb").read_text())
        errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{stem}: {errors[:1]}"
        assert (small_book / "_build" / "html" / "book" / "generated" / f"{stem}.html").is_file()


def test_worked_example_scores_completeness_and_top_neurons(small_book):
    values = glued(small_book, "nig_worked_example")
    summary = values["summary"]
    assert set(summary) == {"relevant", "non-relevant"}
    for row in summary.values():
        assert 0 <= row["P(relevant)"] <= 1 and 0 <= row["F(x'): at the baseline"] <= 1
    # completeness on the cut: the Riemann sum approaches F(x) - F(x') (16 steps here)
    largest_change = max(abs(row["F(x) - F(x')"]) for row in summary.values())
    assert values["completeness_gap"] < 0.25 * largest_change + 1e-3
    top = [row for row in values["top_neurons"] if row["pair"] == "relevant"]
    assert [row["rank"] for row in top] == list(range(1, len(top) + 1))
    assert all(a["NIG"] >= b["NIG"] for a, b in zip(top, top[1:]))
    assert values["trace_final"]["accumulated"] == pytest.approx(top[0]["NIG"], rel=1e-3, abs=1e-6)
    assert sum(row[s] for s in ("CLS", "query", "SEP", "passage") for row in top[:1]) == pytest.approx(top[0]["NIG"], rel=1e-4, abs=1e-7)


def test_collections_page_measures_every_collection(small_book):
    table = glued(small_book, "ir_collections")["collections"]
    assert table["neuron-ig/gcide/test"]["queries"] == 1000 and table["neuron-ig/hpo/test"]["documents"] > 2000
    for row in table.values():
        assert 0 < row["BM25 nDCG@10"] < 1 and row["qrels"] >= row["queries"]


def test_model_page_reports_every_collection(small_book):
    table = glued(small_book, "embedded_cross_encoder")["effectiveness"]
    assert list(table) == DATASETS
    for row in table.values():
        assert row["queries"] == 10
        for key in ("BM25 nDCG@10", "teacher nDCG@10", "re-ranked nDCG@10", "accuracy relevant", "accuracy non-relevant"):
            assert 0 <= row[key] <= 1
    checks = glued(small_book, "embedded_cross_encoder")["stand_in_checks"]
    assert [row["collection"] for row in checks] == [d for d in DATASETS for _ in range(3)]
    for row in checks:
        assert row["low"] <= row["observed"] <= row["high"] and isinstance(row["met"], bool)
        if row["target"].startswith("relevant"):
            assert row["observed"] == table[row["collection"]]["accuracy relevant"]
    bins = glued(small_book, "embedded_cross_encoder")["reliability"]
    assert {row["collection"] for row in bins} == set(DATASETS)
    assert sum(row["pairs"] for row in bins) == 2 * small_params(small_book)["embedded_cross_encoder"]["accuracy_pairs"] * len(DATASETS)


def test_built_pages_render_their_charts_offline_in_a_real_browser(small_book, browser):
    html = small_book / "_build" / "html"
    requests, errors = [], []
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    for stem in generated_stems():
        page.goto((html / "book" / "generated" / f"{stem}.html").as_uri(), wait_until="networkidle")
        provenance = page.locator("main details.nig-provenance")
        assert provenance.count() == 1 and not provenance.get_attribute("open"), f"{stem} folds its provenance"
        text = provenance.text_content()
        assert "Parameters" in text and "torch" in text, f"{stem} states its parameters and versions"
        if stem not in TEXT_ONLY_PAGES:
            charts = page.locator("main .nig-chart")
            assert charts.count() >= 1, f"{stem} shows its figures"
            # every chart drawn again by vega-embed (interactive, tooltips) from the libraries inlined in the page
            page.wait_for_function(f"document.querySelectorAll('main .nig-chart .vega-embed svg.marks').length === {charts.count()}",
                                   timeout=30_000)
    assert errors == []
    assert [url for url in requests if not url.startswith(("file:", "data:", "about:"))] == []


OVERFLOW = """() => {
  const main = document.querySelector('main article') || document.querySelector('main');
  const edge = main.getBoundingClientRect().right + 1;
  return [...main.querySelectorAll('*')].filter(el => !el.closest('details:not([open])'))
    .map(el => [el, el.getBoundingClientRect()]).filter(([el, box]) => box.width > 0 && box.right > edge)
    .map(([el, box]) => `${el.tagName} ${Math.round(box.right - edge)} px: ${(el.textContent || '').slice(0, 40)}`);
}"""


def test_no_page_scrolls_sideways_at_1280_px(small_book, browser):
    """At a 1280-px window every output fits the text column (neuron_ig.report.sphinx_layout): no element of a page's
    article reaches past its right edge, tables and charts included (a folded block is measured when opened)."""
    wide = {stem: found[:3] for stem, found in on_every_page(small_book, browser, OVERFLOW).items() if found}
    assert wide == {}


def on_every_page(small_book: Path, browser, script: str) -> dict:
    """``{page: what script returns}`` on every generated page, opened at 1280 x 900 px once its charts are drawn."""
    html = small_book / "_build" / "html"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    found = {}
    for stem in generated_stems():
        page.goto((html / "book" / "generated" / f"{stem}.html").as_uri(), wait_until="networkidle")
        page.wait_for_timeout(300)  # vega-embed draws after load
        found[stem] = page.evaluate(script)
    return found


FIRST_ELEMENT = """() => {
  const title = document.querySelector('main article h1');
  let el = title.nextElementSibling;
  while (el && el.getBoundingClientRect().height === 0) el = el.nextElementSibling;  // removed cells, empty outputs
  if (!el) return 'nothing';
  if (el.matches('.finding') || el.querySelector('.finding')) return 'finding';
  if (el.querySelector('.nig-chart svg, .nig-chart canvas, img')) return 'figure';
  return `${el.tagName}.${el.className}: ${(el.textContent || '').trim().slice(0, 60)}`;
}"""


def test_every_page_opens_with_its_figure_or_its_finding(small_book, browser):
    """Right after its title a page shows its figure or its finding (a computed `finding` block): the method, the setting
    and the caveats come after, folded."""
    opening = on_every_page(small_book, browser, FIRST_ELEMENT)
    assert {stem: first for stem, first in opening.items() if first not in ("figure", "finding")} == {}


def test_the_introduction_ends_with_the_scorecard_in_short_linked_to_each_figure(small_book):
    from bs4 import BeautifulSoup

    claims = glued(small_book, "paper_vs_reproduction")["claims"]
    html = (small_book / "_build" / "html" / "book" / "generated" / "introduction.html").read_text()
    table = BeautifulSoup(html, "html.parser").select_one("main table.scorecard-short")
    rows = table.select("tbody tr")
    assert len(rows) == len(claims)
    assert [row.select_one(".verdict-badge").get_text() for row in rows] == [claim["verdict"] for claim in claims]
    for row in rows:
        link = row.select_one("a")["href"]
        assert (small_book / "_build" / "html" / "book" / "generated" / link).is_file(), link
    counts = glued(small_book, "introduction")["verdict_counts"]
    assert sum(counts.values()) == len(claims)
    assert counts.get("supported", 0) == sum(claim["verdict"] == "supported" for claim in claims)


@pytest.mark.parametrize("stem", ["positive_neurons", "negative_neurons"])
def test_each_top_set_is_split_into_relevance_specific_class_independent_and_other_neurons(small_book, stem):
    rows = glued(small_book, stem)["top_set_parts"]
    p_values = small_params(small_book)["book"]["p_values"]
    assert {(row["scored by"], row["dataset"], row["p"]) for row in rows} == {
        (scoring, dataset, p) for scoring in ("NIG", "NIG / (F(x) - F(x'))") for dataset in DATASETS for p in p_values}
    for row in rows:
        if row["note"]:
            assert row["relevance-specific"] is None
            continue
        parts = [row[part] for part in ("relevance-specific", "class-independent", "other")]
        assert min(parts) >= 0 and sum(parts) == row["neurons"] == -(-6 * 1536 * row["p"] // 100)


@pytest.mark.parametrize("stem", ["positive_neurons", "negative_neurons"])
def test_relevance_neuron_counts_add_up_and_the_intersection_is_in_every_set(small_book, stem):
    values = glued(small_book, stem)
    counts = values["layer_counts"]
    sizes = values["set_sizes"]
    assert counts, f"{stem} computed no set"
    datasets_with_sets = {row["set"] for row in counts} - {"intersection"}
    for p in small_params(small_book)["book"]["p_values"]:
        rows = [row for row in counts if row["p"] == p]
        per_set = {}
        for row in rows:
            per_set.setdefault(row["set"], {})[row["layer"]] = row["neurons"]
        n_neurons = 6 * 1536
        for dataset in datasets_with_sets:
            assert sum(per_set[dataset].values()) == -(-n_neurons * p // 100), "each set is the top p% of all neurons"
        if "intersection" in per_set:
            for layer, inside in per_set["intersection"].items():
                assert all(inside <= per_set[d][layer] for d in datasets_with_sets), "intersection within every set"
        row = sizes[p] if p in sizes else sizes[str(p)]
        assert row["intersection"] == sum(per_set.get("intersection", {}).values())
    assert set(values["pairs_used"]) == set(DATASETS)


@pytest.mark.parametrize("stem", ["positive_neurons_core", "negative_neurons_core"])
def test_core_pages_drop_datasets_and_keep_at_least_two(small_book, stem):
    values = glued(small_book, stem)
    assert not set(values["dropped"]) & set(values["core"])
    assert set(values["dropped"]) | set(values["core"]) <= set(DATASETS)
    assert len(values["core"]) >= 2 or not values["dropped"]


def test_overlap_matrix_is_a_jaccard_matrix(small_book):
    values = glued(small_book, "overlaps")
    pairs = {}
    for row in values["jaccard"]:
        assert 0 <= row["Jaccard"] <= 1
        pairs[(row["class"], row["p"], row["row"], row["column"])] = row["Jaccard"]
    for (cls, p, a, b), value in pairs.items():
        assert pairs[(cls, p, b, a)] == pytest.approx(value)
        if a == b:
            assert value == 1


def test_paper_page_gives_a_verdict_on_every_claim(small_book):
    claims = glued(small_book, "paper_vs_reproduction")["claims"]
    assert {row["verdict"] for row in claims} <= {"supported", "not supported", "inconclusive", "not computed",
                                                  "model below target: not tested"}
    # 2 classes x (2 sets x 2 kinds of control, and the OOD neurons against random controls out of domain)
    assert sum("Pruning" in row["claim"] for row in claims) == 10
    assert len(claims) == 18  # and 2 classes x 4 NIG claims (concentration, core, relevance, OOD)
    for row in (row for row in claims if "Pruning" in row["claim"] and "OOD neurons" in row["claim"]):
        assert "hurts out-of-domain nDCG@10" in row["claim"]  # tested where the OOD claim was, or says why not
        assert ("2 controls" in row["test"] and row["note"].startswith("on ")) if row["p"] is not None else row["note"]
    relevance = [row for row in claims if "respond to relevance" in row["claim"]]
    assert len(relevance) == 2 and all(row["p"] is None or row["observed low"] <= row["observed"] <= row["observed high"]
                                       for row in relevance)
    tested = [row for row in claims if row["p"] is not None]
    assert tested, "some claim is tested"
    for row in tested:  # Holm over the page's tested claims
        assert 0 < row["p"] <= row["p (Holm)"] <= 1
        assert row["verdict"] != "supported" or row["p (Holm)"] <= 0.05
        assert row["verdict"] != "not supported" or not row["in claimed direction"]
    for row in claims:
        if row["p"] is None:
            assert row["verdict"] in ("not computed", "model below target: not tested") and row["note"]
    html = (small_book / "_build" / "html" / "book" / "generated" / "paper_vs_reproduction.html").read_text()
    assert "paper:" not in html and "reconstructed" in html
    assert html.count('class="verdict-badge"') == len(claims)  # the scorecard: one badge per claim
    choices = glued(small_book, "paper_vs_reproduction")["choices"]
    assert {row["source"] for row in choices} <= {"PAPER", "AUTHORS' CODE", "AUTHORS' LATER CODE", "INFERRED", "OURS"}
    assert next(row for row in choices if row["choice"] == "steps m")["this build"] == "steps = 16"


def test_pruning_page_shows_how_each_verdict_set_moves_p_relevant_on_each_kind_of_pair(small_book):
    values = glued(small_book, "pruning_summary")
    shifts = values["probability_shifts"]
    assert shifts and all(row["scheme"].endswith((f"top: {DATASETS[0]}", "fusion")) for row in shifts)
    for row in shifts:
        assert row["pairs"] in ("relevant", "non-relevant") and row["queries"] >= 1 and -1 <= row["set shift"] <= 1
        assert row["effect"] == pytest.approx(row["set shift"] - row["control shift"])
        assert row["interval low"] <= row["effect"] <= row["interval high"]
    assert values["controls_as_sets"] == []  # 2 controls: none can be tested as the set against the others
    assert "informative queries" in values["power"] and "R = 2 controls no p-value is below" in values["power"]


@pytest.mark.parametrize("stem", ["positive_neurons", "negative_neurons"])
def test_relevance_pages_place_the_mismatched_pairs_between_non_relevant_and_relevant_ones(small_book, stem):
    rows = glued(small_book, stem)["presence"]
    assert rows and {row["dataset"] for row in rows} <= set(DATASETS)
    for row in rows:
        assert row["group"] in ("top set", "relevance-specific", "class-independent", "other")
        assert 0 < row["twins"] <= 6 and 0 <= row["twins called non-relevant"] <= 1
        if row["position"] is not None and row["position low"] is not None:
            assert row["position low"] <= row["position"] <= row["position high"]
            assert row["relevant - mismatched"] == pytest.approx(row["relevant"] - row["mismatched"])


def test_pruning_page_compares_every_set_with_the_unpruned_model_and_its_random_controls(small_book):
    values = glued(small_book, "pruning_summary")
    tasks = {row["collection"]: row for row in values["pruning_tasks"]}
    assert set(tasks) == set(DATASETS)
    assert all(row["queries"] <= 4 and row["pairs re-ranked"] <= 4 * 5 for row in tasks.values())
    assert all(0 <= row["informative queries"] <= row["queries"] for row in tasks.values())
    table = values["pruning_table"]
    n_neurons = 6 * 1536
    assert {row["p"] for row in table} == {1.0}
    assert {row["task"] for row in table} == set(DATASETS)
    for row in table:
        assert row["delta"] == pytest.approx(row["nDCG@10"] - row["unpruned nDCG@10"], abs=1e-9)
        assert row["unpruned nDCG@10"] == pytest.approx(tasks[row["task"]]["unpruned nDCG@10"])
        if row["set"].startswith(("top: ", "lowest: ")) or row["set"] == "fusion":
            assert row["neurons"] == -(-n_neurons * 1.0 // 100)
        if row["set"] == "OOD neurons":  # random controls only, out of domain, where the OOD test ran
            assert row["task"] != DATASETS[0] or row["controls"] == 0
            assert row["matched controls"] == 0 and row["controls"] in (0, 2)
            continue
        # controls only for the verdict sets (in-domain top, fusion), on the in-domain collection
        controlled = row["set"] in (f"top: {DATASETS[0]}", "fusion") and row["task"] == DATASETS[0]
        assert row["controls"] == (2 if controlled else 0), row
        if not controlled:
            assert row["random delta"] is None and row["test vs random"] == "no control"
            continue
        assert row["random min"] <= row["random delta"] <= row["random max"]
        assert row["matched delta"] is not None and row["p vs matched (Holm)"] >= row["p vs matched"]
        assert row["test vs random"].startswith("rank among controls and bootstrap")
        assert 1 / 3 <= row["p vs random"] <= row["p vs random (Holm)"] <= 1  # 2 controls: never below 1 / 3
        assert row["p vs random"] == pytest.approx(row["p random (queries and controls)"])
        assert row["delta vs random"] == pytest.approx(row["delta"] - row["random delta"])
    verdicts = {row["verdict"] for row in values["pruning_verdicts"]}
    assert verdicts <= {"hurts more than random", "does not hurt more than random", "no significant difference",
                        "empty set", "no control"}


def test_figure7_prunes_growing_sets_of_the_in_domain_negative_class(small_book):
    values = glued(small_book, "pruning_negative_in_domain")
    table = values["figure7_table"]
    assert {row["set"] for row in table} == {f"top: {DATASETS[0]}"} and {row["class"] for row in table} == {"negative"}
    sizes = {}
    for row in values["figure7_layers"]:
        sizes[row["p"]] = sizes.get(row["p"], 0) + row["neurons"]
    for row in table:
        assert row["neurons"] == sizes[row["p"]] == -(-6 * 1536 * row["p"] // 100)
    figure6 = {(row["task"], row["neurons"]): row for row in glued(small_book, "pruning_summary")["pruning_table"]
               if row["scheme"] == f"negative · top: {DATASETS[0]}"}
    for row in table:  # the same set at the same p is the same pruned model: both pages agree
        if (row["task"], row["neurons"]) in figure6:
            assert row["delta"] == pytest.approx(figure6[(row["task"], row["neurons"])]["delta"])


def test_one_notebook_per_analysis_makes_the_pages_of_both_classes(small_book):
    assert {notebook for notebook, _ in CLASS_PAGES.values()} == {"relevance_neurons", "relevance_neurons_core"}
    html = small_book / "_build" / "html" / "book" / "generated"
    for page, title in [("positive_neurons", "Relevance neurons of the positive class (Figure 2)"),
                        ("negative_neurons", "Relevance neurons of the negative class (Figure 4)"),
                        ("positive_neurons_core", "Is there a shared core of positive-class neurons? (Figure 3)"),
                        ("negative_neurons_core", "Is there a shared core of negative-class neurons? (Figure 5)")]:
        assert f"<h1>{title}<" in (html / f"{page}.html").read_text(), page
    positive, negative = (glued(small_book, page)["layer_counts"] for page in ("positive_neurons", "negative_neurons"))
    assert positive != negative  # each page computed its own class


def downloads(page: Path) -> list[Path]:
    """The files a built page links with MyST's {download} role, resolved (each must exist in the site)."""
    links = re.findall(r'<a class="reference download internal"[^>]*href="([^"]+)"', page.read_text())
    return [(page.parent / link).resolve() for link in links]


@pytest.mark.parametrize("stem", ["positive_neurons", "negative_neurons"])
def test_neuron_sets_download_from_their_page(small_book, stem):
    site = small_book / "_build" / "html"
    files = downloads(site / "book" / "generated" / f"{stem}.html")
    assert [f.name for f in files] == [f"{stem}.neuron_sets.csv"]
    assert files[0].is_file() and files[0].is_relative_to(site / "_downloads")
    rows = list(csv.DictReader(files[0].open()))
    assert {"dataset", "layer", "unit", "score", "rank"} <= set(rows[0])
    counts = glued(small_book, stem)["layer_counts"]
    for dataset in {row["dataset"] for row in rows}:
        mine = [row for row in rows if row["dataset"] == dataset]
        for p in small_params(small_book)["book"]["p_values"]:  # the CSV holds the sets the figure counts
            in_set = sum(row[f"top {p:g}%"] == "True" for row in mine)
            assert in_set == sum(c["neurons"] for c in counts if c["set"] == dataset and c["p"] == p)
        assert [int(row["rank"]) for row in mine] == list(range(1, len(mine) + 1))


def test_pruning_table_downloads_from_page_11(small_book):
    site = small_book / "_build" / "html"
    files = downloads(site / "book" / "generated" / "pruning_summary.html")
    assert [f.name for f in files] == ["pruning_summary.pruning_table.csv"]
    rows = list(csv.DictReader(files[0].open()))
    table = glued(small_book, "pruning_summary")["pruning_table"]
    assert len(rows) == len(table)
    assert [float(row["delta"]) for row in rows] == pytest.approx([row["delta"] for row in table])


@pytest.mark.parametrize("stem", ["positive_neurons", "negative_neurons"])
def test_relevance_pages_show_the_change_each_pair_has_to_attribute(small_book, stem):
    values = glued(small_book, stem)
    changes = {row["dataset"]: row for row in values["change_table"]}
    assert set(changes) == set(DATASETS)
    for dataset, row in changes.items():
        assert row["pairs"] == values["pairs_used"][dataset]["correct"]  # the pairs the class mean uses
        assert 0 <= row["negative"] <= row["below min_change"] <= row["pairs"]
        if row["pairs"]:
            assert row["smallest change"] <= row["median change"]


@pytest.mark.parametrize("stem", ["positive_neurons_core", "negative_neurons_core"])
def test_core_pages_compare_the_core_with_within_dataset_parts_and_the_drop_rule_null(small_book, stem):
    values = glued(small_book, stem)
    for row in values["core_nulls"]:
        assert row["p"] in small_params(small_book)["book"]["p_values"]
        assert 0 < row["p (drop rule in the null)"] <= 1
        assert row["within (parts)"] >= 0 and row["across (parts)"] >= 0 and row["uniform chance"] >= 0
        if row["ratio"] is not None:
            assert row["ratio"] == pytest.approx(row["across (parts)"] / row["within (parts)"])


def test_overlaps_page_gives_ratios_to_within_dataset_agreement_fusion_shares_and_ood_counts_in_noise(small_book):
    values = glued(small_book, "overlaps")
    for row in values["agreement_ratios"]:
        assert 0 <= row["cross"] <= 1 and 0 <= row["within"] <= 1 and 0 <= row["chance Jaccard"] < 1
        if row["ratio"] is not None:
            assert row["ratio"] == pytest.approx(row["cross"] / row["within"])
    shares = {}
    for row in values["fusion_shares"]:
        assert row["normalisation"] == "rank" and 0 <= row["in its top p%"] <= 1
        shares[(row["class"], row["p"])] = shares.get((row["class"], row["p"]), 0) + row["share of fused score"]
    assert shares and all(total == pytest.approx(1) for total in shares.values())
    for row in values["ood_tests"]:
        assert row["OOD neurons"] >= 0 and row["tested null mean"] >= 0 and row["rank-gap null mean"] >= 0
        assert 0 < row["p (max-t)"] <= 1


def test_robustness_page_gives_membership_probabilities_and_within_beside_between_agreement(small_book):
    values = glued(small_book, "robustness")
    for row in values["membership"]:
        assert 0 <= row["mean probability of the selected"] <= 1
        assert row["selected with probability >= 0.9"] + row["selected with probability < 0.5"] <= row["set size"]
    kinds = {row["compared"].startswith("within ") for row in values["agreement"]}
    assert kinds == {True, False}
    assert all(0 <= row["Jaccard"] <= 1 and 0 <= row["RBO"] <= 1 for row in values["agreement"])


def test_convergence_page_measures_every_rule_against_the_finest_trapezoid(small_book):
    values = glued(small_book, "convergence")
    params = small_params(small_book)
    assert values["finest"] == params["convergence"]["finest"] and values["default_steps"] == params["book"]["steps"]
    assert values["pairs"] == 2 * params["convergence"]["convergence_pairs"]  # both classes
    assert 0 <= values["completeness_low"] <= values["completeness_value"] <= values["completeness_high"]
    assert 0 <= values["overlap_low"] <= 1
    assert values["verdict"].startswith(("**A cheaper setting does as well.**", "**No cheaper setting does as well:**"))
    html = (small_book / "_build" / "html" / "book" / "generated" / "convergence.html").read_text()
    assert "cheaper setting" in html and "How this is measured" in html


def test_sensitivity_page_tests_every_claim_under_every_variant(small_book):
    values = glued(small_book, "sensitivity")
    assert values["claims"] == 8 and 0 <= values["steady"] <= 8
    assert values["variants"] == 3 + 1 + 1 + 1  # three other baselines, the right rule, min_change 0.05, every pair
    assert values["conditional"].startswith("- **the baseline**")
    html = (small_book / "_build" / "html" / "book" / "generated" / "sensitivity.html").read_text()
    assert "NEUTRAL" in html and "Where each baseline starts" in html


def test_figure7_scores_controls_on_the_in_domain_collection_only(small_book):
    for row in glued(small_book, "pruning_negative_in_domain")["figure7_table"]:
        assert (row["controls"] > 0) == (row["task"] == DATASETS[0] and row["neurons"] > 0) or row["neurons"] == 0
