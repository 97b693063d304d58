"""What checking cache entries costs: a read of a checked entry against a plain read, in one run.

A checked read (:func:`neuron_ig.runtime.cache.ready` then :func:`neuron_ig.runtime.cache.load_arrays`) compares sizes
every time and hashes each file once per process. Measured for a NIG-sized ``.npz`` (100 pairs of a
6-layer, 1536-unit model: 100 x 4 x 6 x 1536 float32, 14.7 MB) and a model-sized folder (one 90 MB file),
in a temporary cache.

    python benchmarks/cache_checks.py
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def best(function, repeat: int = 5) -> float:
    """The fastest of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="neuron-ig-cache-checks-") as root:
        os.environ["NEURON_IG_CACHE"] = root
        from neuron_ig.runtime import cache

        path = cache.cache_root() / "nig" / "m" / "d" / "relevant-0" / "nig.npz"
        attributions = np.random.default_rng(0).standard_normal((100, 4, 6, 1536), dtype=np.float32)
        start = time.perf_counter()
        cache.save_arrays(path, attributions=attributions)
        print(f"NIG-sized npz ({attributions.nbytes / 1e6:.1f} MB): written with its manifest in {time.perf_counter() - start:.3f} s")

        def plain():
            with np.load(path) as data:
                data["attributions"]

        cache._hashes.clear()
        first = best(lambda: cache.ready(path), repeat=1)
        checked = best(lambda: (cache.ready(path), cache.load_arrays(path)))
        unchecked = best(plain)
        print(f"  first check (hash): {first * 1e3:.1f} ms; checked read {checked * 1e3:.1f} ms vs plain np.load "
              f"{unchecked * 1e3:.1f} ms: x{checked / unchecked:.2f}")

        folder = cache.cache_root() / "models" / "m"
        cache.write_folder_atomic(folder, lambda tmp: (tmp / "model.safetensors").write_bytes(os.urandom(90_000_000)))
        cache._hashes.clear()
        first = best(lambda: cache.ready(folder), repeat=1)
        again = best(lambda: cache.ready(folder))
        print(f"model-sized folder (90 MB): first check (hash) {first * 1e3:.0f} ms, later checks {again * 1e6:.0f} us")


if __name__ == "__main__":
    main()
