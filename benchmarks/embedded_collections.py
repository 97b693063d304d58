"""Build time, sizes, BM25 effectiveness and example queries of the embedded collections (and Cranfield).

Each collection is built from scratch in a temporary cache (so the time is a first-use build), then BM25
(`neuron_ig.ir.retrieval`, top 100) is evaluated on every split with queries. Prints the numbers and three
example queries per collection with a snippet of a relevant document: what `book/collections.md` shows.
Cranfield is measured too when `IR_DATASETS_HOME` holds it (see shared/data/README.md).

    python benchmarks/embedded_collections.py
"""
from __future__ import annotations

import os
import random
import tempfile
import time

import ir_datasets


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="neuron-ig-collections-") as cache:
        os.environ["NEURON_IG_CACHE"] = cache
        measure()


def measure() -> None:
    from neuron_ig.ir import embedded
    from neuron_ig.ir.measures import evaluate, qrels_dict
    from neuron_ig.ir.retrieval import bm25_run

    for name, module in embedded.COLLECTIONS.items():
        start = time.perf_counter()
        meta = embedded.meta(name)
        print(f"\n## neuron-ig/{name} ({embedded.build_key(name)}): built in {time.perf_counter() - start:.1f} s, "
              f"{meta['docs']:,} documents")
        for split in module.SPLITS:
            dataset_id = f"neuron-ig/{name}/{split}"
            start = time.perf_counter()
            result = evaluate(bm25_run(dataset_id), qrels_dict(dataset_id))
            sizes = meta["splits"][split]
            print(f"{dataset_id}: {sizes['queries']:,} queries, {sizes['qrels']:,} qrels, BM25 "
                  + ", ".join(f"{m} {v:.3f}" for m, v in result.items()) + f" ({time.perf_counter() - start:.1f} s)")
        test = ir_datasets.load(f"neuron-ig/{name}/test")
        relevant = {}
        for qrel in test.qrels_iter():
            relevant.setdefault(qrel.query_id, []).append(qrel.doc_id)
        store = test.docs_store()
        for query in random.Random(1).sample(list(test.queries_iter()), 3):
            doc = store.get(relevant[query.query_id][0]).default_text()
            print(f"- {query.default_text()!r}\n    -> {doc[:160]!r}")
    if (ir_datasets.util.home_path() / "cranfield" / "cran.tar.gz").exists():
        print(f"\ncranfield: BM25 {evaluate(bm25_run('cranfield'), qrels_dict('cranfield'))}")


if __name__ == "__main__":
    main()
