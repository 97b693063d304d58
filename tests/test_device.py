"""The device parameter: ``auto`` resolves, the CPU keeps its batch sizes, GPU batches regroup without changing
scores, and a CUDA out-of-memory error becomes one line naming what to lower."""
import pytest
import torch

from neuron_ig.engine.encoding import encode_batches, regroup
from neuron_ig.engine.models import random_cross_encoder
from neuron_ig.runtime import device


def test_auto_is_cuda_when_present_else_the_cpu():
    assert device.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert device.resolve_device(None) == device.resolve_device("auto")
    assert device.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        device.resolve_device("gpu")
    with pytest.raises(ValueError, match="not supported"):
        device.resolve_device("meta")


def test_the_cpu_keeps_the_callers_batch_size_and_cuda_follows_free_memory():
    from transformers import BertConfig

    config = BertConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16)  # MonoBERT large
    assert device.batch_rows(torch.device("cpu"), config, 128, 37, backward=True) == 37
    # a backward pass keeps every layer's activations (about 0.4 GB a row of 128 tokens here), a forward pass one layer's
    assert 0.3e9 < device.row_bytes(config, 128, backward=True) < 0.6e9
    assert device.row_bytes(config, 128, backward=False) == device.row_bytes(config, 128, backward=True) * 2 // 24
    if torch.cuda.is_available():
        rows = device.batch_rows(torch.device("cuda"), config, 128, 37, backward=True)
        assert 1 <= rows <= device.MAX_ROWS


def test_the_memory_fraction_is_checked(monkeypatch):
    monkeypatch.setenv(device.MEMORY_VARIABLE, "0.25")
    assert device.memory_fraction() == 0.25
    monkeypatch.setenv(device.MEMORY_VARIABLE, "2")
    with pytest.raises(ValueError, match="NEURON_IG_GPU_MEMORY='2'"):
        device.memory_fraction()


def test_regrouped_batches_score_the_same_pairs_the_same():
    encoder = random_cross_encoder()
    queries = [f"query {i} " + "word " * (i % 5) for i in range(23)]
    passages = [f"passage {i} " + "text " * (3 * i % 17) for i in range(23)]
    batches = encode_batches(encoder.tokenizer, queries, passages, max_length=32, batch_size=2)
    grouped = regroup(batches, 8)
    assert len(grouped) < len(batches) and all(len(index) <= 8 for index, _ in grouped if len(index) > 2)
    assert sorted(i for index, _ in grouped for i in index) == list(range(23))
    assert torch.allclose(encoder.score_batches(grouped), encoder.score_batches(batches), atol=1e-6)


def test_cuda_out_of_memory_is_one_line_naming_what_to_lower():
    with pytest.raises(device.DeviceMemoryError) as caught:
        with device.out_of_memory_hint("computing NIG", 512):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB\nlong details")
    message = str(caught.value)
    assert "\n" not in message and "512 rows a pass" in message
    assert "NEURON_IG_GPU_MEMORY" in message and "max_length" in message and "device: cpu" in message
