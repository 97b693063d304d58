"""Time to first output of a book page reopened in JupyterLab from the book's warm cache.

A copy of the checkout (library, notebooks, Makefile, jupyter/ settings) is made in a temporary folder. The
runner executes one page there as `make book` does (papermill, parameters of params/default.yml), which
fills the copy's `.cache/neuron_ig`: that run is the cold time. Then `make lab` serves the copy (as in
tests/test_lab.py), the page is opened by a double click in headless Chromium and run with Run All Cells;
the kernel finds the same cache by itself (neuron_ig.cache's rule for a checkout). Measured: seconds from
Run All to the page's first output and to its last cell. The last line is
``lab-first-output page=<stem> runner-cold=<s> lab-first-output=<s> lab-all-cells=<s>``.

    python benchmarks/lab_first_output.py                      # page 02_collections (no model needed)
    python benchmarks/lab_first_output.py --page 01_nig_worked_example
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import CHROMIUM_FLAGS  # noqa: E402
from test_lab import checkout_copy, make_lab, run_all_in_lab  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--page", default="02_collections", help="stem of the notebook to time")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from neuron_ig import runner

    with tempfile.TemporaryDirectory(prefix="lab-first-output-") as scratch:
        root = Path(scratch) / "checkout"
        checkout_copy(root, {path.name: path for path in (REPO / "notebooks").glob("*.md")})
        shutil.copytree(REPO / "params", root / "params")
        os.environ.pop("NEURON_IG_CACHE", None)
        os.environ["PYTHONPATH"] = str(root / "lib")  # the papermill kernel imports the copy's library
        start = time.monotonic()
        runner.run(root, root / "params" / "default.yml", only=[args.page], build=False)
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
