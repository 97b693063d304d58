"""Tests that the ways to install and test the project agree: environment.yml, Makefile, .ci/run."""

import os
import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXTRAS = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def test_environment_yml_is_thin_and_installs_the_project_extras():
    environment = yaml.safe_load((REPO / "environment.yml").read_text())
    assert set(environment) == {"name", "channels", "dependencies"}
    assert environment["channels"] == ["conda-forge"]
    conda, pip = environment["dependencies"][:-1], environment["dependencies"][-1]
    assert sorted(conda) == ["pip", "python=3.11"]  # nothing but Python and pip from conda
    assert list(pip) == ["pip"] and len(pip["pip"]) == 2
    assert pip["pip"][0] == "-c constraints.txt"  # the pins that make venv uses too
    match = re.fullmatch(r"-e \.\[([\w,-]+)\]", pip["pip"][1])
    assert match, f"expected `-e .[extras]`, got {pip['pip'][1]!r}"
    assert set(match.group(1).split(",")) == {"book", "test", "lab", "dev"} <= EXTRAS


def test_makefile_installs_the_same_extras_and_has_the_targets():
    makefile = (REPO / "Makefile").read_text()
    assert "pip install $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e '.[book,test,lab,dev]'" in makefile
    assert re.search(r"^CONSTRAINTS \?= constraints.txt$", makefile, re.MULTILINE)
    for target in ("venv", "book", "test", "lab", "benchmark", "clean"):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
    assert "-m neuron_ig.report.runner --params $(PARAMS)" in makefile
    assert "-m pytest -q" in makefile
    assert "-m pytest -q -m 'not slow'" in makefile  # the fast tier, make test-fast


def test_the_library_declares_torch_as_a_range_and_the_pin_lives_in_the_constraints():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    torch = [d for d in project["dependencies"] if d.startswith("torch")]
    assert torch == ["torch>=2.2"] and project["requires-python"] == ">=3.11"
    pins = [line for line in (REPO / "constraints.txt").read_text().splitlines() if line and not line.startswith("#")]
    assert pins == ["torch==2.13.0"]
    charting = {"altair>=5", "vl-convert-python>=1.3"}
    assert not charting & set(project["dependencies"]) and charting <= set(project["optional-dependencies"]["book"])


def test_ci_runs_the_readme_test_command():
    ci = REPO / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    lines = [line.strip() for line in ci.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert "set -euo pipefail" in lines
    assert lines[-1] == "make test"
    assert "make test" in (REPO / "README.md").read_text()


def test_params_files_have_a_book_section():
    for name in ("default.yml", "paper.yml"):
        params = yaml.safe_load((REPO / "params" / name).read_text())
        book = params["book"]
        assert {"model", "datasets", "steps", "baseline", "max_length", "n_pairs", "seed", "p_values"} <= set(book)
        assert book["steps"] == 50 and book["baseline"] == "PAD_QUERY" and book["p_values"] == [0.1, 0.5, 1.0]
    assert yaml.safe_load((REPO / "params" / "paper.yml").read_text())["book"]["model"] == "castorini/monobert-large-msmarco"
