"""NIG of a dataset's relevance pairs, computed once and kept on disk.

A result is keyed by every parameter that changes it: model (and a fingerprint of its weights), dataset,
class, number of pairs, sampling seed, baseline, steps, rule and max length. Pairs are processed in
chunks, each chunk saved atomically, so an interrupted run resumes from the chunks already done; the
finished result is one ``nig.npz`` plus a ``manifest.json`` of the parameters and software versions. Every
file is a checked cache entry (:mod:`neuron_ig.cache`): a damaged one is moved to quarantine and computed
again, and one process at a time computes a result (the folder's lock), the others wait and read it.
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

from . import cache
from .baselines import Baseline
from .encoding import encode_pairs
from .models import CrossEncoder, load_cross_encoder
from .nig import ATTRIBUTED_SEGMENTS, PRECISIONS, neuron_integrated_gradients

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
    times); ``device``: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``... (:mod:`neuron_ig.device`)."""
    from .device import resolve_device

    return _cached_encoder(str(model), str(resolve_device(device)))


@functools.lru_cache(maxsize=2)
def _cached_encoder(model: str, device: str) -> CrossEncoder:
    return load_cross_encoder(model, device=device)


def model_fingerprint(model: str) -> str:
    """A fingerprint of a model's weights: a hash of the files in a local folder, else the Hub id itself."""
    from .models import resolve_model

    folder = Path(resolve_model(model)).expanduser()
    if folder.is_dir():
        weights = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin")]
        return cache.file_fingerprint(weights) if weights else "no-weights"
    return model


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
    batch_rows: int = 128,
    precision: str = "fp32",
    device: str | None = None,
    progress: bool = True,
) -> DatasetNIG:
    """NIG of ``n_pairs`` pairs of class ``label`` (1 relevant, 0 non-relevant) sampled from ``dataset``.

    Loads from the cache when this exact computation was done before; otherwise samples the pairs with
    :func:`neuron_ig.data.relevance_pairs`, computes and caches them, resuming an interrupted run.
    ``precision`` is the engine's (:data:`neuron_ig.nig.PRECISIONS`); it is in the key unless ``"fp32"``.
    """
    from .data import relevance_pairs

    if label not in CLASS_NAMES:
        raise ValueError(f"label must be 1 (relevant) or 0 (non-relevant), got {label!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    pairs = relevance_pairs(dataset, n_pairs, label, seed=seed)
    parameters = {
        "model": str(model), "model_fingerprint": model_fingerprint(str(model)), "dataset": dataset,
        "label": label, "n_pairs": n_pairs, "seed": seed, "baseline": Baseline.parse(baseline).value,
        "steps": steps, "rule": rule, "max_length": max_length, "modules": "ffn",
        **({"precision": precision} if precision != "fp32" else {}),  # fp32 keys stay those of earlier results
    }
    return cached_nig(lambda: cached_encoder(str(model), device), pairs, parameters, batch_rows=batch_rows, progress=progress)


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
    batch_rows: int = 128,
    progress: bool = True,
) -> DatasetNIG:
    """NIG of ``pairs`` (records with ``query_id, doc_id, query, passage, label``), cached by ``parameters``.

    ``load_encoder()`` is only called when something must be computed. The pairs themselves (ids and
    texts) are part of the key, so a changed sample never reuses an old result.
    """
    parameters = dict(parameters, pairs_fingerprint=_pairs_fingerprint(pairs))
    folder = result_folder(parameters)
    final = folder / "nig.npz"
    if cache.ready(final) and cache.ready(folder / "manifest.json"):
        return _load(folder)
    with cache.lock(folder):  # another process computing this result: wait for it, then read its result
        if cache.ready(final) and cache.ready(folder / "manifest.json"):
            return _load(folder)
        return _compute(load_encoder, pairs, parameters, folder, chunk_pairs, batch_rows, progress)


def _compute(load_encoder, pairs: Sequence, parameters: dict, folder: Path, chunk_pairs: int, batch_rows: int,
             progress: bool) -> DatasetNIG:
    encoder = None  # loaded only if a chunk must be computed
    started = time.time()
    bar = tqdm(total=len(pairs), desc=f"NIG {parameters['dataset']} {CLASS_NAMES[parameters['label']]}", unit="pair", disable=not progress)
    parts = []
    for index, start in enumerate(range(0, len(pairs), chunk_pairs)):
        chunk = pairs[start:start + chunk_pairs]
        part = folder / "parts" / f"{index:05d}.npz"
        if not cache.ready(part):  # a damaged part goes to quarantine and is computed again
            encoder = encoder or load_encoder()
            cache.save_arrays(part, **_compute_chunk(encoder, chunk, parameters, batch_rows))
        parts.append(part)
        bar.update(len(chunk))
    bar.close()

    parts = [cache.load_arrays(p) for p in parts]
    arrays = {key: np.concatenate([p[key] for p in parts]) for key in parts[0] if key != "layer_names"}
    truncated = int(arrays.pop("truncated").sum())
    if truncated:
        warnings.warn(f"{truncated} of {len(pairs)} pairs truncated to max_length={parameters['max_length']} tokens", stacklevel=3)
    from .provenance import software_versions

    manifest = {
        "parameters": parameters,
        "layer_names": parts[0]["layer_names"].tolist(),
        "segments": list(ATTRIBUTED_SEGMENTS),
        "n_pairs": len(pairs),
        "n_correct": int((arrays["score"] > 0.5).sum()),
        "n_truncated": truncated,
        "seconds": round(time.time() - started, 1),
        "versions": software_versions(),
    }
    cache.save_json(folder / "manifest.json", manifest)
    cache.save_arrays(folder / "nig.npz", **arrays)  # written last: its manifest means the result is complete
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


def _pairs_fingerprint(pairs: Sequence) -> str:
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(f"{p.query_id}\t{p.doc_id}\t{p.label}\t{p.query}\t{p.passage}\n".encode())
    return digest.hexdigest()[:16]


def datasets_nig(model: str, datasets: Sequence[str], label: int, **parameters) -> dict[str, DatasetNIG]:
    """:func:`dataset_nig` of each dataset (same model, class and parameters), by dataset id, in order."""
    return {dataset: dataset_nig(model, dataset, label, **parameters) for dataset in datasets}
