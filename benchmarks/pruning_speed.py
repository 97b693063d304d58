"""Re-ranking throughput of a cross-encoder with FFN neurons pruned, against the same model unpruned.

Three variants score the same pre-encoded batches (``neuron_ig.encoding.encode_batches`` of synthetic
pairs of about 100 tokens) with ``encoder.score_batches(batches, log_odds=True)``, without gradients:

(a) the unpruned model;
(b) ``neuron_ig.pruning.NeuronPruning`` of 1% of all FFN neurons (``top_p_percent`` of random scores),
    zeroed at every token position: one forward hook on every FFN layer that holds selected units;
(c) the same neurons zeroed only at the query's positions (``token_types=["query"]``), which adds a
    forward pre-hook that finds those positions in every batch.

The model is a BERT with the MiniLM-L6 shape (6 layers, hidden 384, FFN 1536, 12 heads) or, with
``--model``, any cross-encoder folder or id. Because this machine is noisy, the variants are interleaved
(a b c, b c a, c a b... for ``--repeats`` rounds) after one warm-up pass each, and each variant's median
time is reported. The overhead of a variant is ``median time / median time of (a) - 1``. The last line is
``pruning-speed unpruned=<pairs/s> pruned=<pairs/s> overhead=<b vs a>% typed-overhead=<c vs a>%``.

    python benchmarks/pruning_speed.py            # 512 pairs, batches of 64, 5 rounds
    python benchmarks/pruning_speed.py --quick    # 64 pairs, batches of 32, 3 rounds: seconds
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
import torch

from neuron_ig.encoding import encode_batches
from neuron_ig.models import load_cross_encoder, random_cross_encoder
from neuron_ig.pruning import NeuronPruning, ffn_shape
from neuron_ig.selection import top_p_percent

WORDS = ("lift drag wing boundary layer flow pressure shock wave supersonic heat transfer laminar turbulent "
         "nozzle jet noise thrust engine blade rotor vortex stability panel flutter buckling load stress").split()


def make_pairs(n: int, passage_words: int, seed: int = 0):
    """``n`` (query, passage) pairs of random aeronautics words: queries of 6 words, passages of ``passage_words``."""
    generator = torch.Generator().manual_seed(seed)
    pick = lambda k: " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (k,), generator=generator))
    return [pick(6) for _ in range(n)], [pick(passage_words) for _ in range(n)]


def load(model):
    if model:
        return load_cross_encoder(model)
    encoder = random_cross_encoder(num_layers=6, hidden_size=384, intermediate_size=1536, num_heads=12)
    return encoder if not torch.cuda.is_available() else type(encoder)(encoder.model.cuda(), encoder.tokenizer, encoder.name, encoder.num_labels)


def timed_scores(encoder, batches, pruning):
    """Seconds to score every batch with ``pruning`` (a context manager) active, and the scores."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    with pruning():
        scores = encoder.score_batches(batches, log_odds=True)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, scores


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 pairs in batches of 32, 3 rounds: seconds")
    parser.add_argument("--pairs", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--passage-words", type=int, default=75, help="words per passage (default: about 100 tokens per pair)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--percent", type=float, default=1.0, help="share of all FFN neurons pruned, in percent")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds; each variant's median is reported")
    parser.add_argument("--model", default=None, help="a cross-encoder id or folder (default: random MiniLM-L6-shaped BERT)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.batch_size, args.repeats = 64, 32, 3
    if args.threads:
        torch.set_num_threads(args.threads)

    encoder = load(args.model)
    queries, passages = make_pairs(args.pairs, args.passage_words)
    batches = encode_batches(encoder.tokenizer, queries, passages, args.max_length, args.batch_size)
    tokens = sum(int(batch.attention_mask.sum()) for _, batch in batches) / args.pairs
    shape = ffn_shape(encoder)
    mask = top_p_percent(np.random.default_rng(0).normal(size=shape), args.percent)
    print(f"model {encoder.name}: {shape[0]} FFN layers x {shape[1]} units, {int(mask.sum())} pruned "
          f"({args.percent:g}%, per layer {mask.sum(axis=1).tolist()}); {args.pairs} pairs of {tokens:.0f} tokens "
          f"on average in {len(batches)} batches; device {encoder.device}; torch threads {torch.get_num_threads()}")

    variants = {
        "a unpruned": contextlib.nullcontext,
        f"b pruned {args.percent:g}%": lambda: NeuronPruning(encoder, mask),
        f"c pruned {args.percent:g}%, query only": lambda: NeuronPruning(encoder, mask, token_types=["query"]),
    }
    names = list(variants)
    scores = {name: timed_scores(encoder, batches, variants[name])[1] for name in names}  # warm-up
    assert not torch.allclose(scores[names[1]], scores[names[0]]), "the pruning must change the scores"
    assert not torch.allclose(scores[names[2]], scores[names[1]]), "pruning at query positions only must differ"
    seconds = {name: [] for name in names}
    for round_ in range(args.repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            elapsed, values = timed_scores(encoder, batches, variants[name])
            assert torch.equal(values, scores[name]), f"{name}: the scores changed between runs"
            seconds[name].append(elapsed)

    medians = {name: statistics.median(times) for name, times in seconds.items()}
    base = medians[names[0]]
    print(f"\n{'variant':<32}{'median s':>10}{'min s':>10}{'max s':>10}{'pairs/s':>10}{'overhead':>10}")
    for name in names:
        print(f"{name:<32}{medians[name]:>10.3f}{min(seconds[name]):>10.3f}{max(seconds[name]):>10.3f}"
              f"{args.pairs / medians[name]:>10.1f}{100 * (medians[name] / base - 1):>9.1f}%")
    unpruned, pruned, typed = (medians[name] for name in names)
    print(f"pruning-speed unpruned={args.pairs / unpruned:.1f} pruned={args.pairs / pruned:.1f} "
          f"overhead={100 * (pruned / unpruned - 1):.1f}% typed-overhead={100 * (typed / unpruned - 1):.1f}%")


if __name__ == "__main__":
    main()
