"""Speed of the NIG engine against three references and the hardware floor, same pairs and steps, one process.

(a) ``neuron_ig.engine.nig`` in fp32, and (a16) the same with ``precision="bf16"`` (autocast): pairs sorted by
    length, path points of several pairs batched, one backward pass per batch down to the lowest FFN
    layer only, step differences accumulated on the fly.
(b) the scheme of the authors' public code, written here as the reference: one pair at a time, path
    points in batches of 10, one backward call per path point (retain_graph), activations and
    gradients copied to the CPU at every point, NIG summed on the CPU. Each point's backward call goes through
    its whole batch of 10, so (b) does about 5.4 times the FLOPs of (a) with m = 50 (printed): where both run
    at the same FLOP rate, as large batches do on a quiet CPU, that ratio is what (a) gains on (b).
(c) ``captum.attr.LayerConductance``, called once per FFN layer.
(d) the floor: one forward pass of all m + 1 path points of the same pairs, batched as (a) batches them,
    plus one backward pass from F to the activations of the lowest FFN layer with no weight gradient;
    the pairs fill their batches (no padding: each pair is trimmed to its length, see the padding line).

Agreement of bf16 with fp32 on the same pairs: the Jaccard index of the top-p% neuron sets (of the mean
NIG of each class, as :mod:`neuron_ig.stats.selection` selects them; the smaller of the two classes) at
p = 0.1, 0.5, 1%, and the largest difference of a pair's NIG of a neuron relative to the largest fp32 value.
bf16 passes where Jaccard >= 0.9 at p = 1%. Run it on a model that has learned something (``--model``,
e.g. a folder fine-tuned with ``neuron_ig.embedded_model.training``, with ``--dataset`` for real pairs): on random
weights the output hardly moves along the path and the check says little.

FLOPs (``--model-config bert-large`` and every run): per real token and layer, with hidden size h, FFN
width f and T real tokens per pair, a forward pass costs 2(4h^2 + 2hf) + 4Th (the six weight products,
then QK^T and AV) and the backward pass to the activations, without weight gradients, the same weight
products again, 2(4h^2 + 2hf), and 8Th for attention (two products for each of QK^T and AV); the lowest
layer's backward stops at its FFN (2 * 2hf). Embeddings, pooler and head are left out (under 0.1%).
The FLOP floor is that count divided by the rate of a large dense matrix product measured in the same
run in the same precision; the table gives the fraction of it that (a) and (d) reach.

The model is a BERT with the MiniLM-L6 shape (6 layers, hidden 384, FFN 1536, 12 heads), with
``--model-config bert-large`` one with MonoBERT-large's shape (24 layers, hidden 1024, FFN 4096, 16 heads;
random weights from its config, nothing downloaded; on a CPU use few pairs and steps, and the loop and
captum references are skipped unless ``--references``), or with ``--model`` any cross-encoder folder or
id. Ratios are taken in one run because this machine is noisy. The last line is
``nig-speed vs-loop=<b/a> vs-captum=<c/a> vs-floor=<a/d> bf16-speedup=<a/a16>`` (all of fp32 except the last).

    python benchmarks/nig_speed.py            # 8 pairs, m = 50, length 128
    python benchmarks/nig_speed.py --quick    # under a minute
    python benchmarks/nig_speed.py --model-config bert-large --pairs 1 --steps 8 --repeats 1 --no-memory
    python benchmarks/nig_speed.py --model FOLDER --dataset neuron-ig/gcide/test --pairs 16 --agreement-only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch
from captum.attr import LayerConductance

from neuron_ig.engine.baselines import baseline_ids
from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.models import load_cross_encoder, random_cross_encoder
from neuron_ig.engine.nig import (
    BATCH_ROWS,
    autocast,
    frozen_parameters,
    length_order,
    neuron_integrated_gradients,
)
from neuron_ig.stats.selection import jaccard, top_p_percent

WORDS = ("lift drag wing boundary layer flow pressure shock wave supersonic heat transfer laminar turbulent "
         "nozzle jet noise thrust engine blade rotor vortex stability panel flutter buckling load stress").split()
SHAPES = {  # layers, hidden, FFN width, heads
    "minilm-l6": (6, 384, 1536, 12),
    "bert-large": (24, 1024, 4096, 16),
}
P_VALUES = (0.1, 0.5, 1.0)


def make_pairs(n: int, passage_words: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    pick = lambda k: " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (k,), generator=generator))
    return [pick(6) for _ in range(n)], [pick(passage_words) for _ in range(n)], torch.arange(n) % 2


def dataset_pairs(dataset: str, n: int, seed: int = 0):
    """``n`` pairs of ``dataset`` (ir_datasets id), half relevant, half not, as :func:`make_pairs` returns them."""
    from neuron_ig.ir.pairs import relevance_pairs

    pairs = [p for label in (1, 0) for p in relevance_pairs(dataset, (n + 1 - label) // 2, label, seed=seed)]
    return [p.query for p in pairs], [p.passage for p in pairs], torch.tensor([p.label for p in pairs])


def loop_reference(encoder, encoded, labels, steps, baseline="PAD_QUERY", points_per_batch=10):
    """(b) the authors' scheme: per pair, batches of 10 points, one backward per point, CPU copies."""
    layers = encoder.ffn_layers()
    embed = encoder.word_embeddings
    totals = []
    for i in range(len(encoded)):
        pair = encoded.select([i]).to(encoder.device)
        with torch.no_grad():
            x = embed(pair.input_ids)
            x0 = embed(baseline_ids(pair, baseline, encoder.tokenizer.pad_token_id))
        activations, gradients = [], []
        alphas = torch.linspace(0, 1, steps + 1, device=encoder.device)
        for chunk in torch.split(alphas, points_per_batch):
            recorded = {}
            hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: recorded.__setitem__(n, out)) for n, m in layers.items()]
            path = (x0 + chunk[:, None, None] * (x - x0)).requires_grad_(True)
            n = len(chunk)
            logits = encoder.model(inputs_embeds=path, attention_mask=pair.attention_mask.expand(n, -1),
                                   token_type_ids=pair.token_type_ids.expand(n, -1)).logits
            target = encoder.class_probabilities(logits)[:, int(labels[i])]
            for h in hooks:
                h.remove()
            for point in range(n):
                grads = torch.autograd.grad(target[point], list(recorded.values()), retain_graph=True)
                activations.append([recorded[name][point].detach().cpu() for name in layers])
                gradients.append([g[point].cpu() for g in grads])
        per_layer = []
        for layer in range(len(layers)):
            nig = sum(gradients[k][layer] * (activations[k + 1][layer] - activations[k][layer]) for k in range(steps))
            per_layer.append((nig * pair.attention_mask[0, :, None].cpu()).sum(0))
        totals.append(torch.stack(per_layer))
    return torch.stack(totals)  # [pairs, layers, units]


def captum_reference(encoder, encoded, labels, steps, baseline="PAD_QUERY"):
    """(c) captum LayerConductance, once per FFN layer, all pairs as one batch."""
    encoded = encoded.to(encoder.device)

    def class_probabilities(embeddings, attention_mask, token_type_ids):
        return encoder.class_probabilities(encoder.model(inputs_embeds=embeddings, attention_mask=attention_mask,
                                                         token_type_ids=token_type_ids).logits)

    with torch.no_grad():
        x = encoder.word_embeddings(encoded.input_ids)
        x0 = encoder.word_embeddings(baseline_ids(encoded, baseline, encoder.tokenizer.pad_token_id))
    totals = []
    for layer in encoder.ffn_layers().values():
        attributions = LayerConductance(class_probabilities, layer).attribute(
            x, baselines=x0, target=labels.to(encoder.device), n_steps=steps, method="riemann_trapezoid",
            additional_forward_args=(encoded.attention_mask, encoded.token_type_ids))
        totals.append((attributions * encoded.attention_mask[..., None]).sum(1).detach().cpu())
    return torch.stack(totals, dim=1)


def engine_batches(encoded, steps, batch_rows):
    """The pairs of each forward/backward batch of (a): length order, ``batch_rows // (m + 1)`` pairs a batch."""
    order = length_order(encoded)
    per_batch = max(1, batch_rows // (steps + 1))
    return [order[start:start + per_batch] for start in range(0, len(encoded), per_batch)]


def floor(encoder, encoded, labels, steps, batch_rows=BATCH_ROWS, precision="fp32", baseline="PAD_QUERY"):
    """(d) one forward pass of the m + 1 points of every pair, batched as (a), and one backward pass to the
    lowest FFN layer's activations (an autograd leaf there), no weight gradient."""
    lowest = next(iter(encoder.ffn_layers().values()))
    leaf = {}

    def make_leaf(_module, _inputs, output):
        leaf["activation"] = output.detach().requires_grad_(True)
        return leaf["activation"]

    handle = lowest.register_forward_hook(make_leaf)
    try:
        with frozen_parameters(encoder.model):
            for index in engine_batches(encoded, steps, batch_rows):
                batch = encoded.select(index).to(encoder.device)
                pairs, tokens = batch.input_ids.shape
                with torch.no_grad():
                    x = encoder.word_embeddings(batch.input_ids)
                    x0 = encoder.word_embeddings(baseline_ids(batch, baseline, encoder.tokenizer.pad_token_id))
                alphas = torch.linspace(0, 1, steps + 1, device=encoder.device)
                for chunk in torch.split(alphas, max(1, batch_rows // pairs)):
                    span = len(chunk)
                    path = (x0[:, None] + chunk[None, :, None, None] * (x - x0)[:, None]).reshape(pairs * span, tokens, -1)
                    with autocast(encoder.device, precision):
                        logits = encoder.model(inputs_embeds=path, attention_mask=batch.attention_mask.repeat_interleave(span, 0),
                                               token_type_ids=batch.token_type_ids.repeat_interleave(span, 0)).logits
                    target = encoder.class_probabilities(logits.float()).gather(1, labels[index].to(encoder.device).repeat_interleave(span)[:, None])
                    torch.autograd.grad(target.sum(), leaf["activation"])
    finally:
        handle.remove()


def row_flops(encoder, length: int) -> tuple[float, float]:
    """``(forward, backward)`` FLOPs of one path point of a pair of ``length`` real tokens, the backward pass to
    the activations with no weight gradient, down to the lowest FFN layer (the formula is in the module docstring)."""
    config = encoder.model.config
    h, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    weights, attention = 2 * (4 * h * h + 2 * h * f), 4 * length * h
    forward = layers * (weights + attention)
    backward = layers * (weights + 2 * attention) - (2 * 4 * h * h + 2 * attention)  # lowest layer: FFN only
    return forward * length, backward * length


def flops(encoder, encoded, steps) -> float:
    """Forward + backward FLOPs of the m + 1 points of every pair (:func:`row_flops`), real tokens only."""
    return sum((steps + 1) * sum(row_flops(encoder, length)) for length in encoded.attention_mask.sum(dim=1).tolist())


def loop_flops(encoder, encoded, steps, points_per_batch=10) -> float:
    """FLOPs of (b): each batch of n points is one forward pass of n rows and n backward passes of all n rows
    (one per point), so its backward work grows as n^2."""
    total = 0.0
    for length in encoded.attention_mask.sum(dim=1).tolist():
        forward, backward = row_flops(encoder, length)
        for n in [len(c) for c in torch.split(torch.arange(steps + 1), points_per_batch)]:
            total += n * forward + n * n * backward
    return total


def matmul_rate(device, precision, size=2048, seconds=3.0) -> float:
    """FLOP/s of a dense ``size`` x ``size`` matrix product in ``precision``: the hardware's practical peak here."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    with autocast(device, precision):
        a @ b
        best, spent = float("inf"), 0.0
        while spent < seconds:
            elapsed, _ = timed(lambda: a @ b)
            best, spent = min(best, elapsed), spent + elapsed
    return 2 * size ** 3 / best


def fast_bf16(device) -> bool:
    """Whether ``device`` multiplies bf16 matrices in hardware (CUDA, or a CPU with AVX512-BF16 or AMX)."""
    if torch.device(device).type == "cuda":
        return True
    flags = open("/proc/cpuinfo").read() if sys.platform == "linux" else ""
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def timed(function, *args, repeats=1):
    best, value = float("inf"), None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        value = function(*args)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, value


def agreement(exact: torch.Tensor, rounded: torch.Tensor, labels: torch.Tensor) -> dict:
    """bf16 against fp32 NIG, both ``[pairs, layers, units]``: the smaller Jaccard of the two classes' top-p% sets
    (class mean NIG) at every p, and the largest |difference| relative to the largest |fp32| value."""
    result = {"largest relative difference": ((rounded - exact).abs().max() / exact.abs().max()).item()}
    for p in P_VALUES:
        result[f"jaccard at p = {p:g}%"] = min(
            jaccard(top_p_percent(exact[labels == c].mean(0).numpy(), p), top_p_percent(rounded[labels == c].mean(0).numpy(), p))
            for c in labels.unique().tolist())
    return result


def model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that pick the model, the pairs and the threads, shared by the NIG benchmarks."""
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default=None, help="a cross-encoder id or folder (default: random weights, --model-config)")
    parser.add_argument("--model-config", choices=list(SHAPES), default="minilm-l6",
                        help="shape of the random BERT when no --model is given")
    parser.add_argument("--dataset", default=None, help="an ir_datasets id: real pairs, half relevant (default: synthetic)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")


def load(args):
    if args.model:
        return load_cross_encoder(args.model)
    layers, hidden, ffn, heads = SHAPES[args.model_config]
    encoder = random_cross_encoder(num_layers=layers, hidden_size=hidden, intermediate_size=ffn, num_heads=heads,
                                   initializer_range=0.05 if args.model_config == "minilm-l6" else 0.02)
    encoder.name = f"random {args.model_config}-shaped BERT"
    return encoder if not torch.cuda.is_available() else type(encoder)(encoder.model.cuda(), encoder.tokenizer, encoder.name, encoder.num_labels)


def pairs_of(args, tokenizer):
    queries, passages, labels = (dataset_pairs(args.dataset, args.pairs) if args.dataset
                                 else make_pairs(args.pairs, args.passage_words))
    return encode_pairs(tokenizer, queries, passages, args.max_length), labels


def peak_memory_child(args) -> None:
    """Run (a) once for ``args.steps`` and print the peak memory in MiB (RSS on CPU, allocated on CUDA)."""
    encoder = load(args)
    encoded, labels = pairs_of(args, encoder.tokenizer)
    neuron_integrated_gradients(encoder, encoded, labels, steps=args.steps, batch_rows=args.batch_rows)
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # VmHWM: this process's own peak RSS (ru_maxrss would include the forking parent's)
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        peak = int(status["VmHWM"].split()[0]) / 1024
    print(json.dumps({"peak_mib": peak}))


def peak_memory(args, steps: int, batch_rows: int) -> float:
    """Peak memory of (a) in a fresh process, for ``steps`` steps in chunks of at most ``batch_rows`` rows."""
    command = [sys.executable, __file__, "--memory-child", "--steps", str(steps), "--pairs", str(args.pairs),
               "--passage-words", str(args.passage_words), "--max-length", str(args.max_length), "--batch-rows", str(batch_rows),
               "--model-config", args.model_config]
    command += ["--model", args.model] if args.model else []
    command += ["--dataset", args.dataset] if args.dataset else []
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["peak_mib"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs of about 70 tokens, m = 16: under a minute")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--passage-words", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    parser.add_argument("--model", default=None, help="a cross-encoder id or folder (default: random weights, --model-config)")
    parser.add_argument("--model-config", choices=list(SHAPES), default="minilm-l6",
                        help="shape of the random BERT when no --model is given")
    parser.add_argument("--dataset", default=None, help="an ir_datasets id: real pairs, half relevant (default: synthetic pairs)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timed runs of (a) and (d) (and of (a16), (d16)), "
                        "best kept; > 1 adds a warm-up")
    parser.add_argument("--references", action="store_true", help="time the loop and captum with bert-large too (slow on a CPU)")
    parser.add_argument("--agreement-only", action="store_true", help="time only (a) and (a16) and check their agreement")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak memory check (two more runs of (a))")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.steps, args.passage_words = 3, 16, 50
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        return peak_memory_child(args)

    encoder = load(args)
    encoded, labels = pairs_of(args, encoder.tokenizer)
    real = int(encoded.attention_mask.sum())
    padded = {name: sum(len(i) * int(encoded.attention_mask[i].sum(1).max()) for i in batches)
              for name, batches in (("sorted", engine_batches(encoded, args.steps, args.batch_rows)),
                                    ("given order", [torch.arange(len(encoded))[s:s + max(1, args.batch_rows // (args.steps + 1))]
                                                     for s in range(0, len(encoded), max(1, args.batch_rows // (args.steps + 1)))]))}
    print(f"model {encoder.name}: {len(encoder.ffn_layers())} FFN layers; {args.pairs} pairs of {real / len(encoded):.0f} tokens "
          f"on average ({args.dataset or 'synthetic'}); m = {args.steps}; device {encoder.device}; torch threads {torch.get_num_threads()}")
    print("padding in the batches of (a): " + ", ".join(f"{name} {100 * (1 - real / total):.1f}%" for name, total in padded.items())
          + " of the rows' tokens (the floor (d) counts them too; the FLOP count does not)")

    references = args.model_config == "minilm-l6" or args.references or torch.cuda.is_available()
    engine = lambda precision: neuron_integrated_gradients(encoder, encoded, labels, steps=args.steps,
                                                           batch_rows=args.batch_rows, precision=precision).total()
    # bf16 without bf16 hardware (a CPU without AVX512-BF16 or AMX) is many times slower: timed once there
    repeats = {"fp32": args.repeats, "bf16": args.repeats if fast_bf16(encoder.device) else 1}
    for precision in ("fp32", "bf16"):
        if repeats[precision] > 1:
            engine(precision)  # warm-up
    rows, results = {}, {}
    for precision, suffix in (("fp32", ""), ("bf16", "16")):
        # (a) and (d) alternate, best of each kept, so that changes in the machine's load hit both alike
        for _ in range(repeats[precision]):
            seconds, results[precision] = timed(engine, precision)
            rows[f"a{suffix} engine {precision}"] = min(seconds, rows.get(f"a{suffix} engine {precision}", float("inf")))
            if not args.agreement_only:
                seconds, _ = timed(floor, encoder, encoded, labels, args.steps, args.batch_rows, precision)
                rows[f"d{suffix} floor {precision}"] = min(seconds, rows.get(f"d{suffix} floor {precision}", float("inf")))
    if references and not args.agreement_only:
        rows["b authors' loop"], results["loop"] = timed(loop_reference, encoder, encoded, labels, args.steps)
        rows["c captum per layer"], results["captum"] = timed(captum_reference, encoder, encoded, labels, args.steps)
    for name in ("loop", "captum") if "loop" in results else ():
        error = ((results["fp32"] - results[name]).abs().max() / results[name].abs().max()).item()
        print(f"max relative difference to {name}: {error:.1e}")
        assert error < 1e-3, f"the engine disagrees with the {name} reference"

    work = flops(encoder, encoded, args.steps)
    rate = {precision: matmul_rate(encoder.device, precision) for precision in ("fp32", "bf16")}
    print(f"FLOPs of forward + backward over the path (real tokens): {work / 1e12:.3f} TFLOP; dense matmul "
          + ", ".join(f"{p} {r / 1e9:.0f} GFLOP/s" for p, r in rate.items()))
    print(f"(b) does {loop_flops(encoder, encoded, args.steps) / work:.1f} times these FLOPs (a backward pass of its "
          "whole batch for every point): the most (a) can gain on it at the same FLOP rate")
    print(f"\n{'scheme':<22}{'seconds':>10}{'pairs/s':>10}{'of FLOP floor':>15}")
    for name, seconds in rows.items():
        precision = "bf16" if "16" in name.split()[0] else "fp32"
        print(f"{name:<22}{seconds:>10.2f}{args.pairs / seconds:>10.3f}{work / rate[precision] / seconds:>14.1%}")

    check = agreement(results["fp32"], results["bf16"], labels)
    passes = check["jaccard at p = 1%"] >= 0.9
    print(f"\nbf16 against fp32 ({encoder.name}, {args.dataset or 'synthetic pairs'}): "
          + ", ".join(f"{k} {v:.3f}" for k, v in check.items()) + f": {'passes' if passes else 'fails'} (Jaccard >= 0.9 at p = 1%)")
    if args.agreement_only:
        return
    if not args.no_memory:
        # the same chunk of m + 1 rows for both: memory is bounded by the chunk, whatever the number of steps
        memory = {steps: peak_memory(args, steps, args.steps + 1) for steps in (args.steps, 3 * args.steps)}
        print(f"peak memory of (a), chunks of {args.steps + 1} rows: " + ", ".join(f"m = {s}: {mib:.0f} MiB" for s, mib in memory.items()))
    a, a16 = rows["a engine fp32"], rows["a16 engine bf16"]
    b, c = rows.get("b authors' loop", float("nan")), rows.get("c captum per layer", float("nan"))
    print(f"nig-speed vs-loop={b / a:.1f} vs-captum={c / a:.1f} vs-floor={a / rows['d floor fp32']:.2f} bf16-speedup={a / a16:.2f}")


if __name__ == "__main__":
    main()
