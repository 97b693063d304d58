"""The JupyterLab way in: `make lab` started headless on a copy of the checkout, a notebook opened by a
double click in real Chromium, run with Run All Cells, its outputs checked, every request recorded.

The copy holds the Makefile, jupyter/ (the settings that open `.md` files as notebooks), the library and
tests/lab/lab_check.md as notebooks/lab_check.md; the kernel imports the copy's library (PYTHONPATH), so
the cache it reports and writes is the copy's `.cache/neuron_ig`, the folder the runner uses for that
checkout's book. `make -o venv` runs the lab target without reinstalling: the test runs in the venv.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.slow  # `make test-fast` leaves these out

REPO = Path(__file__).resolve().parents[1]
TOKEN = "neuron-ig-lab-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def checkout_copy(root: Path, notebooks: dict[str, Path]) -> Path:
    """A checkout at ``root`` holding what ``make lab`` and the library need, and the given notebooks."""
    root.mkdir(parents=True)
    for name in ("Makefile", "pyproject.toml", "_toc.yml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "jupyter", root / "jupyter")
    shutil.copytree(REPO / "lib" / "neuron_ig", root / "lib" / "neuron_ig", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "notebooks").mkdir()
    for name, source in notebooks.items():
        shutil.copy(source, root / "notebooks" / name)
    return root


@contextmanager
def make_lab(checkout: Path, env: dict[str, str] | None = None, timeout: float = 60):
    """``make lab`` in ``checkout``, headless on 127.0.0.1 with a known token; yields its base URL."""
    port = free_port()
    lab_args = ["--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={TOKEN}", "--ServerApp.open_browser=False",
                "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.getuid() == 0:
        lab_args.append("--allow-root")
    home = checkout / "home"  # no user settings, kernels or workspaces of whoever runs the tests
    home.mkdir(exist_ok=True)
    environment = {k: v for k, v in os.environ.items() if k != "NEURON_IG_CACHE"}
    environment.update(HOME=str(home), PYTHONPATH=str(checkout / "lib"), **(env or {}))
    log = open(checkout / "lab.log", "w")
    server = subprocess.Popen(
        ["make", "-o", "venv", "lab", f"VENV={sys.prefix}", f"LAB_ARGS={' '.join(lab_args)}"],
        cwd=checkout, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                pytest.fail(f"make lab exited with {server.returncode}: {(checkout / 'lab.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer in {timeout} s: {(checkout / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server shuts its kernels down
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def run_all_in_lab(browser, url: str, notebook: str, done: str | None = None, timeout_s: float = 120) -> dict:
    """Open ``notebook`` from JupyterLab's file browser (a double click), Run All Cells, wait for an
    output holding the text ``done`` (or, without it, for every code cell to have run).

    Returns the page's ``requests`` (every URL, web sockets included), the seconds from Run All to the
    first output and to ``done``, and the ``page`` (left open for further checks).
    """
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    requests = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.on("websocket", lambda socket_: requests.append(socket_.url))
    page.goto(f"{url}/lab?token={TOKEN}")
    page.locator(".jp-DirListing-itemText", has_text=notebook).dblclick(timeout=60_000)
    panel = page.locator(".jp-NotebookPanel")
    panel.wait_for(timeout=60_000)  # opened as a notebook, not in the text editor
    # the notebook's kernel (python3, named "Python 3 (neuron-ig)" by `make venv`) started and idle
    panel.locator(".jp-KernelName", has_text="Python 3").wait_for(timeout=60_000)
    page.wait_for_function("document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator')"
                           "?.getAttribute('data-status') === 'idle'", timeout=60_000)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    start = time.monotonic()
    outputs = panel.locator(".jp-OutputArea-output")
    outputs.first.wait_for(timeout=timeout_s * 1000)
    first = time.monotonic() - start
    if done:
        panel.locator(".jp-OutputArea-output", has_text=done).wait_for(timeout=timeout_s * 1000)
    else:
        page.wait_for_function("[...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]"
                               ".every(prompt => /\\[\\d+\\]/.test(prompt.textContent))", timeout=timeout_s * 1000)
    return {"page": page, "requests": requests, "first output s": first, "done s": time.monotonic() - start}


def off_machine(urls: list[str]) -> list[str]:
    """The URLs that leave 127.0.0.1."""
    return [u for u in urls if not u.startswith(("data:", "blob:", "about:")) and urlparse(u).hostname != "127.0.0.1"]


def test_make_lab_opens_a_markdown_notebook_runs_it_and_fetches_nothing_from_the_network(tmp_path, browser):
    checkout = checkout_copy(tmp_path / "checkout", {"lab_check.md": REPO / "tests" / "lab" / "lab_check.md"})
    with make_lab(checkout) as url:
        try:
            run = run_all_in_lab(browser, url, "lab_check.md", done="lab check done")
        except Exception:
            print((checkout / "lab.log").read_text()[-3000:])
            raise
        page = run["page"]
        text = page.locator(".jp-NotebookPanel").inner_text()
        # the project's kernel (this venv's Python), with the checkout's cache: the one its book uses
        assert f"kernel prefix: {sys.prefix}" in text
        assert f"cache root: {checkout.resolve() / '.cache' / 'neuron_ig'}" in text
        assert list((checkout / ".cache" / "neuron_ig" / "vega").glob("*.js")), "the kernel wrote to that cache"
        # the provenance block, folded, and the chart drawn by vega-embed from the inlined libraries
        assert page.locator(".jp-OutputArea-output details.nig-provenance").count() == 1
        page.wait_for_function("document.querySelectorAll('.jp-OutputArea-output .nig-chart .vega-embed svg.marks')"
                               ".length === 1", timeout=30_000)
        requests = run["requests"]
        page.context.close()
    assert any(u.startswith(url) for u in requests) and any(u.startswith("ws://127.0.0.1") for u in requests)
    assert off_machine(requests) == []
    print(f"JupyterLab: first output {run['first output s']:.1f} s, all cells {run['done s']:.1f} s after Run All")
