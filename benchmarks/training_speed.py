"""Seconds per fine-tuning step of the embedded cross-encoder, with either AdamW of torch and with the weight average, one process.

Each setting trains its own copy of the packaged encoder on the same real groups of the default recipe's sources
(GCIDE train queries, TREC RAG 2024 train queries with their own passages, GCIDE headwords with definitions:
lengths as in training; the teacher, which only sets the loss's targets, is left out). After a warm-up step each,
the settings take turns on every one of ``--steps`` batches, because this machine is noisy; each setting's median
step time is reported with its speedup, the median over steps of the first setting's time / its own. The last line
is ``training-speed <setting>=<median>s,<speedup>x ...``.

    python benchmarks/training_speed.py   # torch's per-tensor AdamW (first), the fused one, the fused one + weight average
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import time
import warnings

import torch

from neuron_ig.embedded_model import training
from neuron_ig.engine.models import packaged_minilm_path

SETTINGS = {"loop AdamW": dict(fused_adamw=False, weight_average=0.0), "fused AdamW": dict(fused_adamw=True, weight_average=0.0),
            "fused averaged (default)": dict(fused_adamw=True, weight_average=0.75)}  # averaged at every timed step


def step_groups(config: training.TrainingConfig, steps: int) -> tuple[list[tuple[str, list[str]]], list[int]]:
    """``steps`` steps' groups of the sources in the training order, RAG groups from each query's own passages, and
    how many of each source a step takes (:func:`neuron_ig.embedded_model.training.training_batches`)."""
    from neuron_ig.ir.trec_rag import rag_queries

    short = dataclasses.replace(config, steps=steps)
    rag = [q for q in rag_queries("train") if len(q.passages) > config.negatives]
    random.Random(0).shuffle(rag)
    rag = [(q.query, q.passages[:1 + config.negatives]) for q in rag[:steps * config.rag_groups_per_step]]
    return training.training_batches(short, rag)


class Trainer:
    """One setting's model, optimizer and step (forward, loss, backward, clipping, optimizer step, the running weight
    average if the setting keeps one), as ``_fine_tune``."""

    def __init__(self, config: training.TrainingConfig):
        self.model, self.tokenizer = training.untrained_cross_encoder(packaged_minilm_path(), config)
        self.optimizer = training.make_optimizer(self.model, config)
        self.averaged = torch.optim.swa_utils.AveragedModel(self.model) if config.weight_average else None
        self.config = config

    def step(self, batch, sizes: list[int]) -> float:
        started = time.perf_counter()
        logits = training.step_logits(self.model, self.tokenizer, batch, sizes, self.config.max_length)
        loss, _ = training.group_loss(logits, self.config.negatives)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad()
        if self.averaged is not None:
            self.averaged.update_parameters(self.model)
        return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=24, help="timed steps per setting")
    parser.add_argument("--threads", type=int, default=training.TrainingConfig().threads)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")

    config = training.TrainingConfig()
    groups, sizes = step_groups(config, 1 + args.steps)
    per_step = sum(sizes)
    batches = [groups[s * per_step:(s + 1) * per_step] for s in range(len(groups) // per_step)]
    trainers = {name: Trainer(dataclasses.replace(config, **knobs)) for name, knobs in SETTINGS.items()}
    for trainer in trainers.values():
        trainer.step(batches[0], sizes)  # warm-up
    times = {name: [] for name in trainers}
    for batch in batches[1:]:  # every setting steps on the same batch in turn: slow spells of the machine hit all alike
        for name, trainer in trainers.items():
            times[name].append(trainer.step(batch, sizes))
    medians = {name: statistics.median(t) for name, t in times.items()}
    first = next(iter(times))
    speedups = {name: statistics.median(a / b for a, b in zip(times[first], t)) for name, t in times.items()}
    print(f"{config.threads} threads, {per_step} groups of {1 + config.negatives} pairs a step, {len(batches) - 1} timed steps "
          f"per setting; speedup: the median over steps of the first setting's time / this one's")
    for name, median in medians.items():
        print(f"  {name:22s} {median:.3f} s/step  {speedups[name]:.2f}x")
    slug = {name: name.split(" (")[0].replace(" ", "-") for name in medians}
    print("training-speed " + " ".join(f"{slug[name]}={median:.3f}s,{speedups[name]:.2f}x" for name, median in medians.items()))


if __name__ == "__main__":
    main()
