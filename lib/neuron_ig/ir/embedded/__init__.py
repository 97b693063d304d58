"""Embedded IR collections: real human-written text that a pip package ships, registered in `ir_datasets`.

No machine of this project can download an IR collection, so the project builds its own from text that
an installed package carries, and registers it in `ir_datasets` under `neuron-ig/<name>` (documents) and
`neuron-ig/<name>/<split>` (documents, queries, qrels). A notebook loads one exactly as it loads
`beir/nfcorpus/test`: `ir_datasets.load("neuron-ig/hpo/test").queries_iter()`.

| id | domain | source | role |
| --- | --- | --- | --- |
| `neuron-ig/gcide/{train,dev,test}` | general English, literary quotations | GCIDE dictionary | in-domain |
| `neuron-ig/hpo/test` | medicine, lay vs clinical language | Human Phenotype Ontology | out-of-domain |
| `neuron-ig/pystdlib/test` | software, code search | Python standard library | out-of-domain |

Each collection is one module (`gcide`, `hpo`, `pystdlib`) whose docstring gives its source, licence, how
its queries, documents and qrels are made, and its sizes. A module provides `VERSION` (bumped whenever the
build changes), `SPLITS`, the record classes `Doc` and `Query`, `source_key()` (the versions of what it
reads) and `build() -> (docs, {split: (queries, qrels)})`, deterministic given `source_key()`.

A collection is built on first use (seconds) into `<cache root>/embedded/<name>/<VERSION>-<source_key>/`
(cache root: `neuron_ig.runtime.cache.cache_root()`), written to a temporary folder and renamed
into place, then read from there: `docs.jsonl`, `queries-<split>.jsonl`, `qrels-<split>.tsv`,
`meta.json` (its manifest `<VERSION>-<source_key>.entry.json` beside it checks them), and the
`ir_datasets` docstore `docs.pklz4`, which `ir_datasets` adds on first lookup.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import ir_datasets
from ir_datasets.datasets.base import Dataset
from ir_datasets.formats import BaseDocs, BaseQrels, BaseQueries, TrecQrel
from ir_datasets.indices import DEFAULT_DOCSTORE_OPTIONS, PickleLz4FullStore
from ir_datasets.util import use_docstore

from neuron_ig.ir.embedded import gcide, hpo, pystdlib
from neuron_ig.runtime.cache import cache_root, computing, write_folder_atomic

PREFIX = "neuron-ig"
COLLECTIONS = {m.NAME: m for m in (gcide, hpo, pystdlib)}
QREL_DEFS = {1: "relevant (see the collection's module docstring for what makes a document relevant)"}


def build_key(name: str) -> str:
    """`<VERSION>-<source_key>` of collection `name`: what its cached build is named after."""
    module = COLLECTIONS[name]
    return f"v{module.VERSION}-{module.source_key()}"


def collection_dir(name: str) -> Path:
    """The cached build of collection `name`, built now if absent (atomically: tmp folder, then rename).

    A checked cache entry (`neuron_ig.runtime.cache`): a damaged build goes to quarantine and is built again, and
    one process builds it while another waits, then reads it.
    """
    final = cache_root() / "embedded" / name / build_key(name)
    with computing(final) as done:
        if not done:
            _build(name, final)
    return final


def _build(name: str, final: Path) -> None:
    start = time.perf_counter()
    docs, splits = COLLECTIONS[name].build()

    def write(folder: Path) -> None:
        _write_jsonl(folder / "docs.jsonl", docs)
        for split, (queries, qrels) in splits.items():
            _write_jsonl(folder / f"queries-{split}.jsonl", queries)
            (folder / f"qrels-{split}.tsv").write_text(
                "".join(f"{q}\t{d}\t{r}\n" for q, d, r in qrels), encoding="utf-8")
        info = {"id": f"{PREFIX}/{name}", "build_key": build_key(name), "docs": len(docs),
                "splits": {s: {"queries": len(q), "qrels": len(r)} for s, (q, r) in splits.items()},
                "build_seconds": round(time.perf_counter() - start, 1)}
        (folder / "meta.json").write_text(json.dumps(info, indent=1), encoding="utf-8")

    write_folder_atomic(final, write)


def meta(name: str) -> dict:
    """Sizes and build time of collection `name` (from its `meta.json`; builds it if needed)."""
    return json.loads((collection_dir(name) / "meta.json").read_text(encoding="utf-8"))


def _write_jsonl(path: Path, records) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(list(record), ensure_ascii=False) + "\n")


def _read_jsonl(path: Path, cls):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield cls(*json.loads(line))


class EmbeddedDocs(BaseDocs):
    """Documents of an embedded collection (shared by all its splits), with an `ir_datasets` docstore."""

    def __init__(self, name: str):
        self._name = name

    @use_docstore
    def docs_iter(self):
        return self._docs_from_jsonl()

    def _docs_from_jsonl(self):
        return _read_jsonl(collection_dir(self._name) / "docs.jsonl", self.docs_cls())

    def docs_cls(self):
        return COLLECTIONS[self._name].Doc

    def docs_store(self, field="doc_id", options=DEFAULT_DOCSTORE_OPTIONS):
        return PickleLz4FullStore(
            path=str(collection_dir(self._name) / "docs.pklz4"), init_iter_fn=self._docs_from_jsonl,
            data_cls=self.docs_cls(), lookup_field=field, index_fields=["doc_id"], options=options)

    def docs_count(self):
        return meta(self._name)["docs"]

    def docs_namespace(self):
        return f"{PREFIX}/{self._name}"

    def docs_lang(self):
        return "en"


class EmbeddedQueries(BaseQueries):
    """Queries of one split of an embedded collection."""

    def __init__(self, name: str, split: str):
        self._name, self._split = name, split

    def queries_iter(self):
        return _read_jsonl(collection_dir(self._name) / f"queries-{self._split}.jsonl", self.queries_cls())

    def queries_cls(self):
        return COLLECTIONS[self._name].Query

    def queries_namespace(self):
        return f"{PREFIX}/{self._name}"

    def queries_lang(self):
        return "en"


class EmbeddedQrels(BaseQrels):
    """Qrels of one split of an embedded collection: one row per relevant document, relevance 1."""

    def __init__(self, name: str, split: str):
        self._name, self._split = name, split

    def qrels_path(self):
        return str(collection_dir(self._name) / f"qrels-{self._split}.tsv")

    def qrels_iter(self):
        with open(self.qrels_path(), encoding="utf-8") as f:
            for line in f:
                query_id, doc_id, rel = line.rstrip("\n").split("\t")
                yield TrecQrel(query_id, doc_id, int(rel), "0")

    def qrels_cls(self):
        return TrecQrel

    def qrels_defs(self):
        return QREL_DEFS


def register() -> None:
    """Register every embedded collection in `ir_datasets` (idempotent; builds nothing)."""
    for name, module in COLLECTIONS.items():
        if f"{PREFIX}/{name}" in ir_datasets.registry._registered:
            continue
        docs = EmbeddedDocs(name)
        ir_datasets.registry.register(f"{PREFIX}/{name}", Dataset(docs))
        for split in module.SPLITS:
            ir_datasets.registry.register(
                f"{PREFIX}/{name}/{split}", Dataset(docs, EmbeddedQueries(name, split), EmbeddedQrels(name, split)))


register()
