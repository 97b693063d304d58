"""A figure's data as a CSV file beside its page, linked with MyST's {download} role."""

import pandas as pd
import pytest

from neuron_ig.report.downloads import PAGE_VARIABLE, data_file, data_file_name


def test_data_file_is_named_after_the_page_and_linked(tmp_path, monkeypatch):
    table = pd.DataFrame({"layer": [0, 5], "unit": [3, 1], "score": [0.25, -0.5], "rank": [1, 2]}, index=["x", "y"])
    monkeypatch.setenv(PAGE_VARIABLE, "negative_neurons")
    link = data_file(table, "neuron_sets", "The neuron sets (CSV)", folder=tmp_path)
    assert link == "{download}`The neuron sets (CSV) <negative_neurons.neuron_sets.csv>`"
    assert (tmp_path / "negative_neurons.neuron_sets.csv").read_text().splitlines() == [
        "layer,unit,score,rank", "0,3,0.25,1", "5,1,-0.5,2"]  # the index is not a column
    assert [path.name for path in tmp_path.iterdir()] == ["negative_neurons.neuron_sets.csv"]  # no partial file left
    monkeypatch.delenv(PAGE_VARIABLE)
    assert data_file_name("pruning_table") == "pruning_table.csv"  # outside the runner (JupyterLab)


@pytest.mark.parametrize("name", ["a b", "../x", "x.csv", ""])
def test_a_data_file_name_that_is_not_a_plain_word_is_refused(name):
    with pytest.raises(ValueError, match="use letters, digits"):
        data_file_name(name)
