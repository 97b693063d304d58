"""Loading cross-encoders (both head shapes), refusing encoders without a head, and tokenising pairs."""

import pytest
import torch

from neuron_ig.engine.encoding import CLS, PADDING, PASSAGE, QUERY, SEP, encode_pairs
from neuron_ig.engine.models import (
    load_cross_encoder,
    packaged_minilm_path,
    random_cross_encoder,
)


@pytest.mark.parametrize("num_labels", [1, 2])
def test_a_saved_cross_encoder_loads_from_its_folder_with_either_head(tmp_path, num_labels):
    made = random_cross_encoder(num_labels=num_labels, seed=5)
    made.save(tmp_path)
    loaded = load_cross_encoder(tmp_path, device="cpu")
    assert loaded.num_labels == num_labels and len(loaded.ffn_layers()) == 2
    encoded = encode_pairs(loaded.tokenizer, ["wing lift"], ["the lift of a wing grows with speed"])
    expected = made.relevance(encoded.input_ids, encoded.attention_mask, encoded.token_type_ids)
    got = loaded.relevance(encoded.input_ids, encoded.attention_mask, encoded.token_type_ids)
    torch.testing.assert_close(got, expected)
    probabilities = loaded.class_probabilities(torch.randn(3, num_labels))
    torch.testing.assert_close(probabilities.sum(1), torch.ones(3))


def test_an_encoder_without_a_trained_head_is_refused():
    with pytest.raises(ValueError, match="no trained classification head .*fine-tune it first") as error:
        load_cross_encoder(packaged_minilm_path(), device="cpu")
    assert "\n" not in str(error.value)


def test_missing_folder_and_unknown_hub_id_give_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="model folder .* does not exist"):
        load_cross_encoder(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="cannot load cross-encoder 'no-such-org/no-such-model'.*check the Hugging Face id") as error:
        load_cross_encoder("no-such-org/no-such-model")
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def tokenizer():
    return random_cross_encoder().tokenizer


def test_token_segments_follow_cls_query_sep_passage_sep(tokenizer):
    encoded = encode_pairs(tokenizer, ["jet noise", "a much longer query about wings"], ["engines are loud", "lift"], max_length=32)
    tokens = tokenizer.convert_ids_to_tokens(encoded.input_ids[0])
    segments = encoded.segments[0].tolist()
    assert tokens[:3] == ["[CLS]", "jet", "noise"] and segments[:3] == [CLS, QUERY, QUERY]
    assert tokens[3] == "[SEP]" and segments[3] == SEP
    assert segments[4:7] == [PASSAGE] * 3 and tokens[7] == "[SEP]" and segments[7] == SEP
    assert segments[8:] == [PADDING] * (len(segments) - 8)
    assert (encoded.segments[encoded.attention_mask == 0] == PADDING).all()


def test_long_passages_are_truncated_with_one_warning(tokenizer):
    with pytest.warns(UserWarning, match="2 of 3 pairs truncated to max_length=16") as record:
        encoded = encode_pairs(tokenizer, ["q"] * 3, ["word " * 40, "short passage", "word " * 50], max_length=16)
    assert len(record) == 1
    assert encoded.input_ids.shape[1] == 16 and encoded.truncated.tolist() == [True, False, True]
    assert (encoded.segments == SEP).sum(1).eq(2).all(), "the closing [SEP] survives truncation"


def test_long_queries_are_cut_to_half_the_length_so_the_passage_keeps_room(tokenizer):
    with pytest.warns(UserWarning, match=r"1 of 2 pairs truncated to max_length=32 tokens \(1 queries cut to 16\)"):
        encoded = encode_pairs(tokenizer, ["word " * 200, "short"], ["the passage itself", "another passage"], max_length=32)
    assert (encoded.segments[0] == QUERY).sum() == 16
    assert (encoded.segments[0] == PASSAGE).sum() == 3 and encoded.truncated.tolist() == [True, False]


@pytest.mark.parametrize(
    "queries, passages, max_length, message",
    [
        (["  "], ["a passage"], 128, "empty query at index 0"),
        (["a query"], [""], 128, "empty passage at index 0"),
        (["a query"], ["p1", "p2"], 128, "1 queries but 2 passages"),
        (["q"], ["p"], "128", "max_length must be an int"),
        ("q", "p", 128, "must be lists of strings"),
    ],
)
def test_bad_pairs_get_one_line_errors(tokenizer, queries, passages, max_length, message):
    with pytest.raises(ValueError, match=message) as error:
        encode_pairs(tokenizer, queries, passages, max_length=max_length)
    assert "\n" not in str(error.value)
