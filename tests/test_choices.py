"""The registry of choices, and that no page or library message gives the paper a choice it did not state."""
import ast
import re
from pathlib import Path

import pytest

from neuron_ig.report.choices import (
    CHOICES,
    PAPER,
    SOURCES,
    choices_table,
    paper_attributions,
)

REPO = Path(__file__).resolve().parents[1]

# the phrasings a fresh-clone build held (issue 34), each giving the paper a choice that is not its own
WRONG = [
    "The paper trains and probes its cross-encoder on MS MARCO: it uses a checkpoint, monobert-large.",
    "NIG, its 50 steps and the top-p% selection are the paper's.",
    "Selecting a global top p% and intersecting across datasets are the paper's choices, and so are its p values.",
    "The paper drew N = 100 to 1,000 pairs.",
    "The paper drew hundreds of pairs per class.",
    "The sets, the fusion and the OOD neurons are defined as in the paper.",
    "The target and the filter to correctly classified pairs are the paper's.",
    "The paper re-ranks the BM25 top 100 of up to 1,000 queries.",
    "The paper's Figure 7 is a sweep of p.",
    "p must be a percentage in (0, 100], got 7: the paper uses 0.1, 0.5 and 1",
    "steps must be a positive int, got 0: the paper uses steps=50",
    "the paper's baseline is PAD_QUERY",
]
RIGHT = [
    "The paper's Figure 2 shows, layer by layer, how many neurons are shared.",
    "The paper prunes neurons by zeroing them and reports nDCG.",
    "Its 50 steps are the authors' later code's; the paper does not state them.",
]


@pytest.mark.parametrize("sentence", WRONG)
def test_each_known_wrong_attribution_is_found(sentence):
    assert paper_attributions(sentence), sentence


@pytest.mark.parametrize("sentence", RIGHT)
def test_what_the_paper_did_state_passes(sentence):
    assert paper_attributions(sentence) == []


def prose(path: Path) -> str:
    """A notebook's Markdown and the string literals of its code cells (what its page says)."""
    text = path.read_text()
    code = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text, re.S)
    markdown = re.sub(r"```\{code-cell\}[^\n]*\n.*?```", "", text, flags=re.S)
    code = [re.sub(r"^(%|:\w+:).*$", "", cell, flags=re.M) for cell in code]  # magics and cell options
    strings = [node.value for cell in code for node in ast.walk(ast.parse(cell))
               if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return markdown + "\n" + "\n".join(strings)


@pytest.mark.parametrize("path", sorted((REPO / "notebooks").glob("*.md")) + sorted((REPO / "book").rglob("*.md")),
                         ids=lambda path: path.name)
def test_no_page_gives_the_paper_a_choice_it_did_not_state(path):
    assert paper_attributions(prose(path)) == []


def test_no_library_message_gives_the_paper_a_choice_it_did_not_state():
    found = []
    for path in (REPO / "lib" / "neuron_ig").rglob("*.py"):
        if path.name == "choices.py":
            continue
        strings = [node.value for node in ast.walk(ast.parse(path.read_text()))
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)]
        found += [(path.name, *hit) for text in strings for hit in paper_attributions(text)]
    assert found == []


def test_every_choice_has_a_known_source_and_the_table_shows_the_values_used():
    assert {choice.source for choice in CHOICES} <= set(SOURCES)
    assert len({choice.name for choice in CHOICES}) == len(CHOICES)
    table = choices_table({"steps": 50, "baseline": "PAD_QUERY", "random_seeds": 19, "matched_seeds": 9})
    steps = table.set_index("choice").loc["steps m"]
    assert steps["this build"] == "steps = 50" and steps["source"] != PAPER
    controls = table.set_index("choice").loc["random controls"]
    assert controls["this build"] == "random_seeds = 19; matched_seeds = 9"
    assert (table["source"] != "").all() and len(table) == len(CHOICES)
