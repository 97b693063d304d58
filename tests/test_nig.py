"""NIG engine: agreement with captum's LayerConductance, completeness on a cut, batching, baselines."""

import re

import numpy as np
import pytest
import torch
from captum.attr import LayerConductance

from neuron_ig.engine.baselines import NEUTRAL_ENDS, Baseline, baseline_embeddings, baseline_ids
from neuron_ig.engine.encoding import CLS, PASSAGE, QUERY, SEP, encode_pairs
from neuron_ig.engine.models import random_cross_encoder
from neuron_ig.engine.nig import attention_head_reduce, neuron_integrated_gradients

QUERIES = ["what is a dog", "jet engine noise at take off", "boundary layer transition"]
PASSAGES = [
    "a dog is a domesticated animal that barks and is kept as a pet",
    "the noise of a jet engine is loudest at take off, when the thrust is at its maximum",
    "transition of the boundary layer from laminar to turbulent flow depends on the reynolds number",
]
LABELS = torch.tensor([1, 0, 1])


@pytest.fixture(scope="module", params=[2, 1], ids=["two-labels", "one-logit"])
def encoder(request):
    return random_cross_encoder(num_labels=request.param, num_layers=3, seed=1)


@pytest.fixture(scope="module")
def encoded(encoder):
    return encode_pairs(encoder.tokenizer, QUERIES, PASSAGES, max_length=48)


def captum_conductance(encoder, encoded, labels, layer, baseline, steps):
    """Reference: captum's LayerConductance on one layer, per token, ``[pairs, tokens, units]``."""

    def class_probabilities(embeddings, attention_mask, token_type_ids):
        logits = encoder.model(inputs_embeds=embeddings, attention_mask=attention_mask, token_type_ids=token_type_ids).logits
        return encoder.class_probabilities(logits)

    embed = encoder.word_embeddings
    inputs = embed(encoded.input_ids).detach()
    baselines = baseline_embeddings(encoder, encoded, baseline).detach()
    attributions = LayerConductance(class_probabilities, layer).attribute(
        inputs, baselines=baselines, target=labels, n_steps=steps, method="riemann_trapezoid",
        additional_forward_args=(encoded.attention_mask, encoded.token_type_ids),
    )
    return (attributions * encoded.attention_mask[..., None]).detach()


@pytest.mark.parametrize("baseline", list(Baseline))
def test_every_ffn_layer_agrees_with_captum_layer_conductance(encoder, encoded, baseline):
    steps = 16
    result = neuron_integrated_gradients(encoder, encoded, LABELS, baseline=baseline, steps=steps, keep_tokens=True, batch_rows=40)
    assert len(result.attributions) == 3
    for name, layer in encoder.ffn_layers().items():
        reference = captum_conductance(encoder, encoded, LABELS, layer, baseline, steps)
        ours = result.token_attributions[name]
        scale = reference.abs().max()
        assert scale > 1e-5, "the test model's output must move along the path"
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4 * float(scale))
        # the per-segment sums are the per-token values summed over each segment
        for code in (CLS, QUERY, SEP, PASSAGE):
            mask = (encoded.segments == code)[..., None]
            torch.testing.assert_close(result.attributions[name][:, code], (reference * mask).sum(1), rtol=1e-4, atol=1e-4 * float(scale))


def test_scores_are_the_probability_of_the_pairs_own_class(encoder, encoded):
    result = neuron_integrated_gradients(encoder, encoded, LABELS, steps=4)
    with torch.no_grad():
        logits = encoder.model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask, token_type_ids=encoded.token_type_ids).logits
    probabilities = encoder.class_probabilities(logits)
    torch.testing.assert_close(result.score, probabilities[torch.arange(3), LABELS])
    torch.testing.assert_close(result.relevance, probabilities[:, 1])
    base = baseline_ids(encoded, Baseline.PAD_QUERY, encoder.tokenizer.pad_token_id)
    with torch.no_grad():
        base_logits = encoder.model(input_ids=base, attention_mask=encoded.attention_mask, token_type_ids=encoded.token_type_ids).logits
    torch.testing.assert_close(result.baseline_score, encoder.class_probabilities(base_logits)[torch.arange(3), LABELS])


def test_completeness_holds_on_a_cut_and_improves_with_steps(encoder, encoded):
    cut = dict([list(encoder.layer_outputs().items())[1]])  # a whole layer's output
    errors = {}
    for steps in (4, 64):
        result = neuron_integrated_gradients(encoder, encoded, LABELS, modules=cut, steps=steps)
        total = result.attributions[next(iter(cut))].sum(dim=(1, 2))
        change = result.score - result.baseline_score
        assert change.abs().min() > 1e-4, "the output must change between baseline and input"
        errors[steps] = (total - change).abs().max().item()
    assert errors[64] < 0.02 * result.score.sub(result.baseline_score).abs().max().item() + 1e-6
    assert errors[64] < errors[4]


def test_left_and_right_rules_differ_but_converge(encoder, encoded):
    gaps = []
    for steps in (4, 128):
        left = neuron_integrated_gradients(encoder, encoded, LABELS, steps=steps, rule="left").total()
        right = neuron_integrated_gradients(encoder, encoded, LABELS, steps=steps, rule="right").total()
        gaps.append(((left - right).norm() / left.norm()).item())
    assert gaps[0] > 1e-4
    assert gaps[1] < gaps[0] / 10


def test_the_trapezoid_rule_is_the_mean_of_left_and_right_and_converges_faster_on_a_cut(encoder, encoded):
    cut = dict([list(encoder.layer_outputs().items())[1]])
    name = next(iter(cut))
    runs = {rule: neuron_integrated_gradients(encoder, encoded, LABELS, modules=cut, steps=8, rule=rule, batch_rows=5)
            for rule in ("left", "right", "trapezoid")}  # batch_rows=5: chunk boundaries inside the path
    torch.testing.assert_close(runs["trapezoid"].attributions[name],
                               (runs["left"].attributions[name] + runs["right"].attributions[name]) / 2, rtol=1e-5, atol=1e-7)
    change = runs["left"].score - runs["left"].baseline_score
    error = {rule: (run.attributions[name].sum(dim=(1, 2)) - change).abs().max().item() for rule, run in runs.items()}
    assert error["trapezoid"] < min(error["left"], error["right"]) / 2  # second order against first order


def test_batching_and_step_chunking_do_not_change_results(encoder, encoded):
    together = neuron_integrated_gradients(encoder, encoded, LABELS, steps=10, batch_rows=1000, keep_tokens=True)
    one_by_one = [neuron_integrated_gradients(encoder, encoded.select([i]), LABELS[i:i + 1], steps=10, batch_rows=3) for i in range(3)]
    for name in together.attributions:
        separate = torch.cat([r.attributions[name] for r in one_by_one])
        torch.testing.assert_close(together.attributions[name], separate, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(together.score, torch.cat([r.score for r in one_by_one]))


def test_attention_heads_are_sums_of_their_units(encoder, encoded):
    layers = encoder.attention_layers()
    heads = encoder.num_attention_heads
    per_unit = neuron_integrated_gradients(encoder, encoded, LABELS, modules=layers, steps=6)
    per_head = neuron_integrated_gradients(encoder, encoded, LABELS, modules=layers, steps=6,
                                           unit_reduce={n: attention_head_reduce(heads) for n in layers})
    for name in layers:
        assert per_head.attributions[name].shape[-1] == heads
        torch.testing.assert_close(per_head.attributions[name], per_unit.attributions[name].unflatten(-1, (heads, -1)).sum(-1))


def test_baselines_keep_exactly_the_special_tokens_they_should(encoder, encoded):
    pad = encoder.tokenizer.pad_token_id
    cls_id, sep_id = encoder.tokenizer.cls_token_id, encoder.tokenizer.sep_token_id
    real = encoded.attention_mask.bool()
    segments = encoded.segments
    pad_query = baseline_ids(encoded, "PAD_QUERY", pad)
    assert (pad_query[segments == QUERY] == pad).all()
    assert torch.equal(pad_query[segments == PASSAGE], encoded.input_ids[segments == PASSAGE])
    assert (pad_query[segments == CLS] == cls_id).all() and (pad_query[segments == SEP] == sep_id).all()
    both = baseline_ids(encoded, "pad_query_and_passage", pad)
    assert (both[(segments == QUERY) | (segments == PASSAGE)] == pad).all()
    assert (both[segments == CLS] == cls_id).all() and (both[segments == SEP] == sep_id).all()
    assert (segments == SEP).sum(1).eq(2).all(), "a pair has two [SEP]"
    assert (baseline_ids(encoded, Baseline.PAD_ALL, pad)[real] == pad).all()
    with pytest.raises(ValueError, match="NEUTRAL is not made of tokens: use baseline_embeddings"):
        baseline_ids(encoded, "NEUTRAL", pad)


def test_the_neutral_baseline_puts_p_relevant_at_one_half_where_its_line_crosses_it():
    encoder = random_cross_encoder(num_labels=2, num_layers=2, seed=5, initializer_range=0.2)
    queries = ["what is a dog", "jet engine noise", "boundary layer", "heat transfer", "shock wave", "wing flutter"]
    passages = ["a dog barks", "engines are loud at take off", "laminar flow turns turbulent", "heat flows to the cold",
                "a shock wave forms at mach one", "flutter is an aeroelastic instability of wings"]
    encoded = encode_pairs(encoder.tokenizer, queries, passages, max_length=32)
    labels = torch.tensor([1, 0, 1, 0, 1, 0])
    relevance = {}
    for baseline in (*NEUTRAL_ENDS, Baseline.NEUTRAL):
        result = neuron_integrated_gradients(encoder, encoded, labels, baseline=baseline, steps=2)
        relevance[baseline] = torch.where(labels == 1, result.baseline_score, 1 - result.baseline_score)
    start, end, neutral = relevance[NEUTRAL_ENDS[0]], relevance[NEUTRAL_ENDS[1]], relevance[Baseline.NEUTRAL]
    crosses = (start - 0.5) * (end - 0.5) < 0
    assert crosses.any(), "the test model must have a pair whose line crosses 0.5"
    assert ((neutral[crosses] - 0.5).abs() < 2e-3).all()
    # elsewhere the grid point closest to 0.5, at least as close as either end
    closest = torch.minimum((start - 0.5).abs(), (end - 0.5).abs())
    assert ((neutral - 0.5).abs() <= closest + 1e-6).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"steps": -3}, "steps must be a positive int"),
        ({"steps": "50"}, "steps must be a positive int"),
        ({"baseline": "PAD_QUERRY"}, "unknown baseline 'PAD_QUERRY': use one of PAD_QUERY"),
        ({"rule": "middle"}, "unknown rule 'middle'"),
        ({"batch_rows": 0}, "batch_rows must be a positive int"),
    ],
)
def test_bad_parameters_get_one_line_errors(encoder, encoded, kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        neuron_integrated_gradients(encoder, encoded, LABELS, **kwargs)
    assert "\n" not in str(error.value)


def test_labels_must_be_one_binary_class_per_pair(encoder, encoded):
    with pytest.raises(ValueError, match="labels must be 3 values in"):
        neuron_integrated_gradients(encoder, encoded, [1, 2, 0])
    with pytest.raises(ValueError, match="labels must be 3 values in"):
        neuron_integrated_gradients(encoder, encoded, [1, 0])


@pytest.mark.parametrize("rule", ["left", "right", "trapezoid"])
def test_path_trace_of_one_neuron_accumulates_to_its_nig(encoder, encoded, rule):
    from neuron_ig.engine.nig import path_trace

    name = list(encoder.ffn_layers())[2]
    full = neuron_integrated_gradients(encoder, encoded.select([0]), LABELS[:1], steps=12, rule=rule)
    unit = int(full.attributions[name][0].sum(0).abs().argmax())
    trace = path_trace(encoder, encoded.select([0]), int(LABELS[0]), name, unit, steps=12, rule=rule)
    assert all(len(v) == 13 for v in trace.values())
    assert trace["alpha"][0] == 0 and trace["alpha"][-1] == 1 and trace["accumulated"][0] == 0
    torch.testing.assert_close(trace["accumulated"][-1], full.attributions[name][0, :, unit].sum(), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(trace["score"][[0, -1]], torch.stack([full.baseline_score[0], full.score[0]]))
    with pytest.raises(ValueError, match="follows one pair"):
        path_trace(encoder, encoded, 1, name, 0)


def test_the_speed_benchmark_references_compute_the_same_nig(encoder, encoded):
    """benchmarks/nig_speed.py times the authors' loop and captum against the engine: same numbers first."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("nig_speed", Path(__file__).parents[1] / "benchmarks" / "nig_speed.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    ours = neuron_integrated_gradients(encoder, encoded, LABELS, steps=12).total()
    for reference in (benchmark.loop_reference, benchmark.captum_reference):
        torch.testing.assert_close(reference(encoder, encoded, LABELS, 12), ours, rtol=1e-4, atol=1e-4 * float(ours.abs().max()))


@pytest.mark.slow
def test_the_batch_rows_benchmark_runs_and_finds_the_same_nig_at_every_setting():
    """benchmarks/nig_batch_rows.py, at a toy size: its summary line, and rows that change only float rounding."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "nig_batch_rows.py"
    out = subprocess.run([sys.executable, str(script), "--pairs", "3", "--steps", "4", "--repeats", "1", "--rows", "64", "5"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert re.fullmatch(r"nig-batch-rows default=64 64=[\d.]+ 5=[\d.]+ speedup-vs-5=[\d.]+", out[-1]), out[-1]
    differences = [float(re.search(r"largest difference (\S+)$", line).group(1)) for line in out if line.startswith("batch_rows")]
    assert len(differences) == 2 and max(differences) < 1e-4  # fp32 rounding of other pass shapes


def test_results_do_not_depend_on_the_order_of_the_pairs_nor_on_padding(encoder):
    """Pairs are sorted by length inside the engine: any input order gives the same NIG, equal to each pair alone."""
    queries = QUERIES + ["dog", "a very long question about the noise of a jet engine when it takes off at night"]
    passages = PASSAGES + ["barks", PASSAGES[1] + " " + PASSAGES[2]]
    labels = torch.tensor([1, 0, 1, 0, 1])
    encoded = encode_pairs(encoder.tokenizer, queries, passages, max_length=64)
    assert len(set(encoded.attention_mask.sum(1).tolist())) == 4, "the pairs must have different lengths (two tie)"
    result = neuron_integrated_gradients(encoder, encoded, labels, steps=8, batch_rows=18, keep_tokens=True)
    permutation = [3, 0, 4, 2, 1]
    permuted = neuron_integrated_gradients(encoder, encoded.select(permutation), labels[permutation], steps=8, batch_rows=18)
    alone = [neuron_integrated_gradients(encoder, encoded.select([i]), labels[i:i + 1], steps=8) for i in range(5)]
    for name in result.attributions:
        scale = float(result.attributions[name].abs().max())
        torch.testing.assert_close(permuted.attributions[name], result.attributions[name][permutation], rtol=1e-4, atol=1e-5 * scale)
        torch.testing.assert_close(torch.cat([r.attributions[name] for r in alone]), result.attributions[name], rtol=1e-4, atol=1e-5 * scale)
        assert result.token_attributions[name].shape[:2] == encoded.input_ids.shape
    torch.testing.assert_close(permuted.score, result.score[permutation])


def test_the_backward_pass_stops_at_the_lowest_recorded_module_and_computes_no_weight_gradient(encoder, encoded):
    layers = encoder.model.bert.encoder.layer
    calls = {0: 0, 1: 0, 2: 0}
    handles = [layers[i].attention.register_full_backward_hook(lambda *args, i=i: calls.__setitem__(i, calls[i] + 1))
               for i in calls]
    try:
        modules = dict(list(encoder.ffn_layers().items())[1:])  # FFN of layers 1 and 2: attentions 0 and 1 are below
        result = neuron_integrated_gradients(encoder, encoded, LABELS, modules=modules, steps=4)
    finally:
        for handle in handles:
            handle.remove()
    assert calls[0] == calls[1] == 0, "nothing below the lowest recorded module may be differentiated"
    assert calls[2] > 0, "the attention above the lowest recorded module is differentiated"
    assert all(p.grad is None for p in encoder.model.parameters())
    assert all(p.requires_grad for p in encoder.model.parameters()), "parameters are restored"
    reference = captum_conductance(encoder, encoded, LABELS, modules[next(iter(modules))], Baseline.PAD_QUERY, 4)
    torch.testing.assert_close(result.attributions[next(iter(modules))].sum(1), reference.sum(1), rtol=1e-4, atol=1e-6)


def test_bf16_autocast_stays_close_to_fp32_and_keeps_completeness_sums_in_fp32(encoder, encoded):
    exact = neuron_integrated_gradients(encoder, encoded, LABELS, steps=8)
    rounded = neuron_integrated_gradients(encoder, encoded, LABELS, steps=8, precision="bf16")
    assert all(t.dtype == torch.float32 for t in [*rounded.attributions.values(), rounded.score])
    error = ((rounded.total() - exact.total()).norm() / exact.total().norm()).item()
    assert 0 < error < 0.1, f"bf16 NIG differs from fp32 by {error:.2e} (relative norm)"
    torch.testing.assert_close(rounded.score, exact.score, rtol=0, atol=2e-2)


def test_unknown_or_unavailable_precision_is_refused(encoder, encoded):
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        neuron_integrated_gradients(encoder, encoded, LABELS, steps=2, precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'tf32' needs a CUDA device"):
            neuron_integrated_gradients(encoder, encoded, LABELS, steps=2, precision="tf32")


def test_a_cached_dataset_result_is_computed_and_keyed_in_its_precision(tmp_path, monkeypatch):
    from collections import namedtuple

    import neuron_ig.studies.results as results

    monkeypatch.setenv("NEURON_IG_CACHE", str(tmp_path))
    Pair = namedtuple("Pair", "query_id doc_id query passage label")
    pairs = [Pair(f"q{i}", f"d{i}", QUERIES[i], PASSAGES[i], int(LABELS[i])) for i in range(3)]
    parameters = {"model": "random-bert", "dataset": "toy/test", "label": 1, "baseline": "PAD_QUERY", "steps": 4,
                  "rule": "left", "max_length": 48}
    load = lambda: random_cross_encoder(num_layers=2, seed=3)
    exact = results.cached_nig(load, pairs, parameters, progress=False)
    rounded = results.cached_nig(load, pairs, dict(parameters, precision="bf16"), progress=False)
    assert results.result_folder(dict(parameters, pairs_fingerprint="x")) != results.result_folder(
        dict(parameters, pairs_fingerprint="x", precision="bf16"))
    assert not np.array_equal(exact.attributions, rounded.attributions)
    # bf16 moves the attributions (differences of nearby activations) by several percent, more on CPUs without
    # native bf16: the attributions as a whole stay close, and so does the largest one
    error = np.linalg.norm(rounded.attributions - exact.attributions) / np.linalg.norm(exact.attributions)
    assert error < 0.2, error  # 0.075 on this machine; garbage arithmetic gives about 1
    np.testing.assert_allclose(np.abs(rounded.attributions).max(), np.abs(exact.attributions).max(), rtol=0.1)
