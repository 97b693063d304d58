"""One cache whatever the entry point: the rule of ``neuron_ig.runtime.cache.cache_root``, checked in fresh Python
processes started elsewhere than the checkout (as a JupyterLab kernel or a Python session would be)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from neuron_ig.runtime import cache

REPO = Path(__file__).resolve().parents[1]


def cache_root_seen(lib: Path, cwd: Path, **env: str) -> Path:
    """``cache_root()`` as a new Python process importing ``neuron_ig`` from ``lib`` in ``cwd`` reports it."""
    environment = {k: v for k, v in os.environ.items() if k not in ("NEURON_IG_CACHE", "PYTHONPATH")}
    environment.update(PYTHONPATH=str(lib), **env)
    output = subprocess.run(
        [sys.executable, "-c", "import neuron_ig.runtime.cache as c; print(c.__file__); print(c.cache_root())"],
        cwd=cwd, env=environment, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()
    assert Path(output[0]).resolve().parents[1] == (lib / "neuron_ig").resolve(), "imported the package under test"
    return Path(output[1])


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A copy of the checkout's layout: lib/neuron_ig, pyproject.toml and _toc.yml."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "lib" / "neuron_ig", root / "lib" / "neuron_ig",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "_toc.yml"):
        shutil.copy(REPO / name, root / name)
    return root


def test_a_session_started_anywhere_finds_the_checkouts_cache(checkout, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    seen = cache_root_seen(checkout / "lib", elsewhere, HOME=str(tmp_path / "home"))
    assert seen == checkout.resolve() / ".cache" / "neuron_ig"


def test_the_runner_and_the_library_agree_on_this_repository():
    # runner.run() uses <root>/.cache/neuron_ig for the book of <root>; the library's own rule gives the same
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("NEURON_IG_CACHE", raising=False)
        assert cache.cache_root() == (REPO / ".cache" / "neuron_ig").resolve()


def test_the_environment_variable_wins(checkout, tmp_path):
    chosen = tmp_path / "chosen cache"
    assert cache_root_seen(checkout / "lib", tmp_path, NEURON_IG_CACHE=str(chosen)) == chosen


def test_an_installed_package_uses_the_home_cache(checkout, tmp_path):
    (checkout / "_toc.yml").unlink()  # not a checkout of the book any more: like a package in site-packages
    home = tmp_path / "home"
    assert cache_root_seen(checkout / "lib", tmp_path, HOME=str(home)) == home / ".cache" / "neuron_ig"
