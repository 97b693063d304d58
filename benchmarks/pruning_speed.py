"""Re-ranking throughput of a cross-encoder with FFN neurons pruned, fp32 and bf16, against the same model unpruned.

The variants score the same pre-encoded batches (``neuron_ig.engine.encoding.encode_batches``: pairs sorted by
token count, batches of at most ``batch_size * max_length`` tokens) with
``encoder.score_batches(batches, log_odds=True, precision=...)``, without gradients:

(a) the unpruned model;
(b) ``neuron_ig.engine.pruning_hooks.NeuronPruning`` of 1% of all FFN neurons (``top_p_percent`` of random scores),
    zeroed at every token position: one forward hook on every FFN layer that holds selected units;
(c) the same neurons zeroed only at the query's positions (``token_types=["query"]``), which adds a
    forward pre-hook that finds those positions in every batch;
(a16), (b16) (a) and (b) under bf16 autocast (``precision="bf16"``).

Because this machine is noisy, the variants are interleaved (a b c a16 b16, b c a16 b16 a... for ``--repeats``
rounds) after one warm-up pass each, and each variant's median time is reported. The overhead of a variant
is ``median time / median time of (a) in its precision - 1``.

bf16 agreement, with ``--dataset`` (an ir_datasets id with qrels, e.g. ``neuron-ig/gcide/test``; use a
trained ``--model``): the BM25 top ``--depth`` of ``--queries`` queries re-ranked unpruned and with (b)'s
set pruned, in fp32 and in bf16; delta nDCG@10 (pruned - unpruned) of both, and their difference.

Reusing hidden states: a pruned model computes what the unpruned one computes below its lowest pruned
layer, and a set's random controls have the same per-layer counts, so the same lowest layer. The most
that reusing those hidden states across the unpruned run, a set and its controls can save is the share of
the layers below it; the script prints that share for the top-p% sets of p = 0.1, 0.5, 1% (of the random
scores here; of real NIG scores with ``--nig-scores FILE.npy``, a ``[layers, units]`` array).

The model is a BERT with the MiniLM-L6 shape (6 layers, hidden 384, FFN 1536, 12 heads) or, with
``--model``, any cross-encoder folder or id. The last line is
``pruning-speed unpruned=<pairs/s> pruned=<pairs/s> unpruned-bf16=<pairs/s> pruned-bf16=<pairs/s> overhead=<b vs a>% typed-overhead=<c vs a>%``.

    python benchmarks/pruning_speed.py            # 256 pairs, batches of 64, 3 rounds
    python benchmarks/pruning_speed.py --quick    # 64 pairs, batches of 32, 2 rounds: seconds
    python benchmarks/pruning_speed.py --model FOLDER --dataset neuron-ig/gcide/test   # with the bf16 agreement
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import numpy as np
import torch

from neuron_ig.engine.encoding import encode_batches
from neuron_ig.engine.models import load_cross_encoder, random_cross_encoder
from neuron_ig.engine.pruning_hooks import NeuronPruning, ffn_shape
from neuron_ig.stats.selection import top_p_percent

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


def timed_scores(encoder, batches, pruning, precision):
    """Seconds to score every batch with ``pruning`` (a context manager) active, and the scores."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    with pruning():
        scores = encoder.score_batches(batches, log_odds=True, precision=precision)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, scores


def bf16_agreement(encoder, dataset, mask, depth, queries):
    """delta nDCG@10 of pruning ``mask`` on ``dataset``'s BM25 top ``depth`` of ``queries`` queries, fp32 and bf16."""
    from neuron_ig.ir.measures import ndcg_at_10
    from neuron_ig.studies.effectiveness import rerank_inputs

    inputs = rerank_inputs(encoder.tokenizer, dataset, depth=depth, max_queries=queries)
    ndcg = {}
    for precision in ("fp32", "bf16"):
        for name, pruning in (("unpruned", contextlib.nullcontext), ("pruned", lambda: NeuronPruning(encoder, mask))):
            with pruning():
                ndcg[name, precision] = ndcg_at_10(inputs.run(encoder.score_batches(inputs.batches, log_odds=True, precision=precision)), inputs.qrels)
    delta = {p: ndcg["pruned", p] - ndcg["unpruned", p] for p in ("fp32", "bf16")}
    print(f"bf16 agreement on {dataset} ({len(inputs.first_stage)} queries, BM25 top {depth}): nDCG@10 unpruned "
          f"fp32 {ndcg['unpruned', 'fp32']:.4f} bf16 {ndcg['unpruned', 'bf16']:.4f}; delta nDCG@10 fp32 {delta['fp32']:+.4f}, "
          f"bf16 {delta['bf16']:+.4f}, difference {delta['bf16'] - delta['fp32']:+.4f}")


def reuse_bound(scores: np.ndarray) -> None:
    """The share of the layers below the lowest pruned layer of the top-p% sets: the most hidden-state reuse saves."""
    layers = scores.shape[0]
    parts = []
    for p in (0.1, 0.5, 1.0):
        lowest = int(np.flatnonzero(top_p_percent(scores, p).any(axis=1))[0])
        parts.append(f"p = {p:g}%: lowest pruned layer {lowest} of {layers}, at most {lowest / layers:.0%} of the layers")
    print("hidden-state reuse below the lowest pruned layer (set, controls, unpruned): " + "; ".join(parts))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 pairs in batches of 32, 2 rounds: seconds")
    parser.add_argument("--pairs", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--passage-words", type=int, default=75, help="words per passage (default: about 100 tokens per pair)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--percent", type=float, default=1.0, help="share of all FFN neurons pruned, in percent")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; each variant's median is reported")
    parser.add_argument("--model", default=None, help="a cross-encoder id or folder (default: random MiniLM-L6-shaped BERT)")
    parser.add_argument("--dataset", default=None, help="an ir_datasets id with qrels: bf16 agreement on delta nDCG@10")
    parser.add_argument("--depth", type=int, default=20, help="BM25 depth of the agreement check")
    parser.add_argument("--queries", type=int, default=50, help="queries of the agreement check")
    parser.add_argument("--nig-scores", default=None, help="a [layers, units] .npy of NIG class means for the reuse bound")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.batch_size, args.repeats = 64, 32, 2
    if args.threads:
        torch.set_num_threads(args.threads)

    encoder = load(args.model)
    queries, passages = make_pairs(args.pairs, args.passage_words)
    batches = encode_batches(encoder.tokenizer, queries, passages, args.max_length, args.batch_size)
    tokens = sum(int(batch.attention_mask.sum()) for _, batch in batches) / args.pairs
    shape = ffn_shape(encoder)
    scores = np.random.default_rng(0).normal(size=shape)
    mask = top_p_percent(scores, args.percent)
    print(f"model {encoder.name}: {shape[0]} FFN layers x {shape[1]} units, {int(mask.sum())} pruned "
          f"({args.percent:g}%, per layer {mask.sum(axis=1).tolist()}); {args.pairs} pairs of {tokens:.0f} tokens "
          f"on average in {len(batches)} batches; device {encoder.device}; torch threads {torch.get_num_threads()}")

    variants = {
        "a unpruned": (contextlib.nullcontext, "fp32"),
        f"b pruned {args.percent:g}%": (lambda: NeuronPruning(encoder, mask), "fp32"),
        f"c pruned {args.percent:g}%, query only": (lambda: NeuronPruning(encoder, mask, token_types=["query"]), "fp32"),
        "a16 unpruned, bf16": (contextlib.nullcontext, "bf16"),
        f"b16 pruned {args.percent:g}%, bf16": (lambda: NeuronPruning(encoder, mask), "bf16"),
    }
    names = list(variants)
    results = {name: timed_scores(encoder, batches, *variants[name])[1] for name in names}  # warm-up
    assert not torch.allclose(results[names[1]], results[names[0]]), "the pruning must change the scores"
    assert not torch.allclose(results[names[2]], results[names[1]]), "pruning at query positions only must differ"
    seconds = {name: [] for name in names}
    for round_ in range(args.repeats):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            elapsed, values = timed_scores(encoder, batches, *variants[name])
            assert torch.equal(values, results[name]), f"{name}: the scores changed between runs"
            seconds[name].append(elapsed)

    medians = {name: statistics.median(times) for name, times in seconds.items()}
    print(f"\n{'variant':<32}{'median s':>10}{'min s':>10}{'max s':>10}{'pairs/s':>10}{'overhead':>10}")
    for name in names:
        base = medians[names[3] if variants[name][1] == "bf16" else names[0]]
        print(f"{name:<32}{medians[name]:>10.3f}{min(seconds[name]):>10.3f}{max(seconds[name]):>10.3f}"
              f"{args.pairs / medians[name]:>10.1f}{100 * (medians[name] / base - 1):>9.1f}%")
    gap = (results[names[3]] - results[names[0]]).abs().max().item()
    print(f"largest |bf16 - fp32| log-odds of the unpruned model: {gap:.3f} (log-odds range {results[names[0]].min():.2f} to {results[names[0]].max():.2f})")
    reuse_bound(np.load(args.nig_scores) if args.nig_scores else scores)
    if args.dataset:
        bf16_agreement(encoder, args.dataset, mask, args.depth, args.queries)
    unpruned, pruned, typed, unpruned16, pruned16 = (medians[name] for name in names)
    print(f"pruning-speed unpruned={args.pairs / unpruned:.1f} pruned={args.pairs / pruned:.1f} "
          f"unpruned-bf16={args.pairs / unpruned16:.1f} pruned-bf16={args.pairs / pruned16:.1f} "
          f"overhead={100 * (pruned / unpruned - 1):.1f}% typed-overhead={100 * (typed / unpruned - 1):.1f}%")


if __name__ == "__main__":
    main()
