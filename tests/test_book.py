"""The real book at small parameters: every notebook executed by the runner (papermill) on a quickly
fine-tuned embedded model, the site built by jupyter-book, and the built pages opened in headless Chromium.

Assertions read the values each notebook records with ``myst_nb.glue``, so they check what the pages
computed, not only that they ran.
"""

import ast
import json
import shutil
from pathlib import Path

import pytest
import yaml

from neuron_ig import runner
from neuron_ig.models import packaged_minilm_path
from neuron_ig.training import TrainingConfig, fine_tune

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["neuron-ig/gcide/test", "neuron-ig/hpo/test", "neuron-ig/pystdlib/test"]
TEXT_ONLY_PAGES = {"00_introduction", "02_collections", "10_paper_vs_reproduction"}
SMALL = {
    "book": {"datasets": DATASETS, "steps": 16, "baseline": "PAD_QUERY", "max_length": 64, "n_pairs": 6,
             "seed": 0, "p_values": [0.5, 1.0], "pruning_depth": 5, "pruning_queries": 4, "random_seeds": 2},
    "02_embedded_model": {"depth": 5, "max_queries": 10, "accuracy_pairs": 8},
    "09_robustness": {"other_steps": 24, "robustness_pairs": 4, "steps_pairs": 2, "completeness_pairs": 1},
    "11_pruning": {"p_values": [1.0]},
}


@pytest.fixture(scope="module")
def small_book(tmp_path_factory, neuron_ig_cache):
    """The repository's book run with SMALL parameters on a cross-encoder fine-tuned for a few steps."""
    model = neuron_ig_cache / "models" / "tiny-cross-encoder"
    fine_tune(packaged_minilm_path(), TrainingConfig(steps=6, groups_per_step=4, negatives=1, max_length=64,
                                                     warmup_steps=1), model, progress=False)
    root = tmp_path_factory.mktemp("book")
    for name in ("notebooks", "book"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("generated"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, root / name)
    params = {**SMALL, "book": {**SMALL["book"], "model": str(model)}}
    (root / "params.yml").write_text(yaml.safe_dump(params))
    runner.run(root, root / "params.yml")
    return root


def glued(root: Path, stem: str) -> dict:
    """The values a notebook recorded with ``myst_nb.glue``: {name: value}."""
    notebook = json.loads((root / "book" / "generated" / f"{stem}.ipynb").read_text())
    values = {}
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            name = output.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                text = next(v for k, v in output["data"].items() if k.endswith("text/plain"))
                values[name] = ast.literal_eval("".join(text) if isinstance(text, list) else text)
    return values


def generated_stems() -> list[str]:
    return runner.toc_notebooks(REPO)


def test_every_notebook_ran_without_errors(small_book):
    for stem in generated_stems():
        notebook = json.loads((small_book / "book" / "generated" / f"{stem}.ipynb").read_text())
        errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{stem}: {errors[:1]}"
        assert (small_book / "_build" / "html" / "book" / "generated" / f"{stem}.html").is_file()


def test_worked_example_scores_completeness_and_top_neurons(small_book):
    values = glued(small_book, "01_nig_worked_example")
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
    table = glued(small_book, "02_collections")["collections"]
    assert table["neuron-ig/gcide/test"]["queries"] == 1000 and table["neuron-ig/hpo/test"]["documents"] > 2000
    for row in table.values():
        assert 0 < row["BM25 nDCG@10"] < 1 and row["qrels"] >= row["queries"]


def test_model_page_reports_every_collection(small_book):
    table = glued(small_book, "02_embedded_model")["effectiveness"]
    assert list(table) == DATASETS
    for row in table.values():
        assert row["queries"] == 10
        for key in ("BM25 nDCG@10", "teacher nDCG@10", "re-ranked nDCG@10", "accuracy relevant", "accuracy non-relevant"):
            assert 0 <= row[key] <= 1
    bins = glued(small_book, "02_embedded_model")["reliability"]
    assert {row["collection"] for row in bins} == set(DATASETS)
    assert sum(row["pairs"] for row in bins) == 2 * SMALL["02_embedded_model"]["accuracy_pairs"] * len(DATASETS)


def test_built_pages_render_their_charts_offline_in_a_real_browser(small_book, browser):
    html = small_book / "_build" / "html"
    requests, errors = [], []
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    for stem in generated_stems():
        page.goto((html / "book" / "generated" / f"{stem}.html").as_uri(), wait_until="networkidle")
        text = page.inner_text("main")
        assert "Parameters" in text and "torch" in text, f"{stem} states its parameters and versions"
        if stem not in TEXT_ONLY_PAGES:
            assert page.locator("main svg.marks").count() >= 1, f"{stem} shows its figures"
    assert errors == []
    assert [url for url in requests if not url.startswith(("file:", "data:", "about:"))] == []


@pytest.mark.parametrize("stem", ["03_positive_neurons", "05_negative_neurons"])
def test_relevance_neuron_counts_add_up_and_the_intersection_is_in_every_set(small_book, stem):
    values = glued(small_book, stem)
    counts = values["layer_counts"]
    sizes = values["set_sizes"]
    assert counts, f"{stem} computed no set"
    datasets_with_sets = {row["set"] for row in counts} - {"intersection"}
    for p in SMALL["book"]["p_values"]:
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


@pytest.mark.parametrize("stem", ["04_positive_neurons_core", "06_negative_neurons_core"])
def test_core_pages_drop_datasets_and_keep_at_least_two(small_book, stem):
    values = glued(small_book, stem)
    assert not set(values["dropped"]) & set(values["core"])
    assert set(values["dropped"]) | set(values["core"]) <= set(DATASETS)
    assert len(values["core"]) >= 2 or not values["dropped"]


def test_overlap_matrix_is_a_jaccard_matrix(small_book):
    values = glued(small_book, "07_overlaps")
    pairs = {}
    for row in values["jaccard"]:
        assert 0 <= row["Jaccard"] <= 1
        pairs[(row["class"], row["p"], row["row"], row["column"])] = row["Jaccard"]
    for (cls, p, a, b), value in pairs.items():
        assert pairs[(cls, p, b, a)] == pytest.approx(value)
        if a == b:
            assert value == 1


def test_paper_page_gives_a_verdict_on_every_claim(small_book):
    claims = glued(small_book, "10_paper_vs_reproduction")["claims"]
    assert {row["verdict"] for row in claims} <= {"supported", "not supported", "inconclusive", "not computed"}
    assert any("Pruning" in row["claim"] for row in claims)


def test_pruning_page_compares_every_set_with_the_unpruned_model_and_its_random_controls(small_book):
    values = glued(small_book, "11_pruning")
    tasks = {row["collection"]: row for row in values["pruning_tasks"]}
    assert set(tasks) == set(DATASETS)
    assert all(row["queries"] <= 4 and row["pairs re-ranked"] <= 4 * 5 for row in tasks.values())
    table = values["pruning_table"]
    n_neurons = 6 * 1536
    assert {row["p"] for row in table} == {1.0}
    assert {row["task"] for row in table} == set(DATASETS)
    for row in table:
        assert row["delta"] == pytest.approx(row["nDCG@10"] - row["unpruned nDCG@10"], abs=1e-9)
        assert row["unpruned nDCG@10"] == pytest.approx(tasks[row["task"]]["unpruned nDCG@10"])
        assert row["random min"] <= row["random delta"] <= row["random max"]
        if row["set"].startswith(("top: ", "lowest: ")) or row["set"] == "fusion":
            assert row["neurons"] == -(-n_neurons * 1.0 // 100)
        if row["neurons"] == 0:
            assert row["delta"] == 0 and row["p vs unpruned"] == 1 and row["random max"] == row["random min"] == 0
        else:
            assert 0 < row["p vs random (Holm)"] <= 1 and row["p vs random"] <= row["p vs random (Holm)"]
    verdicts = {row["verdict"] for row in values["pruning_verdicts"]}
    assert verdicts <= {"hurts more than random", "hurts less than random", "no significant difference", "empty set"}


def test_figure7_prunes_growing_sets_of_the_in_domain_negative_class(small_book):
    values = glued(small_book, "12_pruning_negative_in_domain")
    table = values["figure7_table"]
    assert {row["set"] for row in table} == {f"top: {DATASETS[0]}"} and {row["class"] for row in table} == {"negative"}
    sizes = {}
    for row in values["figure7_layers"]:
        sizes[row["p"]] = sizes.get(row["p"], 0) + row["neurons"]
    for row in table:
        assert row["neurons"] == sizes[row["p"]] == -(-6 * 1536 * row["p"] // 100)
    figure6 = {(row["task"], row["neurons"]): row for row in glued(small_book, "11_pruning")["pruning_table"]
               if row["scheme"] == f"negative · top: {DATASETS[0]}"}
    for row in table:  # the same set at the same p is the same pruned model: both pages agree
        if (row["task"], row["neurons"]) in figure6:
            assert row["delta"] == pytest.approx(figure6[(row["task"], row["neurons"])]["delta"])
