"""Choose the embedded cross-encoder's recipe on dev splits only: GCIDE dev and the TREC RAG 2024 dev queries.

Usage: python benchmarks/embedded_model_dev.py '{"steps": 500}'   (TrainingConfig fields to override)

Trains the model of that config (cached like the default, the wall time is measured), then prints on
- `neuron-ig/gcide/dev`: BM25 and re-ranked nDCG@10 (BM25 top `DEPTH` of `QUERIES` queries) and the
  pair accuracy per class (`PAIRS` relevant and `PAIRS` non-relevant pairs);
- the 67 dev queries of TREC RAG 2024 (never trained on), with the bi-encoder teacher's labels: each
  query's own 20 passages and the 20 passages of other queries the teacher finds closest; relevant =
  the teacher's top `rag_positive_top` of the query's own; nDCG@10 of the model and the share of
  (query, teacher's best own passage) pairs with P > 0.5 and of (query, closest other-query passage)
  pairs with P <= 0.5;
- code search in packages other than the standard library (`CODE_PACKAGES`, made as `neuron-ig/pystdlib`
  is from the standard library: docstring summary -> function without its docstring): BM25, teacher and
  re-ranked nDCG@10 of `QUERIES` queries over the BM25 top `DEPTH`, and the accuracy per class of each
  query's relevant function and of one BM25 top-`DEPTH` non-relevant function;
- short queries (`words_dev`): GCIDE dev headwords alone against definitions without their headword.
The out-of-domain test collections are never looked at here.
"""
import dataclasses
import json
import random
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch

from neuron_ig import training
from neuron_ig.embedded import pystdlib
from neuron_ig.retrieval import _tokenize, _top_k
from neuron_ig.evaluation import effectiveness, evaluate
from neuron_ig.models import load_cross_encoder
from neuron_ig.teacher import embed
from neuron_ig.trec_rag import rag_queries

DEPTH, QUERIES, PAIRS = 20, 100, 100
CODE_PACKAGES = ("docutils", "jinja2", "networkx", "sphinx", "tornado")


def rag_dev(encoder, config: training.TrainingConfig) -> dict:
    queries = rag_queries("dev")
    passages = sorted({p for q in queries for p in q.passages})
    embeddings = embed([q.query for q in queries] + passages)
    matrix = torch.stack([embeddings[p] for p in passages])
    qrels, run, relevant, non_relevant = {}, {}, [], []
    for query in queries:
        own = sorted(set(query.passages), key=lambda p: -float(embeddings[query.query] @ embeddings[p]))
        cosine = matrix @ embeddings[query.query]
        others = [passages[i] for i in cosine.argsort(descending=True).tolist() if passages[i] not in query.passages][:20]
        candidates = own + others
        scores = encoder.score([query.query] * len(candidates), candidates, max_length=config.max_length, log_odds=True)
        run[query.topic] = {str(i): float(s) for i, s in enumerate(scores)}
        qrels[query.topic] = {str(i): 1 for i in range(config.rag_positive_top)}
        probability = torch.sigmoid(scores)
        relevant.append(float(probability[0]) > 0.5)
        non_relevant.append(float(probability[len(own)]) <= 0.5)
    return {"nDCG@10": evaluate(run, qrels)["nDCG@10"], "accuracy relevant": sum(relevant) / len(relevant),
            "accuracy non-relevant": sum(non_relevant) / len(non_relevant)}


def code_dev(encoder, config: training.TrainingConfig) -> dict:
    import bm25s

    docs, summaries = pystdlib.functions_and_summaries(Path(sysconfig.get_paths()["purelib"]), set(CODE_PACKAGES))
    doc_ids = sorted(docs)
    texts = [docs[d].default_text() for d in doc_ids]
    index = bm25s.BM25()
    index.index(_tokenize(texts), show_progress=False)
    rng = random.Random(0)
    queries = rng.sample(sorted(summaries), QUERIES)
    embeddings = embed(queries + texts, progress=False)
    runs, qrels, non_relevant = {"BM25": {}, "teacher": {}, "model": {}}, {}, []
    for n, query in enumerate(queries):
        candidates = [doc_ids[i] for i in _top_k(index.get_scores(_tokenize([query])[0]), DEPTH)]
        qrels[str(n)] = {d: 1 for d in summaries[query]}
        runs["BM25"][str(n)] = {d: float(DEPTH - r) for r, d in enumerate(candidates)}
        runs["teacher"][str(n)] = {d: float(embeddings[query] @ embeddings[docs[d].default_text()]) for d in candidates}
        probability = torch.sigmoid(encoder.score([query] * len(candidates), [docs[d].default_text() for d in candidates],
                                                  max_length=config.max_length, log_odds=True))
        runs["model"][str(n)] = {d: float(p) for d, p in zip(candidates, probability)}
        negatives = [i for i, d in enumerate(candidates) if d not in summaries[query]]
        non_relevant.append(float(probability[rng.choice(negatives)]))
    relevant = encoder.score(queries, [docs[sorted(summaries[q])[0]].default_text() for q in queries],
                             max_length=config.max_length).tolist()  # each query's first relevant function
    return {"documents": len(docs), **{f"{name} nDCG@10": evaluate(run, qrels)["nDCG@10"] for name, run in runs.items()},
            "accuracy relevant": float(np.mean(np.array(relevant) > 0.5)),
            "accuracy non-relevant": float(np.mean(np.array(non_relevant) <= 0.5)),
            "median P relevant": float(np.median(relevant)), "median P non-relevant": float(np.median(non_relevant))}


def words_dev(encoder, config: training.TrainingConfig) -> dict:
    """Short queries: `QUERIES` headwords of GCIDE dev alone (drawn among those with negatives), each against its own
    definitions (relevant) and the BM25 top definitions of other words that use it but do not define it
    (:func:`neuron_ig.training.headword_negatives`), `DEPTH` in all, every definition without its headword. The
    teacher's and the model's nDCG@10, and the accuracy per class of each word's first definition and of one of its
    negatives."""
    from neuron_ig.data import load_dataset

    dataset = "neuron-ig/gcide/dev"
    definitions = training.headword_definitions(dataset)
    words = sorted({q.headword for q in load_dataset(dataset).queries_iter()})
    rng = random.Random(0)
    words = rng.sample([w for w in words if definitions.senses.get(w)], 2 * QUERIES)
    pools = training.headword_negatives(dataset, words, DEPTH)
    words = [w for w in words if pools[w]][:QUERIES]  # a word that no other definition uses has no negatives
    candidates = {}
    for word in words:
        senses = definitions.senses[word][:DEPTH // 2]
        candidates[word] = (senses, senses + pools[word][:DEPTH - len(senses)])
    pairs = [(word, definitions.text[d]) for word in words for d in candidates[word][1]]
    embeddings = embed([text for pair in pairs for text in pair], progress=False)
    probability = torch.sigmoid(encoder.score([q for q, _ in pairs], [t for _, t in pairs],
                                              max_length=config.max_length, log_odds=True)).tolist()
    runs, qrels, relevant, non_relevant, start = {"teacher": {}, "model": {}}, {}, [], [], 0
    for n, word in enumerate(words):
        senses, ids = candidates[word]
        mine = probability[start:start + len(ids)]
        start += len(ids)
        qrels[str(n)] = {d: 1 for d in senses}
        runs["teacher"][str(n)] = {d: float(embeddings[word] @ embeddings[definitions.text[d]]) for d in ids}
        runs["model"][str(n)] = dict(zip(ids, mine))
        relevant.append(mine[0] > 0.5)
        non_relevant.append(mine[rng.randrange(len(senses), len(ids))] <= 0.5)
    return {**{f"{name} nDCG@10": evaluate(run, qrels)["nDCG@10"] for name, run in runs.items()},
            "accuracy relevant": float(np.mean(relevant)), "accuracy non-relevant": float(np.mean(non_relevant))}


if __name__ == "__main__":
    config = training.TrainingConfig(**json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}"))
    started = time.time()
    folder = training.embedded_model_path(config)
    print(f"training (or cache) wall time: {time.time() - started:.0f} s; logged: {training.training_log(folder)['seconds_this_run']} s")
    encoder = load_cross_encoder(folder, device="cpu")
    result = {"config": {k: v for k, v in dataclasses.asdict(config).items() if v != getattr(training.TrainingConfig(), k)}}
    result["gcide/dev"] = effectiveness(encoder, "neuron-ig/gcide/dev", depth=DEPTH, max_queries=QUERIES, n_pairs=PAIRS,
                                        max_length=config.max_length, progress=False)
    result["rag/dev"] = rag_dev(encoder, config)
    result["code/dev"] = code_dev(encoder, config)
    result["words/dev"] = words_dev(encoder, config)
    print(json.dumps(result, indent=1))
