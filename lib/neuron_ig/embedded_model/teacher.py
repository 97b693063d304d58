"""The bi-encoder teacher: the packaged all-MiniLM-L6-v2 as a sentence encoder (cosine of mean-pooled embeddings).

The embedded cross-encoder starts from this encoder and distils its relevance (see
:mod:`neuron_ig.embedded_model.training`); the model page also shows it as a re-ranker of the same BM25 candidates,
so a reader sees what the cross-encoder gained or lost against the model it learnt from.
"""
from __future__ import annotations

import functools

import torch
from tqdm.auto import tqdm

from neuron_ig.engine.models import packaged_minilm_path
from neuron_ig.ir.datasets import load_dataset
from neuron_ig.ir.grades import min_grade as minimum_of
from neuron_ig.ir.measures import (
    evaluate,
    first_stage_key,
    qrels_dict,
    rerank_query_ids,
    rerank_run,
)
from neuron_ig.ir.query_split import informative_queries
from neuron_ig.ir.retrieval import first_stage_run
from neuron_ig.runtime import cache

MAX_LENGTH = 128  # tokens per text (all-MiniLM-L6-v2 was trained with 128)


@functools.lru_cache(maxsize=1)
def _bi_encoder():
    from transformers import AutoModel, AutoTokenizer


    path = packaged_minilm_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def embed(texts, batch_size: int = 128, progress: bool = False) -> dict[str, torch.Tensor]:
    """{text: unit-length mean-pooled embedding ``[384]``} of each distinct text, first ``MAX_LENGTH`` tokens."""
    tokenizer, model = _bi_encoder()
    ordered = sorted(set(texts), key=lambda t: (len(t), t))  # similar lengths together: little padding
    embeddings = {}
    with torch.no_grad():
        for start in tqdm(range(0, len(ordered), batch_size), desc="bi-encoder", unit="batch", leave=False,
                          disable=not progress):
            chunk = ordered[start:start + batch_size]
            batch = tokenizer(chunk, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"][..., None]
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
            embeddings.update(zip(chunk, pooled))
    return embeddings


def similarity(queries, passages, progress: bool = False) -> torch.Tensor:
    """Cosine similarity of each (query, passage) pair by the bi-encoder, ``[pairs]`` in [-1, 1]."""
    if len(queries) != len(passages):
        raise ValueError(f"{len(queries)} queries but {len(passages)} passages: pass one passage per query")
    embeddings = embed([*queries, *passages], progress=progress)
    return torch.stack([embeddings[q] @ embeddings[p] for q, p in zip(queries, passages)]) if queries else torch.empty(0)


def teacher_rerank(dataset_id: str, *, depth: int = 100, max_queries: int = 1000, seed: int = 0,
                   progress: bool = False, min_grade=None, informative_only: bool = False) -> tuple[dict, dict]:
    """``(first-stage run, bi-encoder run)``: the bi-encoder re-ranking the same first-stage candidates as
    :func:`neuron_ig.studies.effectiveness.rerank` (same queries for the same ``depth``, ``max_queries``, ``seed`` and
    ``min_grade``; ``informative_only`` as there: other queries keep their first-stage order)."""

    query_ids = rerank_query_ids(dataset_id, max_queries, seed, min_grade=min_grade)
    first_stage = first_stage_run(dataset_id, k=depth, query_ids=query_ids)
    scored = first_stage
    if informative_only:
        scored = {q: first_stage[q] for q in informative_queries(first_stage, qrels_dict(dataset_id))}
    dataset = load_dataset(dataset_id)
    queries = {q.query_id: q.default_text() for q in dataset.queries_iter() if q.query_id in scored}
    doc_ids = sorted({d for ranking in scored.values() for d in ranking})
    texts = {doc.doc_id: doc.default_text() for doc in dataset.docs_store().get_many_iter(doc_ids)}
    pairs = [(q, d) for q in sorted(scored) for d in scored[q]]
    scores = similarity([queries[q] for q, _ in pairs], [texts[d] for _, d in pairs], progress=progress)
    return first_stage, {**first_stage, **rerank_run(dict(zip(pairs, scores.tolist())))}


def teacher_effectiveness(dataset_id: str, *, depth: int = 100, max_queries: int = 1000, seed: int = 0,
                          min_grade=None) -> dict[str, float]:
    """nDCG@10 and RR@10 of the bi-encoder re-ranking the BM25 top ``depth`` (see :func:`teacher_rerank`);
    ``min_grade``: the lowest grade counted relevant (None: the table of :mod:`neuron_ig.ir.grades`).

    Cached by the bi-encoder's weights, dataset and every parameter (``<cache>/effectiveness/``).
    """

    parameters = {"teacher": cache.file_fingerprint([packaged_minilm_path() / "model.safetensors"]), "dataset": dataset_id,
                  "depth": depth, "max_queries": max_queries, "seed": seed, "max_length": MAX_LENGTH,
                  **first_stage_key(dataset_id, min_grade)}
    path = cache.cache_root() / "effectiveness" / f"teacher-{cache.slug(dataset_id)}-{cache.parameters_key(parameters)}.json"
    with cache.computing(path) as done:  # checked against its manifest; one process computes it at a time
        if done:
            return cache.load_json(path)["effectiveness"]
        _, run = teacher_rerank(dataset_id, depth=depth, max_queries=max_queries, seed=seed, min_grade=min_grade,
                                informative_only=True)
        minimum = minimum_of(dataset_id, min_grade)
        values = {f"teacher {m}": v for m, v in evaluate(run, qrels_dict(dataset_id), min_grade=minimum).items()}
        cache.save_json(path, {"parameters": parameters, "effectiveness": values})
    return values
