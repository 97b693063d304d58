"""What the null references and verdicts cost, on synthetic per-pair NIG of the book's shape, in one process.

Per-pair NIG of the MiniLM-L6 shape (6 layers x 1,536 FFN units) for three datasets of ``--pairs`` pairs
(one class; a page computes two). Times, for the default resample counts: each claim of the
"paper vs reproduction" page, the agreement ratio of the overlaps page, the membership probability and the
agreement table of the robustness page. The NIG itself is not computed here (it is cached by the pages).

    python benchmarks/verdicts_cost.py              # the default book: 32 pairs per dataset
    python benchmarks/verdicts_cost.py --pairs 100 --layers 12 --units 3072   # a larger model

On a shared 2-core machine set OMP_NUM_THREADS=1: BLAS threads fighting over the cores made the small matrix
products of the resamples 5-8 times slower here.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--units", type=int, default=1536)
    parser.add_argument("--resamples", type=int, default=999)
    args = parser.parse_args()

    from neuron_ig.stats import nulls
    from neuron_ig.studies import robustness, verdicts

    rng = np.random.default_rng(0)
    scale = rng.lognormal(0.0, 1.0, size=(args.layers, args.units))
    per_pair = {name: (scale * rng.normal(size=(args.pairs, args.layers, args.units))).astype(np.float32)
                for name in ("in", "ood1", "ood2")}
    p, p_values = 1.0, [0.1, 0.5, 1.0]
    parts = {
        "concentration claim": lambda: verdicts.concentration_claim(per_pair, p, n_resamples=args.resamples),
        "common core claim (drop rule)": lambda: verdicts.common_core_claim(per_pair, p, p_values=p_values, n_dropped=1,
                                                                            n_resamples=args.resamples),
        "OOD claim": lambda: verdicts.ood_claim(per_pair, "in", p, n_resamples=args.resamples),
        "agreement ratio (20 splits, 200 bootstraps)": lambda: nulls.agreement_ratio(per_pair, p),
        "intersection ratio (20 splits, 200 bootstraps)": lambda: nulls.intersection_ratio(per_pair, p),
        "membership probability (200 bootstraps, 1 dataset)": lambda: robustness.membership_probability(per_pair["in"], p),
        "agreement table (20 splits, Jaccard + RBO)": lambda: robustness.agreement_table(per_pair, p),
    }
    print(f"{args.layers} x {args.units} neurons, 3 datasets x {args.pairs} pairs, {args.resamples} resamples")
    for name, run in parts.items():
        start = time.perf_counter()
        run()
        print(f"{name}: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
