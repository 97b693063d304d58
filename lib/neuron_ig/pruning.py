"""Pruning FFN neurons: zeroing their activations through forward hooks, and re-ranking with the pruned model.

A neuron set is a boolean mask ``[layers, units]`` over the FFN intermediate units (as in
:mod:`neuron_ig.selection`). :class:`NeuronPruning` zeroes the selected units' activations, at every
token position or only at the positions of some token types, for as long as it is active: no weights
change, and once its hooks are removed the model computes exactly what it computed before. Prunings
compose: two active at once zero the union of their units.

:func:`random_control` draws the control of a set: as many random neurons in every layer.
:func:`pruned_scores` re-ranks a :class:`neuron_ig.evaluation.RerankInputs` with a pruned model, without
gradients, cached per (model, neuron set, re-ranking task). :func:`pruning_study` lists its re-rankings first, so
that under the runner on several ranks they are shared out by rank (:mod:`neuron_ig.distributed`).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from . import cache, distributed
from .encoding import SEGMENTS
from .models import CrossEncoder, autocast


def as_mask(neurons, shape: tuple[int, int]) -> np.ndarray:
    """A boolean mask ``[layers, units]`` from a mask of that shape or ``(layer, unit)`` pairs.

    Raises:
        ValueError: the mask has another shape, or a pair is outside it.
    """
    array = np.asarray(neurons.cpu() if isinstance(neurons, torch.Tensor) else neurons)
    if array.dtype == bool:
        if array.shape != tuple(shape):
            raise ValueError(f"neuron mask of shape {array.shape} for a model of {shape[0]} layers x {shape[1]} units: "
                             "select the neurons of this model")
        return array
    if array.size == 0:
        return np.zeros(shape, dtype=bool)
    if array.ndim != 2 or array.shape[1] != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"neurons must be a boolean mask [layers, units] or integer (layer, unit) pairs, got an array "
                         f"of shape {array.shape} and dtype {array.dtype}: e.g. top_p_percent(scores, 1.0)")
    mask = np.zeros(shape, dtype=bool)
    for layer, unit in array.tolist():
        if not (0 <= layer < shape[0] and 0 <= unit < shape[1]):
            raise ValueError(f"neuron {(layer, unit)} is outside the model's {shape[0]} layers x {shape[1]} units")
        mask[layer, unit] = True
    return mask


def ffn_shape(encoder: CrossEncoder) -> tuple[int, int]:
    """``(layers, units)`` of the encoder's FFN intermediate neurons."""
    layers = list(encoder.ffn_layers().values())
    return len(layers), layers[0].dense.out_features


def checked_token_types(token_types: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Token types as a sorted tuple (one name may be given as a string), or None for every position.

    Raises:
        ValueError: a name is not one of ``CLS``, ``query``, ``SEP``, ``passage``.
    """
    if isinstance(token_types, str):
        token_types = [token_types]
    unknown = sorted(set(token_types or ()) - set(SEGMENTS[:-1]))
    if unknown:
        raise ValueError(f"unknown token types {unknown}: choose among {', '.join(SEGMENTS[:-1])}")
    return tuple(sorted(set(token_types))) if token_types else None


class NeuronPruning:
    """Zeroes the activations of the FFN neurons in ``neurons`` while active (a context manager).

    Args:
        encoder: the cross-encoder to prune.
        neurons: a mask ``[layers, units]`` or ``(layer, unit)`` pairs.
        token_types: zero only at the positions of these segments (names of
            :data:`neuron_ig.encoding.SEGMENTS`: ``CLS``, ``query``, ``SEP``, ``passage``); default every position.

    Hooks go only on the layers that have selected units. ``attach()`` / ``remove()`` do what ``with`` does.
    Without gradients (scoring) the units are zeroed in place, so another forward hook on the same module
    that keeps the activation tensor sees the zeros; with gradients a zeroed copy is returned.
    """

    def __init__(self, encoder: CrossEncoder, neurons, *, token_types: Sequence[str] | None = None):
        self.encoder = encoder
        self.mask = as_mask(neurons, ffn_shape(encoder))
        self.token_types = checked_token_types(token_types)
        self._handles = []
        self._positions = None  # [batch, tokens] bool of the current forward pass, with token_types

    def __enter__(self) -> "NeuronPruning":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.remove()

    def attach(self) -> "NeuronPruning":
        if self._handles:
            raise RuntimeError("this pruning is already attached: remove() it first")
        for layer, module in enumerate(self.encoder.ffn_layers().values()):
            units = np.flatnonzero(self.mask[layer])
            if units.size:
                index = torch.as_tensor(units, device=self.encoder.device)
                self._handles.append(module.register_forward_hook(lambda m, i, out, index=index: self._zero(out, index)))
        if self.token_types and self._handles:
            self._handles.append(self.encoder.model.register_forward_pre_hook(self._find_positions, with_kwargs=True))
        return self

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles, self._positions = [], None

    def _zero(self, output: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # scoring: zero in place, no copy of the activations (2% instead of 10%)
            if self._positions is None:
                return output.index_fill_(-1, units, 0.0)
            output[..., units] = output[..., units] * ~self._positions[..., None]
            return output
        zeroed = output.index_fill(-1, units, 0.0)  # with gradients: out of place, autograd keeps the original
        if self._positions is None:
            return zeroed
        return torch.where(self._positions[..., None], zeroed, output)

    def _find_positions(self, module, args, kwargs):
        """Before each forward pass: the positions of the chosen token types, from the input ids.

        Segments follow :mod:`neuron_ig.encoding`: the [CLS] at position 0 is CLS, every [SEP] is SEP,
        other tokens before the first [SEP] are the query, after it the passage; padding is never selected.
        """
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        if input_ids is None:
            raise ValueError("pruning by token type reads the token ids: call the model with input_ids, not inputs_embeds")
        attention_mask = kwargs.get("attention_mask")
        tokenizer = self.encoder.tokenizer
        real = attention_mask.bool() if attention_mask is not None else input_ids != tokenizer.pad_token_id
        sep = (input_ids == tokenizer.sep_token_id) & real
        first = torch.zeros_like(real)
        first[:, 0] = input_ids[:, 0] == tokenizer.cls_token_id
        seps_before = torch.cumsum(sep, dim=1) - sep.long()
        text = real & ~sep & ~first  # [UNK] and [MASK] typed in a text belong to it, as in encode_pairs
        segments = {"CLS": first, "SEP": sep, "query": text & (seps_before == 0), "passage": text & (seps_before >= 1)}
        self._positions = torch.stack([segments[name] for name in self.token_types]).any(dim=0)


def random_control(mask: np.ndarray, seed: int) -> np.ndarray:
    """A random set with the per-layer counts of ``mask``: in every layer, as many units drawn uniformly.

    Depends only on the counts and the seed, so two sets with the same counts get the same controls.
    """
    mask = np.asarray(mask, dtype=bool)
    control = np.zeros_like(mask)
    for layer, count in enumerate(mask.sum(axis=1)):
        if count:
            rng = np.random.default_rng([seed, layer])
            control[layer, rng.choice(mask.shape[1], size=int(count), replace=False)] = True
    return control


def mask_fingerprint(mask: np.ndarray) -> str:
    """A short hash of a neuron set (its shape and selected units)."""
    mask = np.asarray(mask, dtype=bool)
    return hashlib.sha256(f"{mask.shape}".encode() + np.packbits(mask).tobytes()).hexdigest()[:16]


def weights_fingerprint(encoder: CrossEncoder) -> str:
    """A hash of the encoder's parameters and buffers (any model, saved or in memory), 16 hex digits.

    Computed once per encoder object and kept on it: weights changed in place afterwards are not seen.
    """
    if getattr(encoder, "_weights_fingerprint", None) is None:
        digest = hashlib.sha256()
        for name, tensor in sorted(encoder.model.state_dict().items()):
            digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        encoder._weights_fingerprint = digest.hexdigest()[:16]
    return encoder._weights_fingerprint


def _scores_entry(encoder: CrossEncoder, inputs, neurons=None, *, token_types: Sequence[str] | None = None,
                  precision: str = "fp32") -> tuple[Path, np.ndarray, tuple[str, ...] | None]:
    """``(cache entry, mask [layers, units], token types)`` of :func:`pruned_scores` with these arguments."""
    shape = ffn_shape(encoder)
    mask = np.zeros(shape, dtype=bool) if neurons is None else as_mask(neurons, shape)
    types = checked_token_types(token_types)
    types = types if mask.any() else None  # an empty set prunes nothing, wherever
    autocast(encoder.device, precision)  # an unknown or unavailable precision is refused before the cache is read
    parameters = {"model": encoder.name, "weights": weights_fingerprint(encoder), **inputs.parameters,
                  "neurons": mask_fingerprint(mask) if mask.any() else "none", "token_types": types,
                  **({"precision": precision} if precision != "fp32" else {})}
    path = (cache.cache_root() / "pruning" / cache.slug(encoder.name.rstrip("/").split("/")[-1])
            / cache.slug(inputs.dataset_id) / f"{cache.parameters_key(parameters)}.npz")
    return path, mask, types


def pruned_scores(encoder: CrossEncoder, inputs, neurons=None, *, token_types: Sequence[str] | None = None,
                  precision: str = "fp32", progress: bool = False) -> np.ndarray:
    """Log-odds of relevance of every pair of ``inputs`` (a :class:`RerankInputs`) with ``neurons`` pruned.

    ``neurons=None`` (or an empty set) scores the unpruned model. Returns ``[pairs]`` float32, in the
    order of ``inputs.pairs``. ``precision``: one of :data:`neuron_ig.models.PRECISIONS` (``"bf16"``:
    autocast). Cached in ``<cache>/pruning/<model>/<dataset>/`` by a hash of the model's weights
    (:func:`weights_fingerprint`), the task's parameters, the set, the token types and the precision
    (left out of the key for fp32, so that earlier fp32 scores stay valid).
    """
    path, mask, types = _scores_entry(encoder, inputs, neurons, token_types=token_types, precision=precision)
    with cache.computing(path) as done:  # checked against its manifest; one process computes it at a time
        if done:
            return cache.load_arrays(path)["scores"]
        with NeuronPruning(encoder, mask, token_types=types):
            scores = encoder.score_batches(inputs.batches, progress=progress, log_odds=True,
                                           precision=precision).numpy().astype(np.float32)
        cache.save_arrays(path, scores=scores)
    return scores


# --- the pruning study: every neuron set and its random controls, on every re-ranking task --------

MEASURES = ("nDCG@10", "RR@10")


def pruning_study(encoder: CrossEncoder, tasks, schemes, *, random_seeds: int = 3, matched_seeds: int | None = None,
                  seed: int = 0, token_types: Sequence[str] | None = None, n_resamples: int = 10_000, precision: str = "fp32",
                  progress: bool = True, controlled: Sequence[str] | None = None,
                  control_tasks: Sequence[str] | None = None, activation: np.ndarray | None = None):
    """Re-rank every task with every neuron set pruned, and with its random controls; compare per query.

    Pruned models re-score only the pairs of each task's informative queries
    (:func:`neuron_ig.evaluation.informative_part`): the other queries' measures are 0 whatever the model.

    Args:
        encoder: the cross-encoder.
        tasks: ``{name: RerankInputs}`` (:func:`neuron_ig.evaluation.rerank_inputs`), e.g. one per collection.
        schemes: ``{name: mask [layers, units]}``, the neuron sets to prune.
        random_seeds: R, random controls per controlled set (:func:`random_control`, seeds ``seed``, ``seed + 1``...).
        controlled: the schemes that get controls (default: every one); the others are scored without.
        control_tasks: the tasks on which controls are scored (default: every one).
        activation: mean activation of every neuron ``[layers, units]``
            (:func:`neuron_ig.controls.mean_activation`): when given, each controlled set also gets
            ``matched_seeds`` controls matched on activation within each layer
            (:func:`neuron_ig.controls.activation_matched_controls`).
        matched_seeds: activation-matched controls per controlled set (default: ``random_seeds``).
        token_types: prune only at these token types (default: every position).
        precision: the re-rankings' arithmetic (:func:`pruned_scores`).

    Returns ``(table, per_query)``:

    - ``table``, one row per (scheme, task): ``neurons``; ``nDCG@10`` pruned, ``unpruned nDCG@10``,
      ``BM25 nDCG@10``; ``delta`` (pruned - unpruned, mean over queries) and its ``p vs unpruned`` (paired
      randomization test, :func:`neuron_ig.evaluation.paired_test`); ``delta RR@10``; ``controls`` (R, 0 for a
      row without); ``random controls`` and ``matched controls`` (the count of each kind). With controls: their deltas ``random delta`` (mean over controls), ``random sd``,
      ``random min``, ``random max``; ``delta vs random`` (the set's delta minus the controls' mean delta);
      ``p random (rank)`` and ``p random (t)`` (:func:`neuron_ig.controls.control_test`: the set's delta against
      the spread of its R controls' deltas, the null); ``p vs random (paired)`` (a secondary per-query test
      against the controls' per-query mean, which ignores how much controls differ from each other). With
      ``activation``, the same columns for ``matched`` controls.
    - ``per_query``: columns ``scheme``, ``variant`` (``"set"`` for the set itself, ``"random <seed>"`` and
      ``"matched <seed>"`` for controls; the unpruned model is scheme ``"unpruned"``, BM25 ``"BM25"``), ``task``,
      ``query_id`` and one column per measure.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    from .controls import activation_matched_controls, control_test
    from .evaluation import informative_part, paired_test, per_query_measures

    matched_seeds = random_seeds if matched_seeds is None else matched_seeds
    for name, value in (("random_seeds", random_seeds), ("matched_seeds", matched_seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    unknown = sorted(set(controlled or ()) - set(schemes)) + sorted(set(control_tasks or ()) - set(tasks))
    if unknown:
        raise ValueError(f"controlled sets or tasks {unknown} are not among the schemes {list(schemes)} or tasks {list(tasks)}")
    controlled = list(schemes) if controlled is None else list(controlled)
    control_tasks = list(tasks) if control_tasks is None else list(control_tasks)
    seeds = [seed + s for s in range(random_seeds)]
    kinds = ["random"] + (["matched"] if activation is not None else [])

    def controls_of(name, mask):
        """{variant: control mask} of one scheme."""
        if name not in controlled:
            return {}
        out = {f"random {s}": random_control(mask, s) for s in seeds}
        if activation is not None and np.asarray(mask).any():
            out.update({f"matched {seed + s}": m for s, m in
                        enumerate(activation_matched_controls(mask, activation, matched_seeds, seed=seed))})
        return out

    variants = {name: controls_of(name, mask) for name, mask in schemes.items()}
    runs = {}  # {task: [(scheme, variant, neurons)]}: every re-ranking, in a fixed order
    for task_name in tasks:
        runs[task_name] = [("unpruned", "set", None)]
        for name, mask in schemes.items():
            runs[task_name].append((name, "set", mask))
            if task_name in control_tasks:
                runs[task_name] += [(name, variant, control) for variant, control in variants[name].items()]
    score = {"token_types": token_types, "precision": precision}
    informative = {t: informative_part(inputs, encoder.tokenizer) for t, inputs in tasks.items()}  # (task, positions)

    def scored_on(task_name, neurons):
        """The pairs a run scores: every pair for the unpruned model, the informative queries' for a pruned one."""
        return tasks[task_name] if neurons is None else informative[task_name][0]

    distributed.share([(_scores_entry(encoder, scored_on(t, neurons), neurons, **score)[0],  # alone: in order
                        functools.partial(pruned_scores, encoder, scored_on(t, neurons), neurons, **score))
                       for t, task_runs in runs.items() for _, _, neurons in task_runs])
    bar = tqdm(total=sum(map(len, runs.values())), desc="pruned re-ranking", unit="run", disable=not progress)
    rows = []
    for task_name, inputs in tasks.items():
        def measured(run):
            values = per_query_measures(run, inputs.qrels, MEASURES, inputs.min_grade)
            return [{"query_id": q, **{m: values[m][q] for m in MEASURES}} for q in values[MEASURES[0]]]

        rows += [{"scheme": "BM25", "variant": "set", "task": task_name, **r} for r in measured(inputs.first_stage)]
        unpruned_scores = pruned_scores(encoder, inputs, None, **score)
        for scheme, variant, neurons in runs[task_name]:
            scores = unpruned_scores.copy()  # the other queries' measures are 0 whatever their scores
            if neurons is not None:
                scores[informative[task_name][1]] = pruned_scores(encoder, informative[task_name][0], neurons, **score)
            bar.update()
            rows += [{"scheme": scheme, "variant": variant, "task": task_name, **r} for r in measured(inputs.run(scores))]
    bar.close()
    per_query_table = pd.DataFrame(rows)

    table = []
    for task_name in tasks:
        at_task = per_query_table[per_query_table["task"] == task_name]
        values = {key: group.set_index("query_id")[list(MEASURES)]
                  for key, group in at_task.groupby(["scheme", "variant"], sort=False)}
        unpruned = values[("unpruned", "set")]
        for name, mask in schemes.items():
            pruned = values[(name, "set")]
            versus_unpruned = paired_test(pruned["nDCG@10"].to_dict(), unpruned["nDCG@10"].to_dict(),
                                          n_resamples=n_resamples, seed=seed)
            row = {"scheme": name, "task": task_name, "neurons": int(np.asarray(mask).sum()),
                   "nDCG@10": pruned["nDCG@10"].mean(), "unpruned nDCG@10": unpruned["nDCG@10"].mean(),
                   "BM25 nDCG@10": values[("BM25", "set")]["nDCG@10"].mean(),
                   "delta": versus_unpruned["delta"], "p vs unpruned": versus_unpruned["p randomization"],
                   "delta RR@10": pruned["RR@10"].mean() - unpruned["RR@10"].mean(), "controls": 0,
                   **{f"{kind} controls": 0 for kind in kinds}}
            for kind in kinds:
                if task_name not in control_tasks:
                    break
                controls = [values[(name, v)]["nDCG@10"] for v in variants[name] if v.startswith(kind + " ")]
                if not controls:
                    continue
                deltas = np.array([c.mean() - unpruned["nDCG@10"].mean() for c in controls])
                paired = paired_test(pruned["nDCG@10"].to_dict(), pd.concat(controls, axis=1).mean(axis=1).to_dict(),
                                     n_resamples=n_resamples, seed=seed)
                test = control_test(row["delta"], deltas) if len(deltas) >= 2 else {"p rank": np.nan, "p t": np.nan}
                row.update({"controls": max(row["controls"], len(deltas)), f"{kind} controls": len(deltas),
                            f"{kind} delta": deltas.mean(),
                            f"{kind} sd": deltas.std(ddof=1) if len(deltas) > 1 else np.nan,
                            f"{kind} min": deltas.min(), f"{kind} max": deltas.max(),
                            f"delta vs {kind}": row["delta"] - deltas.mean(),
                            f"p {kind} (rank)": test["p rank"], f"p {kind} (t)": test["p t"],
                            f"p vs {kind} (paired)": paired["p randomization"]})
            table.append(row)
    return pd.DataFrame(table), per_query_table


def choose_control_tests(table, *, family: str = "set", alpha: float = 0.05):
    """Each controlled row's test against its controls, chosen for its Holm family, and the Holm adjustment.

    ``table``: a pruning study table with a ``family`` column (e.g. ``set``: each set over its classes, tasks and
    p). Within each family, over its rows with controls and neurons: the rank p-value when its floor
    1 / (R + 1) can pass alpha / (family size), else the t prediction interval
    (:func:`neuron_ig.controls.control_method`). Adds, per kind of control (``random``, ``matched``):
    ``p vs <kind>`` (the chosen p), ``test vs <kind>`` (its name) and ``p vs <kind> (Holm)``; ``family size``.
    Returns a new table.
    """
    from .controls import control_method
    from .evaluation import holm

    table = table.copy()
    table["family size"] = 0
    for kind in ("random", "matched"):
        if f"p {kind} (rank)" not in table:
            continue
        table[f"p vs {kind}"] = np.nan
        table[f"test vs {kind}"] = "no control"
        table[f"p vs {kind} (Holm)"] = np.nan
        tested = table[(table["neurons"] > 0) & table[f"p {kind} (rank)"].notna()]
        for _, rows in tested.groupby(family, sort=False):
            counts = rows[f"{kind} controls"] if f"{kind} controls" in rows else rows["controls"]
            methods = [control_method(int(r), len(rows), alpha) for r in counts]
            p = [row[f"p {kind} (rank)"] if m.startswith("rank") else row[f"p {kind} (t)"]
                 for m, (_, row) in zip(methods, rows.iterrows())]
            table.loc[rows.index, f"p vs {kind}"] = p
            table.loc[rows.index, f"test vs {kind}"] = methods
            table.loc[rows.index, f"p vs {kind} (Holm)"] = holm(np.asarray(p, dtype=float))
            table.loc[rows.index, "family size"] = len(rows)
        table.loc[(table["neurons"] == 0) & (table["controls"] > 0), f"test vs {kind}"] = "empty set"
    return table


def relevance_pruning(encoder: CrossEncoder, tasks, scores, in_domain: str, p_values: Sequence[float], *,
                      sets: Sequence[str] | None = None, random_seeds: int = 3, matched_seeds: int | None = None, seed: int = 0,
                      token_types: Sequence[str] | None = None, precision: str = "fp32", progress: bool = True,
                      controlled_sets: Sequence[str] | None = None, control_tasks: Sequence[str] | None = None,
                      activation: np.ndarray | None = None, normalise: str | None = None):
    """The pruning study of the relevance neurons: every class's sets at every p (Figures 6 and 7).

    The arguments not listed here are :func:`pruning_study`'s.

    Args:
        scores: ``{class name: {dataset: class mean [layers, units]}}`` (:func:`neuron_ig.aggregation.class_means`).
        in_domain: the in-domain dataset's key.
        sets: keep only these sets of :func:`neuron_ig.selection.pruning_schemes` (e.g. ``["top: <in-domain>"]``).
        controlled_sets: the sets (names of :func:`~neuron_ig.selection.pruning_schemes`, every class) that get
            the ``random_seeds`` controls (default: every set); the others are marked "no control".
        normalise: the fusion's normalisation (:func:`neuron_ig.selection.fusion`).

    Returns ``(table, per_query)`` as :func:`pruning_study` does, with columns ``p``, ``class`` and ``set``
    added, ``scheme`` being ``"<class> · <set>"``, and the tests against the controls of
    :func:`choose_control_tests`, one Holm family per set (e.g. ``"top: <in-domain>"``) over its non-empty
    controlled rows (classes, tasks and p values). The per-query table holds every p.
    """
    import pandas as pd

    from .selection import pruning_schemes

    tables, per_query = [], []
    for p in p_values:
        schemes, names = {}, {}
        for class_name, per_dataset in scores.items():
            if not per_dataset:
                continue
            for name, mask in pruning_schemes(per_dataset, in_domain, p, normalise=normalise).items():
                if sets is None or name in sets:
                    schemes[f"{class_name} · {name}"] = mask
                    names[f"{class_name} · {name}"] = (class_name, name)
        controlled = [s for s, (_, name) in names.items() if controlled_sets is None or name in controlled_sets]
        table, queries = pruning_study(encoder, tasks, schemes, random_seeds=random_seeds, matched_seeds=matched_seeds, seed=seed,
                                       token_types=token_types, precision=precision, progress=progress,
                                       controlled=controlled, control_tasks=control_tasks, activation=activation)
        table.insert(0, "p", p)
        table.insert(1, "class", [names[s][0] for s in table["scheme"]])
        table.insert(2, "set", [names[s][1] for s in table["scheme"]])
        tables.append(table)
        per_query.append(queries.assign(p=p))
    table = choose_control_tests(pd.concat(tables, ignore_index=True), family="set")
    return table, pd.concat(per_query, ignore_index=True)
