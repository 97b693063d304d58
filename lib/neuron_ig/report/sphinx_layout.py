"""Sphinx extension that fits every page's outputs to the text column, so that nothing scrolls sideways at 1280 px.

It adds ``fit_column.css`` (shipped beside this module) to every HTML page and copies it into the built site's
``_static`` folder: tables wrap their text in a smaller font, charts and images scale down to the column, code
wraps its long lines. Enable it in ``_config.yml`` with ``sphinx: extra_extensions: [neuron_ig.report.sphinx_layout]``.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

CSS_FILE = "fit_column.css"


def _copy_css(app, exception) -> None:
    """Copy the style sheet into the built HTML site's _static folder."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / CSS_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(str(resources.files("neuron_ig.report"))) / CSS_FILE, target)


def setup(app) -> dict:
    """Register the extension with Sphinx."""
    app.add_css_file(CSS_FILE)
    app.connect("build-finished", _copy_css)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
