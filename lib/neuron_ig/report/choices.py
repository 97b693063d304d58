"""What the paper said, what its authors' code did, and what this reproduction chose: one registry.

The paper's body could not be read: its settings are reconstructed from its abstract, public summaries and the
authors' code. Each :class:`Choice` says where its setting comes from (:data:`SOURCES`), with the reference, and
which notebook parameter changes it; :func:`choices_table` gives the value a build used beside them, and
:func:`paper_attributions` finds the sentences that give the paper a choice it did not state (a test runs it on
every page and on the library's messages).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

PAPER = "PAPER"
AUTHORS_CODE = "AUTHORS' CODE"
AUTHORS_LATER_CODE = "AUTHORS' LATER CODE"
INFERRED = "INFERRED"
OURS = "OURS"
#: each source tag and what it means
SOURCES = {
    PAPER: "the paper's abstract, keywords, public summaries of its full text and its figure file names",
    AUTHORS_CODE: "the authors' code of the paper's time (the first commit of MathVast/IntegratedGradients)",
    AUTHORS_LATER_CODE: "the authors' later commits, MathVast/CE-relevance-integration and the IR Lens tool",
    INFERRED: "our reading, with no source",
    OURS: "a choice of this reproduction (e.g. for the CPU default)",
}


@dataclass(frozen=True)
class Choice:
    """One setting of the study: what it is, what the sources say, where that comes from, and its parameter.

    ``keywords`` are words that name it in prose: a sentence that gives it to "the paper" when ``source`` is not
    :data:`PAPER` is an attribution :func:`paper_attributions` reports.
    """

    name: str
    what: str
    reference_value: str
    source: str
    reference: str
    parameter: str | None
    keywords: tuple[str, ...]


CHOICES = (
    Choice("model", "cross-encoder", "MonoBERT (most likely castorini/monobert-large-msmarco)", AUTHORS_CODE,
           "the paper names the MonoBERT family; the checkpoint is the authors' code's", "model",
           ("checkpoint", "monobert-large", "trains")),
    Choice("target", "target F", "the probability of the pair's own class", AUTHORS_CODE,
           "the authors' code of the paper's time", None, ("target",)),
    Choice("neurons", "the neurons", "FFN intermediate units, summed over token positions", INFERRED,
           "the paper scores neurons; which modules is our reading", "modules (library)", ("intermediate",)),
    Choice("baseline", "baseline x'", "PAD_QUERY (PAD_QUERY_AND_PASSAGE in IR Lens); the paper's new baseline is "
           "unidentified", AUTHORS_LATER_CODE, "the authors' later code and IR Lens", "baseline", ("baseline",)),
    Choice("steps", "steps m", "50", AUTHORS_LATER_CODE, "the authors' later code (the code of the paper's time used "
           "200 points)", "steps", ("steps", "50 steps")),
    Choice("rule", "integration rule", "the gradient at the right end of each step", AUTHORS_CODE,
           "the authors' code; captum's LayerConductance takes the left end, which converges to the same limit",
           "rule", ("right end", "left end", "riemann")),
    Choice("max_length", "max length", "128 tokens", AUTHORS_LATER_CODE, "the authors' later code (the demo of the "
           "paper's time used 512)", "max_length", ("max length", "128 tokens")),
    Choice("correct_only", "pairs averaged", "only those the model classifies correctly", AUTHORS_LATER_CODE,
           "the authors' later code", None, ("correctly classified", "filter")),
    Choice("n_pairs", "pairs per class and dataset", "unknown (later code 1,000; legacy 5,000)", OURS,
           "no source gives the paper's N", "n_pairs", ("n = 100", "pairs per", "drew")),
    Choice("p_values", "p of the top-p% sets", "0.1%, 0.5%, 1%", INFERRED,
           "our reading (the legacy code used 0.005, 0.05 and 0.5%)", "p_values", ("p values", "0.1%", "0.1, 0.5")),
    Choice("selection", "selection", "the global top p% of all layers x units neurons", INFERRED, "our reading",
           "p_values", ("global top", "top p%", "selecting")),
    Choice("fusion", "fusion", "the mean of the datasets' scores, then the top p%", AUTHORS_LATER_CODE,
           "the paper names 'fusion-based attribution'; the form is the authors' later code's", "fusion_normalise",
           ("fusion",)),
    Choice("ood", "OOD neurons", "in the out-of-domain sets and not in the in-domain set", INFERRED,
           "the paper says they exist; the definition is our reading", None, ("ood neurons", "defined as")),
    Choice("relevance_test", "what makes a neuron a relevance neuron", "its NIG separates relevant from non-relevant "
           "pairs (class contrast, per token, against class labels permuted within a collection)", OURS,
           "ours: a neuron that pushes P(relevant) up on every pair responds to a query being there", None,
           ("class contrast", "relevance-specific")),
    Choice("ood_test", "what makes a neuron OOD-specific", "its class contrast is larger out of domain than in domain "
           "(a difference in differences; max-t against a studentised bootstrap), only on collections where the model "
           "meets its stand-in targets; these are the OOD neurons pruned", OURS, "ours: shuffling pairs between collections passes any shift of text",
           "depth, max_queries, accuracy_pairs", ("difference in differences", "stand-in targets")),
    Choice("collections", "collections", "MS MARCO in domain (TREC DL 2019 judged); NFCorpus, Robust04 and other "
           "BEIR sets out of domain", PAPER, "the paper's collections; DL 2019 is our reading", "datasets",
           ("collections",)),
    Choice("pruning", "pruning", "zeroing the neurons' activations through hooks, nDCG", PAPER,
           "the paper prunes and reports nDCG; hooks are the authors' later code's form", "token_types",
           ("zeroing",)),
    Choice("pruning_depth", "re-ranking depth and queries", "the BM25 top 100 of up to 1,000 queries, nDCG@10",
           AUTHORS_LATER_CODE, "the authors' later code", "pruning_depth, pruning_queries",
           ("top 100", "1,000 queries")),
    Choice("controls", "random controls", "random sets of the same size and layers, several seeds", AUTHORS_CODE,
           "RandomPruningModel in the authors' code; the counts are ours", "random_seeds, matched_seeds",
           ("random sets", "controls")),
    Choice("figure_7", "Figure 7", "the MS MARCO negative-class set pruned, per dataset", INFERRED,
           "our reading (a per-layer distribution is as likely as a sweep of p)", None, ("sweep", "growing p")),
    Choice("min_change", "pairs with little change", "kept (min_change 0)", OURS, "ours", "min_change",
           ("min_change",)),
)
BY_NAME = {choice.name: choice for choice in CHOICES}


def choices_table(parameters: Mapping) -> pd.DataFrame:
    """One row per choice: what it is, what the sources say, the source tag and reference, its parameter, and the
    value this build used (from ``parameters``, where the choice has a parameter that the page declares)."""
    rows = []
    for choice in CHOICES:
        names = [name.strip() for name in (choice.parameter or "").split(",") if name.strip() in parameters]
        used = "; ".join(f"{name} = {parameters[name]!r}" for name in names) if names else ""
        rows.append({"choice": choice.what, "reference setting": choice.reference_value, "source": choice.source,
                     "reference": choice.reference, "this build": used, "parameter": choice.parameter or "-"})
    return pd.DataFrame(rows)


PAPER_WORDS = re.compile(r"\bthe paper\b(?!-scale|\.yml)|\bpaper's\b", re.IGNORECASE)  # not "paper-scale", "paper.yml"


def paper_attributions(text: str) -> list[tuple[str, str]]:
    """``(choice, sentence)`` for each sentence of ``text`` that names the paper and a choice whose source is not
    the paper (its keywords), unless the sentence also names that choice's real source ("reconstructed", "our",
    "the authors' code"...)."""
    found = []
    sentences = [s for block in re.split(r"\n\s*\n|\n#+ ", text) for s in re.split(r"(?<=[.;!?])\s+", " ".join(block.split()))]
    for sentence in sentences:
        if not PAPER_WORDS.search(sentence):
            continue
        lowered = sentence.lower()
        if re.search(r"reconstruct|\bour\b|\bours\b|authors' (later )?code|inferred|not known|unknown|no source|"
                     r"not stated|silent|does not settle|\bnames\b", lowered):
            continue
        for choice in CHOICES:
            if choice.source != PAPER and any(word in lowered for word in choice.keywords):
                found.append((choice.name, sentence))
                break
    return found
