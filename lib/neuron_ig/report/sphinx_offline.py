"""Sphinx extension that keeps the built book offline: MathJax comes with the book, not from a CDN.

Sphinx loads MathJax from jsdelivr by default. This extension points ``mathjax_path`` at
``_static/mathjax/tex-svg-full.js`` and copies that one file (MathJax 3 with every TeX extension and
SVG output, so no font files are needed) from the ``django-static-mathjax`` package into the built
site. It also drops sphinx-thebe's scripts, which name a thebe bundle on unpkg: the book never
launches thebe (``launch_buttons: thebe: false``). Enable it in ``_config.yml`` with
``sphinx: extra_extensions: [neuron_ig.report.sphinx_offline]``.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

MATHJAX_FILE = "tex-svg-full.js"
MATHJAX_PATH = f"mathjax/{MATHJAX_FILE}"  # relative to the site's _static folder


def mathjax_source() -> Path:
    """The MathJax bundle shipped by the ``django-static-mathjax`` package."""
    source = Path(str(resources.files("mathjax"))) / "static" / "mathjax" / "es5" / MATHJAX_FILE
    if not source.is_file():
        raise FileNotFoundError(
            f"{source} is missing: install the book's dependencies with `make venv` "
            "(pyproject.toml's [book] extra brings django-static-mathjax)"
        )
    return source


def _use_local_mathjax(app, config) -> None:
    """Point Sphinx at the local copy of MathJax."""
    config.mathjax_path = MATHJAX_PATH


def _copy_mathjax(app, exception) -> None:
    """Copy MathJax into the built HTML site's _static folder."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / MATHJAX_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mathjax_source(), target)


def _drop_thebe(app, pagename, templatename, context, doctree) -> None:
    """Remove sphinx-thebe's loader and its configuration (which points at unpkg) from the page."""
    scripts = context.get("script_files")
    if scripts is not None:
        context["script_files"] = [
            script for script in scripts
            if "thebe" not in f"{script.filename or ''} {script.attributes.get('body', '')}"
        ]


def setup(app) -> dict:
    """Register the extension with Sphinx."""
    mathjax_source()  # fail early, with the fix, when MathJax is not installed
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _drop_thebe)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
