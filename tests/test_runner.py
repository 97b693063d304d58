"""Tests of the book's runner on small temporary books: parameter checks, failures, a real build."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from neuron_ig.report import runner

REPO = Path(__file__).resolve().parents[1]

HEADER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def notebook(title: str, parameters: str, *cells: str) -> str:
    """A jupytext MyST notebook: a title, a cell tagged `parameters`, then code cells."""
    text = f"{HEADER}\n# {title}\n\n```{{code-cell}} ipython3\n:tags: [parameters]\n\n{textwrap.dedent(parameters).strip()}\n```\n"
    for cell in cells:
        text += f"\n```{{code-cell}} ipython3\n{textwrap.dedent(cell).strip()}\n```\n"
    return text


def make_book(root: Path, notebooks: dict[str, str], params: dict, config: bool = False) -> Path:
    """A temporary book: intro page, notebooks/STEM.md, _toc.yml listing them, params.yml (returned)."""
    (root / "book").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "book" / "intro.md").write_text("# A test book\n\nThe gap $F(x) - F(x')$ is shown in math.\n")
    for stem, text in notebooks.items():
        (root / "notebooks" / f"{stem}.md").write_text(text)
    toc = {"format": "jb-book", "root": "book/intro",
           "chapters": [{"file": f"book/generated/{stem}"} for stem in notebooks]}
    (root / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
    if config:
        shutil.copy(REPO / "_config.yml", root / "_config.yml")
    params_file = root / "params.yml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    return params_file


# --- parameters and the toc, without running anything ------------------------------------------


@pytest.mark.parametrize(
    "default, value, ok",
    [(50, 20, True), (50, "20", False), (50, 2.5, False), (50, True, False),
     (0.5, 1, True), (0.5, 0.1, True), (0.5, "x", False), ("a", "b", True), ("a", 1, False),
     ([0.1], [1, 2], True), ([], "x", False), (True, False, True), (True, 1, False),
     (None, "anything", True), (None, [1], True), (runner._UNKNOWN, 3, True)],
)
def test_type_matches(default, value, ok):
    assert runner.type_matches(default, value) is ok


def test_toc_order_with_parts_and_sections(tmp_path):
    (tmp_path / "notebooks").mkdir()
    for stem in ("01_a", "02_b", "03_c"):
        (tmp_path / "notebooks" / f"{stem}.md").write_text("")
    toc = {"format": "jb-book", "root": "book/intro", "parts": [
        {"caption": "One", "chapters": [{"file": "book/generated/02_b",
                                          "sections": [{"file": "book/generated/03_c"}]}]},
        {"caption": "Two", "chapters": [{"file": "book/notes"}, {"file": "book/generated/01_a"}]}]}
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    assert runner.toc_pages(tmp_path) == ["02_b", "03_c", "01_a"]


def test_toc_page_made_by_nothing_is_refused(tmp_path):
    params_file = make_book(tmp_path, {"01_first": notebook("First", "steps = 50")}, {"book": {}})
    toc = yaml.safe_load((tmp_path / "_toc.yml").read_text())
    toc["chapters"].append({"file": "book/generated/09_x"})
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    with pytest.raises(runner.RunnerError, match=r"lists book/generated/09_x but nothing makes it: no notebooks/09_x\.md"
                                                 r", no notebook whose front matter lists it under `pages:`"
                                                 r".*section `09_x:` with `notebook: NAME`.*notebooks: 01_first"):
        runner.run(tmp_path, params_file, build=False)


def test_wrong_type_is_refused_before_anything_runs(tmp_path, capsys):
    ran = "Path('ran_{}').write_text('yes')"
    params_file = make_book(tmp_path, {
        "01_first": notebook("First", "steps = 50", "from pathlib import Path", ran.format(1)),
        "02_second": notebook("Second", "seed = 0\nname = 'x'", "from pathlib import Path", ran.format(2)),
    }, {"book": {"steps": 10, "seed": "zero"}})

    code = runner.main(["--params", str(params_file), "--root", str(tmp_path)])

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1
    assert "02_second" in err and "'seed'" in err and "expects int" in err and "got str" in err
    assert str(params_file) in err
    generated = tmp_path / "book" / "generated"
    assert not list(generated.glob("*")) and not list(generated.glob("ran_*"))  # not even 01 ran


def test_unknown_parameter_of_a_notebook_section_is_refused(tmp_path):
    params_file = make_book(tmp_path, {"01_first": notebook("First", "steps = 50")},
                            {"book": {}, "01_first": {"stepz": 3}})
    with pytest.raises(runner.RunnerError, match=r"01_first has no parameter 'stepz' .*declares: steps"):
        runner.run(tmp_path, params_file, build=False)


def test_unknown_section_and_only_name_are_refused(tmp_path):
    params_file = make_book(tmp_path, {"01_first": notebook("First", "steps = 50")},
                            {"book": {}, "07_missing": {"steps": 3}})
    with pytest.raises(runner.RunnerError, match=r"section `07_missing:` but _toc.yml has no page.*pages: 01_first"):
        runner.run(tmp_path, params_file, build=False)
    params_file.write_text("book: {}\n")
    with pytest.raises(runner.RunnerError, match=r"--only 01_frist: not in _toc.yml"):
        runner.run(tmp_path, params_file, only=["01_frist"], build=False)


def test_book_key_that_no_notebook_declares_is_refused_with_the_valid_names(tmp_path, capsys):
    params_file = make_book(tmp_path, {
        "01_first": notebook("First", "steps = 50", "from pathlib import Path", "Path('ran').write_text('yes')"),
        "02_second": notebook("Second", "seed = 0"),
    }, {"book": {"stepz": 10, "seed": 1}})

    code = runner.main(["--params", str(params_file), "--root", str(tmp_path), "--no-build", "--only", "01_first"])

    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "`book:` has 'stepz', which no notebook declares (their parameters: seed, steps)" in err
    assert not (tmp_path / "book" / "generated" / "ran").exists()


def test_one_notebook_makes_several_pages_and_the_sections_are_checked(tmp_path):
    one = notebook("Class", "label = 1\nsteps = 50")
    params = {"book": {"steps": 3},
              "01_positive": {"notebook": "10_class", "label": 1},
              "02_negative": {"notebook": "10_class", "label": 0, "steps": 4}}
    params_file = make_book(tmp_path, {"01_positive": one, "02_negative": one}, params)
    for stem in ("01_positive", "02_negative"):
        (tmp_path / "notebooks" / f"{stem}.md").unlink()
    (tmp_path / "notebooks" / "10_class.md").write_text(one)
    notebooks = runner.page_notebooks(tmp_path, ["01_positive", "02_negative"], params, params_file)
    assert notebooks == {"01_positive": "10_class", "02_negative": "10_class"}
    declared = {"label": 1, "steps": 50}
    assert runner.page_parameters("02_negative", "10_class", declared, params, params_file) == {"steps": 4, "label": 0}

    params_file.write_text(params_file.read_text().replace("notebook: 10_class\n  label: 0", "notebook: 10_klass\n  label: 0"))
    with pytest.raises(runner.RunnerError, match=r"section `02_negative:` of .* names the notebook '10_klass', but there "
                                                 r"is no notebooks/10_klass\.md \(notebooks: 10_class\)"):
        runner.run(tmp_path, params_file, build=False)
    params_file.write_text("book: {}\n01_positive: {notebook: 10_class, label: 1}\n"
                           "01_positive: {notebook: 10_class, label: 0}\n")
    with pytest.raises(runner.RunnerError, match=r"made twice.*`01_positive:` is given twice \(line 3\)"):
        runner.run(tmp_path, params_file, build=False)
    params_file.write_text("book: {notebook: 10_class}\n")
    with pytest.raises(runner.RunnerError, match=r"`notebook:` names the notebook of one page: move it"):
        runner.run(tmp_path, params_file, build=False)
    params_file.write_text("book: {}\n01_positive: {notebook: 10_class, labell: 1}\n02_negative: {notebook: 10_class}\n")
    with pytest.raises(runner.RunnerError, match=r"notebook 01_positive \(notebook 10_class\) has no parameter 'labell'"):
        runner.run(tmp_path, params_file, build=False)


def test_a_notebook_front_matter_makes_its_pages_and_a_section_overrides_them(tmp_path):
    one = notebook("Class", "label = 1\nsteps = 50").replace(
        "jupytext:\n", "jupytext:\n  notebook_metadata_filter: pages\n", 1).replace(
        "\n---\n", "\npages:\n  01_positive: {label: 1}\n  02_negative: {label: 0, steps: 7}\n---\n", 1)
    params_file = make_book(tmp_path, {"01_positive": one, "02_negative": one}, {"book": {"steps": 3}})
    for stem in ("01_positive", "02_negative"):
        (tmp_path / "notebooks" / f"{stem}.md").unlink()
    (tmp_path / "notebooks" / "10_class.md").write_text(one)
    steps = {page: (made_by, parameters) for page, made_by, parameters, _ in runner.plan(tmp_path, params_file, tmp_path)}
    assert steps == {"01_positive": ("10_class", {"steps": 3, "label": 1}),
                     "02_negative": ("10_class", {"steps": 7, "label": 0})}
    params_file.write_text("book: {steps: 3}\n02_negative: {steps: 9}\n")  # the params file wins over the front matter
    assert runner.plan(tmp_path, params_file, tmp_path)[1][2] == {"steps": 9, "label": 0}

    (tmp_path / "notebooks" / "11_copy.md").write_text(one)
    with pytest.raises(runner.RunnerError, match=r"page 01_positive is made by two notebooks' `pages:`, 10_class and 11_copy"):
        runner.plan(tmp_path, params_file, tmp_path)
    (tmp_path / "notebooks" / "11_copy.md").unlink()
    (tmp_path / "notebooks" / "10_class.md").write_text(one.replace("label: 0, steps: 7", "label: 0, labell: 7"))
    with pytest.raises(runner.RunnerError, match=r"notebook 02_negative \(notebook 10_class\) has no parameter 'labell'"):
        runner.plan(tmp_path, params_file, tmp_path)


def test_a_params_file_with_only_book_makes_every_page_of_the_repository(tmp_path):
    params_file = tmp_path / "mine.yml"
    params_file.write_text("book:\n  steps: 20\n")
    steps = runner.plan(REPO, params_file, tmp_path)
    assert sorted(page for page, *_ in steps) == sorted(runner.toc_pages(REPO))
    assert all(parameters.get("steps", 20) == 20 for _, _, parameters, _ in steps)


@pytest.mark.parametrize("params_file", ["params/default.yml", "params/paper.yml"])
def test_repository_params_files_pass_every_check_and_run_each_class_notebook_twice(params_file, tmp_path):
    steps = {page: (notebook, parameters) for page, notebook, parameters, _ in
             runner.plan(REPO, REPO / params_file, tmp_path)}
    assert sorted(steps) == sorted(runner.toc_pages(REPO))
    order = list(steps)  # the introduction reads the scorecard of paper_vs_reproduction: it runs after it
    assert order.index("introduction") == order.index("paper_vs_reproduction") + 1
    for page, notebook, label in [("positive_neurons", "relevance_neurons", 1),
                                  ("negative_neurons", "relevance_neurons", 0),
                                  ("positive_neurons_core", "relevance_neurons_core", 1),
                                  ("negative_neurons_core", "relevance_neurons_core", 0)]:
        assert steps[page][0] == notebook and steps[page][1]["label"] == label


def test_the_default_build_runs_every_notebook_with_its_own_defaults(tmp_path):
    """A notebook opened in JupyterLab reruns from the book's cache only if its parameter cell holds what
    the default build ran it with: the defaults of every notebook are those of params/default.yml (a
    page of another name differs only by what its notebook's front matter lists)."""
    listed = runner.notebook_pages(REPO)
    for page, notebook, parameters, _ in runner.plan(REPO, REPO / "params" / "default.yml", tmp_path):
        declared = runner.declared_parameters(tmp_path / f"{notebook}.ipynb")
        own = listed[page][1] if page in listed else {}
        differing = {name: (declared[name], value) for name, value in parameters.items()
                     if declared[name] != value and name not in own}
        assert not differing, f"{page}: notebooks/{notebook}.md's defaults differ from params/default.yml: {differing}"


def test_notebook_without_parameters_cell_is_refused(tmp_path):
    params_file = make_book(tmp_path, {"01_first": HEADER + "\n# First\n\n```{code-cell} ipython3\nx = 1\n```\n"},
                            {"book": {}})
    with pytest.raises(runner.RunnerError, match="no cell tagged `parameters`"):
        runner.run(tmp_path, params_file, build=False)


# --- execution -----------------------------------------------------------------------------------


def test_failing_notebook_stops_the_run_and_leaves_nothing_to_build_on(tmp_path, capsys):
    params_file = make_book(tmp_path, {
        "01_fails": notebook("Fails", "steps = 50", "x = steps + 1", "raise ValueError(f'boom at {x}')"),
        "02_after": notebook("After", "steps = 50", "y = 2"),
    }, {"book": {"steps": 3}})

    code = runner.main(["--params", str(params_file), "--root", str(tmp_path), "--no-build"])

    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1
    assert len(errors) == 1  # one line (papermill's progress bar also writes to stderr)
    err = errors[0]
    assert "notebook 01_fails failed" in err and "ValueError: boom at 4" in err
    generated = tmp_path / "book" / "generated"
    assert not (generated / "01_fails.ipynb").exists()
    assert (generated / "01_fails.failed.ipynb").exists()  # kept to read, under a name no toc lists
    assert not (generated / "02_after.ipynb").exists()  # the run stopped


def test_notebook_output_and_the_running_cell_reach_the_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner, "HEARTBEAT_S", 0.3)
    params_file = make_book(tmp_path, {
        "01_slow": notebook("Slow", "steps = 50", "print(f'fine-tuning step {steps}', flush=True)",
                            "import sys, time\nprint('to stderr', file=sys.stderr)\ntime.sleep(2)"),
    }, {"book": {"steps": 7}})

    runner.run(tmp_path, params_file, build=False)

    out, err = capsys.readouterr()
    assert "fine-tuning step 7" in out and "to stderr" in err  # code cells 3 and 4, after the two parameter cells
    assert re.search(r"\.\.\. 01_slow: \d\.\d min, running code cell 4 of 4 \(import sys, time\)", out)


def test_build_is_refused_while_a_page_is_missing(tmp_path):
    params_file = make_book(tmp_path, {"01_first": notebook("First", "steps = 50")}, {"book": {}})
    with pytest.raises(runner.RunnerError, match=r"01_first.ipynb has not been made yet"):
        runner.build_book(tmp_path)
    assert params_file.exists()


CHART_NOTEBOOK = notebook(
    "A chart",
    "steps = 3\ntitle = 'default title'\nrate = 0.5",
    """
    import os
    from pathlib import Path
    import altair as alt
    import pandas as pd
    from neuron_ig.report import plots
    from neuron_ig.report.provenance import show_provenance

    show_provenance({"steps": steps, "title": title, "rate": rate})
    Path("environment.json").write_text(
        __import__("json").dumps({"cwd": os.getcwd(), "cache": os.environ["NEURON_IG_CACHE"]}))
    """,
    """
    data = pd.DataFrame({"k": range(steps), "value": [k * rate for k in range(steps)]})
    plots.show(alt.Chart(data, title=title).mark_bar().encode(x="k:O", y="value", color="k:N"))
    """,
    """
    from IPython.display import Markdown, display
    from neuron_ig.report.downloads import data_file

    display(Markdown("The chart's data: " + data_file(data, "values", "values (CSV)") + "."))
    """,
)

# One notebook, two pages: the title is a MyST substitution of the page's parameter
CLASS_NOTEBOOK = notebook("Neurons of the {{ ['negative', 'positive'][label] }} class", "label = 1", "print(label)")


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    """A two-page book (intro + one chart notebook) run and built with the repository's _config.yml."""
    root = tmp_path_factory.mktemp("book")
    params_file = make_book(root, {"01_chart": CHART_NOTEBOOK, "02_positive": CLASS_NOTEBOOK, "03_negative": CLASS_NOTEBOOK},
                            {"book": {"steps": 4, "title": "from the params file", "rate": 2},
                             "02_positive": {"notebook": "10_class"}, "03_negative": {"notebook": "10_class", "label": 0}},
                            config=True)
    (root / "notebooks" / "02_positive.md").rename(root / "notebooks" / "10_class.md")
    (root / "notebooks" / "03_negative.md").unlink()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("NEURON_IG_CACHE", raising=False)
        runner.run(root, params_file)
    return root


def test_real_book_executes_and_builds(built_book):
    generated = built_book / "book" / "generated"
    executed = json.loads((generated / "01_chart.ipynb").read_text())
    assert "from the params file" in json.dumps(executed)  # parameters were injected
    environment = json.loads((generated / "environment.json").read_text())
    assert Path(environment["cwd"]).resolve() == generated.resolve()
    assert Path(environment["cache"]) == (built_book / ".cache" / "neuron_ig").resolve()
    assert (built_book / "_build" / "html" / "book" / "generated" / "01_chart.html").is_file()


def test_one_notebook_makes_two_pages_titled_by_their_parameters(built_book):
    html = built_book / "_build" / "html" / "book" / "generated"
    titles = {"02_positive": "Neurons of the positive class", "03_negative": "Neurons of the negative class"}
    for page, title in titles.items():
        text = (html / f"{page}.html").read_text()
        assert re.search(rf"<h1>{title}<", text), page
        assert all(re.search(rf">\s*{other}\s*</a>", text) for other in titles.values()), "both titles in the navigation"


def test_figure_data_is_a_download_in_the_built_site(built_book):
    page = built_book / "_build" / "html" / "book" / "generated" / "01_chart.html"
    links = re.findall(r'<a class="reference download internal"[^>]*href="([^"]+)"', page.read_text())
    assert len(links) == 1 and links[0].endswith("/01_chart.values.csv")
    target = (page.parent / links[0]).resolve()
    assert target.is_file() and target.is_relative_to(built_book / "_build" / "html" / "_downloads")
    assert target.read_text().splitlines() == ["k,value", "0,0", "1,2", "2,4", "3,6"]


def test_built_page_has_inline_svg_and_no_cdn_script(built_book):
    html_dir = built_book / "_build" / "html"
    page = (html_dir / "book" / "generated" / "01_chart.html").read_text()
    assert "<svg" in page and 'class="marks"' in page  # the chart itself, inline
    assert "from the params file" in page
    for html in html_dir.rglob("*.html"):
        sources = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", html.read_text())
        remote = [src for src in sources if re.match(r"(https?:)?//", src)
                  or re.search(r"vega|cdn|jsdelivr|unpkg", src)]
        assert not remote, f"{html.name} loads scripts from the network: {remote}"
    assert (html_dir / "_static" / "mathjax" / "tex-svg-full.js").is_file()


def test_built_pages_fetch_nothing_from_the_network(built_book, browser):
    """Open every page in headless Chromium and record each request: all must be local files."""
    html_dir = built_book / "_build" / "html"
    requests = []
    page = browser.new_page()
    page.on("request", lambda request: requests.append(request.url))
    for name in ("book/intro.html", "book/generated/01_chart.html"):
        page.goto((html_dir / name).as_uri(), wait_until="networkidle")
        page.wait_for_timeout(500)
        is_chart = name.endswith("01_chart.html")
        assert page.locator("svg.marks").count() == is_chart
        assert page.locator("mjx-container").count() >= (not is_chart)  # MathJax from _static
    assert requests
    assert [url for url in requests if not url.startswith(("file:", "data:", "about:"))] == []


def test_kernel_of_another_python_is_refused(monkeypatch):
    from types import SimpleNamespace

    from jupyter_client.kernelspec import KernelSpecManager

    foreign = SimpleNamespace(argv=["/opt/other-env/bin/python", "-m", "ipykernel_launcher"], resource_dir="/x")
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", lambda self, name: foreign)
    with pytest.raises(runner.RunnerError, match=r"runs /opt/other-env/bin/python.*ipykernel install --sys-prefix"):
        runner.check_kernel()
    monkeypatch.undo()
    runner.check_kernel()  # the venv's own kernel is accepted


def test_a_page_executed_with_the_same_key_is_kept_and_any_change_executes_it_again(tmp_path, capsys):
    runs = tmp_path / "runs.txt"
    params_file = make_book(tmp_path, {
        "01_counted": notebook("Counted", "steps = 50", f"open({str(runs)!r}, 'a').write(f'{{steps}}\\n')"),
    }, {"book": {"steps": 3}})

    def executions():
        runner.run(tmp_path, params_file, build=False)
        return runs.read_text().split()

    assert executions() == ["3"]
    assert executions() == ["3"]  # kept
    assert "01_counted kept" in capsys.readouterr().out
    params_file.write_text(yaml.safe_dump({"book": {"steps": 4}}))
    assert executions() == ["3", "4"]  # another parameter
    notebook_file = tmp_path / "notebooks" / "01_counted.md"
    notebook_file.write_text(notebook_file.read_text() + "\n```{code-cell} ipython3\nz = 1\n```\n")
    assert executions() == ["3", "4", "4"]  # another notebook
    runner.run(tmp_path, params_file, build=False, rerun=True)
    assert runs.read_text().split() == ["3", "4", "4", "4"]


def test_a_page_that_reads_another_runs_after_it_and_again_when_it_ran_anew(tmp_path, capsys):
    runs = tmp_path / "runs.txt"
    summary = notebook("Summary", "steps = 50", f"open({str(runs)!r}, 'a').write('summary ' + open('02_results.txt').read() + '\\n')")
    summary = summary.replace("jupytext:\n", "jupytext:\n  notebook_metadata_filter: reads\n", 1).replace(
        "\n---\n", "\nreads: [02_results]\n---\n", 1)
    results = notebook("Results", "steps = 50", "open('02_results.txt', 'w').write(str(steps))",
                       f"open({str(runs)!r}, 'a').write('results\\n')")
    params_file = make_book(tmp_path, {"01_summary": summary, "02_results": results}, {"book": {"steps": 3}})
    assert [page for page, *_ in runner.plan(tmp_path, params_file, tmp_path)] == ["02_results", "01_summary"]

    def executions():
        runner.run(tmp_path, params_file, build=False)
        return runs.read_text().splitlines()

    assert executions() == ["results", "summary 3"]
    assert executions() == ["results", "summary 3"]  # both kept
    params_file.write_text(yaml.safe_dump({"book": {}, "02_results": {"steps": 4}}))
    assert executions() == ["results", "summary 3", "results", "summary 4"]  # its own parameters did not change

    (tmp_path / "notebooks" / "01_summary.md").write_text(summary.replace("[02_results]", "[03_missing]"))
    with pytest.raises(runner.RunnerError, match=r"01_summary\.md reads 03_missing, which _toc\.yml does not list"):
        runner.plan(tmp_path, params_file, tmp_path)
    circle = results.replace("jupytext:\n", "jupytext:\n  notebook_metadata_filter: reads\n", 1).replace(
        "\n---\n", "\nreads: [01_summary]\n---\n", 1)
    (tmp_path / "notebooks" / "01_summary.md").write_text(summary)
    (tmp_path / "notebooks" / "02_results.md").write_text(circle)
    with pytest.raises(runner.RunnerError, match=r"`reads:` of the notebooks' front matter form a circle"):
        runner.plan(tmp_path, params_file, tmp_path)


def test_the_page_key_follows_the_library_code(tmp_path, monkeypatch):
    ipynb = tmp_path / "page.ipynb"
    runner.to_ipynb(REPO / "notebooks" / "introduction.md", ipynb)
    key = runner.page_key(ipynb, {"steps": 3})
    assert runner.page_key(ipynb, {"steps": 3}) == key and runner.page_key(ipynb, {"steps": 4}) != key
    library = tmp_path / "lib" / "neuron_ig"
    shutil.copytree(REPO / "lib" / "neuron_ig", library, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runner, "__file__", str(library / "report" / "runner.py"))
    assert runner.page_key(ipynb, {"steps": 3}) == key
    (library / "engine" / "nig.py").write_text((library / "engine" / "nig.py").read_text() + "\n# a change\n")
    assert runner.page_key(ipynb, {"steps": 3}) != key


def test_a_tf32_build_on_a_machine_without_cuda_is_refused_before_any_page_runs(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    shutil.copytree(REPO / "notebooks", tmp_path / "notebooks")
    shutil.copy(REPO / "_toc.yml", tmp_path / "_toc.yml")
    params = yaml.safe_load((REPO / "params" / "default.yml").read_text())
    params["book"]["precision"] = "tf32"
    (tmp_path / "tf32.yml").write_text(yaml.safe_dump(params))
    code = runner.main(["--params", str(tmp_path / "tf32.yml"), "--root", str(tmp_path), "--no-build", "--dry-run"])
    assert code == 0  # a dry run only reports
    code = runner.main(["--params", str(tmp_path / "tf32.yml"), "--root", str(tmp_path), "--no-build", "--only", "positive_neurons"])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 1 and len(errors) == 1 and "tf32" in errors[0] and "CUDA" in errors[0]
    assert not (tmp_path / "book" / "generated" / "positive_neurons.ipynb").exists()


def test_the_build_log_keeps_a_bars_final_state_drops_noise_and_shows_a_warning_once():
    script = textwrap.dedent("""
        import os
        from neuron_ig.report.runner import CleanLog
        for page in range(2):
            with CleanLog():
                os.write(2, b"training:  10%|#  | 1/10\\rtraining:  50%|#####  | 5/10\\rtraining: 100%|##########| 10/10\\n")
                os.write(2, b"[IPKernelApp] WARNING | Kernel is running over TCP without encryption.\\n")
                os.write(2, b"UserWarning: 4 of 4 pairs truncated\\n")
                os.write(2, f"page {page} done\\n".encode())
    """)
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stderr.splitlines() == ["training: 100%|##########| 10/10", "UserWarning: 4 of 4 pairs truncated",
                                         "page 0 done", "training: 100%|##########| 10/10", "page 1 done"]
