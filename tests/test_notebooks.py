"""The notebooks declare the NIG parameters once, the same way: read from their source, nothing executed.

A page that computes NIG of a dataset takes its parameters through `NIGParameters.of_page(globals())`, and its
parameters cell declares every field of `NIGParameters` with the library's default, so that a params file's
`book:` value (say `rule: right`) reaches every NIG page and no page computes with a value of its own.
"""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from neuron_ig.studies.settings import NIGParameters

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.md"))
#: the engine's own parameters, declared by a page that calls the NIG engine directly
ENGINE = ("model", "baseline", "steps", "rule", "max_length", "device")


def parameters_cell(source: str) -> dict:
    """``{name: default}`` of the cell tagged ``parameters`` of a jupytext MyST notebook."""
    cell = re.search(r"```\{code-cell\}[^\n]*\n:tags: \[parameters\]\n(.*?)```", source, re.S)
    assert cell, "no parameters cell"
    tree = ast.parse(cell.group(1))
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)}


def code(source: str) -> str:
    return "\n".join(re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", source, re.S))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_nig_page_declares_the_nig_parameters_with_the_librarys_defaults(notebook):
    source = notebook.read_text()
    declared, body = parameters_cell(source), code(source)
    defaults = dataclasses.asdict(NIGParameters())
    assert not re.search(r"\bdatasets?_nig\(", body), "compute a dataset's NIG through NIGParameters.of_page(globals())"
    if "NIGParameters.of_page(globals())" in body:
        assert {name: declared.get(name, "missing") for name in defaults} == defaults
    elif "neuron_integrated_gradients(" in body:
        assert {name: declared.get(name, "missing") for name in ENGINE} == {name: defaults[name] for name in ENGINE}


def test_the_pages_that_compute_nig_are_those_expected():
    computing = {path.stem for path in NOTEBOOKS if "NIGParameters.of_page(globals())" in code(path.read_text())}
    assert computing == {"relevance_neurons", "relevance_neurons_core", "overlaps", "token_types", "robustness",
                         "paper_vs_reproduction", "pruning_summary", "pruning_negative_in_domain", "sensitivity"}


def test_a_page_without_a_nig_parameter_is_told_which_to_declare():
    namespace = dataclasses.asdict(NIGParameters(rule="right"))
    assert NIGParameters.of_page(namespace).rule == "right"
    del namespace["rule"]
    with pytest.raises(ValueError, match=r"declares no rule: add rule = 'left'"):
        NIGParameters.of_page(namespace)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_papermill_reads_every_parameter_of_the_parameters_cell(notebook, tmp_path):
    """A parameter papermill cannot parse (a comment it misreads) is silently not passed: the page would run with its
    own default whatever the params file says."""
    import jupytext
    import nbformat
    import papermill

    ipynb = tmp_path / f"{notebook.stem}.ipynb"
    nbformat.write(jupytext.read(notebook), ipynb)
    assert set(papermill.inspect_notebook(str(ipynb))) == set(parameters_cell(notebook.read_text()))
