"""Choose the embedded cross-encoder's recipe on dev splits only: GCIDE dev and the TREC RAG 2024 dev queries.

Usage: python benchmarks/embedded_model_dev.py '{"steps": 500}'   (TrainingConfig fields to override)

Trains the model of that config (cached like the default, the wall time is measured), then prints on
- `neuron-ig/gcide/dev`: BM25 and re-ranked nDCG@10 (BM25 top `DEPTH` of `QUERIES` queries) and the
  pair accuracy per class (`PAIRS` relevant and `PAIRS` non-relevant pairs);
- the 67 dev queries of TREC RAG 2024 (never trained on), with the bi-encoder teacher's labels: each
  query's own 20 passages and the 20 passages of other queries the teacher finds closest; relevant =
  the teacher's top `rag_positive_top` of the query's own; nDCG@10 of the model and the share of
  (query, teacher's best own passage) pairs with P > 0.5 and of (query, closest other-query passage)
  pairs with P <= 0.5.
The out-of-domain test collections are never looked at here.
"""
import dataclasses
import json
import sys
import time

import torch

from neuron_ig import training
from neuron_ig.evaluation import effectiveness, evaluate
from neuron_ig.models import load_cross_encoder
from neuron_ig.teacher import embed
from neuron_ig.trec_rag import rag_queries

DEPTH, QUERIES, PAIRS = 20, 100, 100


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
    print(json.dumps(result, indent=1))
