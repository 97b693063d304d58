"""NIG of a dataset's relevance pairs, computed once and kept on disk.

A result is keyed by every parameter that changes it: model (and a fingerprint of its weights), dataset,
class, number of pairs, sampling seed, baseline, steps, rule and max length. Pairs are processed in
chunks, each chunk saved atomically, so an interrupted run resumes from the chunks already done; the
finished result is one ``nig.npz`` plus a ``manifest.json`` of the parameters and software versions. Every
file is a checked cache entry (:mod:`neuron_ig.runtime.cache`): a damaged one is moved to quarantine and computed
again, and one process at a time computes a result (the folder's lock), the others wait and read it. Under the
runner on several ranks (:mod:`neuron_ig.runtime.distributed`) the chunks are shared out by rank, then merged as here.
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from neuron_ig.engine.baselines import Baseline
from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.models import (
    PRECISIONS,
    CrossEncoder,
    load_cross_encoder,
    model_fingerprint,
)
from neuron_ig.engine.nig import (
    ATTRIBUTED_SEGMENTS,
    BATCH_ROWS,
    neuron_integrated_gradients,
)
from neuron_ig.ir.datasets import collection_key
from neuron_ig.ir.measures import first_stage_key
from neuron_ig.ir.pairs import Pair, mismatched_pairs, relevance_pairs
from neuron_ig.runtime import cache, distributed
from neuron_ig.runtime.device import resolve_device
from neuron_ig.runtime.versions import software_versions

CLASS_NAMES = {1: "relevant", 0: "non-relevant"}


@dataclass
class DatasetNIG:
    """NIG of ``pairs`` pairs of one class, FFN neurons of ``layers`` layers of ``units`` units each.

    Attributes:
        attributions: ``[pairs, 4, layers, units]`` float32, NIG summed per segment (CLS, query, SEP, passage).
        score, baseline_score: ``[pairs]`` F(x) and F(x'), probability of the pair's own class.
        relevance: ``[pairs]`` P(relevant) at the input.
        labels: ``[pairs]`` 1 relevant / 0 non-relevant.
        query_ids, doc_ids: ``[pairs]`` the pairs' ids in the dataset.
        manifest: parameters, software versions, timings.
    """

    attributions: np.ndarray
    score: np.ndarray
    baseline_score: np.ndarray
    relevance: np.ndarray
    labels: np.ndarray
    query_ids: np.ndarray
    doc_ids: np.ndarray
    layer_names: list[str]
    manifest: dict

    @property
    def correct(self) -> np.ndarray:
        """``[pairs]`` bool: the model puts the pair in its own class (F(x) > 0.5)."""
        return self.score > 0.5

    def total(self) -> np.ndarray:
        """NIG summed over all real tokens, ``[pairs, layers, units]``."""
        return self.attributions.sum(axis=1)


def cached_encoder(model: str, device: str | None = "auto") -> CrossEncoder:
    """:func:`load_cross_encoder`, loaded once per process and device (notebooks ask for the same model many
    times); ``device``: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``... (:mod:`neuron_ig.runtime.device`)."""

    return _cached_encoder(str(model), str(resolve_device(device)))


@functools.lru_cache(maxsize=2)
def _cached_encoder(model: str, device: str) -> CrossEncoder:
    return load_cross_encoder(model, device=device)


def dataset_nig(
    model: str,
    dataset: str,
    label: int,
    *,
    n_pairs: int = 100,
    seed: int = 0,
    baseline: str = "PAD_QUERY",
    steps: int = 50,
    rule: str = "left",
    max_length: int = 128,
    batch_rows: int = BATCH_ROWS,
    precision: str = "fp32",
    device: str | None = None,
    progress: bool = True,
    min_grade=None,
    correct_only: bool = True,
    mismatched: bool = False,
) -> DatasetNIG:
    """NIG of ``n_pairs`` correctly classified pairs of class ``label`` (1 relevant, 0 non-relevant) of ``dataset``.

    The pairs are :func:`nig_pairs`: the first ``n_pairs`` of the seeded draw that the model puts in their own
    class (fewer where the dataset runs out; the manifest's ``n_drawn`` says how many pairs were drawn).
    Loads from the cache when this exact computation was done before; otherwise computes and caches it,
    resuming an interrupted run. ``precision`` is the engine's (:data:`neuron_ig.engine.nig.PRECISIONS`); it is in
    the key unless ``"fp32"``. ``min_grade``: the lowest grade counted relevant (None: the table of
    :mod:`neuron_ig.ir.grades`); in the key unless 1, as is the first stage unless bm25s
    (:func:`neuron_ig.ir.measures.first_stage_key`). ``correct_only=False``: the first ``n_pairs`` pairs of the draw,
    whatever the model makes of them (the sensitivity page's variant of the authors' filter). ``mismatched``: NIG of the
    mismatched twins of the relevant pairs that ``label`` 1 attributes (:func:`neuron_ig.ir.pairs.mismatched_pairs`:
    each passage with another of those pairs' queries), non-relevant pairs (``label`` must be 0), kept whatever the
    model makes of them.
    """

    if mismatched and label != 0:
        raise ValueError(f"mismatched pairs are non-relevant pairs: ask for label 0, got {label!r}")
    if label not in CLASS_NAMES:
        raise ValueError(f"label must be 1 (relevant) or 0 (non-relevant), got {label!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    pairs, drawn = nig_pairs(model, dataset, 1 if mismatched else label, n_pairs=n_pairs, seed=seed, max_length=max_length,
                             device=device, min_grade=min_grade, correct_only=correct_only)
    if mismatched and len({p.query_id for p in pairs}) >= 2:
        pairs = mismatched_pairs(dataset, pairs, seed=seed, min_grade=min_grade)
    elif mismatched:
        pairs = []  # no two queries to swap: nothing to attribute
    kind = "first correctly classified" if correct_only else "first drawn"
    parameters = {
        "model": str(model), "model_fingerprint": model_fingerprint(str(model)), "dataset": dataset, "label": label,
        "n_pairs": n_pairs, "pairs": f"mismatched twins of the {kind} relevant" if mismatched else kind, "n_drawn": drawn,
        "seed": seed,
        "baseline": Baseline.parse(baseline).value, "steps": steps, "rule": rule, "max_length": max_length,
        "modules": "ffn", **({"precision": precision} if precision != "fp32" else {}),  # fp32 keys as before
        **first_stage_key(dataset, min_grade),  # likewise for grade 1 and bm25s
    }
    encoder = functools.partial(cached_encoder, str(model), device)
    if not pairs:
        return _no_pairs(encoder(), parameters)
    return cached_nig(encoder, pairs, parameters, batch_rows=batch_rows, progress=progress)


def nig_pairs(model: str, dataset: str, label: int, *, n_pairs: int, seed: int = 0, max_length: int = 128,
              device: str | None = None, max_drawn: int | None = None, min_grade=None,
              correct_only: bool = True) -> tuple[list, int]:
    """The pairs NIG attributes: the first ``n_pairs`` pairs of class ``label`` in the seeded draw of
    :func:`neuron_ig.ir.pairs.relevance_pairs` that the model classifies correctly (F(x) > 0.5, the authors' later code's filter),
    and how many pairs were drawn to find them: ``(pairs sorted by (query_id, doc_id), drawn)``.

    The class means average over correctly classified pairs only, so attributing the others would be wasted
    work; and every dataset's mean then rests on the same number of pairs, however often the model errs there.
    The share ``n_pairs / drawn`` estimates the model's accuracy on the class. Fewer pairs where the dataset
    (its selection half of the queries) or ``max_drawn`` (default ``50 * n_pairs``) runs out; none if the
    model classifies no pair correctly. Cached beside the NIG results, keyed by model weights, dataset,
    class, ``n_pairs``, seed, ``max_length`` and the relevance grade and first stage (``min_grade``, see
    :func:`dataset_nig`). ``correct_only=False``: the first ``n_pairs`` pairs of the draw, classified or not.
    """

    if isinstance(n_pairs, bool) or not isinstance(n_pairs, int) or n_pairs <= 0:
        raise ValueError(f"n_pairs must be a positive int, got {n_pairs!r}")
    max_drawn = 50 * n_pairs if max_drawn is None else max_drawn
    parameters = {"model": str(model), "model_fingerprint": model_fingerprint(str(model)), "dataset": dataset,
                  "collection": collection_key(dataset), "label": label, "n_pairs": n_pairs, "seed": seed,
                  "max_length": max_length, "max_drawn": max_drawn, **first_stage_key(dataset, min_grade),
                  **({} if correct_only else {"correct_only": False})}  # the book's keys as before
    path = (cache.cache_root() / "nig" / cache.slug(Path(str(model)).name) / cache.slug(dataset)
            / f"pairs-{CLASS_NAMES[label].replace('-', '')}-{cache.parameters_key(parameters)}.json")
    with cache.computing(path) as done:
        if not done and not correct_only:
            chosen = relevance_pairs(dataset, n_pairs, label, seed=seed, draw_order=True, min_grade=min_grade)
            cache.save_json(path, {"parameters": parameters, "drawn": len(chosen), "pairs": [list(p) for p in chosen]})
        elif not done:
            chosen, drawn = _first_correct(cached_encoder(str(model), device), dataset, label, n_pairs, seed,
                                           max_length, max_drawn, min_grade)
            cache.save_json(path, {"parameters": parameters, "drawn": drawn, "pairs": [list(p) for p in chosen]})
    saved = cache.load_json(path)
    return sorted(Pair(*p) for p in saved["pairs"]), saved["drawn"]


def _first_correct(encoder: CrossEncoder, dataset: str, label: int, n_pairs: int, seed: int, max_length: int,
                   max_drawn: int, min_grade=None) -> tuple[list, int]:
    """Draw more pairs until ``n_pairs`` of them are classified correctly: (those pairs, pairs drawn up to the last)."""

    draw = min(n_pairs, max_drawn)
    while True:
        drawn = relevance_pairs(dataset, draw, label, seed=seed, draw_order=True, min_grade=min_grade)
        relevance = encoder.score([p.query for p in drawn], [p.passage for p in drawn], max_length=max_length)
        correct = np.flatnonzero(((relevance if label == 1 else 1 - relevance) > 0.5).numpy())  # F(x) > 0.5
        if len(correct) >= n_pairs:
            return [drawn[i] for i in correct[:n_pairs]], int(correct[n_pairs - 1]) + 1
        if len(drawn) < draw or draw >= max_drawn:  # the dataset, or the allowance, runs out
            return [drawn[i] for i in correct], len(drawn)
        share = max(len(correct), 1) / len(drawn)  # the accuracy so far says how many more to draw
        draw = min(max_drawn, max(draw + 16, int(n_pairs / share * 1.2) + 16))


def _no_pairs(encoder: CrossEncoder, parameters: dict) -> DatasetNIG:
    """The result of a dataset where the model classifies none of the drawn pairs correctly: no pairs."""
    layers = encoder.ffn_layers()
    units = next(iter(layers.values())).dense.out_features
    empty = np.zeros(0, dtype=np.float32)
    manifest = {"parameters": parameters, "layer_names": list(layers), "segments": list(ATTRIBUTED_SEGMENTS),
                "n_pairs": 0, "n_correct": 0, "n_drawn": parameters["n_drawn"], "n_truncated": 0}
    return DatasetNIG(attributions=np.zeros((0, len(ATTRIBUTED_SEGMENTS), len(layers), units), dtype=np.float32),
                      score=empty, baseline_score=empty, relevance=empty, labels=np.zeros(0, dtype=np.int64),
                      query_ids=np.array([], dtype=str), doc_ids=np.array([], dtype=str),
                      layer_names=list(layers), manifest=manifest)


def result_folder(parameters: dict) -> Path:
    """Where the result of ``parameters`` lives: ``<cache>/nig/<model>/<dataset>/<class>-<key>``."""
    name = f"{CLASS_NAMES[parameters['label']].replace('-', '')}-{cache.parameters_key(parameters)}"
    return cache.cache_root() / "nig" / cache.slug(Path(parameters["model"]).name) / cache.slug(parameters["dataset"]) / name


def cached_nig(
    load_encoder,
    pairs: Sequence,
    parameters: dict,
    *,
    chunk_pairs: int = 16,
    batch_rows: int = BATCH_ROWS,
    progress: bool = True,
) -> DatasetNIG:
    """NIG of ``pairs`` (records with ``query_id, doc_id, query, passage, label``), cached by ``parameters``.

    ``load_encoder()`` is only called when something must be computed. The pairs themselves (ids and
    texts) are part of the key, so a changed sample never reuses an old result.
    """
    parameters = dict(parameters, pairs_fingerprint=pairs_fingerprint(pairs))
    folder = result_folder(parameters)
    final = folder / "nig.npz"
    if cache.ready(final) and cache.ready(folder / "manifest.json"):
        return _load(folder)
    started = time.time()
    if distributed.shard()[1] > 1:  # under the runner on several ranks: this rank's chunks, then the others'
        _share_chunks(load_encoder, pairs, parameters, folder, chunk_pairs, batch_rows)
    with cache.lock(folder):  # another process computing this result: wait for it, then read its result
        if cache.ready(final) and cache.ready(folder / "manifest.json"):
            return _load(folder)
        return _compute(load_encoder, pairs, parameters, folder, chunk_pairs, batch_rows, progress, started)


def _part(folder: Path, index: int) -> Path:
    """The cache entry of chunk ``index`` of a result being computed."""
    return folder / "parts" / f"{index:05d}.npz"


def _share_chunks(load_encoder, pairs: Sequence, parameters: dict, folder: Path, chunk_pairs: int, batch_rows: int) -> None:
    """The chunks of one result shared out by rank (:func:`neuron_ig.runtime.distributed.share`): on return every chunk
    is on disk, or another rank has already merged them into the result."""
    encoder = []  # loaded only if this rank computes a chunk

    def compute(index: int, start: int) -> None:
        encoder[:] = encoder or [load_encoder()]
        cache.save_arrays(_part(folder, index), **_compute_chunk(encoder[0], pairs[start:start + chunk_pairs], parameters, batch_rows))

    units = [(_part(folder, index), functools.partial(compute, index, start))
             for index, start in enumerate(range(0, len(pairs), chunk_pairs))]
    distributed.share(units, finished=lambda: cache.problem(folder / "nig.npz") is None)


def _compute(load_encoder, pairs: Sequence, parameters: dict, folder: Path, chunk_pairs: int, batch_rows: int,
             progress: bool, started: float) -> DatasetNIG:
    encoder = None  # loaded only if a chunk must be computed
    bar = tqdm(total=len(pairs), desc=f"NIG {parameters['dataset']} {CLASS_NAMES[parameters['label']]}", unit="pair", disable=not progress)
    parts = []
    for index, start in enumerate(range(0, len(pairs), chunk_pairs)):
        chunk = pairs[start:start + chunk_pairs]
        part = _part(folder, index)
        if not cache.ready(part):  # a damaged part goes to quarantine and is computed again
            encoder = encoder or load_encoder()
            cache.save_arrays(part, **_compute_chunk(encoder, chunk, parameters, batch_rows))
        parts.append(part)
        bar.update(len(chunk))
    bar.close()

    paths, parts = parts, [cache.load_arrays(p) for p in parts]
    arrays = {key: np.concatenate([p[key] for p in parts]) for key in parts[0] if key != "layer_names"}
    truncated = int(arrays.pop("truncated").sum())
    if truncated:
        warnings.warn(f"{truncated} of {len(pairs)} pairs truncated to max_length={parameters['max_length']} tokens", stacklevel=3)

    manifest = {
        "parameters": parameters,
        "layer_names": parts[0]["layer_names"].tolist(),
        "segments": list(ATTRIBUTED_SEGMENTS),
        "n_pairs": len(pairs),
        "n_correct": int((arrays["score"] > 0.5).sum()),
        "n_drawn": parameters.get("n_drawn", len(pairs)),
        "n_truncated": truncated,
        "seconds": round(time.time() - started, 1),
        "versions": software_versions(),
    }
    cache.save_json(folder / "manifest.json", manifest)
    cache.save_arrays(folder / "nig.npz", **arrays)  # written last: its manifest means the result is complete
    for part in paths:  # each under its lock: a rank of a distributed run may be checking it (neuron_ig.runtime.distributed)
        cache.remove(part)
    shutil.rmtree(folder / "parts", ignore_errors=True)
    return _load(folder)


def _compute_chunk(encoder: CrossEncoder, chunk, parameters: dict, batch_rows: int) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():  # truncation is counted over all chunks and reported once
        warnings.simplefilter("ignore")
        encoded = encode_pairs(encoder.tokenizer, [p.query for p in chunk], [p.passage for p in chunk], parameters["max_length"])
    labels = torch.tensor([p.label for p in chunk])
    result = neuron_integrated_gradients(
        encoder, encoded, labels, baseline=parameters["baseline"], steps=parameters["steps"],
        rule=parameters["rule"], batch_rows=batch_rows, precision=parameters.get("precision", "fp32"),
    )
    return {
        "attributions": result.stacked().numpy().astype(np.float32),
        "score": result.score.numpy(), "baseline_score": result.baseline_score.numpy(),
        "relevance": result.relevance.numpy(), "labels": labels.numpy(), "truncated": encoded.truncated.numpy(),
        "layer_names": np.array(result.layer_names),
        "query_ids": np.array([str(p.query_id) for p in chunk]), "doc_ids": np.array([str(p.doc_id) for p in chunk]),
    }


def _load(folder: Path) -> DatasetNIG:
    arrays = cache.load_arrays(folder / "nig.npz")
    manifest = cache.load_json(folder / "manifest.json")
    return DatasetNIG(layer_names=manifest["layer_names"], manifest=manifest, **arrays)


def pairs_fingerprint(pairs: Sequence) -> str:
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(f"{p.query_id}\t{p.doc_id}\t{p.label}\t{p.query}\t{p.passage}\n".encode())
    return digest.hexdigest()[:16]


def datasets_nig(model: str, datasets: Sequence[str], label: int, **parameters) -> dict[str, DatasetNIG]:
    """:func:`dataset_nig` of each dataset (same model, class and parameters), by dataset id, in order."""
    return {dataset: dataset_nig(model, dataset, label, **parameters) for dataset in datasets}
