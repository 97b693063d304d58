"""Index time, peak memory and query time of the bm25s first stage on a synthetic collection of N documents.

The collection: N documents of about 60 words each (Poisson), words drawn from a Zipf law (s = 1.07, as
English text) over a vocabulary of 200,000 made-up words, seeded; generated on the fly, one document at a time,
and registered in `ir_datasets` (docs only) so that `neuron_ig.ir.retrieval.bm25_index` builds, saves and loads
its index exactly as for a real collection (the streamed index). Each measurement runs in a fresh process
(peak RSS, `resource.getrusage(...).ru_maxrss`, is a lifetime maximum), against the memory it held before
indexing (the imports and the generator). With `--compare N`, the same is measured at that N for the index
built as the library did before streaming (every doc id and text, then every token list, in memory:
`bm25s.tokenize`; saved and loaded back as `bm25_index` does), and both are printed with their ratios.

    nice -n 10 python benchmarks/bm25_scale.py --docs 1000000 --compare 200000
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VOCABULARY, ZIPF_S, MEAN_WORDS, SEED = 200_000, 1.07, 60, 0
LETTERS = "bcdfghjklmnpqrstvwxz"


def word(rank: int) -> str:
    """The made-up word of a vocabulary rank: consonant-vowel syllables, so that stemming leaves most alone."""
    syllables = []
    while True:
        rank, r = divmod(rank, len(LETTERS) * 5)
        syllables.append(LETTERS[r // 5] + "aeiou"[r % 5])
        if rank == 0:
            return "".join(syllables)


def synthetic_texts(n: int, seed: int = SEED):
    """N document texts, one at a time, drawn in blocks of 10,000 (memory: the vocabulary and one block)."""
    import numpy as np

    words = [word(r) for r in range(VOCABULARY)]
    cdf = np.cumsum(1.0 / np.arange(1, VOCABULARY + 1) ** ZIPF_S)
    cdf /= cdf[-1]
    rng = np.random.default_rng(seed)
    for start in range(0, n, 10_000):
        lengths = rng.poisson(MEAN_WORDS, size=min(10_000, n - start))
        ranks = np.minimum(np.searchsorted(cdf, rng.random(int(lengths.sum()))), VOCABULARY - 1)
        offset = 0
        for length in lengths:
            yield " ".join(words[r] for r in ranks[offset:offset + length])
            offset += length


def register(n: int) -> str:
    """Register the synthetic collection of N documents in `ir_datasets`: its id."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import BaseDocs, GenericDoc

    class SyntheticDocs(BaseDocs):
        def docs_iter(self):
            return (GenericDoc(f"d{i}", text) for i, text in enumerate(synthetic_texts(n)))

        def docs_count(self):
            return n

        def docs_cls(self):
            return GenericDoc

        def docs_namespace(self):
            return "neuron-ig-bench"

        def docs_lang(self):
            return "en"

    dataset_id = f"neuron-ig-bench/synthetic-{n}"
    ir_datasets.registry.register(dataset_id, Dataset(SyntheticDocs()))
    return dataset_id


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def measure(n: int, path: str, queries: int = 100) -> dict:
    """In this process: index N documents by ``path`` ("streamed" or "in memory"), then time the queries."""
    import bm25s
    import ir_datasets
    import numpy as np

    from neuron_ig.ir.retrieval import bm25_index, tokenize, top_k

    dataset_id = register(n)
    query_texts = [" ".join(word(r) for r in np.random.default_rng(SEED + 1).integers(10, 5_000, size=3))
                   for _ in range(queries)]
    before = rss_mib()
    start = time.perf_counter()
    if path == "streamed":
        retriever = bm25_index(dataset_id).retriever  # built, saved to the cache, loaded back
    else:  # the library's path before streaming: every doc id and text, then every token list; saved, loaded back
        dataset = ir_datasets.load(dataset_id)
        doc_ids, texts = [], []
        for doc in dataset.docs_iter():
            doc_ids.append(doc.doc_id)
            texts.append(doc.default_text())
        retriever = bm25s.BM25()
        retriever.index(tokenize(texts), show_progress=False)
        del texts
        folder = Path(os.environ["NEURON_IG_CACHE"]) / "in-memory"
        retriever.save(str(folder))
        (folder / "doc_ids.json").write_text(json.dumps(doc_ids), encoding="utf-8")
        del retriever, doc_ids
        retriever = bm25s.BM25.load(str(folder))
    index_s = time.perf_counter() - start
    start = time.perf_counter()
    for tokens in tokenize(query_texts):
        top_k(retriever.get_scores_from_ids(retriever.get_tokens_ids(tokens)), 100)
    query_s = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"docs": n, "path": path, "index s": round(index_s, 1), "peak RSS MiB": round(peak),
            "peak above start MiB": round(peak - before), f"{queries} queries s": round(query_s, 2),
            "index entries": int(len(retriever.scores["data"]))}


def child(n: int, path: str) -> dict:
    """`measure` in a fresh process with its own empty cache."""
    with tempfile.TemporaryDirectory(prefix="neuron-ig-bm25-scale-") as cache:
        env = dict(os.environ, NEURON_IG_CACHE=cache)
        out = subprocess.run([sys.executable, __file__, "--child", str(n), path], env=env, check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1_000_000, help="N of the streamed index (default 1,000,000; 0: none)")
    parser.add_argument("--compare", type=int, default=0, help="N of the streamed vs in-memory comparison (0: none)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(int(args.child[0]), args.child[1])))
        return
    rows = []
    if args.compare:
        rows += [child(args.compare, "streamed"), child(args.compare, "in memory")]
        streamed, in_memory = rows
        print(f"at {args.compare:,} documents, in memory / streamed: index time "
              f"{in_memory['index s'] / streamed['index s']:.2f}x, peak memory above start "
              f"{in_memory['peak above start MiB'] / streamed['peak above start MiB']:.2f}x", flush=True)
    if args.docs:
        rows.append(child(args.docs, "streamed"))
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
