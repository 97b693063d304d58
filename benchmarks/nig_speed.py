"""Speed of the NIG engine against three references, on the same model, pairs and steps, in one process.

(a) ``neuron_ig.nig``: path points of several pairs batched, one backward pass per batch, step differences
    accumulated on the fly.
(b) the scheme of the authors' public code, written here as the reference: one pair at a time, path
    points in batches of 10, one backward call per path point (retain_graph), activations and
    gradients copied to the CPU at every point, NIG summed on the CPU.
(c) ``captum.attr.LayerConductance``, called once per FFN layer.
(d) the floor: m plain forward + backward passes of the same batch of pairs.

The model is a BERT with the MiniLM-L6 shape (6 layers, hidden 384, FFN 1536, 12 heads) or, with
``--model``, any cross-encoder folder or id. Ratios are taken in one run because this machine is noisy.
The last line is ``nig-speed vs-loop=<a/b speed-up> vs-captum=<a/c speed-up> vs-floor=<time a / time d>``.

    python benchmarks/nig_speed.py            # 8 pairs, m = 50, length 128
    python benchmarks/nig_speed.py --quick    # under a minute
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import torch
from captum.attr import LayerConductance

from neuron_ig.baselines import baseline_ids
from neuron_ig.encoding import encode_pairs
from neuron_ig.models import load_cross_encoder, random_cross_encoder
from neuron_ig.nig import neuron_integrated_gradients

WORDS = ("lift drag wing boundary layer flow pressure shock wave supersonic heat transfer laminar turbulent "
         "nozzle jet noise thrust engine blade rotor vortex stability panel flutter buckling load stress").split()


def make_pairs(n: int, passage_words: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    pick = lambda k: " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (k,), generator=generator))
    return [pick(6) for _ in range(n)], [pick(passage_words) for _ in range(n)], torch.arange(n) % 2


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


def floor(encoder, encoded, labels, steps):
    """(d) m forward + backward passes of the batch of pairs, gradients w.r.t. the input embeddings only."""
    encoded = encoded.to(encoder.device)
    labels = labels.to(encoder.device)
    for p in encoder.model.parameters():
        p.requires_grad_(False)
    for _ in range(steps):
        x = encoder.word_embeddings(encoded.input_ids).detach().requires_grad_(True)
        logits = encoder.model(inputs_embeds=x, attention_mask=encoded.attention_mask, token_type_ids=encoded.token_type_ids).logits
        torch.autograd.grad(encoder.class_probabilities(logits).gather(1, labels[:, None]).sum(), x)
    for p in encoder.model.parameters():
        p.requires_grad_(True)


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


def load(model):
    if model:
        return load_cross_encoder(model)
    encoder = random_cross_encoder(num_layers=6, hidden_size=384, intermediate_size=1536, num_heads=12, initializer_range=0.05)
    return encoder if not torch.cuda.is_available() else type(encoder)(encoder.model.cuda(), encoder.tokenizer, encoder.name, encoder.num_labels)


def peak_memory_child(args) -> None:
    """Run (a) once for ``args.steps`` and print the peak memory in MiB (RSS on CPU, allocated on CUDA)."""
    encoder = load(args.model)
    queries, passages, labels = make_pairs(args.pairs, args.passage_words)
    encoded = encode_pairs(encoder.tokenizer, queries, passages, args.max_length)
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
               "--passage-words", str(args.passage_words), "--max-length", str(args.max_length), "--batch-rows", str(batch_rows)]
    if args.model:
        command += ["--model", args.model]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])["peak_mib"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs of about 70 tokens, m = 16: under a minute")
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--passage-words", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-rows", type=int, default=128)
    parser.add_argument("--model", default=None, help="a cross-encoder id or folder (default: random MiniLM-L6-shaped BERT)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.steps, args.passage_words = 3, 16, 50
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_child:
        return peak_memory_child(args)

    encoder = load(args.model)
    queries, passages, labels = make_pairs(args.pairs, args.passage_words)
    encoded = encode_pairs(encoder.tokenizer, queries, passages, args.max_length)
    print(f"model {encoder.name}: {len(encoder.ffn_layers())} FFN layers; {args.pairs} pairs of "
          f"{encoded.input_ids.shape[1]} tokens; m = {args.steps}; device {encoder.device}; torch threads {torch.get_num_threads()}")

    engine = lambda: neuron_integrated_gradients(encoder, encoded, labels, steps=args.steps, batch_rows=args.batch_rows).total()
    engine()  # warm-up
    rows = {}
    rows["a engine"], ours = timed(engine, repeats=2)
    rows["b authors' loop"], loop = timed(loop_reference, encoder, encoded, labels, args.steps)
    rows["c captum per layer"], captum = timed(captum_reference, encoder, encoded, labels, args.steps)
    rows["d floor (m fwd+bwd)"], _ = timed(floor, encoder, encoded, labels, args.steps, repeats=2)
    for name, reference in (("authors' loop", loop), ("captum", captum)):
        error = ((ours - reference).abs().max() / reference.abs().max()).item()
        print(f"max relative difference to {name}: {error:.1e}")
        assert error < 1e-3, f"the engine disagrees with the {name} reference"

    print(f"\n{'scheme':<22}{'seconds':>10}{'pairs/s':>10}")
    for name, seconds in rows.items():
        print(f"{name:<22}{seconds:>10.2f}{args.pairs / seconds:>10.2f}")
    # the same chunk of m + 1 rows for both: memory is bounded by the chunk, whatever the number of steps
    memory = {steps: peak_memory(args, steps, args.steps + 1) for steps in (args.steps, 4 * args.steps)}
    print(f"peak memory of (a), chunks of {args.steps + 1} rows: " + ", ".join(f"m = {s}: {mib:.0f} MiB" for s, mib in memory.items()))
    a, b, c, d = rows.values()
    print(f"nig-speed vs-loop={b / a:.1f} vs-captum={c / a:.1f} vs-floor={a / d:.2f}")


if __name__ == "__main__":
    main()
