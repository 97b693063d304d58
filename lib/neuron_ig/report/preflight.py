"""What a build needs before anything runs: the models and datasets of its pages, and the device.

The runner calls :func:`check` at the start of every build and :func:`report` for ``--dry-run``. Both read
only local files: a model is in the local Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``) when its
config, tokenizer and weights are there; a dataset is in the ``ir_datasets`` cache (``IR_DATASETS_HOME``,
default ``~/.ir_datasets``) when every file its docs, queries, qrels and scoreddocs are read from is there,
either extracted (what ``ir_datasets`` caches after a first use) or as the downloaded archive. Nothing is
downloaded and no dataset is read. Embedded ids (``neuron-ig/...``) are made locally and always available.

A missing model or dataset is an error only offline (``HF_HUB_OFFLINE=1``, or no connection to the host it
comes from): online, the build downloads it as a user's first ``from_pretrained`` or ``ir_datasets.load``
would. Files ``ir_datasets`` cannot download (Robust04's TREC disks 4 and 5) are an error either way.
"""
from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from neuron_ig.engine.baselines import Baseline
from neuron_ig.engine.models import PRECISIONS
from neuron_ig.engine.nig import RULES
from neuron_ig.ir import datasets  # noqa: F401  (registers the embedded collections)
from neuron_ig.runtime.device import resolve_device

EMBEDDED_PREFIX = "neuron-ig/"
MODEL_KEYS = ("model",)  # a parameter named so, or ending in "_model", is a model id
DATASET_KEYS = ("dataset", "datasets", "collections")  # any other string parameter that is a registered id counts too
HUB_HOST = "huggingface.co"
CONFIG_FILES = ("config.json",)
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # one of them: a fast tokenizer is built from either
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
CUDA_ONLY_PRECISIONS = ("tf32",)


class PreflightError(Exception):
    """Something the build needs is missing; its message is one line naming it and how to get it."""


@dataclass
class Need:
    """One model or dataset the build needs.

    status: ``"in cache"``, ``"missing"``, ``"built locally"`` (embedded), ``"local folder"`` or ``"needs
    licensed files"`` (``ir_datasets`` cannot download them). size: bytes to download when missing (None:
    unknown). where: the cache folder it is (or would be) in. hint: how to get it, when missing.
    """

    kind: str
    id: str
    pages: list[str] = field(default_factory=list)
    status: str = "missing"
    size: int | None = None
    where: str = ""
    hint: str = ""
    hosts: set[str] = field(default_factory=set)


# --- what the pages ask for --------------------------------------------------------------------


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


def wanted(steps) -> dict[tuple[str, str], list[str]]:
    """``{(kind, id): pages}`` for the runner's ``steps`` (``(page, notebook, parameters, substitutions)``)."""
    import ir_datasets


    registered = ir_datasets.registry._registered
    found: dict[tuple[str, str], list[str]] = {}
    for page, _notebook, parameters, _substitutions in steps:
        for name, value in parameters.items():
            for item in _strings(value):
                if name in MODEL_KEYS or name.endswith("_model"):
                    kind = "model"
                elif name in DATASET_KEYS or item in registered:
                    kind = "dataset"
                else:
                    continue
                pages = found.setdefault((kind, item), [])
                if page not in pages:
                    pages.append(page)
    return found


# --- models --------------------------------------------------------------------------------------


def hub_cache() -> Path:
    """The Hugging Face hub cache as the environment names it now: ``HF_HUB_CACHE``, else ``HF_HOME/hub``,
    else huggingface_hub's default (``~/.cache/huggingface/hub``)."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def model_need(model_id: str) -> Need:
    """Whether the model is local (embedded, a folder, or in the Hugging Face cache) and what it weighs."""
    from huggingface_hub import try_to_load_from_cache

    cache_dir = hub_cache()
    need = Need("model", model_id, where=str(cache_dir))
    if model_id.startswith(EMBEDDED_PREFIX):
        need.status, need.where = "built locally", "the project's cache (neuron_ig.embedded_model.training)"
        return need
    if model_id.startswith((".", "/", "~")) or Path(model_id).expanduser().is_dir():
        folder = Path(model_id).expanduser()
        need.where = str(folder)
        need.status = "local folder" if folder.is_dir() else "missing"
        need.hint = f"the folder {folder} does not exist: pass a Hugging Face id or a folder saved with save_pretrained"
        return need

    def cached(names) -> str | None:
        for name in names:
            path = try_to_load_from_cache(model_id, name, cache_dir=cache_dir)
            if isinstance(path, str):
                return path
        return None

    weights = cached(WEIGHT_FILES)
    if weights and weights.endswith(".index.json"):  # sharded: every shard must be there too
        import json

        shards = set(json.loads(Path(weights).read_text()).get("weight_map", {}).values())
        weights = weights if all(cached([s]) for s in shards) else None
    need.hosts = {HUB_HOST}
    if cached(CONFIG_FILES) and cached(TOKENIZER_FILES) and weights:
        need.status = "in cache"
    else:
        need.hint = (f"download it where there is a network (`hf download {model_id}`, or run the build once online) "
                     f"into the Hugging Face cache {cache_dir} (HF_HOME / HF_HUB_CACHE)")
    return need


def hub_size(model_id: str, timeout: float = 10.0) -> int | None:
    """Bytes ``from_pretrained`` downloads for the model (one weights format, config, tokenizer), asked of
    the Hub; None offline or on any failure."""
    try:
        from huggingface_hub import HfApi

        files = {f.rfilename: f.size or 0 for f in HfApi().model_info(model_id, files_metadata=True, timeout=timeout).siblings}
    except Exception:  # offline, unknown id, rate limit: the size is simply not known
        return None
    top = [n for n in files if "/" not in n]
    weights = [n for n in top if n.endswith(".safetensors")] or [n for n in top if n.endswith(".bin")]
    small = [n for n in top if n.endswith((".json", ".txt"))]
    return sum(files[n] for n in set(weights) | set(small)) or None


# --- datasets ------------------------------------------------------------------------------------


@dataclass
class _Files:
    missing: list = field(default_factory=list)  # ir_datasets Download objects not on disk
    manual: list = field(default_factory=list)  # LocalDownload objects (files ir_datasets cannot download)


def _download_present(download) -> bool:
    from ir_datasets.util.download import LocalDownload

    cache_path = getattr(download, "_cache_path", None)
    if cache_path and cache_path != os.devnull and os.path.exists(cache_path):
        return True
    return any(isinstance(m, LocalDownload) and m._path.exists() for m in download.mirrors)


def _walk(obj, files: _Files, seen: set) -> None:
    """Collect the files ``obj`` (an ir_datasets handler or file wrapper) reads that are not on disk.

    Follows the wrappers' attributes: an extracted file (``Cache``) or a built docstore that exists ends the
    walk there; a ``Download`` present at its cache path (or as ``downloads/<md5>``) too.
    """
    from ir_datasets.formats import BaseDocs
    from ir_datasets.util import Cache
    from ir_datasets.util.download import Download, LocalDownload

    if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float, bool, Path)):
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple, set)):
        for item in obj:
            _walk(item, files, seen)
        return
    if isinstance(obj, dict):
        for item in obj.values():
            _walk(item, files, seen)
        return
    if isinstance(obj, Cache):
        if not Path(obj._path).exists():
            _walk(obj._streamer, files, seen)
        return
    if isinstance(obj, Download):
        if not _download_present(obj):
            manual = [m for m in obj.mirrors if isinstance(m, LocalDownload)]
            if manual and len(manual) == len(obj.mirrors):
                files.manual.append(manual[0])
            else:
                files.missing.append(obj)
        return
    if isinstance(obj, LocalDownload):
        if not obj._path.exists():
            files.manual.append(obj)
        return
    if isinstance(obj, BaseDocs):  # not through a Migrator, whose calls may migrate (delete) files
        try:
            if obj.docs_store().built():  # a built docstore serves the documents without its source
                return
        except Exception:  # a store that cannot say: walk its sources
            pass
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith("ir_datasets"):
        for item in vars(obj).values():
            _walk(item, files, seen)


def _url(download) -> str | None:
    from ir_datasets.util.download import GoogleDriveDownload, RequestsDownload

    return next((m.url for m in download.mirrors if isinstance(m, (RequestsDownload, GoogleDriveDownload))), None)


def dataset_need(dataset_id: str) -> Need:
    """Whether every file the dataset's docs, queries, qrels and scoreddocs are read from is on disk."""
    import ir_datasets


    home = ir_datasets.util.home_path()
    need = Need("dataset", dataset_id, where=str(home))
    if dataset_id.startswith(EMBEDDED_PREFIX):
        need.status, need.where = "built locally", "the ir_datasets cache (neuron_ig.ir.embedded)"
        return need
    try:
        dataset = ir_datasets.load(dataset_id)
    except KeyError:
        need.status, need.hint = "unknown", f"{dataset_id!r} is not an ir_datasets id (`ir_datasets list` lists them)"
        return need
    files = _Files()
    seen: set = set()
    for part in ("docs", "queries", "qrels", "scoreddocs"):
        if getattr(dataset, f"has_{part}")():
            _walk(getattr(dataset, f"{part}_handler")(), files, seen)
    downloads = list({id(d): d for d in files.missing}.values())
    if files.manual:
        local = files.manual[0]
        need.status, need.where = "needs licensed files", str(local._path)
        need.hint = _manual_hint(dataset_id, local)
    elif downloads:
        hints = [getattr(d, "_size_hint", None) for d in downloads]
        need.size = sum(h for h in hints if h) if all(hints) else None
        need.hosts = {urlparse(u).hostname for u in map(_url, downloads) if u}
        need.hint = (f"fetch it where there is a network: `ir_datasets export {dataset_id} docs >/dev/null` (then "
                     f"queries, qrels{', scoreddocs' if dataset.has_scoreddocs() else ''}) with IR_DATASETS_HOME={home}")
    else:
        need.status = "in cache"
    return need


def _manual_hint(dataset_id: str, local) -> str:
    """One line from ir_datasets' instructions for files it cannot download (Robust04's TREC disks 4 and 5)."""
    text = " ".join((local._message or "").split())
    what = re.match(r"(.+?\.)\s", text + " ")
    url = re.search(r"<(https?://[^>]+)>", text)
    contents = re.search(r"(This should contain [^.]+(?:\.[^.]+)*?etc\.?)", text)
    return (f"{dataset_id} needs files ir_datasets cannot download"
            + (f" ({what.group(1).rstrip('.')})" if what else "")
            + (f": get them from {url.group(1)}" if url else "")
            + f" and place the uncompressed source in {local._path}"
            + (f" ({contents.group(1).rstrip('.')})" if contents else "")
            + ", or remove it from `datasets:`")


# --- offline, devices ------------------------------------------------------------------------------


def explicitly_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) set: nothing is to be downloaded."""
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host`` on port 443 opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def setting_problem(page: str, parameters: dict) -> str | None:
    """Why the page's NIG ``baseline``, ``rule`` or ``precision`` is not one the engine knows (None: all are)."""
    baselines = [member.value for member in Baseline]
    choices = (("baseline", baselines, lambda value: str(value).upper() in baselines),  # as Baseline.parse reads it
               ("rule", list(RULES), lambda value: value in RULES),
               ("precision", list(PRECISIONS), lambda value: value in PRECISIONS))
    for name, valid, known in choices:
        if name in parameters and parameters[name] is not None and not known(parameters[name]):
            return f"page {page}: unknown {name} {parameters[name]!r}: use one of {', '.join(valid)}"
    return None


def device_problem(page: str, parameters: dict) -> str | None:
    """Why the page's ``device`` / ``precision`` cannot run on this machine (None: they can)."""

    device = parameters.get("device")
    precision = parameters.get("precision")
    try:
        resolved = resolve_device(device or "auto")
    except ValueError as error:
        return f"page {page}: {error}"
    if precision in CUDA_ONLY_PRECISIONS and resolved.type != "cuda":
        return (f"page {page}: precision {precision!r} needs a CUDA device, and device {device or 'auto'!r} is the "
                "CPU here: use precision 'fp32' or 'bf16', or run on a GPU")
    return None


# --- the two entry points --------------------------------------------------------------------------


def needs(steps) -> list[Need]:
    """Every model and dataset of the ``steps``, with its status; models first, each in the pages' order."""
    found = []
    for (kind, item), pages in wanted(steps).items():
        need = model_need(item) if kind == "model" else dataset_need(item)
        need.pages = pages
        found.append(need)
    return sorted(found, key=lambda n: n.kind != "model")


def check(steps) -> None:
    """Raise :class:`PreflightError` (one line) for the first thing the build cannot get: an unknown baseline, rule
    or precision, a CUDA-only setting
    without CUDA, an unknown dataset id, licensed files not in place, or a model or dataset missing offline."""
    for page, _notebook, parameters, _substitutions in steps:
        problem = setting_problem(page, parameters) or device_problem(page, parameters)
        if problem:
            raise PreflightError(problem)
    offline = explicitly_offline()
    for need in needs(steps):
        if need.status == "unknown":
            raise PreflightError(f"dataset {need.hint} (page {need.pages[0]})")
        if need.status == "needs licensed files":
            raise PreflightError(need.hint)
        if need.status == "missing":
            unreachable = sorted(h for h in need.hosts if not offline and not reachable(h))
            if offline or unreachable or not need.hosts:
                why = "HF_HUB_OFFLINE is set" if offline else (
                    f"{', '.join(unreachable)} cannot be reached" if unreachable else "it cannot be downloaded")
                raise PreflightError(f"{need.kind} {need.id} (page {need.pages[0]}) is not in the local cache and "
                                     f"{why}: {need.hint}")


def size_text(size: int | None) -> str:
    if size is None:
        return "size unknown"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def report(steps, ask_hub: bool | None = None) -> list[str]:
    """Lines of the dry run: each model and dataset, its status, where it is or goes, its download size.

    ``ask_hub``: ask the Hugging Face Hub the size of a missing model (default: unless offline).
    """
    ask_hub = not explicitly_offline() if ask_hub is None else ask_hub
    lines = []
    items = needs(steps)
    width = max((len(n.id) for n in items), default=0)
    every = [page for page, *_ in steps]
    for need in items:
        if need.kind == "model" and need.status == "missing" and ask_hub and need.hosts:
            need.size = hub_size(need.id)
        size = f", {size_text(need.size)} to download" if need.status == "missing" else ""
        pages = (f"{len(need.pages)} of {len(every)} pages" if len(need.pages) > 3
                 else f"page{'s' * (len(need.pages) > 1)} {', '.join(need.pages)}")
        lines.append(f"{need.kind:7} {need.id:{width}}  {need.status}{size} ({need.where}; {pages})")
        if need.status not in ("in cache", "built locally", "local folder") and need.hint:
            lines.append(f"        {need.hint}")
    devices = {p.get("device", "auto") for _, _, p, _ in steps}

    for device in sorted(d for d in devices if isinstance(d, str)):
        try:
            lines.append(f"device  {device}: {resolve_device(device)}")
        except ValueError as error:
            lines.append(f"device  {device}: {error}")
    missing = [n for n in items if n.status not in ("in cache", "built locally", "local folder")]
    known = sum(n.size for n in missing if n.size)
    lines.append(f"{len(items) - len(missing)} of {len(items)} available locally"
                 + (f"; {len(missing)} missing ({size_text(known)} known to download"
                    + (", some sizes unknown)" if any(n.size is None for n in missing) else ")") if missing else ""))
    return lines
