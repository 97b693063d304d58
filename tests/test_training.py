"""Fine-tuning the embedded cross-encoder: a few steps of the real recipe, checkpointed and resumable."""

import dataclasses
import json

import pytest
import torch

import neuron_ig.embedded_model.training as training
from neuron_ig.engine.models import load_cross_encoder, packaged_minilm_path

TINY = training.TrainingConfig(steps=4, groups_per_step=2, rag_groups_per_step=1, word_groups_per_step=1, negatives=2,
                               bm25_depth=10, max_length=48, checkpoint_every=2, warmup_steps=1,
                               rag_semantic_negatives=0)  # BM25's: no embedding of every passage


class Interrupted(Exception):
    pass


@pytest.mark.slow
def test_training_groups_put_a_relevant_document_first_then_hard_negatives(neuron_ig_cache):
    from neuron_ig.ir.datasets import load_dataset, relevant_qrels

    groups = training.training_groups(TINY)
    assert len(groups) == TINY.steps * TINY.groups_per_step
    dataset = load_dataset(TINY.train_dataset)
    texts = {d.doc_id: d.default_text() for d in dataset.docs_iter()}
    queries = {q.default_text(): q.query_id for q in dataset.queries_iter()}
    relevant = relevant_qrels(TINY.train_dataset)
    for query, docs in groups:
        assert len(docs) == 1 + TINY.negatives
        relevant_texts = {texts[d] for d in relevant[queries[query]]}
        assert docs[0] in relevant_texts and not set(docs[1:]) & relevant_texts
    assert groups == training.training_groups(TINY), "seeded"


@pytest.mark.slow
def test_rag_groups_put_one_of_the_teachers_best_own_passages_first_then_other_queries_passages():
    from neuron_ig.embedded_model.teacher import similarity
    from neuron_ig.ir.trec_rag import rag_queries

    groups = training.rag_groups(TINY)
    assert len(groups) == TINY.steps * TINY.rag_groups_per_step
    by_text = {q.query: q for q in rag_queries("train")}
    for query, passages in groups:
        own = by_text[query].passages
        assert len(passages) == 1 + TINY.negatives and passages[0] in own and not set(passages[1:]) & set(own)
        cosine = similarity([query] * len(own), list(own))
        assert float(similarity([query], passages[:1])[0]) >= float(cosine.sort(descending=True).values[TINY.rag_positive_top - 1]) - 1e-5
    assert groups == training.rag_groups(TINY), "seeded"


@pytest.mark.slow
def test_semantic_rag_negatives_are_the_other_queries_passages_closest_to_the_query_by_the_teacher(monkeypatch):
    import bm25s

    from neuron_ig.ir.retrieval import tokenize
    from neuron_ig.ir.trec_rag import rag_queries

    queries = rag_queries("dev")[:6]  # a split of six real queries: every passage is embedded
    passages = sorted({p for q in queries for p in q.passages})
    index = bm25s.BM25()
    index.index(tokenize(passages), show_progress=False)
    monkeypatch.setattr(training, "_rag_split", lambda split: (queries, passages, index))
    config = dataclasses.replace(TINY, rag_semantic_negatives=1, rag_negative_pool=5)
    embeddings = {}
    groups = training.rag_groups(config, embeddings=embeddings)
    by_text = {q.query: q for q in queries}
    for query, texts in groups:
        own = set(by_text[query].passages)
        others = sorted((float(embeddings[query] @ embeddings[p]) for p in passages if p not in own), reverse=True)
        assert texts[1] not in own and float(embeddings[query] @ embeddings[texts[1]]) >= others[config.rag_negative_pool - 1] - 1e-6
        assert not set(texts[2:]) & own and texts[2] != texts[1]
    assert groups == training.rag_groups(config, embeddings=embeddings), "seeded"


@pytest.mark.slow
def test_word_groups_ask_for_a_training_headword_and_put_one_of_its_definitions_first(neuron_ig_cache):
    from neuron_ig.ir.datasets import load_dataset
    from neuron_ig.ir.retrieval import tokenize

    config = dataclasses.replace(TINY, word_groups_per_step=3)  # the documents are the definitions alone (no headword)
    groups = training.word_groups(config)
    assert len(groups) == config.steps * config.word_groups_per_step
    dataset = load_dataset(config.train_dataset)
    train_words = {q.headword for q in dataset.queries_iter()}
    definitions = {}
    for doc in dataset.docs_iter():
        definitions.setdefault(doc.headword, set()).add(doc.text)
    for word, docs in groups:
        assert word in train_words and len(docs) == 1 + config.negatives
        assert docs[0] in definitions[word] and not set(docs[1:]) & definitions[word], "its own sense first, none after"
        for negative in docs[1:]:
            assert not training._defines(set(tokenize([word])[0]), negative), "no synonym's definition as a negative"
    assert groups == training.word_groups(config), "seeded"
    assert training.headword_definitions("neuron-ig/gcide/dev") is training.headword_definitions(config.train_dataset), \
        "the splits share one copy of the definitions"
    assert training._defines({"embalm"}, "To embalm; to mummify.") and training._defines({"bank"}, "See Bank.")
    assert not training._defines({"embalm"}, "Of or pertaining to Canopus in Egypt; as, the Canopic vases, used in embalming.")


def test_group_loss_rewards_ranking_the_relevant_document_first():
    good = torch.tensor([[0.0, 3.0], [3.0, 0.0], [3.0, 0.0]])
    bad = torch.tensor([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])
    teacher = torch.tensor([[0.9, 0.1, 0.2]])
    assert training.group_loss(good, 2, teacher, TINY)[0] < training.group_loss(bad, 2, teacher, TINY)[0]
    _, parts = training.group_loss(good, 2, teacher, TINY)
    assert parts["accuracy"] == 1.0 and parts["distillation"] >= 0


def test_the_pointwise_loss_is_the_class_balanced_cross_entropy_of_its_targets():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0], [0.5, 0.0], [0.0, 0.3], [2.0, 0.0], [0.0, 0.0]])
    _, parts = training.group_loss(logits, 2)
    hard = torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0, 0, 1, 0, 0]), weight=torch.tensor([1.0, 2.0]))
    assert parts["pointwise"] == pytest.approx(hard.item(), rel=1e-6), "1 for the first document, 0 for the others"
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    assert training.group_loss(logits, 2, targets=labels)[1]["pointwise"] == pytest.approx(hard.item(), rel=1e-6)
    targets = torch.tensor([[0.9, 0.3, 0.1], [0.6, 0.5, 0.2]])
    best = torch.stack([torch.zeros(6), torch.logit(targets).flatten()], dim=1)  # P(relevant) = targets

    def pointwise(logits):
        return training.group_loss(logits, 2, targets=targets)[1]["pointwise"]

    assert all(pointwise(best) < pointwise(best + shift) for shift in (torch.tensor([0.0, 0.2]), torch.tensor([0.0, -0.2]))), \
        "lowest where P(relevant) equals the target"


def test_pointwise_targets_mix_the_labels_with_the_teachers_calibrated_probability_in_general_groups_only():
    cosine = torch.tensor([[0.8, 0.55, 0.2], [0.8, 0.55, 0.2]])
    general = torch.tensor([False, True])
    labels = torch.tensor([1.0, 0.0, 0.0])
    teacher = training.pointwise_targets(cosine, general, dataclasses.replace(TINY, teacher_labels=1.0))
    assert torch.equal(teacher[0], labels), "in-domain groups keep their labels"
    assert teacher[1, 1] == pytest.approx(0.5) and teacher[1, 0] > 0.99 and teacher[1, 2] < 0.01, "0.5 at the threshold"
    half = training.pointwise_targets(cosine, general, dataclasses.replace(TINY, teacher_labels=0.5))
    assert torch.allclose(half[1], (labels + teacher[1]) / 2)
    assert torch.equal(training.pointwise_targets(cosine, general, dataclasses.replace(TINY, teacher_labels=0.0))[1], labels)


def test_the_distillation_term_averages_over_the_groups_it_covers():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0], [0.5, 0.0], [0.0, 0.3], [2.0, 0.0], [0.0, 0.0]])
    teacher = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.9, 0.5]])

    def distillation(distilled=None, logits=logits, teacher=teacher):
        return training.group_loss(logits, 2, teacher, TINY, distilled=distilled)[1]["distillation"]

    assert distillation(torch.tensor([True, True])) == distillation()
    assert distillation(torch.tensor([True, False])) == pytest.approx(distillation(logits=logits[:3], teacher=teacher[:1]), rel=1e-6)
    assert distillation(torch.tensor([False, True])) == pytest.approx(distillation(logits=logits[3:], teacher=teacher[1:]), rel=1e-6)
    assert distillation(torch.tensor([True, False])) != pytest.approx(distillation(torch.tensor([False, True])))


def test_group_roles_follow_the_sources_order_in_each_step_and_the_word_knobs():
    config = dataclasses.replace(TINY, groups_per_step=1, rag_groups_per_step=2, word_groups_per_step=1, teacher_labels=0.5,
                                 word_teacher_labels=True, word_distill=True)
    general, distilled = training.group_roles(config, 8)  # 2 steps of 1 in-domain, 2 RAG, 1 headword group
    assert general.tolist() == [False, True, True, True] * 2 and distilled.all()
    general, distilled = training.group_roles(dataclasses.replace(config, word_teacher_labels=False, word_distill=False), 8)
    assert general.tolist() == [False, True, True, False] * 2
    assert distilled.tolist() == [True, True, True, False] * 2


def test_knobs_at_their_neutral_value_keep_the_cache_key_of_the_model_trained_before_they_existed():
    before = {"train_dataset", "steps", "groups_per_step", "rag_groups_per_step", "negatives", "bm25_depth", "rag_positive_top",
              "rag_negative_pool", "max_length", "lr", "head_lr", "warmup_steps", "distill_weight", "teacher_scale", "seed",
              "threads", "checkpoint_every"}
    neutral = training.TrainingConfig(rag_semantic_negatives=0, dropout=0.1, word_groups_per_step=0, teacher_labels=0.0,
                                      word_teacher_labels=True, word_distill=True, fused_adamw=False, weight_average=0.0)
    assert set(training.recipe_key(neutral)) == before
    changed = [training.recipe_key(dataclasses.replace(neutral, **knob)) for knob in
               ({"rag_semantic_negatives": 1}, {"teacher_labels": 0.5}, {"teacher_threshold": 0.6}, {"dropout": 0.2},
                {"word_groups_per_step": 1}, {"word_teacher_labels": False}, {"word_distill": False}, {"fused_adamw": True},
                {"weight_average": 0.5})]
    assert all(set(key) - before for key in changed)


def test_bad_recipe_knobs_are_refused_with_the_range_to_use():
    with pytest.raises(ValueError, match="rag_semantic_negatives=4: use 0 to negatives=3"):
        training.TrainingConfig(rag_semantic_negatives=4, negatives=3)
    with pytest.raises(ValueError, match="teacher_labels=2"):
        training.TrainingConfig(teacher_labels=2)
    with pytest.raises(ValueError, match="dropout=1.0: use a probability"):
        training.TrainingConfig(dropout=1.0)
    with pytest.raises(ValueError, match="weight_average=1.5: use the share of the last steps"):
        training.TrainingConfig(weight_average=1.5)


@pytest.mark.slow
def test_an_interrupted_fine_tuning_resumes_and_saves_a_loadable_cross_encoder(neuron_ig_cache, tmp_path, monkeypatch):
    folder = tmp_path / "model"
    loss = training.group_loss
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise Interrupted("power cut")
        return loss(*args, **kwargs)

    monkeypatch.setattr(training, "group_loss", interrupted)
    with pytest.raises(Interrupted):
        training.fine_tune(packaged_minilm_path(), TINY, folder, progress=False)
    assert not folder.exists() and folder.with_name("model.checkpoint.pt").exists()
    monkeypatch.setattr(training, "group_loss", loss)
    training.fine_tune(packaged_minilm_path(), TINY, folder, progress=False)
    log = training.training_log(folder)
    assert [entry["step"] for entry in log["log"]] == [1, 2, 3, 4]
    assert log["config"] == dataclasses.asdict(TINY)
    assert not folder.with_name("model.checkpoint.pt").exists()
    encoder = load_cross_encoder(folder, device="cpu")  # a trained head: not refused
    assert encoder.num_labels == 2 and len(encoder.ffn_layers()) == 6
    scores = encoder.score(["what does \"bank\" mean in: the river overflowed its banks"], ["bank (n.) The margin of a watercourse"])
    assert 0 < float(scores[0]) < 1

    # the checkpoint carries the weight average too: the resumed run saves the uninterrupted run's weights
    from safetensors.torch import load_file
    assert 0 < TINY.weight_average < 1 and TINY.checkpoint_every < TINY.steps
    uninterrupted = training.fine_tune(packaged_minilm_path(), TINY, tmp_path / "uninterrupted", progress=False)
    resumed, whole = load_file(folder / "model.safetensors"), load_file(uninterrupted / "model.safetensors")
    assert resumed.keys() == whole.keys() and all(torch.equal(resumed[name], whole[name]) for name in whole)


@pytest.mark.slow
def test_the_model_is_the_average_of_the_weights_after_each_of_the_last_steps(neuron_ig_cache, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    after_step = []  # every parameter after each optimizer step, of both runs in turn
    make_optimizer = training.make_optimizer

    def recording(model, config):
        optimizer = make_optimizer(model, config)
        optimizer.register_step_post_hook(
            lambda *_: after_step.append({name: p.detach().clone() for name, p in model.named_parameters()}))
        return optimizer

    monkeypatch.setattr(training, "make_optimizer", recording)
    assert TINY.steps == 4 and TINY.weight_average == 0.75  # the last 3 steps are averaged
    averaged = load_file(training.fine_tune(packaged_minilm_path(), TINY, tmp_path / "averaged", progress=False)
                         / "model.safetensors")
    last = load_file(training.fine_tune(packaged_minilm_path(), dataclasses.replace(TINY, weight_average=0.0),
                                        tmp_path / "last", progress=False) / "model.safetensors")
    assert len(after_step) == 2 * TINY.steps
    run, run_without = after_step[:TINY.steps], after_step[TINY.steps:]
    for name in run[0]:
        assert torch.equal(run[-1][name], run_without[-1][name]), "averaging does not change the training itself"
        assert torch.equal(last[name], run_without[-1][name])
        expected = torch.stack([weights[name] for weights in run[1:]]).mean(0)
        torch.testing.assert_close(averaged[name], expected, rtol=1e-5, atol=1e-6)
    name = next(n for n in run[0] if n.endswith("layer.0.intermediate.dense.weight"))
    assert not torch.allclose(averaged[name], last[name], rtol=0, atol=1e-6), "the average is not the last step's weights"


def test_the_embedded_id_names_the_cached_model_and_typos_are_refused():
    from neuron_ig.engine.models import resolve_model

    with pytest.raises(ValueError, match="unknown embedded model 'neuron-ig/minilm'.*neuron-ig/minilm-l6-cross-encoder"):
        resolve_model("neuron-ig/minilm")
    assert resolve_model("castorini/monobert-large-msmarco") == "castorini/monobert-large-msmarco"


@pytest.mark.slow
def test_the_same_seed_gives_the_same_weights_whatever_the_callers_thread_count(neuron_ig_cache, tmp_path):
    from safetensors.torch import load_file

    config = dataclasses.replace(TINY, steps=2)
    threads = torch.get_num_threads()
    weights = []
    try:
        for run, callers_threads in enumerate((1, 2)):
            torch.set_num_threads(callers_threads)
            folder = training.fine_tune(packaged_minilm_path(), config, tmp_path / f"run{run}", progress=False)
            weights.append(load_file(folder / "model.safetensors"))
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads, "the caller's thread count is restored"
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])
    initial = load_file(packaged_minilm_path() / "model.safetensors")
    name = next(n for n in weights[0] if n.endswith("encoder.layer.0.intermediate.dense.weight"))
    assert not torch.equal(weights[0][name], initial[next(k for k in initial if k.endswith("layer.0.intermediate.dense.weight"))]), "it trained"

    # the dropout knob reaches the encoder (and the head): with the base's dropout the same steps give other weights
    assert config.dropout == 0.0
    folder = training.fine_tune(packaged_minilm_path(), dataclasses.replace(config, dropout=0.1), tmp_path / "dropout",
                                progress=False)
    saved = json.loads((folder / "config.json").read_text())
    assert saved["hidden_dropout_prob"] == saved["attention_probs_dropout_prob"] == 0.1
    assert not torch.equal(load_file(folder / "model.safetensors")[name], weights[0][name])

    # the fused AdamW (the default) makes the per-tensor loop's update, up to float rounding
    assert config.fused_adamw
    folder = training.fine_tune(packaged_minilm_path(), dataclasses.replace(config, fused_adamw=False), tmp_path / "loop",
                                progress=False)
    looped = load_file(folder / "model.safetensors")
    for key, fused in weights[0].items():
        start = initial.get(key.removeprefix("bert."), torch.zeros_like(fused))  # the new head is not in the base: from 0
        assert (fused - looped[key]).abs().max() <= 1e-3 * (looped[key] - start).abs().max(), key


def test_headword_groups_on_a_collection_without_headwords_are_refused_with_the_fix(ir_datasets_home, neuron_ig_cache):
    with pytest.raises(ValueError, match="has none: pass word_groups_per_step=0"):
        training.word_groups(dataclasses.replace(TINY, train_dataset="cranfield"))


@pytest.mark.slow
def test_the_training_speed_benchmark_runs_every_setting_on_real_groups(neuron_ig_cache):
    """benchmarks/training_speed.py at a toy size: its summary line names every setting with a time and a ratio."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "training_speed.py"
    out = subprocess.run([sys.executable, str(script), "--steps", "1"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert re.fullmatch(r"training-speed loop-AdamW=[\d.]+s,1\.00x fused-AdamW=[\d.]+s,[\d.]+x fused-averaged=[\d.]+s,[\d.]+x", out[-1]), out[-1]


def test_the_dev_runs_are_a_data_file_and_the_module_docstring_stays_short():
    import pandas as pd

    runs = pd.read_csv(training.dev_runs_file())
    assert len(runs) >= 38 and runs.columns[0].startswith("recipe")
    assert runs["GCIDE dev nDCG@10"].between(0, 1).all() and runs["medical/dev nDCG@10"].dropna().between(0, 1).all()
    assert runs.filter(like="in class %").stack().between(0, 100).all()
    assert runs["recipe (groups a step: GCIDE, RAG, words; teacher labels)"].str.contains(r"\(default\)").sum() == 1
    assert len(training.__doc__.strip().splitlines()) <= 20
