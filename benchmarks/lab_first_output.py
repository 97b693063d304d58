"""Time to first output of a book page reopened in JupyterLab from the book's warm cache.

A copy of the checkout (library, notebooks, Makefile, jupyter/ settings) is made in a temporary folder. The
runner executes one page there as `make book` does (papermill, parameters of params/default.yml), which
fills the copy's `.cache/neuron_ig`: that run is the cold time. Then `make lab` serves the copy (as in
tests/test_lab.py), the page is opened by a double click in headless Chromium and run with Run All Cells;
the kernel finds the same cache by itself (neuron_ig.runtime.cache's rule for a checkout). Measured: seconds from
Run All to the page's first output and to its last cell. The last line is
``lab-first-output page=<stem> runner-cold=<s> lab-first-output=<s> lab-all-cells=<s>``.

With ``--tiny``, the page runs on a cross-encoder fine-tuned for 6 steps (as tests/test_book.py does) at
small parameters, written both in the params file and in the page's parameter cell (as a user would
type them in JupyterLab), so that a model page is timed in minutes rather than after the 12-minute
fine-tuning of the default model.

    python benchmarks/lab_first_output.py                      # page ir_collections (no model needed)
    python benchmarks/lab_first_output.py --page positive_neurons --tiny
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import CHROMIUM_FLAGS  # noqa: E402
from test_lab import checkout_copy, make_lab, run_all_in_lab  # noqa: E402

TINY = {"datasets": ["neuron-ig/gcide/test", "neuron-ig/hpo/test", "neuron-ig/pystdlib/test"], "steps": 16,
        "max_length": 64, "n_pairs": 6, "p_values": [0.5, 1.0]}


def set_defaults(notebook: Path, values: dict) -> dict:
    """Replace the defaults of the parameter cell of ``notebook`` (jupytext MyST) by ``values`` it declares."""
    text = notebook.read_text()
    start = text.index(":tags: [parameters]")
    end = text.index("```", start)
    cell = text[start:end]
    declared = {name: value for name, value in values.items() if re.search(rf"^{name} = ", cell, re.MULTILINE)}
    for name, value in declared.items():
        cell = re.sub(rf"^{name} = .*$", f"{name} = {value!r}", cell, flags=re.MULTILINE)
    notebook.write_text(text[:start] + cell + text[end:])
    return declared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--page", default="ir_collections", help="stem of the notebook to time")
    parser.add_argument("--tiny", action="store_true", help="a model fine-tuned for 6 steps, small parameters")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from neuron_ig.report import runner

    with tempfile.TemporaryDirectory(prefix="lab-first-output-") as scratch:
        root = Path(scratch) / "checkout"
        checkout_copy(root, {path.name: path for path in (REPO / "notebooks").glob("*.md")})
        shutil.copytree(REPO / "params", root / "params")
        os.environ.pop("NEURON_IG_CACHE", None)
        os.environ["PYTHONPATH"] = str(root / "lib")  # the papermill kernel imports the copy's library
        params = root / "params" / "default.yml"
        if args.tiny:
            import yaml

            from neuron_ig.embedded_model.training import TrainingConfig, fine_tune
            from neuron_ig.engine.models import packaged_minilm_path

            model = root / ".cache" / "neuron_ig" / "models" / "tiny-cross-encoder"
            fine_tune(packaged_minilm_path(), TrainingConfig(steps=6, groups_per_step=4, negatives=1, max_length=64,
                                                             warmup_steps=1, rag_semantic_negatives=0), model, progress=False)
            values = set_defaults(root / "notebooks" / f"{args.page}.md", {**TINY, "model": str(model)})
            params = root / "params" / "tiny.yml"
            params.write_text(yaml.safe_dump({"book": values}))
        start = time.monotonic()
        runner.run(root, params, only=[args.page], build=False)
        cold = time.monotonic() - start
        chromium = os.environ.get("NEURON_IG_CHROMIUM") or shutil.which("chromium")
        with make_lab(root) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            run = run_all_in_lab(browser, url, f"{args.page}.md", timeout_s=600)
            browser.close()
    print(f"lab-first-output page={args.page} runner-cold={cold:.1f} lab-first-output={run['first output s']:.1f} "
          f"lab-all-cells={run['done s']:.1f}")


if __name__ == "__main__":
    main()
