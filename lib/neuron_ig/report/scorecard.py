"""The report's scorecard: one row per claim with its verdict as a coloured badge, for page 10 and the introduction.

:func:`scorecard` turns :func:`neuron_ig.studies.verdicts.page_verdicts` rows into the rows a reader needs (the
claim in a few words, the verdict, what was observed against what the null gives, the test); :func:`scorecard_html`
renders them as an HTML table that fits the page width, each verdict a badge (:data:`BADGE_COLOURS`, with the
verdict written in it, so colour is never the only cue).
"""
from __future__ import annotations

import html

import pandas as pd

from neuron_ig.report.tables import number_text

#: verdict -> (background, text) colours of its badge (Okabe-Ito, readable in grey)
BADGE_COLOURS = {
    "supported": ("#009E73", "#ffffff"),
    "inconclusive": ("#E69F00", "#000000"),
    "not supported": ("#D55E00", "#ffffff"),
    "not computed": ("#BBBBBB", "#000000"),
    "model below target: not tested": ("#BBBBBB", "#000000"),
}
COLUMNS = ("class", "claim", "verdict", "observed", "reference [interval]", "p (Holm)", "test")


def scorecard(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: ``class``, ``claim``, ``verdict``, ``observed`` (the statistic, with its own interval where
    the claim has one), ``reference [interval]``
    (the null's mean and 95% range; for a pruning claim 0 and the effect's bootstrap interval), ``p (Holm)`` and
    ``test`` (with the note of a claim that could not be computed)."""
    rows = []
    for _, row in claims.iterrows():
        low, high = row.get("interval low"), row.get("interval high")
        interval = f" [{number_text(low)}, {number_text(high)}]" if number_text(low) else ""
        null = f"{number_text(row.get('reference'))}{interval}" if number_text(row.get("reference")) else ""
        note = row.get("note") if isinstance(row.get("note"), str) and row.get("note") else ""
        test = row.get("test") if isinstance(row.get("test"), str) else ""
        observed = number_text(row.get("observed"))
        if number_text(row.get("observed low")):
            observed += f" [{number_text(row.get('observed low'))}, {number_text(row.get('observed high'))}]"
        rows.append({"class": row.get("class", ""), "claim": row["claim"], "verdict": row["verdict"],
                     "observed": observed, "reference [interval]": null, "p (Holm)": number_text(row.get("p (Holm)")),
                     "test": "; ".join(t for t in (test, note) if t)})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def badge(verdict: str) -> str:
    """An HTML badge of a verdict: its words on its colour."""
    background, text = BADGE_COLOURS.get(verdict, BADGE_COLOURS["not computed"])
    return (f'<span class="verdict-badge" style="background:{background};color:{text};padding:0.1em 0.5em;'
            f'border-radius:0.6em;white-space:nowrap;font-size:0.85em">{html.escape(verdict)}</span>')


def scorecard_html(table: pd.DataFrame) -> str:
    """:func:`scorecard` rows as an HTML table that wraps its text (no sideways scrolling), a badge per verdict."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = []
    for _, row in table.iterrows():
        cells = [html.escape(str(row["class"])), html.escape(str(row["claim"])), badge(row["verdict"]),
                 html.escape(row["observed"]), html.escape(row["reference [interval]"]), html.escape(row["p (Holm)"]),
                 f'<span style="font-size:0.85em">{html.escape(str(row["test"]))}</span>']
        body.append("<tr>" + "".join(f'<td style="white-space:normal">{c}</td>' for c in cells) + "</tr>")
    return ('<table class="scorecard" style="width:100%;table-layout:auto;font-size:0.9em">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
