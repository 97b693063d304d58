"""Where the model runs: the ``device`` parameter, batch sizes from free GPU memory, out-of-memory as one line.

``device`` is ``"auto"`` (CUDA when present, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. On the CPU
nothing changes: batches keep the sizes the caller gives. On CUDA a batch holds as many rows (pairs, or NIG
path points) as :data:`MEMORY_FRACTION` of the free GPU memory takes, estimated from the model's shape; a
CUDA out-of-memory error becomes a :class:`DeviceMemoryError` naming what to lower.

Cached results do not depend on the device in their key: fp32 on CUDA and on the CPU give the same numbers
up to the last bits (other kernels, other batch compositions), as two CPUs of different makes do. The
arithmetic that changes numbers more than that, ``precision`` (bf16, tf32), is in the key.
"""
from __future__ import annotations

import contextlib
import os

import torch

MEMORY_VARIABLE = "NEURON_IG_GPU_MEMORY"  # fraction of the free GPU memory one batch may take
MEMORY_FRACTION = 0.5  # its default: room for the allocator's fragmentation and the estimate's error
MAX_ROWS = 16384  # beyond this a batch gains nothing on any GPU


class DeviceMemoryError(RuntimeError):
    """CUDA ran out of memory; the message is one line naming what to lower."""


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None): CUDA when present, else the CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as given.

    Raises:
        ValueError: another name, or a CUDA device on a machine without it (one line naming the fix).
    """
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r} is not supported: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} needs CUDA, and this machine has none (torch "
                             f"{torch.__version__}): set `device: auto` or `device: cpu` in the params file")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA device(s): "
                             "use 'cuda' or a smaller index")
    return resolved


def memory_fraction() -> float:
    """The fraction of free GPU memory a batch may take: ``NEURON_IG_GPU_MEMORY``, else :data:`MEMORY_FRACTION`."""
    text = os.environ.get(MEMORY_VARIABLE, "").strip()
    if not text:
        return MEMORY_FRACTION
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise ValueError(f"{MEMORY_VARIABLE}={text!r}: give a fraction of the free GPU memory in (0, 1], e.g. 0.3")
    return value


def row_bytes(config, tokens: int, backward: bool) -> int:
    """Estimated bytes of activations of one row of ``tokens`` tokens through a BERT-family ``config``.

    Forward only, one layer's activations live at a time; with a backward pass every layer's are kept (plus
    the FFN activations and gradients NIG records). fp32, 4 bytes a value.
    """
    hidden, inner = config.hidden_size, config.intermediate_size
    heads, layers = config.num_attention_heads, config.num_hidden_layers
    per_layer = tokens * (12 * hidden + 4 * inner) + 3 * heads * tokens * tokens
    return 4 * per_layer * (layers if backward else 2)


def batch_rows(device: torch.device, config, tokens: int, rows: int, *, backward: bool) -> int:
    """Rows per pass: ``rows`` on the CPU; on CUDA, as many as :func:`memory_fraction` of free memory holds."""
    device = torch.device(device)
    if device.type != "cuda":
        return rows
    free, _total = torch.cuda.mem_get_info(device)
    fitting = int(memory_fraction() * free // max(1, row_bytes(config, tokens, backward)))
    return max(1, min(MAX_ROWS, fitting))


@contextlib.contextmanager
def out_of_memory_hint(what: str, rows: int):
    """Re-raise a CUDA out-of-memory error inside as a one-line :class:`DeviceMemoryError` about ``what``."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        raise DeviceMemoryError(
            f"CUDA out of memory {what} ({rows} rows a pass, {memory_fraction():g} of free GPU memory): lower "
            f"{MEMORY_VARIABLE} (e.g. {MEMORY_VARIABLE}={memory_fraction() / 2:g}) or `max_length`, free the GPU "
            "of other processes, or set `device: cpu`"
        ) from None
