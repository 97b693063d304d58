"""Speed of the NIG engine at several ``batch_rows`` (path points a forward/backward pass) on the CPU, one process.

``neuron_ig.engine.nig.BATCH_ROWS`` is the CPU default: with m = 50, 64 rows hold one pair's path (51 points) a pass,
128 two pairs' (102 rows, the shorter padded to the longer). On CUDA the engine sizes its passes by free memory
and this setting does not apply. The pairs vary in length as real ones do (``--dataset`` takes real pairs,
with a trained ``--model``). Because this machine is noisy, the settings are interleaved for ``--repeats``
rounds after a warm-up pass each, and each setting's median is reported with its ratio to the default's.
The attributions of every setting are compared with the default's (largest difference relative to the largest
value: float rounding only, since rows do not interact). The last line is
``nig-batch-rows default=<rows> <rows>=<median s> ... speedup-vs-<rows>=<that median / default median> ...``.

    python benchmarks/nig_batch_rows.py                     # random MiniLM-L6-shaped weights, 12 synthetic pairs
    python benchmarks/nig_batch_rows.py --model neuron-ig/minilm-l6-cross-encoder --dataset neuron-ig/hpo/test
"""

from __future__ import annotations

import argparse
import statistics

import torch
from nig_speed import dataset_pairs, load, make_pairs, model_arguments, timed

from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.nig import BATCH_ROWS, neuron_integrated_gradients


def varied_pairs(n: int, seed: int = 0):
    """``n`` synthetic pairs whose passages run from 15 to 120 words (real collections vary as much)."""
    queries, passages = [], []
    for i in range(n):
        q, p, _ = make_pairs(1, 15 + (105 * i) // max(1, n - 1), seed=seed + i)
        queries += q
        passages += p
    return queries, passages, torch.arange(n) % 2


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[BATCH_ROWS, 128], help="batch_rows to time (the first is the reference)")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=50)
    model_arguments(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    encoder = load(args)
    if encoder.device.type != "cpu":
        raise SystemExit(f"the model is on {encoder.device}: batch_rows applies on the CPU only (CUDA sizes passes by free memory)")
    queries, passages, labels = dataset_pairs(args.dataset, args.pairs) if args.dataset else varied_pairs(args.pairs)
    encoded = encode_pairs(encoder.tokenizer, queries, passages, args.max_length)
    lengths = encoded.attention_mask.sum(dim=1)
    print(f"{len(encoded)} pairs of {int(lengths.min())} to {int(lengths.max())} tokens, m = {args.steps}, "
          f"{torch.get_num_threads()} threads, rows {args.rows} (first: the reference)", flush=True)

    def attribute(rows):
        return neuron_integrated_gradients(encoder, encoded, labels, steps=args.steps, batch_rows=rows).stacked()

    reference = {rows: attribute(rows) for rows in args.rows}  # the warm-up pass of each setting
    largest = float(reference[args.rows[0]].abs().max())
    times = {rows: [] for rows in args.rows}
    for round_ in range(args.repeats):
        for rows in args.rows[round_ % len(args.rows):] + args.rows[:round_ % len(args.rows)]:
            times[rows].append(timed(attribute, rows)[0])
    medians = {rows: statistics.median(t) for rows, t in times.items()}
    base = args.rows[0]
    for rows in args.rows:
        difference = float((reference[rows] - reference[base]).abs().max()) / largest
        print(f"batch_rows {rows:4d}: median {medians[rows]:6.2f} s of {', '.join(f'{t:.2f}' for t in times[rows])}; "
              f"{medians[rows] / medians[base]:.2f}x the time of {base}; largest difference {difference:.1e}", flush=True)
    print("nig-batch-rows " + f"default={base} " + " ".join(f"{r}={medians[r]:.2f}" for r in args.rows) + " "
          + " ".join(f"speedup-vs-{r}={medians[r] / medians[base]:.2f}" for r in args.rows[1:]))


if __name__ == "__main__":
    main()
