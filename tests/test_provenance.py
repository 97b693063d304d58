"""Tests of the provenance tables a notebook shows under its parameters."""

import platform

from neuron_ig.report import provenance


def test_software_versions_names_every_package():
    versions = provenance.software_versions()
    assert versions["python"] == platform.python_version()
    for name in ("torch", "transformers", "captum", "ir_datasets", "ir_measures", "bm25s", "altair", "neuron_ig"):
        assert versions[name]


def test_parameters_table_keeps_order_and_values():
    table = provenance.parameters_table({"steps": 50, "p_values": [0.1, 0.5], "model": None})
    assert list(table.columns) == ["parameter", "value"]
    assert list(table["parameter"]) == ["steps", "p_values", "model"]
    assert table["value"][1] == [0.1, 0.5]


def test_show_provenance_displays_both_tables_folded(monkeypatch):
    shown = []
    monkeypatch.setattr(provenance, "display", shown.append)
    provenance.show_provenance({"baseline": "PAD_QUERY", "steps": 50})
    (markdown,) = (item.data for item in shown)
    assert markdown.startswith('<details class="nig-provenance">\n<summary>') and markdown.endswith("\n\n</details>")
    software, parameters = markdown.split("**Parameters**")
    assert "| python |" in software and "| torch |" in software
    assert "| baseline | `'PAD_QUERY'` |" in parameters and "| steps | `50` |" in parameters
    assert "\n\n| software | version |" in software and "\n\n| parameter | value |" in parameters  # tables start blocks


def test_markdown_table_escapes_pipes():
    assert provenance.markdown_table([("a", "x|y")], ("k", "v")).splitlines()[-1] == "| a | `x\\|y` |"
