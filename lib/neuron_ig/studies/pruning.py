"""The pruning study: re-ranking with pruned models against random controls.

:func:`pruned_scores` re-ranks a :class:`neuron_ig.ir.measures.RerankInputs` with a model pruned by
:class:`neuron_ig.engine.pruning_hooks.NeuronPruning`, without gradients, cached per (model, neuron set,
re-ranking task). :func:`pruning_study` lists its re-rankings first, so that under the runner on several ranks
they are shared out by rank (:mod:`neuron_ig.runtime.distributed`); each set's controls come from
:mod:`neuron_ig.stats.controls` (:func:`mean_activation` gives the activations that matched controls follow).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from neuron_ig.engine.models import CrossEncoder, autocast
from neuron_ig.engine.pruning_hooks import (
    NeuronPruning,
    as_mask,
    checked_token_types,
    ffn_shape,
    mask_fingerprint,
)
from neuron_ig.ir.measures import per_query_measures
from neuron_ig.runtime import cache, distributed
from neuron_ig.stats.controls import (
    QUERY_CONTROL,
    activation_matched_controls,
    control_test,
    query_control_test,
    random_control,
)
from neuron_ig.stats.selection import OOD_NEURONS, pruning_schemes
from neuron_ig.stats.significance import holm, paired_test
from neuron_ig.studies.effectiveness import informative_part


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
    order of ``inputs.pairs``. ``precision``: one of :data:`neuron_ig.engine.models.PRECISIONS` (``"bf16"``:
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
    (:func:`neuron_ig.studies.effectiveness.informative_part`): the other queries' measures are 0 whatever the model.

    Args:
        encoder: the cross-encoder.
        tasks: ``{name: RerankInputs}`` (:func:`neuron_ig.studies.effectiveness.rerank_inputs`), e.g. one per collection.
        schemes: ``{name: mask [layers, units]}``, the neuron sets to prune.
        random_seeds: R, random controls per controlled set (:func:`random_control`, seeds ``seed``, ``seed + 1``...).
        controlled: the schemes that get controls (default: every one); the others are scored without.
        control_tasks: the tasks on which controls are scored (default: every one).
        activation: mean activation of every neuron ``[layers, units]``
            (:func:`neuron_ig.studies.pruning.mean_activation`): when given, each controlled set also gets
            ``matched_seeds`` controls matched on activation within each layer
            (:func:`neuron_ig.stats.controls.activation_matched_controls`).
        matched_seeds: activation-matched controls per controlled set (default: ``random_seeds``).
        token_types: prune only at these token types (default: every position).
        precision: the re-rankings' arithmetic (:func:`pruned_scores`).

    Returns ``(table, per_query)``:

    - ``table``, one row per (scheme, task): ``neurons``; ``nDCG@10`` pruned, ``unpruned nDCG@10``,
      ``BM25 nDCG@10``; ``delta`` (pruned - unpruned, mean over queries) and its ``p vs unpruned`` (paired
      randomization test, :func:`neuron_ig.stats.significance.paired_test`); ``delta RR@10``; ``controls`` (R, 0 for a
      row without); ``random controls`` and ``matched controls`` (the count of each kind). With controls: their deltas ``random delta`` (mean over controls), ``random sd``,
      ``random min``, ``random max``; ``delta vs random`` (the set's delta minus the controls' mean delta);
      ``p random (rank)`` and ``p random (t)`` (:func:`neuron_ig.stats.controls.control_test`: the set's delta against
      the spread of its R controls' deltas, the null); ``p vs random (paired)`` (a secondary per-query test
      against the controls' per-query mean, which ignores how much controls differ from each other). With
      ``activation``, the same columns for ``matched`` controls.
    - ``per_query``: columns ``scheme``, ``variant`` (``"set"`` for the set itself, ``"random <seed>"`` and
      ``"matched <seed>"`` for controls; the unpruned model is scheme ``"unpruned"``, BM25 ``"BM25"``), ``task``,
      ``query_id`` and one column per measure.
    """
    from tqdm.auto import tqdm


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
                queries = unpruned.index
                over_queries = query_control_test(
                    (pruned["nDCG@10"] - unpruned["nDCG@10"]).loc[queries].to_numpy(),
                    np.stack([(c - unpruned["nDCG@10"]).loc[queries].to_numpy() for c in controls]),
                    seed=seed) if len(deltas) >= 2 else {"p": np.nan, "interval low": np.nan, "interval high": np.nan}
                row.update({"controls": max(row["controls"], len(deltas)), f"{kind} controls": len(deltas),
                            f"{kind} delta": deltas.mean(),
                            f"{kind} sd": deltas.std(ddof=1) if len(deltas) > 1 else np.nan,
                            f"{kind} min": deltas.min(), f"{kind} max": deltas.max(),
                            f"delta vs {kind}": row["delta"] - deltas.mean(),
                            f"p {kind} (rank)": test["p rank"], f"p {kind} (t)": test["p t"],
                            f"p {kind} (queries and controls)": over_queries["p"],
                            f"delta vs {kind} low": over_queries["interval low"],
                            f"delta vs {kind} high": over_queries["interval high"],
                            f"p vs {kind} (paired)": paired["p randomization"]})
            table.append(row)
    return pd.DataFrame(table), per_query_table


def choose_control_tests(table, *, family: str = "set", alpha: float = 0.05):
    """Each controlled row's test against its controls over queries and controls, and the Holm adjustment.

    ``table``: a pruning study table with a ``family`` column (e.g. ``set``: each set over its classes, tasks and
    p). The test is :func:`neuron_ig.stats.controls.query_control_test` (its p is never below 1 / (R + 1)); Holm
    runs within each family over its rows with controls and neurons. Adds, per kind of control (``random``,
    ``matched``): ``p vs <kind>``, ``test vs <kind>`` (its name) and ``p vs <kind> (Holm)``; ``family size``.
    Returns a new table.
    """
    table = table.copy()
    table["family size"] = 0
    for kind in ("random", "matched"):
        column = f"p {kind} (queries and controls)"
        if column not in table:
            continue
        table[f"p vs {kind}"] = np.nan
        table[f"test vs {kind}"] = "no control"
        table[f"p vs {kind} (Holm)"] = np.nan
        tested = table[(table["neurons"] > 0) & table[column].notna()]
        for _, rows in tested.groupby(family, sort=False):
            table.loc[rows.index, f"p vs {kind}"] = rows[column]
            table.loc[rows.index, f"test vs {kind}"] = QUERY_CONTROL
            table.loc[rows.index, f"p vs {kind} (Holm)"] = holm(rows[column].to_numpy(dtype=float))
            table.loc[rows.index, "family size"] = len(rows)
        table.loc[(table["neurons"] == 0) & (table["controls"] > 0), f"test vs {kind}"] = "empty set"
    return table


def relevance_pruning(encoder: CrossEncoder, tasks, scores, in_domain: str, p_values: Sequence[float], *,
                      sets: Sequence[str] | None = None, random_seeds: int = 3, matched_seeds: int | None = None, seed: int = 0,
                      token_types: Sequence[str] | None = None, precision: str = "fp32", progress: bool = True,
                      controlled_sets: Sequence[str] | None = None, control_tasks: Sequence[str] | None = None,
                      activation: np.ndarray | None = None, normalise: str | None = None,
                      ood: Mapping[str, Mapping[float, np.ndarray]] | None = None, ood_control_tasks: Sequence[str] = ()):
    """The pruning study of the relevance neurons: every class's sets at every p (Figures 6 and 7).

    The arguments not listed here are :func:`pruning_study`'s.

    Args:
        scores: ``{class name: {dataset: class mean [layers, units]}}`` (:func:`neuron_ig.studies.aggregation.class_means`).
        in_domain: the in-domain dataset's key.
        sets: keep only these sets of :func:`neuron_ig.stats.selection.pruning_schemes` (e.g. ``["top: <in-domain>"]``).
        controlled_sets: the sets (names of :func:`~neuron_ig.stats.selection.pruning_schemes`, every class) that get
            the ``random_seeds`` controls on ``control_tasks`` (default: every set but the OOD neurons); the others
            are marked "no control".
        normalise: the fusion's normalisation (:func:`neuron_ig.stats.selection.fusion`).
        ood: ``{class name: {p: mask [layers, units]}}``, each class's tested OOD neurons
            (:func:`neuron_ig.studies.verdicts.ood_neuron_masks`), pruned as the set ``"OOD neurons"``.
        ood_control_tasks: the tasks on which the OOD neurons get their ``random_seeds`` random controls (the
            out-of-domain collections they were tested on; default: none). No activation-matched controls: the
            activations are the in-domain candidates'.

    Returns ``(table, per_query)`` as :func:`pruning_study` does, with columns ``p``, ``class`` and ``set``
    added, ``scheme`` being ``"<class> · <set>"``, and the tests against the controls of
    :func:`choose_control_tests`, one Holm family per set (e.g. ``"top: <in-domain>"``) over its non-empty
    controlled rows (classes, tasks and p values). The per-query table holds every p.
    """
    arguments = {"random_seeds": random_seeds, "matched_seeds": matched_seeds, "seed": seed, "token_types": token_types,
                 "precision": precision, "progress": progress}
    tables, per_query = [], []
    for p in p_values:
        schemes, names = {}, {}
        for class_name, per_dataset in scores.items():
            if not per_dataset:
                continue
            tested = (ood or {}).get(class_name, {}).get(p)
            for name, mask in pruning_schemes(per_dataset, in_domain, p, normalise=normalise, ood=tested).items():
                if sets is None or name in sets:
                    schemes[f"{class_name} · {name}"] = mask
                    names[f"{class_name} · {name}"] = (class_name, name)
        ood_schemes = {s: m for s, m in schemes.items() if names[s][1] == OOD_NEURONS}
        schemes = {s: m for s, m in schemes.items() if s not in ood_schemes}
        controlled = [s for s in schemes if controlled_sets is None or names[s][1] in controlled_sets]
        table, queries = pruning_study(encoder, tasks, schemes, controlled=controlled, control_tasks=control_tasks,
                                       activation=activation, **arguments)
        if ood_schemes:  # random controls only, on the collections the OOD test used
            ood_table, ood_queries = pruning_study(encoder, tasks, ood_schemes, controlled=list(ood_schemes),
                                                   control_tasks=list(ood_control_tasks), **arguments)
            table = pd.concat([table, ood_table], ignore_index=True).fillna({"matched controls": 0})
            queries = pd.concat([queries, ood_queries[~ood_queries["scheme"].isin(["unpruned", "BM25"])]],
                                ignore_index=True)
        table.insert(0, "p", p)
        table.insert(1, "class", [names[s][0] for s in table["scheme"]])
        table.insert(2, "set", [names[s][1] for s in table["scheme"]])
        tables.append(table)
        per_query.append(queries.assign(p=p))
    table = choose_control_tests(pd.concat(tables, ignore_index=True), family="set")
    return table, pd.concat(per_query, ignore_index=True)


def probability_shifts(encoder: CrossEncoder, inputs, schemes: Mapping[str, np.ndarray], *, random_seeds: int,
                       seed: int = 0, token_types: Sequence[str] | None = None, precision: str = "fp32",
                       n_bootstrap: int = 1999) -> pd.DataFrame:
    """How pruning each set moves P(relevant), on the judged-relevant pairs and on the other pairs of a re-ranking task.

    The re-rankings are :func:`pruning_study`'s (the same informative queries, sets and random controls, seeds ``seed``
    to ``seed + random_seeds - 1``): read from the cache where the study ran, computed otherwise. Per query, the mean
    shift of P(relevant) (pruned minus unpruned) over its relevant pairs, and over its other pairs; the set against
    its controls by :func:`neuron_ig.stats.controls.query_control_test`, with the queries as units. Pruning neurons that
    make the model say "relevant" should lower P(relevant) on relevant pairs; pruning those that make it say
    "non-relevant" should raise it on non-relevant pairs.

    Returns one row per scheme and kind of pair (``pairs``: ``relevant`` or ``non-relevant``): ``queries``, ``set shift``
    and ``control shift`` (mean over queries; controls averaged), ``effect`` (set minus control) with ``interval low``
    and ``interval high`` (queries and controls resampled), ``p lower`` and ``p higher`` (one-sided, each the larger of
    the rank and the bootstrap p-value of :func:`~neuron_ig.stats.controls.query_control_test`).
    """
    if isinstance(random_seeds, bool) or not isinstance(random_seeds, int) or random_seeds < 2:
        raise ValueError(f"random_seeds must be an int >= 2 (the set is compared with its controls), got {random_seeds!r}")
    part, positions = informative_part(inputs, encoder.tokenizer)
    score = {"token_types": token_types, "precision": precision}
    unpruned = torch.sigmoid(torch.from_numpy(pruned_scores(encoder, inputs, None, **score)[positions])).numpy()
    query_ids = np.array([q for q, _ in part.pairs])
    relevant = np.array([inputs.qrels.get(q, {}).get(d, 0) >= inputs.min_grade for q, d in part.pairs])
    queries = sorted(set(query_ids))

    def per_query(shift: np.ndarray, kind: np.ndarray) -> np.ndarray:
        """``[queries with such pairs]``: the mean shift over each query's pairs of one kind."""
        return np.array([shift[(query_ids == q) & kind].mean() for q in queries if ((query_ids == q) & kind).any()])

    def shift(mask) -> np.ndarray:
        return torch.sigmoid(torch.from_numpy(pruned_scores(encoder, part, mask, **score))).numpy() - unpruned

    rows = []
    for name, mask in schemes.items():
        own = shift(mask)
        controls = [shift(random_control(mask, seed + s)) for s in range(random_seeds)]
        for pairs, kind in (("relevant", relevant), ("non-relevant", ~relevant)):
            if not kind.any():
                continue
            set_shift, control_shifts = per_query(own, kind), np.stack([per_query(c, kind) for c in controls])
            lower = query_control_test(set_shift, control_shifts, n_bootstrap=n_bootstrap, seed=seed)
            higher = query_control_test(-set_shift, -control_shifts, n_bootstrap=n_bootstrap, seed=seed)
            rows.append({"scheme": name, "pairs": pairs, "queries": len(set_shift), "set shift": float(set_shift.mean()),
                         "control shift": float(control_shifts.mean()), "effect": lower["effect"],
                         "interval low": lower["interval low"], "interval high": lower["interval high"],
                         "p lower": lower["p"], "p higher": higher["p"]})
    return pd.DataFrame(rows)


@torch.no_grad()
def mean_activation(encoder, batches, *, absolute: bool = True) -> np.ndarray:
    """Mean (absolute) activation of every FFN neuron over the real tokens of some pairs, ``[layers, units]``.

    ``batches`` are :func:`neuron_ig.engine.encoding.encode_batches` output (``[(indices, EncodedPairs)]``) or one
    ``EncodedPairs``. Read through forward hooks on ``encoder.ffn_layers()``, removed afterwards.
    """
    if not isinstance(batches, (list, tuple)):
        batches = [(None, batches)]
    layers = list(encoder.ffn_layers().values())
    sums = [None] * len(layers)
    tokens = 0
    current = {}

    def hook(layer):
        def record(module, inputs, output):
            real = current["mask"][..., None].to(output.dtype)
            values = (output.abs() if absolute else output) * real
            total = values.sum(dim=(0, 1)).double().cpu()
            sums[layer] = total if sums[layer] is None else sums[layer] + total
        return record

    handles = [module.register_forward_hook(hook(i)) for i, module in enumerate(layers)]
    try:
        for _, batch in batches:
            batch = batch.to(encoder.device)
            current["mask"] = batch.attention_mask.bool()
            tokens += int(current["mask"].sum())
            encoder.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, token_type_ids=batch.token_type_ids)
    finally:
        for handle in handles:
            handle.remove()
    if not tokens:
        raise ValueError("no token to average over: pass at least one encoded pair")
    return torch.stack(sums).numpy() / tokens


def pruning_verdict(row: Mapping, alpha: float = 0.05) -> str:
    """The verdict of one (set, collection, p) row of :func:`relevance_pruning`'s table against its random controls.

    ``empty set`` (no neuron to prune), ``no control``, ``hurts more than random`` (one-sided test against the
    controls, Holm-corrected within its set, at ``alpha``), else ``no significant difference`` when it hurts more
    than the controls' mean or ``does not hurt more than random`` when it does not.
    """
    if row["neurons"] == 0:
        return "empty set"
    if not row["controls"]:
        return "no control"
    if row["p vs random (Holm)"] <= alpha:
        return "hurts more than random"
    return "no significant difference" if row["delta vs random"] < 0 else "does not hurt more than random"


def pruning_verdicts(table: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """:func:`pruning_verdict` of every row of :func:`relevance_pruning`'s table, indexed as the table."""
    return table.apply(pruning_verdict, axis=1, alpha=alpha)
