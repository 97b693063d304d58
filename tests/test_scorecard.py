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
