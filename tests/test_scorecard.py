"""The scorecard of a page's claims: a row and a badge per claim, numbers at three significant digits."""
import re

import numpy as np
import pandas as pd

from neuron_ig.report.scorecard import BADGE_COLOURS, badge, scorecard, scorecard_html


def test_each_claim_is_a_row_with_its_badge_and_its_null():
    claims = pd.DataFrame([
        {"class": "positive", "claim": "the top neurons concentrate", "verdict": "supported", "observed": 0.483043,
         "reference": 0.2, "interval low": 0.151234, "interval high": 0.25, "p (Holm)": 0.003, "test": "sign flips"},
        {"class": "negative", "claim": "a core is shared", "verdict": "not computed", "observed": np.nan,
         "reference": np.nan, "interval low": np.nan, "interval high": np.nan, "p (Holm)": np.nan,
         "test": np.nan, "note": "fewer than two datasets"},
        {"class": "positive", "claim": "pruning hurts", "verdict": "inconclusive", "observed": -0.01,
         "reference": -0.004, "interval low": -0.02, "interval high": 0.01, "p (Holm)": 0.4, "test": "rank", "note": ""},
    ])
    table = scorecard(claims)
    assert table["observed"].tolist() == ["0.483", "", "-0.01"]
    assert table.loc[0, "reference [interval]"] == "0.2 [0.151, 0.25]" and table.loc[1, "reference [interval]"] == ""
    assert table.loc[1, "test"] == "fewer than two datasets" and table.loc[2, "test"] == "rank"
    html = scorecard_html(table)
    assert html.count('class="verdict-badge"') == 3 and "overflow" not in html and "white-space:normal" in html
    for verdict, (background, _) in BADGE_COLOURS.items():
        assert background in badge(verdict) and verdict in badge(verdict)


def test_a_compact_table_writes_three_significant_digits_integers_as_integers_and_nothing_for_missing():
    from neuron_ig.report.tables import compact_table

    table = pd.DataFrame({"collection": ["a", "b"], "neurons": [93, 47], "delta": [-0.0123456, np.nan], "p": [1.0, 0.000123]})
    html = compact_table(table).to_html()
    cells = re.findall(r'class="data row\d col\d" >([^<]*)<', html)
    assert cells == ["a", "93", "-0.0123", "1", "b", "47", "", "0.000123"]
    assert "row_heading" not in html  # no index


def test_the_short_scorecard_links_each_claim_to_its_figure_and_the_summary_counts_the_verdicts(tmp_path, monkeypatch):
    from neuron_ig.report.scorecard import (
        figure_page,
        read_scorecard,
        short_scorecard_html,
        summary_text,
        verdict_counts,
    )

    claims = pd.DataFrame([
        {"class": "positive", "kind": "core", "short": "a common core", "claim": "a core is shared", "verdict": "supported",
         "observed": 45.0, "observed low": 42.0, "observed high": 50.0, "reference": 19.0, "p (Holm)": 0.03},
        {"class": "negative", "kind": "pruning", "short": "pruning hurts", "claim": "pruning hurts more", "verdict": "inconclusive",
         "observed": -0.01, "reference": 0.0, "interval low": -0.1, "interval high": 0.05, "p (Holm)": 0.4},
        {"class": "negative", "kind": "ood", "short": "OOD neurons", "claim": "some are OOD", "verdict": "supported",
         "observed": 5.7, "reference": 2.4, "p (Holm)": 0.03},
    ])
    card = scorecard(claims)
    assert card["kind"].tolist() == ["core", "pruning", "ood"] and card["short"].tolist()[0] == "a common core"
    assert card.loc[1, "observed"] == "-0.01 [-0.1, 0.05]" and card.loc[1, "reference [interval]"] == "0"  # its own
    html = short_scorecard_html(card)
    assert re.findall(r'href="([^"]+)"', html) == ["positive_neurons_core.html", "pruning_summary.html", "overlaps.html",
                                                   "paper_vs_reproduction.html"]
    assert html.count('class="verdict-badge"') == 3 and "45 [42, 50]" in html
    assert figure_page("relevance", "negative") == "negative_neurons" and figure_page("unknown", "positive") is None
    assert verdict_counts(card) == {"supported": 2, "inconclusive": 1}
    assert summary_text(card) == ("On this build, of the paper's 3 claims as this report tests them, 2 are supported, 1 is "
                                  "inconclusive. Supported: for the positive class, a common core; for the negative class, "
                                  "OOD neurons.")
    monkeypatch.chdir(tmp_path)
    assert read_scorecard() is None  # page 10 has not run
    (tmp_path / "book" / "generated").mkdir(parents=True)
    card.to_csv(tmp_path / "book" / "generated" / "paper_vs_reproduction.scorecard.csv", index=False)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")  # a notebook opened in JupyterLab runs here
    read = read_scorecard()
    assert read["verdict"].tolist() == card["verdict"].tolist() and read["observed"].tolist()[0] == "45 [42, 50]"
