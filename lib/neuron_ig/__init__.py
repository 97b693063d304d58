"""neuron_ig: Neuron Integrated Gradients (NIG), relevance neurons and pruning of cross-encoders.

The library behind the reproduction of "Which Neurons Matter in IR?" (Vast et al., ICTIR 2024). Its
subpackages are layers; a module imports only from its own layer or from the layers below it:

1. ``runtime``: the results cache, devices, ranks of a distributed run, software versions.
2. ``engine`` (cross-encoders, pair encoding, baselines, NIG, pruning hooks), ``ir`` (collections by
   ``ir_datasets`` id, relevance pairs, BM25, ranking measures) and ``stats`` (neuron sets, nulls, tests).
3. ``embedded_model``: the cross-encoder that the default build fine-tunes offline.
4. ``studies``: NIG of a dataset (cached), class means, pruning studies, robustness runs, verdicts.
5. ``report``: the book's runner, its pre-flight checks, charts and page helpers (needs the ``book`` extra).

The names below are the public API, importable from ``neuron_ig`` itself; each is loaded on first use, so
``import neuron_ig`` stays cheap and the charting stack is never needed for the core.
"""
from __future__ import annotations

import importlib

#: The public API: ``{name: the module that defines it}``.
_API = {
    # engine
    "CrossEncoder": "engine.models", "load_cross_encoder": "engine.models", "random_cross_encoder": "engine.models",
    "EncodedPairs": "engine.encoding", "encode_pairs": "engine.encoding", "SEGMENTS": "engine.encoding",
    "Baseline": "engine.baselines",
    "NIGResult": "engine.nig", "neuron_integrated_gradients": "engine.nig", "path_trace": "engine.nig",
    "StepLadder": "engine.step_ladder", "step_ladder": "engine.step_ladder",
    "NeuronPruning": "engine.pruning_hooks",
    # ir
    "load_dataset": "ir.datasets", "relevant_qrels": "ir.datasets",
    "Pair": "ir.pairs", "relevance_pairs": "ir.pairs",
    "bm25_run": "ir.retrieval", "first_stage_run": "ir.retrieval",
    "evaluate": "ir.measures", "per_query": "ir.measures", "ndcg_at_10": "ir.measures", "rerank_run": "ir.measures",
    "min_grade": "ir.grades",
    # stats
    "top_p_percent": "stats.selection", "relevance_neurons": "stats.selection", "intersection": "stats.selection",
    "fusion": "stats.selection", "ood_neurons": "stats.selection", "jaccard": "stats.selection",
    "sign_flip_null": "stats.nulls", "agreement_ratio": "stats.nulls",
    "paired_test": "stats.significance", "holm": "stats.significance", "benjamini_hochberg": "stats.significance",
    "layer_matched_controls": "stats.controls", "activation_matched_controls": "stats.controls",
    "control_test": "stats.controls",
    # embedded model
    "EMBEDDED_MODEL": "embedded_model.training", "TrainingConfig": "embedded_model.training",
    "embedded_model_path": "embedded_model.training",
    # studies
    "DatasetNIG": "studies.results", "dataset_nig": "studies.results", "datasets_nig": "studies.results",
    "class_mean": "studies.aggregation", "class_means": "studies.aggregation",
    "rerank": "studies.effectiveness", "pruned_scores": "studies.pruning", "pruning_study": "studies.pruning",
    "relevance_pruning": "studies.pruning",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'neuron_ig' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"neuron_ig.{_API[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
