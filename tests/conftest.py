"""Shared test set-up. Tests never download: the Hugging Face Hub is switched off before anything imports it.

Cranfield comes from `../shared/data/ir_datasets` beside the checkout (read-only; CI lays it out the same
way). `ir_datasets` writes next to the archive and fixes each dataset's paths when it is imported, so the
folder is copied to a writable temporary folder and `IR_DATASETS_HOME` pointed at it in
`pytest_configure`, before any test module can import `ir_datasets`; the `ir_datasets_home` fixture hands
the copy to a test, or skips the test where the shared folder is absent.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

SHARED_IR_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ir_datasets"
_ir_datasets_home: Path | None = None


def pytest_configure(config):
    global _ir_datasets_home
    if SHARED_IR_DATASETS.is_dir() and _ir_datasets_home is None:
        _ir_datasets_home = Path(tempfile.mkdtemp(prefix="neuron-ig-ir_datasets-"))
        shutil.copytree(SHARED_IR_DATASETS, _ir_datasets_home, dirs_exist_ok=True, copy_function=shutil.copyfile)
        for path in [_ir_datasets_home, *_ir_datasets_home.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o700)
        os.environ["IR_DATASETS_HOME"] = str(_ir_datasets_home)


def pytest_unconfigure(config):
    if _ir_datasets_home is not None:
        shutil.rmtree(_ir_datasets_home, ignore_errors=True)


@pytest.fixture(scope="session")
def ir_datasets_home() -> Path:
    """A writable copy of `../shared/data/ir_datasets` that `IR_DATASETS_HOME` points to (Cranfield)."""
    if _ir_datasets_home is None:
        pytest.skip(f"Cranfield test data not found at {SHARED_IR_DATASETS}: check out the repo with the "
                    f"project's shared/ folder beside it")
    return _ir_datasets_home


@pytest.fixture(scope="module")
def neuron_ig_cache(tmp_path_factory):
    """An empty cache root (`NEURON_IG_CACHE`) for the tests of one module, restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        root = tmp_path_factory.mktemp("neuron_ig_cache")
        patch.setenv("NEURON_IG_CACHE", str(root))
        yield root


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    """Debian's headless Chromium driven by playwright (fails on CI without it, skips elsewhere)."""
    chromium = os.environ.get("NEURON_IG_CHROMIUM") or shutil.which("chromium")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("no chromium: `make test` installs Debian's chromium")
        pytest.skip("no chromium (Debian package `chromium`; `make test` installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


# --- the small book: the repository's notebooks at small parameters, shared by the tests that read it ----

REPO = Path(__file__).resolve().parents[1]
DATASETS = ["neuron-ig/gcide/test", "neuron-ig/hpo/test", "neuron-ig/pystdlib/test"]
SMALL = {
    "book": {"datasets": DATASETS, "steps": 16, "baseline": "PAD_QUERY", "max_length": 64, "n_pairs": 6,
             "seed": 0, "p_values": [0.5, 1.0], "pruning_depth": 5, "pruning_queries": 4, "random_seeds": 2,
             "matched_seeds": 2},
    # the stand-in checks: run on the cross-encoder page, read with the same arguments by the claims of the
    # paper-vs-reproduction, sensitivity and pruning pages
    **{page: {"depth": 5, "max_queries": 10, "accuracy_pairs": 8} for page in ("embedded_cross_encoder", "paper_vs_reproduction")},
    "robustness": {"robustness_pairs": 4},
    "convergence": {"finest": 48, "lowest": 4, "convergence_pairs": 4, "n_bootstrap": 20},
    "sensitivity": {"sensitivity_pairs": 3, "n_resamples": 99, "ood_resamples": 99, "depth": 5, "max_queries": 10,
                    "accuracy_pairs": 8},
    "pruning_summary": {"p_values": [1.0], "depth": 5, "max_queries": 10, "accuracy_pairs": 8},
}


@pytest.fixture(scope="session")
def small_book(tmp_path_factory, ir_datasets_home):
    """The repository's book run with SMALL parameters on a cross-encoder fine-tuned for a few steps, in a cache of
    its own; returns the book's root (``book/generated/*.ipynb`` executed, ``_build/html`` built)."""
    from neuron_ig.embedded_model.training import TrainingConfig, fine_tune
    from neuron_ig.engine.models import packaged_minilm_path
    from neuron_ig.report import runner

    cache_root = tmp_path_factory.mktemp("small_book_cache")
    model = cache_root / "models" / "tiny-cross-encoder"
    fine_tune(packaged_minilm_path(), TrainingConfig(steps=6, groups_per_step=4, negatives=1, max_length=64,
                                                     warmup_steps=1, rag_semantic_negatives=0), model, progress=False)
    root = tmp_path_factory.mktemp("book")
    for name in ("notebooks", "book"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("generated"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / name, root / name)
    params = {**SMALL, "book": {**SMALL["book"], "model": str(model)}}
    (root / "params.yml").write_text(yaml.safe_dump(params))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEURON_IG_CACHE", str(cache_root))
        runner.run(root, root / "params.yml")
    return root
