"""The report's scorecard: one row per claim with its verdict as a coloured badge, for page 10 and the introduction.

:func:`scorecard` turns :func:`neuron_ig.studies.verdicts.page_verdicts` rows into the rows a reader needs (the
claim in a few words, the verdict, what was observed against what the null gives, the test); :func:`scorecard_html`
renders them as an HTML table that fits the page width, each verdict a badge (:data:`BADGE_COLOURS`, with the
verdict written in it, so colour is never the only cue). Page 10 writes its rows as a data file
(``paper_vs_reproduction.scorecard.csv``); the introduction reads it (:func:`read_scorecard`) and shows it in short
(:func:`short_scorecard_html`), each claim linked to the page of its figure (:func:`figure_page`).
"""
from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

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
SCORECARD_PAGE = "paper_vs_reproduction"  # the page that tests the claims and writes the scorecard's data file
#: a claim's kind -> the page of its figure (``{class}`` is positive or negative)
FIGURE_PAGES = {"concentration": "{class}_neurons", "core": "{class}_neurons_core", "relevance": "{class}_neurons",
                "ood": "overlaps", "pruning": "pruning_summary"}


def scorecard(claims: pd.DataFrame) -> pd.DataFrame:
    """One row per claim: ``class``, ``claim``, ``verdict``, ``observed`` (the statistic, with its own interval where
    the claim has one: for a pruning claim (``kind`` "pruning") the effect's bootstrap interval), ``reference [interval]``
    (the null's mean and 95% range; for a pruning claim 0), ``p (Holm)``,
    ``test`` (with the note of a claim that could not be computed), and for the short form ``kind`` and ``short``
    (the claim in a few words; the claim itself where the row has none)."""
    rows = []
    for _, row in claims.iterrows():
        low, high = row.get("interval low"), row.get("interval high")
        interval = f" [{number_text(low)}, {number_text(high)}]" if number_text(low) else ""
        own = row.get("kind") == "pruning"  # a pruning claim's interval is its effect's own, about the reference 0
        null = f"{number_text(row.get('reference'))}{'' if own else interval}" if number_text(row.get("reference")) else ""
        note = row.get("note") if isinstance(row.get("note"), str) and row.get("note") else ""
        test = row.get("test") if isinstance(row.get("test"), str) else ""
        observed = number_text(row.get("observed"))
        if number_text(row.get("observed low")):
            observed += f" [{number_text(row.get('observed low'))}, {number_text(row.get('observed high'))}]"
        elif own and observed:
            observed += interval
        rows.append({"class": row.get("class", ""), "claim": row["claim"], "verdict": row["verdict"],
                     "observed": observed, "reference [interval]": null, "p (Holm)": number_text(row.get("p (Holm)")),
                     "test": "; ".join(t for t in (test, note) if t),
                     "kind": row.get("kind") if isinstance(row.get("kind"), str) else "",
                     "short": row.get("short") if isinstance(row.get("short"), str) else row["claim"]})
    return pd.DataFrame(rows, columns=[*COLUMNS, "kind", "short"])


def badge(verdict: str) -> str:
    """An HTML badge of a verdict: its words on its colour."""
    background, text = BADGE_COLOURS.get(verdict, BADGE_COLOURS["not computed"])
    return (f'<span class="verdict-badge" style="background:{background};color:{text};padding:0.1em 0.5em;'
            f'border-radius:0.6em;white-space:nowrap;font-size:0.85em">{html.escape(verdict)}</span>')


def _html_table(css_class: str, head: list[str], rows: list[list[str]]) -> str:
    """An HTML table of the page's width whose cells wrap (no sideways scrolling): ``head`` plain text, ``rows`` of
    cells already in HTML."""
    header = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f'<td style="white-space:normal">{c}</td>' for c in cells) + "</tr>" for cells in rows)
    return (f'<table class="{css_class}" style="width:100%;table-layout:auto;font-size:0.9em">'
            f"<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>")


def scorecard_html(table: pd.DataFrame) -> str:
    """:func:`scorecard` rows as an HTML table that wraps its text (no sideways scrolling), a badge per verdict."""
    rows = [[html.escape(str(row["class"])), html.escape(str(row["claim"])), badge(row["verdict"]),
             html.escape(row["observed"]), html.escape(row["reference [interval]"]), html.escape(row["p (Holm)"]),
             f'<span style="font-size:0.85em">{html.escape(str(row["test"]))}</span>'] for _, row in table.iterrows()]
    return _html_table("scorecard", list(COLUMNS), rows)


def figure_page(kind: str, class_name: str) -> str | None:
    """The generated page whose figure shows a claim of this kind and class (None for an unknown kind)."""
    page = FIGURE_PAGES.get(kind)
    return page.format(**{"class": class_name}) if page else None


def read_scorecard(folder: Path | str = ".") -> pd.DataFrame | None:
    """The scorecard page 10 wrote (:func:`scorecard` rows), from ``folder`` (the runner runs pages in
    ``book/generated``) or from ``../book/generated`` (a notebook opened in JupyterLab runs in ``notebooks/``);
    None when page 10 has not run yet."""
    name = f"{SCORECARD_PAGE}.scorecard.csv"
    for path in (Path(folder) / name, Path(folder) / ".." / "book" / "generated" / name):
        if path.is_file():
            return pd.read_csv(path, keep_default_na=False, dtype=str)
    return None


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """``{verdict: claims}`` in the order of :data:`BADGE_COLOURS`, verdicts with no claim left out."""
    counts = Counter(table["verdict"])
    return {verdict: counts[verdict] for verdict in [*BADGE_COLOURS, *counts] if counts.get(verdict)}


def short_scorecard_html(table: pd.DataFrame) -> str:
    """The scorecard in short, for the introduction: per claim its class and few words (linked to the page of its
    figure), its verdict badge and what was observed (with its own interval); the nulls and tests stay on page 10."""
    rows = []
    for _, row in table.iterrows():
        page = figure_page(row.get("kind", ""), row["class"])
        words = html.escape(str(row.get("short") or row["claim"]))
        claim = f'<a href="{page}.html">{words}</a>' if page else words
        rows.append([html.escape(str(row["class"])), claim, badge(row["verdict"]), html.escape(str(row["observed"]))])
    return (_html_table("scorecard scorecard-short", ["class", "claim (its figure)", "verdict", "observed [interval]"], rows)
            + f'<p><a href="{SCORECARD_PAGE}.html">Every claim with its null, p-value and test</a></p>')


_IN_WORDS = {"model below target: not tested": "not tested (the model is below target)"}


def summary_text(table: pd.DataFrame) -> str:
    """The scorecard in two sentences: how many claims got each verdict, and which ones are supported (class and few
    words each)."""
    counts = verdict_counts(table)
    text = (f"On this build, of the paper's {len(table)} claims as this report tests them, "
            + ", ".join(f"{count} {'are' if count > 1 else 'is'} {_IN_WORDS.get(verdict, verdict)}"
                        for verdict, count in counts.items()) + ".")
    supported = table[table["verdict"] == "supported"]
    by_class = [f"for the {name} class, " + _and([row.get("short") or row["claim"] for _, row in rows.iterrows()])
                for name, rows in supported.groupby("class", sort=False)]
    return text + (" Supported: " + "; ".join(by_class) + "." if by_class else "")


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
