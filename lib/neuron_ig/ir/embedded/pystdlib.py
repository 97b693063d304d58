"""`neuron-ig/pystdlib`: which function does what this docstring summary says? (out-of-domain, code)

Source: the Python standard library's own source files (`sysconfig.get_path("stdlib")`), always installed
with Python. Licence: the Python Software Foundation License (PSF-2.0). The collection depends on the
exact Python version (`3.11.7` here): it is part of the cache key, and another patch release gives a
slightly different collection (and fingerprint).

Task (code search from a natural-language description, like CodeSearchNet, Husain et al. 2019):
- Document: one function or method of the standard library, its docstring removed: `"# <module>\\n<code>"`,
  e.g. `# json.decoder` then `def decode(self, s, _w=WHITESPACE.match): obj, end = ...`. Every function
  defined in a `.py` file of the standard library (test suites, idlelib, lib2to3, tkinter, turtledemo,
  ensurepip, venv and pydoc_data left out), except dunder methods, `test*` functions and functions of
  fewer than two statements, with or without a docstring (6,111 in Python 3.11.7).
- Query: the first paragraph of a function's docstring, whitespace collapsed, when it has 4 to 40 words
  and is not copied verbatim in the code (a comment), e.g. `Return a Request or None in response to a
  redirect.`: 2,736 distinct summaries, of which 1,000 are sampled with a fixed seed for the test split.
- Qrels: the function(s) whose docstring starts with that summary, relevance 1 (1,042 for 1,000 queries).
BM25 (`neuron_ig.ir.retrieval`, top 100): nDCG@10 0.329, RR@10 0.289 on test (Python 3.11.7).
"""
from __future__ import annotations

import ast
import platform
import random
import sysconfig
import textwrap
from pathlib import Path
from typing import NamedTuple

from ir_datasets.formats import GenericQuery

NAME = "pystdlib"
VERSION = 1
SPLITS = ("test",)
SKIP = {"test", "tests", "idlelib", "lib2to3", "tkinter", "turtledemo", "ensurepip", "venv", "pydoc_data",
        "site-packages", "dist-packages", "__phello__"}
MIN_WORDS, MAX_WORDS = 4, 40
SAMPLE = 1000
SEED = 0
Query = GenericQuery


class Doc(NamedTuple):
    """One function of the standard library, without its docstring."""
    doc_id: str  # "<module>:<qualified name>", e.g. "json.decoder:JSONDecoder.decode"
    module: str
    qualname: str
    code: str

    def default_text(self):
        """# module, newline, code"""
        return f"# {self.module}\n{self.code}"


def source_key() -> str:
    """The Python version whose standard library the collection is read from."""
    return f"python-{platform.python_version()}"


def _source_files(root: Path, packages=None):
    """(module name, path) of the ``.py`` files under ``root`` (only in the top-level ``packages``, if given)."""
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if packages is not None and parts[0] not in packages:
            continue
        if not (set(parts[:-1]) & SKIP or parts[0].startswith("config-")):
            yield ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"), path


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, node) of every function in the tree, classes and nested functions included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
            yield from _functions(node, f"{prefix}{node.name}.<locals>.")


def _code_without_docstring(node, lines: list[str], docstring) -> str:
    first = (node.decorator_list[0] if node.decorator_list else node).lineno - 1
    skip = range(node.body[0].lineno - 1, node.body[0].end_lineno) if docstring else range(0)
    return textwrap.dedent("\n".join(lines[i] for i in range(first, node.end_lineno) if i not in skip))


def build():
    """Documents (functions) and the test split (docstring summaries, their functions)."""
    docs, summaries = functions_and_summaries(Path(sysconfig.get_path("stdlib")))
    queries = [Query(str(n), text) for n, text in enumerate(sorted(summaries))]
    queries = sorted(random.Random(SEED).sample(queries, SAMPLE), key=lambda q: int(q.query_id))
    qrels = [(q.query_id, d, 1) for q in queries for d in sorted(summaries[q.text])]
    return sorted(docs.values()), {"test": (queries, qrels)}


def functions_and_summaries(root: Path, packages=None) -> tuple[dict, dict]:
    """The documents (``{doc_id: Doc}``) and queries (``{summary: {doc ids}}``) made as above from the ``.py``
    files under ``root`` (only its top-level ``packages``, if given)."""
    docs, summaries = {}, {}  # summaries: text -> ids of the functions whose docstring starts with it
    for module, path in _source_files(root, packages):
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines()
        for qualname, node in _functions(tree):
            docstring = ast.get_docstring(node, clean=True)
            doc_id = f"{module}:{qualname}"
            if (node.name.startswith(("__", "test")) or len(node.body) - bool(docstring) < 2
                    or doc_id in docs):
                continue
            docs[doc_id] = Doc(doc_id, module, qualname, _code_without_docstring(node, lines, docstring))
            summary = " ".join((docstring or "").split("\n\n")[0].split())
            if MIN_WORDS <= len(summary.split()) <= MAX_WORDS and summary.lower() not in docs[doc_id].code.lower():
                summaries.setdefault(summary, set()).add(doc_id)
    return docs, summaries
