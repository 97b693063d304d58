"""The dev proxy that stands in for a lay-to-clinical collection (benchmarks/embedded_model_dev.py, medical/dev)."""
import importlib.util
import io
import pickle
from pathlib import Path

import pytest

from neuron_ig.ir.retrieval import tokenize

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "embedded_model_dev.py"


@pytest.fixture(scope="module")
def dev():
    spec = importlib.util.spec_from_file_location("embedded_model_dev", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_medical_proxy_asks_for_mesh_diseases_in_lay_words_and_shares_nothing_with_hpo(dev, neuron_ig_cache):
    queries, docs, trees = dev.medical_collection()
    mesh = dev._mesh_dictionary()["disease_canonical_to_data"]
    assert len(queries) >= 40 and len(docs) >= 300
    assert len({key for _, key in queries}) == len(queries)  # one query per descriptor
    hpo_texts = dev.hpo_names_and_synonyms()
    assert {"macrocephaly", "big head", "abnormality of the palm"} <= hpo_texts  # a name, a lay and an exact synonym
    for term, key in queries:
        name = mesh[key]["name"]
        assert docs[key].startswith(f"{name}. ") and len(docs[key]) > len(name) + 10
        assert term.lower() not in hpo_texts, term
        assert not set(tokenize([term])[0]) & set(tokenize([name])[0]), (term, name)
        assert "," not in term and any(t.startswith("C") for t in trees[key])


def test_broader_and_narrower_mesh_names_are_never_negatives(dev):
    assert dev._related(["C10.228"], ["C10.228.140.300"]) and dev._related(["C17.800.329"], ["C17.800.329"])
    assert not dev._related(["C10.228"], ["C10.229.140"]) and not dev._related(["C10.22"], ["C10.228"])


def test_a_mesh_pickle_that_names_a_class_is_refused_not_run(dev):
    with pytest.raises(pickle.UnpicklingError, match="only dicts, lists and strings"):
        dev._PlainUnpickler(io.BytesIO(pickle.dumps({"x": Path("/")}))).load()
    assert dev._PlainUnpickler(io.BytesIO(pickle.dumps({"a": ["b", "c"]}))).load() == {"a": ["b", "c"]}
