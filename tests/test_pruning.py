"""Neuron pruning: hooks zero exactly the chosen units (per token type too), leave nothing behind and compose;
random controls, the pruned neuron sets, paired tests and Holm, graded nDCG, and the pruning study on Cranfield."""

import math
from itertools import product

import numpy as np
import pytest
import torch
from scipy import stats

from neuron_ig.engine.encoding import (
    CLS,
    PASSAGE,
    QUERY,
    SEGMENTS,
    SEP,
    encode_batches,
    encode_pairs,
)
from neuron_ig.engine.models import random_cross_encoder
from neuron_ig.engine.pruning_hooks import NeuronPruning
from neuron_ig.ir.measures import RerankInputs, ndcg_at_10, per_query
from neuron_ig.stats.controls import QUERY_CONTROL, random_control
from neuron_ig.stats.selection import (
    fusion,
    intersection,
    lowest_p_percent,
    pruning_schemes,
    top_p_percent,
)
from neuron_ig.stats.significance import holm, paired_test
from neuron_ig.studies.pruning import probability_shifts, pruned_scores, pruning_study

QUERIES = ["what is a dog", "jet engine noise at take off", "boundary layer transition on a swept wing"]
PASSAGES = [
    "a dog is a domesticated animal that barks and is kept as a pet",
    "the noise of a jet engine is loudest at take off, when the thrust is at its maximum",
    "transition from laminar to turbulent flow",
]
LAYERS, UNITS = 3, 64
LAST_LAYER_UNITS = [0, 5, 17, 40, 63]


@pytest.fixture(scope="module")
def encoder():
    return random_cross_encoder(num_layers=LAYERS, intermediate_size=UNITS, seed=1)


@pytest.fixture(scope="module")
def encoded(encoder):
    encoded = encode_pairs(encoder.tokenizer, QUERIES, PASSAGES, max_length=48)
    assert (encoded.attention_mask == 0).any(), "the batch must have padding"
    return encoded


def last_layer_mask() -> np.ndarray:
    mask = np.zeros((LAYERS, UNITS), dtype=bool)
    mask[LAYERS - 1, LAST_LAYER_UNITS] = True
    return mask


def multi_layer_mask() -> np.ndarray:
    mask = np.zeros((LAYERS, UNITS), dtype=bool)
    mask[0, [1, 2, 3, 30]] = mask[1, [7, 8]] = mask[2, [0, 50, 63]] = True
    return mask


def forward(encoder, encoded):
    """``(log-odds [pairs], {layer: FFN intermediate output [pairs, tokens, units]})`` of one forward pass.

    The capturing hooks are registered last, so they see what any pruning hooks made of the output."""
    captured = {}
    handles = [module.register_forward_hook(lambda m, i, out, layer=layer: captured.__setitem__(layer, out.detach().clone()))
               for layer, module in enumerate(encoder.ffn_layers().values())]
    try:
        scores = encoder.log_odds(encoded.input_ids, encoded.attention_mask, encoded.token_type_ids)
    finally:
        for handle in handles:
            handle.remove()
    return scores, captured


def hook_counts(encoder) -> list[int]:
    """Forward (pre-)hooks on every FFN module and on the model itself."""
    modules = [*encoder.ffn_layers().values(), encoder.model]
    return [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules]


def test_pruning_the_last_layer_zeroes_its_units_and_leaves_every_other_activation_bit_identical(encoder, encoded):
    unpruned_scores, unpruned = forward(encoder, encoded)
    with NeuronPruning(encoder, last_layer_mask()):
        pruned_output, pruned = forward(encoder, encoded)
    last, others = LAYERS - 1, [u for u in range(UNITS) if u not in LAST_LAYER_UNITS]
    assert (unpruned[last][..., LAST_LAYER_UNITS] != 0).any(), "the pruned units must be active before pruning"
    assert (pruned[last][..., LAST_LAYER_UNITS] == 0).all()
    assert torch.equal(pruned[last][..., others], unpruned[last][..., others])
    for layer in range(last):
        assert torch.equal(pruned[layer], unpruned[layer])
    assert not torch.allclose(pruned_output, unpruned_scores)


def test_pruning_several_layers_zeroes_the_chosen_units_at_every_position_and_changes_the_output(encoder, encoded):
    mask = multi_layer_mask()
    unpruned_scores, _ = forward(encoder, encoded)
    with NeuronPruning(encoder, mask):
        scores, pruned = forward(encoder, encoded)
    for layer in range(LAYERS):
        assert (pruned[layer][..., mask[layer]] == 0).all(), f"layer {layer}"
        assert (pruned[layer][..., ~mask[layer]] != 0).any()
    assert (scores - unpruned_scores).abs().max() > 1e-3


def test_removing_the_hooks_restores_the_exact_unpruned_model(encoder, encoded):
    before, _ = forward(encoder, encoded)
    assert hook_counts(encoder) == [0] * (LAYERS + 1)
    with NeuronPruning(encoder, multi_layer_mask(), token_types=["query"]):
        assert hook_counts(encoder) == [1] * (LAYERS + 1), "one hook per pruned layer and one pre-hook on the model"
        assert not torch.equal(forward(encoder, encoded)[0], before)
    assert hook_counts(encoder) == [0] * (LAYERS + 1)
    assert torch.equal(forward(encoder, encoded)[0], before)

    pruning = NeuronPruning(encoder, last_layer_mask()).attach()
    assert hook_counts(encoder) == [0] * (LAYERS - 1) + [1, 0], "hooks only on layers with selected units"
    with pytest.raises(RuntimeError, match="already attached"):
        pruning.attach()
    pruning.remove()
    assert hook_counts(encoder) == [0] * (LAYERS + 1)
    assert torch.equal(forward(encoder, encoded)[0], before)

    with pytest.raises(KeyError), NeuronPruning(encoder, multi_layer_mask()):
        raise KeyError("an error inside the context")
    assert hook_counts(encoder) == [0] * (LAYERS + 1)
    assert torch.equal(forward(encoder, encoded)[0], before)


def test_pairs_and_boolean_masks_prune_the_same_neurons(encoder, encoded):
    mask = multi_layer_mask()
    pairs = [(int(layer), int(unit)) for layer, unit in zip(*np.nonzero(mask))]
    outputs = []
    for neurons in (mask, torch.from_numpy(mask), pairs, np.array(pairs)):
        with NeuronPruning(encoder, neurons) as pruning:
            assert np.array_equal(pruning.mask, mask)
            outputs.append(forward(encoder, encoded)[0])
    assert all(torch.equal(outputs[0], output) for output in outputs[1:])
    with NeuronPruning(encoder, mask, token_types="query"):
        as_string = forward(encoder, encoded)[0]
    with NeuronPruning(encoder, mask, token_types=["query"]):
        assert torch.equal(forward(encoder, encoded)[0], as_string)


@pytest.mark.parametrize("neurons, message", [
    (np.zeros((LAYERS, UNITS - 1), dtype=bool), "neuron mask of shape"),
    (np.zeros((LAYERS + 1, UNITS), dtype=bool), "neuron mask of shape"),
    ([(0, 1), (LAYERS, 0)], "outside the model"),
    ([(0, UNITS)], "outside the model"),
    ([(-1, 0)], "outside the model"),
])
def test_masks_of_another_model_and_pairs_outside_it_are_refused(encoder, neurons, message):
    with pytest.raises(ValueError, match=message):
        NeuronPruning(encoder, neurons)


@pytest.mark.parametrize("token_types", [["queries"], ["padding"], ["query", "Passage"]])
def test_unknown_token_types_are_refused(encoder, token_types):
    with pytest.raises(ValueError, match="unknown token types"):
        NeuronPruning(encoder, last_layer_mask(), token_types=token_types)


def test_nested_prunings_equal_one_pruning_of_their_union(encoder, encoded):
    first, second = np.zeros((LAYERS, UNITS), dtype=bool), np.zeros((LAYERS, UNITS), dtype=bool)
    first[0, [1, 2, 3]] = first[1, [7, 8, 9]] = True
    second[1, [9, 10]] = second[2, [0, 63]] = True  # (1, 9) in both
    with NeuronPruning(encoder, first | second):
        union = forward(encoder, encoded)[0]
    with NeuronPruning(encoder, first):
        alone = forward(encoder, encoded)[0]
    for outer, inner in ((first, second), (second, first)):
        with NeuronPruning(encoder, outer), NeuronPruning(encoder, inner):
            assert torch.equal(forward(encoder, encoded)[0], union)
    assert not torch.equal(alone, union), "the second set must matter"


@pytest.mark.parametrize("token_type, code", [("CLS", CLS), ("query", QUERY), ("SEP", SEP), ("passage", PASSAGE)])
def test_pruning_one_token_type_zeroes_the_units_only_at_its_positions(encoder, encoded, token_type, code):
    assert SEGMENTS[code] == token_type
    _, unpruned = forward(encoder, encoded)
    with NeuronPruning(encoder, last_layer_mask(), token_types=[token_type]):
        _, pruned = forward(encoder, encoded)
    last, at_type = LAYERS - 1, encoded.segments == code
    assert at_type.any() and (~at_type).any()
    units = pruned[last][..., LAST_LAYER_UNITS]
    assert (unpruned[last][..., LAST_LAYER_UNITS][at_type] != 0).any(), "the pruned units must be active there"
    assert (units[at_type] == 0).all()
    assert torch.equal(units[~at_type], unpruned[last][..., LAST_LAYER_UNITS][~at_type])
    others = [u for u in range(UNITS) if u not in LAST_LAYER_UNITS]
    assert torch.equal(pruned[last][..., others], unpruned[last][..., others])
    assert all(torch.equal(pruned[layer], unpruned[layer]) for layer in range(last))


def test_pruning_every_token_type_scores_as_pruning_every_position(encoder, encoded):
    mask = multi_layer_mask()
    unpruned = forward(encoder, encoded)[0]
    with NeuronPruning(encoder, mask):
        everywhere, everywhere_ffn = forward(encoder, encoded)
    with NeuronPruning(encoder, mask, token_types=["CLS", "query", "SEP", "passage"]):
        typed, typed_ffn = forward(encoder, encoded)
    with NeuronPruning(encoder, mask, token_types=["query"]):
        query_only = forward(encoder, encoded)[0]
    real = encoded.attention_mask.bool()
    for layer in range(LAYERS):  # padding positions are left alone by the typed pruning...
        assert (typed_ffn[layer][real][:, mask[layer]] == 0).all()
        assert not torch.equal(typed_ffn[layer][~real], everywhere_ffn[layer][~real])
    assert torch.equal(typed, everywhere)  # ...and do not reach the real ones
    assert (query_only - everywhere).abs().max() > 1e-3 and (query_only - unpruned).abs().max() > 1e-3


def test_unknown_and_mask_tokens_typed_in_a_text_belong_to_its_segment_not_to_sep(encoder):
    """[UNK] and [MASK] are special tokens of the tokenizer but query or passage tokens for encode_pairs."""
    encoded = encode_pairs(encoder.tokenizer, ["jet noise ☃ at [MASK] take off"], ["the noise of a jet 😀 engine"], max_length=48)
    assert (encoded.input_ids == encoder.tokenizer.unk_token_id).sum() == 2
    assert (encoded.input_ids == encoder.tokenizer.mask_token_id).sum() == 1
    for token_type, code in (("query", QUERY), ("SEP", SEP), ("passage", PASSAGE)):
        with NeuronPruning(encoder, last_layer_mask(), token_types=[token_type]):
            _, pruned = forward(encoder, encoded)
        zeroed = (pruned[LAYERS - 1][..., LAST_LAYER_UNITS] == 0).all(-1)
        assert torch.equal(zeroed, encoded.segments == code), token_type


def skewed_mask() -> np.ndarray:
    scores = np.random.default_rng(0).normal(size=(4, 100)) + np.array([1.5, 0.5, 0.0, -4.0])[:, None]
    mask = top_p_percent(scores, 10)
    counts = mask.sum(axis=1)
    assert counts.tolist() == [32, 3, 5, 0]
    return mask


def test_random_controls_keep_the_per_layer_counts_and_depend_only_on_them_and_the_seed():
    mask = skewed_mask()
    control = random_control(mask, seed=0)
    assert control.shape == mask.shape and control.dtype == bool
    assert np.array_equal(control.sum(axis=1), mask.sum(axis=1))
    assert not np.array_equal(control, mask)
    assert np.array_equal(random_control(mask, seed=0), control)
    assert not np.array_equal(random_control(mask, seed=1), control)
    assert np.array_equal(random_control(mask, seed=1).sum(axis=1), mask.sum(axis=1))
    same_counts = np.zeros_like(mask)
    for layer, count in enumerate(mask.sum(axis=1)):
        same_counts[layer, :count] = True
    assert np.array_equal(random_control(same_counts, seed=0), control)
    assert not random_control(np.zeros_like(mask), seed=0).any()


def test_lowest_p_percent_is_the_top_p_percent_of_the_negated_scores():
    scores = np.random.default_rng(1).normal(size=(3, 200))
    for p in (0.5, 1, 10):
        assert np.array_equal(lowest_p_percent(scores, p), top_p_percent(-scores, p))
    lowest = lowest_p_percent(np.arange(600.0).reshape(3, 200), 1.0)
    assert lowest.sum() == 6 and lowest[0, :6].all()


def test_pruning_schemes_of_three_datasets():
    rng = np.random.default_rng(2)
    shared = rng.normal(size=(3, 100))
    scores = {"in": shared + rng.normal(size=(3, 100)), "ood1": shared + rng.normal(size=(3, 100)),
              "ood2": shared + rng.normal(size=(3, 100))}
    scores["ood1"][2, :4] = scores["ood2"][2, :4] = 50.0  # out-of-domain neurons...
    scores["in"][2, :4] = -50.0  # ...that the in-domain data does not use
    ood = np.zeros((3, 100), dtype=bool)
    ood[2, :4] = True
    schemes = pruning_schemes(scores, "in", 10, ood=ood)
    assert list(schemes) == ["top: in", "top: ood1", "top: ood2", "intersection", "fusion", "OOD neurons", "lowest: in"]
    assert np.array_equal(schemes["OOD neurons"], ood)
    assert "OOD neurons" not in pruning_schemes(scores, "in", 10)  # only a tested set is pruned as OOD neurons
    with pytest.raises(ValueError, match="pass a \\[layers, units\\] mask"):
        pruning_schemes(scores, "in", 10, ood=ood.reshape(-1))
    size = math.ceil(300 * 10 / 100)
    tops = [schemes[f"top: {name}"] for name in scores]
    assert [int(s.sum()) for s in tops] == [size] * 3
    assert int(schemes["fusion"].sum()) == int(schemes["lowest: in"].sum()) == size
    assert np.array_equal(schemes["top: ood1"], top_p_percent(scores["ood1"], 10))
    assert np.array_equal(schemes["intersection"], tops[0] & tops[1] & tops[2]) and 0 < schemes["intersection"].sum() < size
    assert all(not (schemes["intersection"] & ~top).any() for top in tops)
    assert np.array_equal(schemes["fusion"], top_p_percent(np.mean(list(scores.values()), axis=0), 10))
    assert np.array_equal(schemes["lowest: in"], lowest_p_percent(scores["in"], 10))
    assert not (schemes["lowest: in"] & tops[0]).any()

    only = pruning_schemes({"in": scores["in"]}, "in", 10)
    assert list(only) == ["top: in", "lowest: in"]
    assert np.array_equal(only["top: in"], tops[0]) and np.array_equal(only["lowest: in"], schemes["lowest: in"])


def exact_sign_flip_p(differences) -> float:
    """Two-sided exact p-value of the sign-flip test, by enumerating every sign pattern."""
    differences = np.asarray(differences, dtype=float)
    signs = np.array(list(product([1.0, -1.0], repeat=len(differences))))
    means = (signs * differences).mean(axis=1)
    return float(np.mean(np.abs(means) >= abs(differences.mean()) - 1e-12))


def test_paired_test_matches_a_hand_computed_exact_sign_flip_p_value():
    result = paired_test({"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 0.0, "b": 0.0, "c": 0.0})
    assert result["delta"] == pytest.approx(2.0) and result["queries"] == 3
    assert result["p randomization"] == pytest.approx(2 / 8)  # only all + and all - are as extreme
    assert exact_sign_flip_p([1, 2, 3]) == pytest.approx(0.25)
    mixed = paired_test({"a": 1.0, "b": -2.0, "c": 3.0, "d": 0.5}, {"a": 0.0, "b": 0.0, "c": 0.0, "d": 0.0})
    assert mixed["p randomization"] == pytest.approx(exact_sign_flip_p([1.0, -2.0, 3.0, 0.5]))  # 10/16


def test_paired_test_agrees_with_scipy_permutation_test_and_ttest_rel():
    rng = np.random.default_rng(3)
    treatment, control = rng.uniform(size=8) + 0.2, rng.uniform(size=8)
    queries = [f"q{i}" for i in range(8)]
    result = paired_test(dict(zip(queries, treatment)), dict(zip(queries, control)))
    reference = stats.permutation_test((treatment - control,), np.mean, permutation_type="samples",
                                       alternative="two-sided", n_resamples=10_000)
    assert result["p randomization"] == pytest.approx(reference.pvalue)
    assert result["p randomization"] == pytest.approx(exact_sign_flip_p(treatment - control))
    assert result["p t-test"] == pytest.approx(stats.ttest_rel(treatment, control).pvalue)
    assert result["delta"] == pytest.approx(np.mean(treatment - control))
    # 2**16 > n_resamples: sampled sign flips, close to the exact value, reproducible by seed
    treatment, control = rng.uniform(size=16) + 0.1, rng.uniform(size=16)
    queries = [f"q{i}" for i in range(16)]
    sampled = paired_test(dict(zip(queries, treatment)), dict(zip(queries, control)), n_resamples=20_000, seed=4)
    assert 0.01 < sampled["p randomization"] < 0.99
    assert sampled["p randomization"] == pytest.approx(exact_sign_flip_p(treatment - control), abs=0.015)
    assert paired_test(dict(zip(queries, treatment)), dict(zip(queries, control)), n_resamples=20_000, seed=4) == sampled


def test_paired_test_of_equal_runs_and_of_runs_without_common_queries():
    same = paired_test({"a": 0.5, "b": 0.25, "only here": 1.0}, {"a": 0.5, "b": 0.25})
    assert same == {"delta": 0.0, "queries": 2, "p randomization": 1.0, "p t-test": 1.0}
    with pytest.raises(ValueError, match="share no query"):
        paired_test({"a": 1.0}, {"b": 1.0})


def test_holm_matches_a_hand_computation():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept monotone at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.2, 0.6, 0.01]) == pytest.approx([0.4, 0.6, 0.03])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_ndcg_uses_linear_graded_gains_and_no_gain_for_negative_grades():
    qrels = {"q1": {"d1": 3, "d2": 1, "d3": 0, "d4": -1}, "q2": {"d9": 2}}
    inputs = RerankInputs("toy", {}, [("q1", "d1"), ("q1", "d2"), ("q1", "d3"), ("q1", "d4"), ("q2", "d8"), ("q2", "d9")],
                          [], qrels, {})
    run = inputs.run(np.array([0.1, 2.0, 0.5, 3.0, 1.0, 0.0], dtype=np.float32))  # q1: d4 d2 d3 d1; q2: d8 d9
    q1 = (0 + 1 / math.log2(3) + 0 + 3 / math.log2(5)) / (3 + 1 / math.log2(3))
    q2 = (2 / math.log2(3)) / 2
    assert per_query(run, qrels) == pytest.approx({"q1": q1, "q2": q2})
    assert ndcg_at_10(run, qrels) == pytest.approx((q1 + q2) / 2)
    assert q1 == pytest.approx(0.5296, abs=1e-4)  # with exponential gains 2**rel - 1 it would be 0.478


@pytest.fixture(scope="module")
def cranfield(ir_datasets_home, neuron_ig_cache):
    from neuron_ig.studies.effectiveness import rerank_inputs

    encoder = random_cross_encoder(num_layers=2, seed=5)
    return encoder, rerank_inputs(encoder.tokenizer, "cranfield", depth=10, max_queries=8)


def test_pruned_scores_on_cranfield_are_the_model_scores_and_are_cached(cranfield, neuron_ig_cache, monkeypatch):
    encoder, inputs = cranfield
    assert len(inputs.pairs) == 80 and len(inputs.first_stage) == 8
    unpruned = pruned_scores(encoder, inputs)
    assert unpruned.dtype == np.float32 and unpruned.shape == (80,)
    assert np.array_equal(unpruned, encoder.score_batches(inputs.batches, log_odds=True).numpy())
    mask = np.zeros((2, 64), dtype=bool)
    mask[0, :6] = mask[1, 10:16] = True
    pruned = pruned_scores(encoder, inputs, mask)
    with NeuronPruning(encoder, mask):
        assert np.array_equal(pruned, encoder.score_batches(inputs.batches, log_odds=True).numpy())
    assert not np.allclose(pruned, unpruned)
    assert len(list((neuron_ig_cache / "pruning").rglob("*.npz"))) == 2

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored again instead of reading the cache")

    monkeypatch.setattr(encoder, "score_batches", no_scoring)
    assert np.array_equal(pruned_scores(encoder, inputs), unpruned)
    assert np.array_equal(pruned_scores(encoder, inputs, np.zeros_like(mask)), unpruned), "an empty set is unpruned"
    assert np.array_equal(pruned_scores(encoder, inputs, mask), pruned)
    for other in ({"neurons": ~mask}, {"neurons": mask, "token_types": ["query"]}):
        with pytest.raises(AssertionError, match="scored again"):
            pruned_scores(encoder, inputs, **other)


def test_pruning_study_on_cranfield(cranfield):
    encoder, inputs = cranfield
    mask = np.zeros((2, 64), dtype=bool)
    mask[0, :6] = mask[1, 10:16] = True
    empty = np.zeros_like(mask)
    table, queries = pruning_study(encoder, {"cranfield": inputs}, {"some set": mask, "empty": empty},
                                   random_seeds=2, progress=False, n_resamples=2_000)
    unpruned = ndcg_at_10(inputs.run(pruned_scores(encoder, inputs)), inputs.qrels)
    pruned = ndcg_at_10(inputs.run(pruned_scores(encoder, inputs, mask)), inputs.qrels)
    assert list(table["scheme"]) == ["some set", "empty"] and set(table["task"]) == {"cranfield"}
    assert table["neurons"].tolist() == [12, 0]
    assert table["unpruned nDCG@10"].tolist() == pytest.approx([unpruned, unpruned])
    assert table["BM25 nDCG@10"].tolist() == pytest.approx([ndcg_at_10(inputs.first_stage, inputs.qrels)] * 2)
    assert table["BM25 nDCG@10"].iloc[0] != pytest.approx(unpruned)
    some_set, empty_row = table.iloc[0], table.iloc[1]
    assert some_set["nDCG@10"] == pytest.approx(pruned) and some_set["delta"] == pytest.approx(pruned - unpruned)
    assert 0 < some_set["p vs unpruned"] <= 1
    assert empty_row["delta"] == 0 and empty_row["p vs unpruned"] == 1 and empty_row["nDCG@10"] == pytest.approx(unpruned)
    assert empty_row["random delta"] == 0 and empty_row["random max"] == 0

    combinations = set(zip(queries["scheme"], queries["variant"]))
    assert combinations == {("BM25", "set"), ("unpruned", "set"), *[(scheme, variant) for scheme in ("some set", "empty")
                                                                    for variant in ("set", "random 0", "random 1")]}
    assert (queries.groupby(["scheme", "variant"]).size() == 8).all()
    control = queries[(queries["scheme"] == "some set") & (queries["variant"] == "random 1")].set_index("query_id")["nDCG@10"]
    expected = per_query(inputs.run(pruned_scores(encoder, inputs, random_control(mask, 1))), inputs.qrels)
    assert control.to_dict() == pytest.approx(expected)
    controls = [ndcg_at_10(inputs.run(pruned_scores(encoder, inputs, random_control(mask, s))), inputs.qrels) for s in (0, 1)]
    assert some_set["random delta"] == pytest.approx(np.mean(controls) - unpruned)


def test_probability_shifts_read_the_studys_re_rankings_per_query_and_kind_of_pair(cranfield, monkeypatch):
    from neuron_ig.studies.effectiveness import informative_part

    encoder, inputs = cranfield
    mask = np.zeros((2, 64), dtype=bool)
    mask[0, :6] = mask[1, 10:16] = True
    pruning_study(encoder, {"cranfield": inputs}, {"some set": mask}, random_seeds=3, progress=False, n_resamples=200)

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored again instead of reading the study's cache")

    monkeypatch.setattr(encoder, "score_batches", no_scoring)
    table = probability_shifts(encoder, inputs, {"some set": mask}, random_seeds=3, n_bootstrap=199)
    assert table["pairs"].tolist() == ["relevant", "non-relevant"] and (table["scheme"] == "some set").all()
    part, positions = informative_part(inputs, encoder.tokenizer)
    p_unpruned = 1 / (1 + np.exp(-pruned_scores(encoder, inputs)[positions].astype(float)))
    p_pruned = 1 / (1 + np.exp(-pruned_scores(encoder, part, mask).astype(float)))
    relevant = np.array([inputs.qrels[q].get(d, 0) >= 1 for q, d in part.pairs])
    queries = np.array([q for q, _ in part.pairs])
    expected = [np.mean([(p_pruned - p_unpruned)[(queries == q) & kind].mean() for q in sorted(set(queries))
                         if ((queries == q) & kind).any()]) for kind in (relevant, ~relevant)]
    assert table["set shift"].tolist() == pytest.approx(expected, rel=1e-5)
    assert table["effect"].tolist() == pytest.approx((table["set shift"] - table["control shift"]).tolist())
    assert (table["interval low"] <= table["effect"]).all() and (table["effect"] <= table["interval high"]).all()
    assert ((table["p lower"] >= 1 / 4) & (table["p higher"] >= 1 / 4)).all()  # 3 controls: the rank's floor
    with pytest.raises(ValueError, match="random_seeds must be an int >= 2"):
        probability_shifts(encoder, inputs, {"some set": mask}, random_seeds=1)


def test_pruned_scores_accepts_one_token_type_as_a_string_as_neuron_pruning_does(encoder, neuron_ig_cache):
    inputs = synthetic_inputs(encoder)
    mask = last_layer_mask()
    at_query = pruned_scores(encoder, inputs, mask, token_types="query")
    assert np.array_equal(at_query, pruned_scores(encoder, inputs, mask, token_types=["query"]))
    assert not np.array_equal(at_query, pruned_scores(encoder, inputs, mask))


def test_two_models_of_the_same_name_do_not_share_cached_scores(neuron_ig_cache):
    two_labels, one_logit = random_cross_encoder(seed=7), random_cross_encoder(num_labels=1, seed=7)
    inputs = synthetic_inputs(two_labels)
    first = pruned_scores(two_labels, inputs)
    assert not np.array_equal(one_logit.score_batches(inputs.batches, log_odds=True).numpy(), first)
    assert not np.array_equal(pruned_scores(one_logit, inputs), first)


def synthetic_inputs(encoder) -> RerankInputs:
    """A re-ranking task of the module's three pairs, one query each, without any collection."""
    pairs = [(f"q{i}", f"d{i}") for i in range(len(QUERIES))]
    batches = encode_batches(encoder.tokenizer, QUERIES, PASSAGES, max_length=48, batch_size=2)
    return RerankInputs("synthetic", {q: {d: 1.0} for q, d in pairs}, pairs, batches, {q: {d: 1} for q, d in pairs},
                        {"dataset": "synthetic", "pairs": pairs})


@pytest.mark.filterwarnings("ignore:1 of 1 pairs truncated")
@pytest.mark.slow
def test_re_ranking_batches_are_sorted_by_length_sized_by_tokens_and_scores_come_back_in_order(encoder):
    queries = [f"query number {i} " + "word " * (i % 7) for i in range(40)]
    passages = [("a passage " * (1 + (7 * i) % 23)).strip() for i in range(40)]
    batches = encode_batches(encoder.tokenizer, queries, passages, max_length=48, batch_size=4)
    assert sorted(i for index, _ in batches for i in index) == list(range(40))
    widths = [batch.input_ids.shape[1] for _, batch in batches]
    assert widths == sorted(widths, reverse=True), "longest pairs first"
    assert all(len(index) * batch.input_ids.shape[1] <= 4 * 48 for index, batch in batches)
    assert max(len(index) for index, _ in batches) > len(batches[0][0]) == 4, "short pairs fill larger batches"
    padding = sum(int((batch.attention_mask == 0).sum()) for _, batch in batches) / sum(batch.attention_mask.numel() for _, batch in batches)
    assert padding < 0.1
    from neuron_ig.engine.encoding import MAX_PADDING
    assert all(float((batch.attention_mask == 0).float().mean()) < MAX_PADDING for _, batch in batches), "none much padded"
    wide = encode_batches(encoder.tokenizer, queries, passages, max_length=48, batch_size=40)  # one batch by tokens alone
    assert len(wide) > 1 and all(float((b.attention_mask == 0).float().mean()) < MAX_PADDING for _, b in wide)
    scores = encoder.score_batches(batches, log_odds=True)
    alone = torch.cat([encoder.log_odds(*(getattr(encode_pairs(encoder.tokenizer, [q], [p], 48), k) for k in
                                          ("input_ids", "attention_mask", "token_type_ids"))) for q, p in zip(queries, passages)])
    torch.testing.assert_close(scores, alone, rtol=1e-4, atol=1e-5)


def test_bf16_re_ranking_is_close_to_fp32_and_cached_apart(encoder, neuron_ig_cache):
    inputs = synthetic_inputs(encoder)
    files = lambda: len(list((neuron_ig_cache / "pruning").rglob("*.npz")))
    exact = pruned_scores(encoder, inputs, last_layer_mask())
    before = files()
    rounded = pruned_scores(encoder, inputs, last_layer_mask(), precision="bf16")
    assert files() == before + 1, "bf16 scores are cached under their own key"
    assert rounded.dtype == np.float32 and not np.array_equal(rounded, exact)
    np.testing.assert_allclose(rounded, exact, atol=0.05 * np.abs(exact).max())
    assert np.array_equal(pruned_scores(encoder, inputs, last_layer_mask(), precision="bf16"), rounded)
    assert np.array_equal(pruned_scores(encoder, inputs, last_layer_mask()), exact) and files() == before + 1
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        pruned_scores(encoder, inputs, last_layer_mask(), precision="half")


def test_pruning_study_gives_controls_only_to_the_controlled_sets_on_the_control_tasks(cranfield):
    from neuron_ig.stats.controls import activation_matched_controls, control_test
    from neuron_ig.studies.pruning import choose_control_tests

    encoder, inputs = cranfield
    mask = np.zeros((2, 64), dtype=bool)
    mask[0, :6] = mask[1, 10:16] = True
    other = np.zeros_like(mask)
    other[1, :3] = True
    activation = np.random.default_rng(0).random((2, 64))
    tasks = {"a": inputs, "b": inputs}
    table, queries = pruning_study(encoder, tasks, {"set": mask, "other": other}, random_seeds=3, progress=False,
                                   n_resamples=500, controlled=["set"], control_tasks=["a"], activation=activation)
    variants = set(queries[(queries["scheme"] == "set") & (queries["task"] == "a")]["variant"])
    assert variants == {"set", "random 0", "random 1", "random 2", "matched 0", "matched 1", "matched 2"}
    assert set(queries[(queries["scheme"] == "set") & (queries["task"] == "b")]["variant"]) == {"set"}
    assert set(queries[queries["scheme"] == "other"]["variant"]) == {"set"}
    # the study's own per-query table gives the per-query deltas whose means are the set's and controls' deltas
    from neuron_ig.stats.controls import set_and_control_deltas, set_and_control_per_query

    per_query_set, per_query_controls = set_and_control_per_query(queries, "set", "a")
    set_delta, control_deltas = set_and_control_deltas(queries, "set", "a")
    assert per_query_controls.shape == (3, len(per_query_set)) == (3, len(set(queries["query_id"])))
    assert per_query_set.mean() == pytest.approx(set_delta) and per_query_controls.mean(axis=1) == pytest.approx(control_deltas)
    rows = table.set_index(["scheme", "task"])
    assert rows.loc[("set", "a"), "controls"] == 3 and rows.loc[("set", "b"), "controls"] == 0
    assert rows.loc[("other", "a"), "controls"] == 0 and np.isnan(rows.loc[("other", "a"), "random delta"])
    unpruned = ndcg_at_10(inputs.run(pruned_scores(encoder, inputs)), inputs.qrels)
    matched = activation_matched_controls(mask, activation, 3)
    deltas = [ndcg_at_10(inputs.run(pruned_scores(encoder, inputs, m)), inputs.qrels) - unpruned for m in matched]
    assert rows.loc[("set", "a"), "matched delta"] == pytest.approx(np.mean(deltas))
    expected = control_test(rows.loc[("set", "a"), "delta"], deltas)
    assert rows.loc[("set", "a"), "p matched (t)"] == pytest.approx(expected["p t"])
    assert rows.loc[("set", "a"), "p matched (rank)"] == pytest.approx(expected["p rank"])

    chosen = choose_control_tests(table.assign(set=table["scheme"]), family="set")
    row = chosen.set_index(["scheme", "task"]).loc[("set", "a")]
    # over queries and controls: never below the rank floor 1 / (3 + 1)
    assert row["test vs random"] == QUERY_CONTROL and row["p vs random"] == pytest.approx(row["p random (queries and controls)"])
    assert row["p vs random"] >= 1 / 4 and row["delta vs random low"] <= row["delta vs random"] <= row["delta vs random high"]
    assert row["p vs random (Holm)"] == pytest.approx(row["p vs random"])  # a family of one
    assert chosen.set_index(["scheme", "task"]).loc[("other", "a"), "test vs random"] == "no control"
    with pytest.raises(ValueError, match="not among"):
        pruning_study(encoder, tasks, {"set": mask}, random_seeds=1, progress=False, controlled=["nope"])

    # fewer matched controls than random ones: the first of the same seeds, each kind counted on its own
    fewer, queries = pruning_study(encoder, {"a": inputs}, {"set": mask}, random_seeds=3, matched_seeds=1,
                                   progress=False, n_resamples=500, activation=activation)
    assert set(queries["variant"]) - {"set"} == {"random 0", "random 1", "random 2", "matched 0"}
    row = fewer.iloc[0]
    assert (row["controls"], row["random controls"], row["matched controls"]) == (3, 3, 1)
    assert row["matched delta"] == pytest.approx(deltas[0]) and np.isnan(row["p matched (t)"])
    with pytest.raises(ValueError, match="matched_seeds must be an int >= 0"):
        pruning_study(encoder, tasks, {"set": mask}, random_seeds=3, matched_seeds=1.5, progress=False)


def test_relevance_pruning_gives_the_ood_neurons_random_controls_on_their_own_collections_only(cranfield):
    from neuron_ig.studies.pruning import relevance_pruning

    encoder, inputs = cranfield
    rng = np.random.default_rng(3)
    scores = {"positive": {"a": rng.normal(size=(2, 64)), "b": rng.normal(size=(2, 64))}}
    ood = np.zeros((2, 64), dtype=bool)
    ood[1, 40:43] = True
    activation = rng.random((2, 64))
    table, per_query = relevance_pruning(encoder, {"a": inputs, "b": inputs}, scores, "a", [5.0], random_seeds=2,
                                         matched_seeds=2, controlled_sets=["top: a"], control_tasks=["a"],
                                         activation=activation, progress=False, ood={"positive": {5.0: ood}},
                                         ood_control_tasks=["b"])
    rows = table.set_index(["set", "task"])
    assert rows.loc[("OOD neurons", "a"), "controls"] == 0 and rows.loc[("OOD neurons", "b"), "random controls"] == 2
    assert rows.loc[("OOD neurons", "b"), "matched controls"] == 0 and rows.loc[("OOD neurons", "b"), "neurons"] == 3
    assert rows.loc[("top: a", "a"), "matched controls"] == 2 and rows.loc[("top: a", "b"), "controls"] == 0
    assert rows.loc[("OOD neurons", "b"), "test vs random"] == QUERY_CONTROL
    assert set(per_query.loc[per_query["set"] == "OOD neurons", "variant"]
               if "set" in per_query else per_query.loc[per_query["scheme"] == "positive · OOD neurons", "variant"]) \
        == {"set", "random 0", "random 1"}
    unpruned = per_query[per_query["scheme"] == "unpruned"]
    assert not unpruned.duplicated(["task", "query_id", "p"]).any()  # the OOD study's own unpruned rows are dropped
    without = relevance_pruning(encoder, {"a": inputs, "b": inputs}, scores, "a", [5.0], random_seeds=2,
                                controlled_sets=["top: a"], control_tasks=["a"], progress=False)[0]
    assert "OOD neurons" not in set(without["set"])


def test_choose_control_tests_takes_the_query_and_control_test_and_holm_within_each_set():
    import pandas as pd

    from neuron_ig.studies.pruning import choose_control_tests

    table = pd.DataFrame({"set": ["s", "s", "t"], "neurons": [5, 5, 0], "controls": [19, 19, 19],
                          "p random (queries and controls)": [0.05, 0.5, 0.5], "p random (t)": [0.002, 0.4, 0.5]})
    chosen = choose_control_tests(table)
    assert list(chosen["test vs random"]) == [QUERY_CONTROL, QUERY_CONTROL, "empty set"]
    assert chosen["p vs random"].iloc[0] == 0.05 and chosen["p vs random (Holm)"].iloc[0] == pytest.approx(0.1)
    assert np.isnan(chosen["p vs random"].iloc[2]) and chosen["family size"].tolist() == [2, 2, 0]


def test_the_study_scores_pruned_models_on_the_informative_queries_only(cranfield, monkeypatch):
    from neuron_ig.ir.query_split import informative_queries
    from neuron_ig.studies.effectiveness import informative_part

    encoder, inputs = cranfield
    part, position = informative_part(inputs, encoder.tokenizer)
    informative = informative_queries(inputs.first_stage, inputs.qrels)
    assert 0 < len(informative) < len(inputs.first_stage), "the test needs both kinds of queries"
    assert sorted(part.first_stage) == informative and len(part.pairs) < len(inputs.pairs)
    assert [inputs.pairs[i] for i in position] == part.pairs
    assert part.parameters["pairs_fingerprint"] != inputs.parameters["pairs_fingerprint"]
    pruned_scores(encoder, inputs)  # the unpruned model scores every pair once (cached)
    scored = []
    score_batches = encoder.score_batches
    monkeypatch.setattr(encoder, "score_batches", lambda batches, **kw: scored.append(sum(len(i) for i, _ in batches))
                        or score_batches(batches, **kw))
    mask = np.zeros((2, 64), dtype=bool)
    mask[0, 20:26] = True
    pruning_study(encoder, {"cranfield": inputs}, {"other set": mask}, random_seeds=1, progress=False, n_resamples=100)
    assert scored == [len(part.pairs), len(part.pairs)]  # the set and its control, informative pairs only
