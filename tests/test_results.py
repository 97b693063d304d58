"""NIG results on disk: keyed by parameters, written atomically, resumed after an interruption."""

from collections import namedtuple

import numpy as np
import pytest

import neuron_ig.studies.results as results
from neuron_ig.engine.models import random_cross_encoder
from neuron_ig.stats.selection import top_p_percent

Pair = namedtuple("Pair", "query_id doc_id query passage label")
PAIRS = [Pair(f"q{i}", f"d{i}", f"query number {i} about wings", f"passage {i} on the lift of a wing at speed {i}", i % 2) for i in range(7)]
PARAMETERS = {"model": "random-bert", "dataset": "toy/test", "label": 1, "baseline": "PAD_QUERY", "steps": 5, "rule": "left", "max_length": 32}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURON_IG_CACHE", str(tmp_path))
    return tmp_path


class Interrupted(Exception):
    pass


def load():
    return random_cross_encoder(num_layers=2, seed=3)


def test_a_rerun_loads_instead_of_recomputing(cache_dir, monkeypatch):
    first = results.cached_nig(load, PAIRS, PARAMETERS, chunk_pairs=3, progress=False)
    assert first.attributions.shape == (7, 4, 2, 64)
    assert first.manifest["parameters"]["steps"] == 5 and "torch" in first.manifest["versions"]
    monkeypatch.setattr(results, "_compute_chunk", lambda *a, **k: pytest.fail("recomputed a cached result"))
    again = results.cached_nig(load, PAIRS, PARAMETERS, chunk_pairs=3, progress=False)
    np.testing.assert_array_equal(first.attributions, again.attributions)
    assert list(again.query_ids) == [p.query_id for p in PAIRS]


def test_every_parameter_and_the_pairs_key_the_result(cache_dir):
    base = results.result_folder(dict(PARAMETERS, pairs_fingerprint="x"))
    for key, value in [("steps", 6), ("baseline", "PAD_ALL"), ("label", 0), ("rule", "right"), ("max_length", 64), ("model", "other")]:
        assert results.result_folder(dict(PARAMETERS, pairs_fingerprint="x", **{key: value})) != base
    assert results.result_folder(dict(PARAMETERS, pairs_fingerprint="y")) != base


def test_an_interrupted_run_resumes_from_the_chunks_done(cache_dir, monkeypatch):
    reference = results.cached_nig(load, PAIRS, dict(PARAMETERS, dataset="toy/reference"), chunk_pairs=3, progress=False)
    compute = results._compute_chunk
    calls = []
    resuming = False

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2 and not resuming:
            raise Interrupted("the machine went down")
        return compute(*args, **kwargs)

    monkeypatch.setattr(results, "_compute_chunk", interrupted)
    with pytest.raises(Interrupted):
        results.cached_nig(load, PAIRS, PARAMETERS, chunk_pairs=3, progress=False)
    folder = results.result_folder(dict(PARAMETERS, pairs_fingerprint=results.pairs_fingerprint(PAIRS)))
    assert [p.name for p in (folder / "parts").glob("*.npz")] == ["00000.npz"]
    assert not list(folder.rglob("*.tmp")), "no half-written file is left behind"
    calls.clear()
    resuming = True
    resumed = results.cached_nig(load, PAIRS, PARAMETERS, chunk_pairs=3, progress=False)
    assert len(calls) == 2, "only the two missing chunks are computed"
    np.testing.assert_allclose(resumed.attributions, reference.attributions, rtol=1e-5, atol=1e-8)
    assert (folder / "nig.npz").exists() and not list((folder / "parts").glob("*.npz"))


def test_truncation_is_counted_once_over_all_chunks(cache_dir):
    long_pairs = [p._replace(passage=p.passage + " and more words" * 20) for p in PAIRS]
    with pytest.warns(UserWarning, match="7 of 7 pairs truncated to max_length=32") as record:
        result = results.cached_nig(load, long_pairs, PARAMETERS, chunk_pairs=3, progress=False)
    assert len([w for w in record if "truncated" in str(w.message)]) == 1
    assert result.manifest["n_truncated"] == 7


def test_top_p_percent_of_a_cached_result(cache_dir):
    result = results.cached_nig(load, PAIRS, PARAMETERS, chunk_pairs=4, progress=False)
    mask = top_p_percent(result.total().mean(0), 1.0)
    assert mask.sum() == 2  # ceil(1% of 2 x 64)


# --- the pairs NIG attributes: the first correctly classified ones of the seeded draw ----------------

def _saved(folder, seed):
    encoder = random_cross_encoder(num_layers=2, seed=seed)
    encoder.save(folder)
    return str(folder)


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A random BERT that calls about a third of Cranfield's relevant pairs relevant, and most non-relevant ones not."""
    return _saved(tmp_path_factory.mktemp("model") / "random-bert", seed=10)


@pytest.fixture(scope="module")
def never_relevant_model(tmp_path_factory):
    """A random BERT whose P(relevant) stays below 0.33 on Cranfield: it classifies no relevant pair correctly."""
    return _saved(tmp_path_factory.mktemp("model") / "random-bert-never", seed=1)


@pytest.mark.parametrize("label", [1, 0])
def test_nig_pairs_are_the_first_correctly_classified_pairs_of_the_draw(ir_datasets_home, neuron_ig_cache, saved_model,
                                                                         label, monkeypatch):
    from neuron_ig.ir.pairs import relevance_pairs

    pairs, drawn = results.nig_pairs(saved_model, "cranfield", label, n_pairs=6, seed=2, max_length=64)
    draw = relevance_pairs("cranfield", drawn, label, seed=2, draw_order=True)
    encoder = results.cached_encoder(saved_model)
    relevance = encoder.score([p.query for p in draw], [p.passage for p in draw], max_length=64).numpy()
    correct = (relevance if label == 1 else 1 - relevance) > 0.5
    assert 6 <= drawn and correct.sum() == 6 and correct[-1]  # the draw stops at the 6th correct pair
    assert pairs == sorted(p for p, c in zip(draw, correct) if c)
    assert all(p.label == label for p in pairs)
    monkeypatch.setattr(results, "_first_correct", lambda *a, **k: pytest.fail("re-drew cached pairs"))
    assert results.nig_pairs(saved_model, "cranfield", label, n_pairs=6, seed=2, max_length=64) == (pairs, drawn)


def test_dataset_nig_attributes_only_the_selected_pairs_and_reports_the_draw(ir_datasets_home, neuron_ig_cache, saved_model):
    from neuron_ig.studies.aggregation import pairs_used

    result = results.dataset_nig(saved_model, "cranfield", 1, n_pairs=4, steps=3, max_length=64, progress=False)
    pairs, drawn = results.nig_pairs(saved_model, "cranfield", 1, n_pairs=4, max_length=64)
    assert [(p.query_id, p.doc_id) for p in pairs] == list(zip(result.query_ids, result.doc_ids))
    assert result.correct.all() and result.manifest["n_drawn"] == drawn
    used = pairs_used({"cranfield": result}).loc["cranfield"]
    assert (used["sampled"], used["correct"], used["used"]) == (drawn, 4, 4)
    assert used["share correct"] == pytest.approx(4 / drawn)


def test_a_dataset_with_no_correct_pair_gives_an_empty_result(ir_datasets_home, neuron_ig_cache, never_relevant_model):
    from neuron_ig.studies.aggregation import class_means, pairs_used

    assert results.nig_pairs(never_relevant_model, "cranfield", 1, n_pairs=3, max_length=64, max_drawn=20) == ([], 20)
    result = results.dataset_nig(never_relevant_model, "cranfield", 1, n_pairs=3, max_length=64, progress=False)
    assert result.attributions.shape[0] == 0 and result.manifest["n_drawn"] == 150  # 50 x n_pairs drawn, none correct
    assert class_means({"cranfield": result}) == {}
    assert pairs_used({"cranfield": result}).loc["cranfield", "correct"] == 0


def test_nig_pairs_refuses_a_bad_count(saved_model):
    with pytest.raises(ValueError, match="n_pairs must be a positive int"):
        results.nig_pairs(saved_model, "cranfield", 1, n_pairs=0)
    with pytest.raises(ValueError, match="n_pairs must be a positive int"):
        results.nig_pairs(saved_model, "cranfield", 1, n_pairs=2.5)


def test_the_model_fingerprint_is_hashed_once_and_follows_a_rewrite_of_the_weights(tmp_path, monkeypatch):
    import os

    folder = tmp_path / "m"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"first weights")
    hashed = []
    fingerprint = results.cache.file_fingerprint
    monkeypatch.setattr(results.cache, "file_fingerprint", lambda paths: hashed.append(paths) or fingerprint(paths))
    first = results.model_fingerprint(str(folder))
    assert results.model_fingerprint(str(folder)) == first and len(hashed) == 1
    weights.write_bytes(b"other weights")
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1))
    assert results.model_fingerprint(str(folder)) != first and len(hashed) == 2
