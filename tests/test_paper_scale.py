"""The paper's path (``params/paper.yml``) without the network: the model and collections a user downloads,
laid out in temporary folders exactly where Hugging Face and ``ir_datasets`` keep them after a download.

* a small random BERT cross-encoder, saved in a Hugging Face cache (``models--castorini--monobert-large-msmarco``
  with ``blobs/``, ``snapshots/<revision>/`` and ``refs/main``), which ``from_pretrained`` loads by id with
  ``HF_HUB_OFFLINE=1``;
* ``beir/nfcorpus/test``: the archive BEIR publishes (``nfcorpus.zip``: corpus, queries, graded qrels) where
  ``ir_datasets`` keeps it once downloaded (``beir/nfcorpus/source.zip``, read without a hash check);
* ``msmarco-passage/trec-dl-2019/judged``: the files ``ir_datasets`` extracts (``collection.tsv``, the 2019
  queries, graded qrels 0-3 and the official top-1000 run as ``ms.run``), with the ``irds_version.txt``
  that stops its migration from deleting the collection.

Then the real runner builds the book on ``params/paper.yml`` with only sizes overridden, through every notebook
and jupyter-book: the same ``ir_datasets.load``, ``from_pretrained``, bm25s and ir_measures calls a user runs.
Select these tests with ``-m paper_scale``.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from neuron_ig.engine.models import packaged_minilm_path, random_cross_encoder
from neuron_ig.report import runner

pytestmark = [pytest.mark.paper_scale, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
MODEL = "castorini/monobert-large-msmarco"
BEIR = "beir/nfcorpus/test"
TREC_DL = "msmarco-passage/trec-dl-2019/judged"
REVISION = "5ad5a3a2f5e3a1c1d0f4ba7a3e0b0c6f7d2e9a11"  # any commit hash: refs/main names the snapshot
TOPICS = 48  # queries per collection; each has its own words, so BM25 finds its documents
# params/paper.yml with only sizes overridden: pairs, steps, depths, controls, the variants' sizes; and the
# collections trimmed to the fixture's two ids (the in-domain one first, as in paper.yml)
SIZES = {
    "book": {"datasets": [TREC_DL, BEIR], "n_pairs": 4, "steps": 4, "pruning_depth": 5, "pruning_queries": 4,
             "random_seeds": 2, "matched_seeds": 2},
    "ir_collections": {"collections": [TREC_DL, BEIR]},
    **{page: {"depth": 5, "max_queries": 8, "accuracy_pairs": 4}  # the stand-in checks, as the claims read them
       for page in ("embedded_cross_encoder", "paper_vs_reproduction", "pruning_summary")},
    "robustness": {"robustness_pairs": 2},
    "convergence": {"finest": 8, "lowest": 2, "convergence_pairs": 2, "n_bootstrap": 10},
    "sensitivity": {"sensitivity_pairs": 2, "n_resamples": 19, "ood_resamples": 19, "depth": 5, "max_queries": 8,
                    "accuracy_pairs": 4},
    "pruning_negative_in_domain": {"random_seeds": 2},
}


# --- the fixtures: what a download leaves on disk ------------------------------------------------


def save_hub_model(hub: Path) -> Path:
    """A random 2-label BERT cross-encoder (packaged MiniLM tokenizer) in the Hugging Face cache layout under
    MODEL: files in ``blobs/<sha256>``, linked from ``snapshots/REVISION/``, ``refs/main`` naming it."""
    encoder = random_cross_encoder(num_labels=2, initializer_range=0.15)
    repo = hub / f"models--{MODEL.replace('/', '--')}"
    staging = repo / "staging"
    encoder.save(staging)
    snapshot = repo / "snapshots" / REVISION
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in sorted(staging.iterdir()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        file.replace(blob)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    staging.rmdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return repo


def _words(count: int, seed: int) -> list[str]:
    """Real English words of the MiniLM vocabulary (whole words the tokenizer keeps), drawn with ``seed``."""
    vocabulary = (packaged_minilm_path() / "vocab.txt").read_text().split()
    words = sorted({w for w in vocabulary if w.isalpha() and w.isascii() and 5 <= len(w) <= 9})
    return random.Random(seed).sample(words, count)


def _collection(seed: int, grades: list[int]):
    """``(docs {id: text}, queries {id: text}, qrels [(query, doc, grade)])``: per topic a query of three words,
    one document per grade (the words in it, more of them for higher grades) and two off-topic documents."""
    rng = random.Random(seed)
    words = _words(TOPICS * 3 + 300, seed)
    topic_words, filler = [words[3 * t:3 * t + 3] for t in range(TOPICS)], words[TOPICS * 3:]
    docs, queries, qrels = {}, {}, []
    for topic, keys in enumerate(topic_words):
        queries[topic] = " ".join(keys)
        for rank, grade in enumerate(grades):
            text = rng.sample(filler, 12) + keys[:max(1, 3 - rank)] * (1 + grade)
            rng.shuffle(text)
            docs[(topic, rank)] = " ".join(text)
            qrels.append((topic, (topic, rank), grade))
        for extra in range(2):
            docs[(topic, len(grades) + extra)] = " ".join(rng.sample(filler, 14) + keys[:1])
    return docs, queries, qrels


def write_nfcorpus(home: Path) -> Path:
    """BEIR's ``nfcorpus.zip`` (``nfcorpus/corpus.jsonl``, ``queries.jsonl``, ``qrels/{train,dev,test}.tsv``,
    grades 2 and 1) at ``beir/nfcorpus/source.zip``, where ``ir_datasets`` keeps the download."""
    docs, queries, qrels = _collection(seed=1, grades=[2, 2, 1])
    doc_id = {key: f"MED-{number}" for number, key in enumerate(sorted(docs), start=10)}
    archive = home / "beir" / "nfcorpus" / "source.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("nfcorpus/corpus.jsonl", "".join(
            json.dumps({"_id": doc_id[key], "title": text.split()[0], "text": text, "metadata": {"url": f"https://x/{doc_id[key]}"}}) + "\n"
            for key, text in sorted(docs.items())))
        zipped.writestr("nfcorpus/queries.jsonl", "".join(
            json.dumps({"_id": f"PLAIN-{t}", "text": text, "metadata": {"url": f"https://x/q{t}"}}) + "\n"
            for t, text in sorted(queries.items())))
        header = "query-id\tcorpus-id\tscore\n"
        for split, topics in (("train", range(0, 4)), ("dev", range(4, 8)), ("test", range(8, TOPICS))):
            zipped.writestr(f"nfcorpus/qrels/{split}.tsv", header + "".join(
                f"PLAIN-{t}\t{doc_id[d]}\t{g}\n" for t, d, g in qrels if t in topics))
    return archive


def write_trec_dl_2019(home: Path) -> Path:
    """What ``ir_datasets`` extracts for ``msmarco-passage/trec-dl-2019``: ``collection.tsv``, ``trec-dl-2019/
    queries.tsv`` (judged and unjudged queries), ``trec-dl-2019/qrels`` (TREC format, grades 3 to 0) and
    ``trec-dl-2019/ms.run`` (the official BM25 top-1000, query and passage ids in rank order)."""
    docs, queries, qrels = _collection(seed=2, grades=[3, 2, 1, 0])
    passage = {key: str(number) for number, key in enumerate(sorted(docs), start=1000)}
    query = {t: str(100000 + 17 * t) for t in queries}
    base = home / "msmarco-passage"
    (base / "trec-dl-2019").mkdir(parents=True)
    (base / "irds_version.txt").write_text("v2")  # else ir_datasets' migration deletes collection.tsv first
    (base / "collection.tsv").write_text("".join(f"{passage[key]}\t{text}\n" for key, text in sorted(docs.items(), key=lambda kv: int(passage[kv[0]]))))
    unjudged = {TOPICS + t: "an unjudged query" for t in range(3)}
    (base / "trec-dl-2019" / "queries.tsv").write_text(
        "".join(f"{query.get(t, str(200000 + t))}\t{text}\n" for t, text in {**queries, **unjudged}.items()))
    (base / "trec-dl-2019" / "qrels").write_text("".join(f"{query[t]} 0 {passage[d]} {g}\n" for t, d, g in qrels))
    from neuron_ig.ir.retrieval import (
        tokenize,  # the run as BM25 ranks it: query words counted in each passage
    )

    terms = {key: tokenize([text])[0] for key, text in docs.items()}
    lines = []
    for t, text in queries.items():
        words = set(tokenize([text])[0])
        ranked = sorted(docs, key=lambda key: (-sum(w in words for w in terms[key]), int(passage[key])))
        lines += [f"{query[t]}\t{passage[key]}\n" for key in ranked[:30]]
    (base / "trec-dl-2019" / "ms.run").write_text("".join(lines))
    return base


@pytest.fixture(scope="module")
def fixture_caches(tmp_path_factory):
    """``{"hf_home", "ir_datasets_home"}``: the model and both collections where a download leaves them."""
    root = tmp_path_factory.mktemp("paper_caches")
    save_hub_model(root / "hf" / "hub")
    write_nfcorpus(root / "ir_datasets")
    write_trec_dl_2019(root / "ir_datasets")
    return {"hf_home": root / "hf", "ir_datasets_home": root / "ir_datasets"}


def environment(hf_home: Path, ir_datasets_home: Path, cache: Path) -> dict:
    """The environment of a user's offline build: these caches, no network, this checkout's library."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "IR_DATASETS_", "NEURON_IG_"))}
    env.update(HF_HOME=str(hf_home), HF_HUB_CACHE=str(hf_home / "hub"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               IR_DATASETS_HOME=str(ir_datasets_home), NEURON_IG_CACHE=str(cache),
               PYTHONPATH=os.pathsep.join([str(REPO / "lib"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return env


def run_runner(root: Path, params: Path, env: dict, *extra: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neuron_ig.report.runner", "--root", str(root), "--params", str(params), *extra],
                          env=env, cwd=root, capture_output=True, text=True, timeout=timeout)


def book_copy(tmp: Path) -> Path:
    """The book's sources copied (notebooks, book pages, _config.yml, _toc.yml), as tests/test_book.py does."""
    for name in ("notebooks", "book"):
        shutil.copytree(REPO / name, tmp / name, ignore=shutil.ignore_patterns("generated"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, tmp / name)
    return tmp


def small_paper_params(target: Path) -> Path:
    """params/paper.yml with SIZES over it, written to ``target`` with a comment that says so."""
    params = yaml.safe_load((REPO / "params" / "paper.yml").read_text())
    for section, values in SIZES.items():
        params.setdefault(section, {}).update(values)
    target.write_text("# params/paper.yml with only sizes overridden and the collections trimmed to the fixture's "
                      "(tests/test_paper_scale.py)\n" + yaml.safe_dump(params, sort_keys=False))
    return target


# --- the build -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paper_book(tmp_path_factory, fixture_caches):
    root = book_copy(tmp_path_factory.mktemp("paper_book"))
    params = small_paper_params(root / "paper-small.yml")
    env = environment(fixture_caches["hf_home"], fixture_caches["ir_datasets_home"], root / "neuron_ig_cache")
    result = run_runner(root, params, env)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return root, result


def test_the_paper_params_build_every_page_and_the_book_offline(paper_book):
    root, result = paper_book
    for page in runner.toc_pages(REPO):
        notebook = json.loads((root / "book" / "generated" / f"{page}.ipynb").read_text())
        errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{page}: {errors[:1]}"
        assert (root / "_build" / "html" / "book" / "generated" / f"{page}.html").is_file()
    assert "book built:" in result.stdout


def test_the_build_read_the_fixture_collections_and_model(paper_book, fixture_caches):
    from test_book import glued

    root, _ = paper_book
    home = fixture_caches["ir_datasets_home"]
    collections = glued(root, "ir_collections")["collections"]
    assert collections[TREC_DL]["queries"] == TOPICS  # the judged ones only, not the 3 unjudged
    assert collections[TREC_DL]["qrels"] == TOPICS * 4  # grades 3 to 0
    # ir_datasets states MS MARCO's size from its metadata (8,841,823 passages), not from the file it reads
    assert collections[BEIR]["documents"] == TOPICS * 5 and collections[BEIR]["queries"] == TOPICS - 8
    assert set(glued(root, "positive_neurons")["pairs_used"]) == {TREC_DL, BEIR}
    assert {row["collection"] for row in glued(root, "pruning_summary")["pruning_tasks"]} == {TREC_DL, BEIR}
    # the model by its Hub id: its NIG results are filed under its name
    nig = root / "neuron_ig_cache" / "nig" / "monobert-large-msmarco"
    assert {p.name for p in nig.iterdir()} == {"beir_nfcorpus_test", "msmarco-passage_trec-dl-2019_judged"}
    # ir_datasets read the files in place and built its docstores beside them; it downloaded nothing
    assert (home / "msmarco-passage" / "collection.tsv").is_file() and (home / "msmarco-passage" / "collection.tsv.pklz4").exists()
    assert (home / "beir" / "nfcorpus" / "docs.pklz4").exists() and (home / "beir" / "nfcorpus" / "test.qrels").is_file()
    assert not (home / "downloads").exists() or not any((home / "downloads").iterdir())


def test_dry_run_finds_the_model_and_collections_in_the_caches(fixture_caches, tmp_path):
    params = small_paper_params(tmp_path / "paper-small.yml")
    env = environment(fixture_caches["hf_home"], fixture_caches["ir_datasets_home"], tmp_path / "cache")
    result = run_runner(REPO, params, env, "--dry-run", timeout=300)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith(("model", "dataset"))}
    assert set(lines) == {MODEL, TREC_DL, BEIR}
    assert all("in cache" in line for line in lines.values()), result.stdout
    assert "3 of 3 available locally" in result.stdout
    assert not (tmp_path / "cache").exists()  # nothing ran


def test_dry_run_on_empty_caches_lists_what_is_missing_and_its_size(tmp_path):
    params = small_paper_params(tmp_path / "paper-small.yml")
    env = environment(tmp_path / "hf", tmp_path / "ir_datasets", tmp_path / "cache")
    result = run_runner(REPO, params, env, "--dry-run", timeout=300)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith(("model", "dataset"))}
    assert all("missing" in line for line in lines.values()), result.stdout
    assert "2.4 MB to download" in lines[BEIR]  # nfcorpus.zip's size in ir_datasets' downloads.json
    assert "1.1 GB to download" in lines[TREC_DL]  # collectionandqueries.tar.gz, queries, qrels, the top-1000 run
    assert "size unknown" in lines[MODEL]  # offline the Hub cannot be asked
    assert "0 of 3 available locally; 3 missing" in result.stdout


def test_an_offline_build_without_the_model_stops_before_any_notebook_with_one_line(fixture_caches, tmp_path):
    root = book_copy(tmp_path / "book")
    params = small_paper_params(tmp_path / "paper-small.yml")
    env = environment(tmp_path / "empty-hf", fixture_caches["ir_datasets_home"], tmp_path / "cache")
    result = run_runner(root, params, env, "--only", "nig_worked_example", timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: model {MODEL} (page nig_worked_example) is not in the local cache")
    assert "hf download castorini/monobert-large-msmarco" in result.stderr
    assert not list((root / "book" / "generated").glob("*.ipynb"))


def test_ir_datasets_reads_the_layouts_as_a_download_leaves_them(fixture_caches, tmp_path):
    """Through ``ir_datasets.load`` alone: graded qrels of both, and the TREC DL top-1000 run as scoreddocs."""
    script = (
        "import collections, ir_datasets\n"
        f"dl, nf = ir_datasets.load({TREC_DL!r}), ir_datasets.load({BEIR!r})\n"
        "print(sorted({q.relevance for q in dl.qrels_iter()}), sorted({q.relevance for q in nf.qrels_iter()}))\n"
        "runs = collections.Counter(s.query_id for s in dl.scoreddocs_iter())\n"
        "print(len(runs), set(runs.values()), sum(1 for _ in dl.queries_iter()), nf.docs_store().get('MED-10').title != '')\n"
    )
    env = environment(fixture_caches["hf_home"], fixture_caches["ir_datasets_home"], tmp_path / "cache")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    grades, run = result.stdout.strip().splitlines()[-2:]
    assert grades == "[0, 1, 2, 3] [1, 2]"
    assert run == f"{TOPICS} {{30}} {TOPICS} True"  # the judged queries' runs; the 3 unjudged queries filtered out
