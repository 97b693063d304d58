"""Cost of NIG by step count and rule, and of the convergence page's one-pass study, on the CPU, one process.

Times, on the same pairs and interleaved for ``--repeats`` rounds after a warm-up pass each: the book's default NIG
(``--rule``/``--steps``, left and 50), a cheaper setting (``--cheap-rule``/``--cheap-steps``: the one the
convergence page names, trapezoid and 16 unless told, which matches left at 50 steps on the default build), and the
step ladder of ``--finest`` steps (``neuron_ig.engine.step_ladder``: every coarser count under every rule from one
pass). Each median is reported with its ratio to the default's: the cheap setting's is the saving the convergence
page offers, the ladder's what the study costs in default passes (about finest / steps, plus the extra sums of its
coarser grids). The last line is ``nig-steps default=<s> cheap=<s> ladder=<s> cheap-vs-default=<ratio> ladder-vs-default=<ratio>``.

    python benchmarks/nig_steps.py                          # random MiniLM-L6-shaped weights, 8 synthetic pairs
    python benchmarks/nig_steps.py --model neuron-ig/minilm-l6-cross-encoder --dataset neuron-ig/gcide/test
"""

from __future__ import annotations

import argparse
import statistics

import torch
from nig_batch_rows import varied_pairs
from nig_speed import dataset_pairs, load, model_arguments, timed

from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.nig import RULES, neuron_integrated_gradients
from neuron_ig.engine.step_ladder import step_ladder


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rule", choices=RULES, default="left")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--cheap-rule", choices=RULES, default="trapezoid")
    parser.add_argument("--cheap-steps", type=int, default=16)
    parser.add_argument("--finest", type=int, default=400)
    parser.add_argument("--lowest", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=8)
    model_arguments(parser)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    encoder = load(args)
    queries, passages, labels = dataset_pairs(args.dataset, args.pairs) if args.dataset else varied_pairs(args.pairs)
    encoded = encode_pairs(encoder.tokenizer, queries, passages, args.max_length)
    lengths = encoded.attention_mask.sum(dim=1)
    print(f"{len(encoded)} pairs of {int(lengths.min())} to {int(lengths.max())} tokens on {encoder.device}, "
          f"{torch.get_num_threads()} threads", flush=True)

    runs = {
        "default": lambda: neuron_integrated_gradients(encoder, encoded, labels, steps=args.steps, rule=args.rule),
        "cheap": lambda: neuron_integrated_gradients(encoder, encoded, labels, steps=args.cheap_steps, rule=args.cheap_rule),
        "ladder": lambda: step_ladder(encoder, encoded, labels, finest=args.finest, lowest=args.lowest),
    }
    for run in runs.values():  # warm-up
        run()
    times = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(args.repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            times[name].append(timed(runs[name])[0])
    medians = {name: statistics.median(t) for name, t in times.items()}
    labels_ = {"default": f"{args.rule} {args.steps} steps", "cheap": f"{args.cheap_rule} {args.cheap_steps} steps",
               "ladder": f"ladder of {args.finest} steps"}
    for name in names:
        print(f"{labels_[name]:>24}: median {medians[name]:7.2f} s of {', '.join(f'{t:.2f}' for t in times[name])}; "
              f"{medians[name] / medians['default']:.2f}x the default", flush=True)
    print(f"nig-steps default={medians['default']:.2f} cheap={medians['cheap']:.2f} ladder={medians['ladder']:.2f} "
          f"cheap-vs-default={medians['cheap'] / medians['default']:.2f} ladder-vs-default={medians['ladder'] / medians['default']:.2f}")


if __name__ == "__main__":
    main()
