"""The book's runner: executes the notebooks with the parameters of a YAML file, then builds the book.

A params file has a ``book:`` section of parameters shared by every notebook, and optionally one
section per page, keyed by the page's name, whose values override the shared ones for that page::

    book:
      model: castorini/monobert-large-msmarco
      steps: 50
    nig_worked_example:        # made by notebooks/nig_worked_example.md
      steps: 20
    negative_neurons:          # made by notebooks/relevance_neurons.md (its front matter says so)
      p_values: [1.0]
    negative_at_5:                # a new page of _toc.yml, made by the notebook this section names
      notebook: relevance_neurons
      label: 0
      p_values: [5.0]

The pages are the ``book/generated/PAGE`` entries of ``_toc.yml``, in its order. A page is made by the
notebook its section names with ``notebook:``, else by ``notebooks/PAGE.md``, else by the notebook whose
front matter lists it under ``pages:`` with its parameters (``relevance_neurons`` makes ``positive_neurons`` and
``negative_neurons`` with ``label`` 1 and 0): so one notebook (jupytext MyST markdown with a cell tagged ``parameters``)
makes several pages with other parameters, as papermill intends. A notebook whose front matter says
``reads: [PAGE, ...]`` reads those pages' data files: its pages run after them, and again when they ran anew.
Each is converted to ``.ipynb`` and run by papermill into ``book/generated/PAGE.ipynb`` (working
directory ``book/generated/``, environment variable ``NEURON_IG_PAGE=PAGE``), with the parameters it
declares. Before anything runs, every page must have a notebook, every section must name a page,
every ``book:`` key must be declared by some notebook, every key of a page's section by its notebook,
and every value must have the type of the notebook's default. The notebook's printed output streams
to the terminal, with one line a minute naming the cell that runs; the run stops at the first failing
page. A page's markdown may use its parameters as MyST substitutions (``{{ label }}``). A page already
executed with the same notebook, parameters, library code and package versions is kept (``--rerun``
executes it anyway): a rebuild redoes only what changed. Finally ``jupyter-book build . -W`` makes the
HTML site in ``_build/html``.

Before a notebook runs, :mod:`neuron_ig.report.preflight` checks that the models and datasets of the chosen pages
can be had and that their ``device`` exists; ``--dry-run`` lists them, in the local caches or not, and exits.

Usage: ``python -m neuron_ig.report.runner --params params/default.yml [--only PAGE ...] [--no-build] [--rerun]
[--dry-run]``; data-parallel on N GPUs: ``torchrun --nproc_per_node=N -m neuron_ig.report.runner ...`` (every rank runs
the pages and shares out their NIG chunks and re-rankings, rank 0 writes the book: :mod:`neuron_ig.runtime.distributed`).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

from neuron_ig.report import preflight as checks
from neuron_ig.report.downloads import PAGE_VARIABLE
from neuron_ig.runtime import distributed
from neuron_ig.runtime.versions import software_versions

GENERATED = Path("book") / "generated"
NOTEBOOKS = Path("notebooks")
KERNEL = "python3"
NOTEBOOK_KEY = "notebook"  # in a page's section: the notebook that makes the page
PAGES_KEY = "pages"  # in a notebook's front matter: the pages of other names it makes, with their parameters
READS_KEY = "reads"  # in a notebook's front matter: the pages whose data files it reads (it runs after them)
HEARTBEAT_S = 60.0  # while a cell runs, one line this often says which
_UNKNOWN = object()  # a default that is not a Python literal: any value is accepted


class RunnerError(Exception):
    """A problem the user must fix; its message is one line that says what and where."""


# --- the book: which notebooks, in which order ------------------------------------------------


def _toc_files(entry) -> list[str]:
    """Every ``file:`` of a _toc.yml entry (root, parts, chapters, sections), in reading order."""
    if isinstance(entry, list):
        return [file for item in entry for file in _toc_files(item)]
    if not isinstance(entry, dict):
        return []
    files = [entry["file"]] if "file" in entry else []
    for key in ("parts", "chapters", "sections"):
        files += _toc_files(entry.get(key, []))
    return files


def toc_pages(root: Path) -> list[str]:
    """Names of the generated pages (``book/generated/PAGE``) in _toc.yml order."""
    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        raise RunnerError(f"{toc_path} not found: run from the repository root or pass --root")
    toc = yaml.safe_load(toc_path.read_text()) or {}
    files = ([toc["root"]] if "root" in toc else []) + _toc_files(toc)
    return [Path(file).stem for file in files if Path(file).parent == GENERATED]


# --- parameters --------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (safe_load keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise RunnerError(f"`{key}:` is given twice (line {key_node.start_mark.line + 1}): keep one")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_params(params_file: Path, pages: list[str]) -> dict:
    """The params file as ``{"book": {...}, PAGE: {...}}``, its sections checked against the book."""
    try:
        params = yaml.load(Path(params_file).read_text(), Loader=_UniqueKeyLoader)
    except OSError as error:
        raise RunnerError(f"cannot read the params file {params_file}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise RunnerError(f"{params_file} is not valid YAML: {' '.join(str(error).split())}") from None
    except RunnerError as error:
        raise RunnerError(f"{params_file}: a page is made twice, or a parameter set twice: {error}") from None
    if not isinstance(params, dict) or not isinstance(params.get("book"), dict):
        raise RunnerError(f"{params_file} needs a `book:` section mapping parameter names to values")
    for key, section in params.items():
        if key != "book" and key not in pages:
            raise RunnerError(
                f"{params_file} has a section `{key}:` but _toc.yml has no page of that name "
                f"(its pages: {', '.join(pages) or 'none'})"
            )
        if not isinstance(section, dict):
            raise RunnerError(f"{params_file}: section `{key}:` must map parameter names to values")
    if NOTEBOOK_KEY in params["book"]:
        raise RunnerError(f"{params_file}: `{NOTEBOOK_KEY}:` names the notebook of one page: move it from `book:` "
                          "to that page's section")
    return params


def _front_matter(root: Path, key: str) -> dict[str, object]:
    """``{notebook stem: value}`` of ``key`` in the front matter of every notebook that has it."""
    import jupytext

    found = {}
    for source in sorted((root / NOTEBOOKS).glob("*.md")):
        value = jupytext.read(source).metadata.get(key)
        if value:
            found[source.stem] = value
    return found


def notebook_pages(root: Path) -> dict[str, tuple[str, dict]]:
    """``{page: (notebook stem, parameters)}`` from the ``pages:`` of each notebook's front matter.

    A notebook that makes pages of other names says so itself, so that every params file need not::

        pages:
          negative_neurons: {label: 0}

    (with ``notebook_metadata_filter: pages`` under ``jupytext:``, so that saving it in JupyterLab keeps it).
    """
    made = {}
    for notebook, pages in _front_matter(root, PAGES_KEY).items():
        if not isinstance(pages, dict) or not all(isinstance(v, dict) for v in pages.values()):
            raise RunnerError(f"{root / NOTEBOOKS / notebook}.md: `{PAGES_KEY}:` of its front matter must map page names "
                              "to their parameters")
        for page, parameters in pages.items():
            if page in made:
                raise RunnerError(f"page {page} is made by two notebooks' `{PAGES_KEY}:`, {made[page][0]} and "
                                  f"{notebook}: keep one")
            made[page] = (notebook, parameters)
    return made


def notebook_reads(root: Path, pages: list[str]) -> dict[str, list[str]]:
    """``{notebook stem: [page, ...]}`` from the ``reads:`` of each notebook's front matter: the pages whose data
    files the notebook reads (the introduction reads the scorecard of ``paper_vs_reproduction``)::

        reads: [paper_vs_reproduction]

    The runner runs such a notebook's pages after those pages, and again whenever one of them was executed anew.
    """
    reads = {}
    for notebook, read in _front_matter(root, READS_KEY).items():
        if not isinstance(read, list) or not all(isinstance(page, str) for page in read):
            raise RunnerError(f"{root / NOTEBOOKS / notebook}.md: `{READS_KEY}:` of its front matter must list page names")
        unknown = [page for page in read if page not in pages]
        if unknown:
            raise RunnerError(f"{root / NOTEBOOKS / notebook}.md reads {', '.join(unknown)}, which _toc.yml does not "
                              f"list: fix `{READS_KEY}:` in its front matter")
        reads[notebook] = read
    return reads


def run_order(steps: list[tuple], reads: dict[str, list[str]]) -> list[tuple]:
    """``steps`` (page, notebook, ...) in toc order, each page moved after the pages its notebook reads."""
    ordered, placed = [], set()
    waiting = list(steps)
    while waiting:
        ready = [step for step in waiting if set(reads.get(step[1], [])) - {step[0]} <= placed]
        if not ready:
            raise RunnerError("the `reads:` of the notebooks' front matter form a circle "
                              f"({', '.join(step[0] for step in waiting)}): remove one")
        step = ready[0]
        ordered.append(step)
        placed.add(step[0])
        waiting.remove(step)
    return ordered


def page_notebooks(root: Path, pages: list[str], params: dict, params_file: Path) -> dict[str, str]:
    """``{page: notebook stem}``: the notebook a page's section names, else ``notebooks/PAGE.md``, else the
    notebook whose front matter lists the page; the parameters listed there become the page's own, under
    those of its section (``params`` is updated in place)."""
    available = sorted(path.stem for path in (root / NOTEBOOKS).glob("*.md"))
    listed = notebook_pages(root)
    sources = {}
    for page in pages:
        named = params.get(page, {}).get(NOTEBOOK_KEY)
        if named is not None and not (isinstance(named, str) and (root / NOTEBOOKS / f"{named}.md").is_file()):
            raise RunnerError(
                f"section `{page}:` of {params_file} names the notebook {named!r}, but there is no "
                f"{NOTEBOOKS}/{named}.md (notebooks: {', '.join(available) or 'none'})"
            )
        if named is None and not (root / NOTEBOOKS / f"{page}.md").is_file():
            if page not in listed:
                raise RunnerError(
                    f"_toc.yml lists {GENERATED}/{page} but nothing makes it: no {NOTEBOOKS}/{page}.md, no notebook "
                    f"whose front matter lists it under `{PAGES_KEY}:`, and no section `{page}:` with "
                    f"`{NOTEBOOK_KEY}: NAME` in {params_file} (notebooks: {', '.join(available) or 'none'})"
                )
            named, own = listed[page]
            params[page] = {**own, **params.get(page, {})}
        sources[page] = named or page
    return sources


def declared_parameters(ipynb: Path) -> dict:
    """The notebook's parameters and their default values (``_UNKNOWN`` where not a literal)."""
    import papermill

    declared = {}
    for name, info in papermill.inspect_notebook(str(ipynb)).items():
        try:
            declared[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError, TypeError):
            declared[name] = _UNKNOWN
    return declared


def _type_name(value) -> str:
    return "None" if value is None else type(value).__name__


def type_matches(default, value) -> bool:
    """Whether ``value`` may replace ``default``: same type, a float takes an int, None takes all."""
    if default is None or default is _UNKNOWN:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def check_book_keys(params: dict, declared: dict[str, dict], params_file: Path) -> None:
    """Refuse a ``book:`` key that no notebook of the book declares (``declared``: {notebook: parameters})."""
    known = sorted(set().union(*declared.values())) if declared else []
    unknown = [name for name in params["book"] if name not in known]
    if unknown:
        raise RunnerError(
            f"{params_file}: `book:` has {', '.join(repr(name) for name in unknown)}, which no notebook declares "
            f"(their parameters: {', '.join(known) or 'none'})"
        )


def page_parameters(page: str, notebook: str, declared: dict, params: dict, params_file: Path) -> dict:
    """The parameters to pass to one page's notebook: the shared ones it declares, then the page's section.

    Raises RunnerError for a parameter of the page's section that its notebook does not declare, or for
    any value whose type does not match the notebook's default.
    """
    own = {name: value for name, value in params.get(page, {}).items() if name != NOTEBOOK_KEY}
    made_by = page if notebook == page else f"{page} (notebook {notebook})"
    for name in own:
        if name not in declared:
            raise RunnerError(
                f"notebook {made_by} has no parameter '{name}' (it declares: {', '.join(declared)}): "
                f"fix section `{page}:` of {params_file}"
            )
    chosen = {name: value for name, value in params["book"].items() if name in declared}
    chosen.update(own)
    for name, value in chosen.items():
        default = declared[name]
        if not type_matches(default, value):
            raise RunnerError(
                f"notebook {made_by}: parameter '{name}' expects {_type_name(default)} "
                f"(default {default!r}), got {_type_name(value)} ({value!r}): fix it in {params_file}"
            )
    return chosen


# --- execution ---------------------------------------------------------------------------------


def check_kernel() -> None:
    """Refuse to run if the ``python3`` kernel would start another Python than this one."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    fix = f"run `{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL}` (or `make venv`)"
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        raise RunnerError(f"no Jupyter kernel named '{KERNEL}': {fix}") from None
    python = spec.argv[0]
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    same_environment = Path(python).absolute().parent == Path(sys.executable).absolute().parent
    if python not in bare and not same_environment:
        raise RunnerError(
            f"the Jupyter kernel '{KERNEL}' ({spec.resource_dir}) runs {python}, not {sys.executable}: {fix}"
        )


def to_ipynb(source: Path, target: Path) -> None:
    """Convert a jupytext MyST markdown notebook to ``.ipynb``; it must have a ``parameters`` cell."""
    import jupytext
    import nbformat

    notebook = jupytext.read(source)
    if not any("parameters" in cell.metadata.get("tags", []) for cell in notebook.cells):
        raise RunnerError(
            f"{source} has no cell tagged `parameters`: give its parameter cell `:tags: [parameters]`"
        )
    nbformat.write(notebook, target)


#: kernel and library lines that say nothing about the page, dropped from the build log
NOISE = re.compile(r"Kernel is running over TCP without encryption|IProgress not found|"
                   r"from \.autonotebook import tqdm as notebook_tqdm|^\[INFO\] Opening .* with direct file access|"
                   r"^Loading weights: ")


class CleanLog:
    """While a page runs, the notebook's and its kernel's stderr (file descriptor 2, which the kernel inherits)
    as a log to read: a progress bar shows only its final state (carriage-return updates collapse into the line
    they end on), noise lines (:data:`NOISE`) are dropped, and a warning line already shown in this build is not
    shown again. On a terminal nothing is changed, so the bars stay live."""

    seen: set[str] = set()  # warning lines shown so far in this process (the build)

    def __enter__(self):
        self.active = not os.isatty(2)
        if self.active:
            sys.stderr.flush()
            self.saved = os.dup(2)
            read, write = os.pipe()
            os.dup2(write, 2)
            os.close(write)
            self.thread = threading.Thread(target=self._copy, args=(read,), daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.active:
            sys.stderr.flush()
            os.dup2(self.saved, 2)  # closes the pipe's last write end: the copy thread sees the end and stops
            self.thread.join(timeout=10)
            os.close(self.saved)

    def _copy(self, read: int) -> None:
        pending = b""
        with os.fdopen(read, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._emit(line)
        if pending:
            self._emit(pending)

    def _emit(self, raw: bytes) -> None:
        line = raw.decode(errors="replace").rstrip("\r").rsplit("\r", 1)[-1]  # a bar's final state
        if not line.strip() or NOISE.search(line):
            return
        if "warning" in line.lower():
            if line in self.seen:
                return
            self.seen.add(line)
        try:
            os.write(self.saved, (line + "\n").encode())
        except OSError:  # a kernel that outlived its page wrote after the log was given back
            pass


class _Heartbeat:
    """While a notebook runs, prints every ``interval`` seconds which of its cells is running and since when.

    It reads the output notebook, which papermill saves when a cell starts (status ``running``).
    """

    def __init__(self, page: str, output: Path, interval: float):
        self.page, self.output, self.interval = page, output, interval
        self.start = time.monotonic()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()

    def running_cell(self) -> str:
        """``code cell N of M (first line of its source)``, or ``starting`` before the first cell."""
        import nbformat

        try:
            cells = [cell for cell in nbformat.read(self.output, as_version=4).cells if cell.cell_type == "code"]
        except Exception:  # not written yet, or caught mid-write
            return "starting"
        status = [cell.metadata.get("papermill", {}).get("status") for cell in cells]
        if "running" in status:
            number = status.index("running") + 1
            first = next((line for line in cells[number - 1].source.splitlines() if line.strip()), "")
            return f"code cell {number} of {len(cells)} ({first[:70]})"
        return "between cells" if "completed" in status else "starting"

    def _beat(self):
        while not self.done.wait(self.interval):
            minutes = (time.monotonic() - self.start) / 60
            print(f"  ... {self.page}: {minutes:.1f} min, running {self.running_cell()}", flush=True)


def execute(page: str, ipynb: Path, parameters: dict, generated: Path, substitutions: dict | None = None,
            key: str | None = None) -> Path:
    """Run one notebook with papermill into ``generated/PAGE.ipynb``, working in ``generated``.

    The notebook's stdout and stderr stream to this process's as it runs. On failure the partial
    output is renamed ``PAGE.failed.ipynb`` (so nothing builds on it) and a RunnerError names the
    page, the cell and its exception. ``substitutions`` become the page's MyST substitutions; ``key`` (its
    :func:`page_key`) is stored in the notebook's metadata.
    """
    import papermill

    output = generated / f"{page}.ipynb"
    failed = generated / f"{page}.failed.ipynb"
    failed.unlink(missing_ok=True)
    os.environ[PAGE_VARIABLE] = page  # the kernel inherits it: the page names its data files after it
    try:
        with CleanLog(), _Heartbeat(page, output, HEARTBEAT_S):
            papermill.execute_notebook(
                str(ipynb), str(output), parameters=parameters, kernel_name=KERNEL,
                cwd=str(generated), progress_bar=False, stdout_file=sys.stdout, stderr_file=sys.stderr,
            )
    except BaseException as error:
        if output.exists():
            output.replace(failed)
        if isinstance(error, papermill.PapermillExecutionError):
            message = (error.evalue or "").strip().splitlines()
            raise RunnerError(
                f"notebook {page} failed in cell In [{error.exec_count}]: {error.ename}: "
                f"{message[0] if message else ''} (partial output kept as {failed})"
            ) from None
        if isinstance(error, Exception):
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise RunnerError(f"notebook {page} failed: {type(error).__name__}: {first_line}") from None
        raise
    finally:
        os.environ.pop(PAGE_VARIABLE, None)
    _finish_page(output, substitutions or {}, key)
    return output


def page_key(ipynb: Path, parameters: dict, read: list[Path] = ()) -> str:
    """What an executed page depends on: the notebook's cells, its parameters, the library's source files, the
    versions of the packages behind the numbers (:func:`neuron_ig.runtime.versions.software_versions`) and the keys
    of the executed pages it reads (``read``: their ``.ipynb``; one not made yet counts as such)."""
    import hashlib
    import json

    import nbformat


    digest = hashlib.sha256()
    cells = [(cell.cell_type, cell.source) for cell in nbformat.read(ipynb, as_version=4).cells]
    digest.update(json.dumps([cells, parameters], sort_keys=True, default=str).encode())
    library = Path(__file__).resolve().parents[1]  # lib/neuron_ig, above report/
    for source in sorted(library.rglob("*.py")):
        digest.update(f"{source.relative_to(library)}\n".encode() + source.read_bytes())
    versions = {k: v for k, v in software_versions().items() if k != "git commit"}  # code is hashed above
    digest.update(json.dumps(versions, sort_keys=True).encode())
    digest.update(json.dumps([stored_key(path) for path in read]).encode())
    return digest.hexdigest()[:20]


def stored_key(output: Path) -> str | None:
    """The :func:`page_key` stored in an executed page (None if absent or not a notebook)."""
    import nbformat

    try:
        return nbformat.read(output, as_version=4).metadata.get("neuron_ig", {}).get("page_key")
    except Exception:
        return None


def unchanged(output: Path, key: str) -> bool:
    """Whether ``output`` is a page executed to its end with this :func:`page_key` (so running it again would
    remake it from the same cached results)."""
    return stored_key(output) == key


def _finish_page(notebook_path: Path, substitutions: dict, key: str | None = None) -> None:
    """Tag the ``parameters`` cell and papermill's injected cell ``remove-cell`` (the page shows the
    values it ran with in its provenance table, not as code), and store the page's substitutions and key."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    if substitutions:
        notebook.metadata.setdefault("myst", {})["substitutions"] = substitutions
    if key:
        notebook.metadata.setdefault("neuron_ig", {})["page_key"] = key
    nbformat.write(notebook, notebook_path)


def build_book(root: Path) -> None:
    """Build the HTML book with ``jupyter-book build ROOT -W`` (warnings are errors)."""
    for page in toc_pages(root):
        if not (root / GENERATED / f"{page}.ipynb").is_file():
            raise RunnerError(
                f"cannot build the book: {GENERATED / page}.ipynb has not been made yet "
                "(run without --only, or add --no-build)"
            )
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book if jupyter_book.exists() else "jupyter-book"), "build", str(root), "-W"]
    print(f"building the book: {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=root)
    if result.returncode != 0:
        raise RunnerError(f"jupyter-book build failed (exit {result.returncode}): see its messages above")
    print(f"book built: {root / '_build' / 'html' / 'index.html'}", flush=True)


def _json_value(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple, dict))


def plan(root: Path, params_file: Path, scratch: Path) -> list[tuple[str, str, dict, dict]]:
    """Check the book and the params file; per page in toc order (a page after those it reads: :func:`run_order`):
    (page, notebook, parameters, substitutions).

    Every notebook is converted into ``scratch/NOTEBOOK.ipynb``. Raises RunnerError on the first problem.
    """
    pages = toc_pages(root)
    twice = sorted({page for page in pages if pages.count(page) > 1})
    if twice:
        raise RunnerError(f"_toc.yml lists {', '.join(f'{GENERATED}/{page}' for page in twice)} twice: keep one entry")
    params = load_params(params_file, pages)
    sources = page_notebooks(root, pages, params, params_file)
    declared = {}
    for notebook in dict.fromkeys(sources.values()):
        ipynb = Path(scratch) / f"{notebook}.ipynb"
        to_ipynb(root / NOTEBOOKS / f"{notebook}.md", ipynb)
        declared[notebook] = declared_parameters(ipynb)
    check_book_keys(params, declared, params_file)
    steps = []
    for page in pages:
        notebook = sources[page]
        parameters = page_parameters(page, notebook, declared[notebook], params, params_file)
        defaults = {name: value for name, value in declared[notebook].items()
                    if value is not _UNKNOWN and _json_value(value)}
        steps.append((page, notebook, parameters, {**defaults, **parameters}))
    return run_order(steps, notebook_reads(root, pages))


def one_build_at_a_time(root: Path):
    """Take the lock of ``book/generated`` for this run (released when the run ends), or refuse a second run.

    Two runs of one checkout at once would write the same executed notebooks; another process holding
    the lock gives a one-line :class:`RunnerError`. The same process may take it again (a later call).
    """
    import filelock

    lock_file = (root / GENERATED).with_name("generated.lock")  # beside the folder: `make clean` may remove it
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    held = filelock.FileLock(lock_file, is_singleton=True, thread_local=False)
    try:
        held.acquire(timeout=0)
    except filelock.Timeout:
        raise RunnerError(f"another build of this checkout is running (it holds {lock_file}): wait for it to "
                          "finish, or build from another checkout") from None
    return held


def run(root: Path, params_file: Path, only: list[str] | None = None, build: bool = True, rerun: bool = False) -> None:
    """Check every page and parameter, execute the chosen pages in toc order (a page after those it reads), then
    build the book.

    A page already executed with the same :func:`page_key` (notebook, parameters, library code, package
    versions) is kept as it is, unless ``rerun``: its numbers would come out of the same cached results.
    Under torchrun every rank does so, sharing the expensive results (:mod:`neuron_ig.runtime.distributed`); only
    rank 0 writes ``book/generated`` and builds the book, and every page runs (a rank that kept a page would
    leave its share of the page's work to nobody).
    """
    root = Path(root).resolve()
    launched = _launch()
    first_rank = launched is None or launched.rank == 0
    held = one_build_at_a_time(root) if first_rank else None
    try:
        params_file = Path(params_file)
        cache = os.environ.get("NEURON_IG_CACHE") or str(root / ".cache" / "neuron_ig")
        with tempfile.TemporaryDirectory(prefix="neuron_ig_runner_") as scratch:
            steps = plan(root, params_file, Path(scratch))  # check everything before running anything
            pages = [page for page, *_ in steps]
            reads = notebook_reads(root, pages)
            unknown = sorted(set(only or []) - set(pages))
            if unknown:
                raise RunnerError(f"--only {' '.join(unknown)}: not in _toc.yml (its pages: {', '.join(pages)})")
            steps = [step for step in steps if not only or step[0] in only]
            preflight(steps)  # the models, datasets and device the pages need, before any runs
            if steps:
                check_kernel()
            os.environ["NEURON_IG_CACHE"] = str(Path(cache).resolve())  # notebooks run in book/generated
            if launched is not None:
                _join_ranks(launched, root, steps, Path(cache).resolve())
            generated = root / GENERATED if first_rank else Path(scratch) / "generated"  # rank 0's pages are the book
            generated.mkdir(parents=True, exist_ok=True)
            for number, (page, notebook, parameters, substitutions) in enumerate(steps, start=1):
                shown = ", ".join(f"{name}={value!r}" for name, value in parameters.items())
                made_by = "" if notebook == page else f" from {NOTEBOOKS}/{notebook}.md"
                print(f"[{number}/{len(steps)}] {page}{made_by} ({shown})", flush=True)
                ipynb = Path(scratch) / f"{notebook}.ipynb"
                key = page_key(ipynb, parameters, [generated / f"{read}.ipynb" for read in reads.get(notebook, [])])
                if not rerun and launched is None and unchanged(generated / f"{page}.ipynb", key):
                    print(f"[{number}/{len(steps)}] {page} kept: executed before with the same notebook, parameters, "
                          "library and package versions (--rerun executes it again)", flush=True)
                    continue
                start = time.monotonic()
                output = execute(page, ipynb, parameters, generated, substitutions, key)
                print(f"[{number}/{len(steps)}] {page} done in {time.monotonic() - start:.1f} s: {output}", flush=True)
        if build and first_rank:
            build_book(root)
    finally:
        if launched is not None:
            distributed.leave()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if held is not None:
            held.release()


class Stopped(KeyboardInterrupt):
    """torchrun stopped this rank (SIGTERM), as it does when another rank fails."""


def _stopped(signum, frame):
    """On SIGTERM, end as on Ctrl-C: the running page is kept as ``PAGE.failed.ipynb`` and its kernel shut down."""
    raise Stopped()


def _launch():
    """This process's :class:`neuron_ig.runtime.distributed.Launch` under torchrun with several processes, else None."""
    try:
        return distributed.launch()
    except distributed.LaunchError as error:
        raise RunnerError(str(error)) from None


def _join_ranks(launched, root: Path, steps: list, cache: Path) -> None:
    """Join the other ranks (:func:`neuron_ig.runtime.distributed.join`): same pages, parameters, notebooks and library
    on every rank, one shared cache folder, a GPU each; the notebooks' kernels then share the work."""
    sources = {root / NOTEBOOKS / f"{notebook}.md" for _, notebook, _, _ in steps}
    library = Path(distributed.__file__).resolve().parents[1].rglob("*.py")
    agreed = distributed.fingerprint(json.dumps([step[:3] for step in steps], sort_keys=True, default=str),
                                     files=[*sources, *library])
    try:
        distributed.join(launched, agreed, cache)
    except distributed.LaunchError as error:
        raise RunnerError(str(error)) from None
    signal.signal(signal.SIGTERM, _stopped)  # how torchrun stops the ranks when another fails
    print(f"rank {launched.rank} of {launched.world_size}: pages run on every rank, NIG chunks and re-rankings shared "
          f"out by rank, cache {cache}" + ("; rank 0 writes the book" if launched.rank == 0 else ""), flush=True)


def preflight(steps) -> None:
    """Refuse to start a build that cannot finish: a model or dataset missing offline, licensed files not in
    place, a CUDA-only setting without CUDA (:func:`neuron_ig.report.preflight.check`), as a one-line RunnerError."""

    try:
        checks.check(steps)
    except checks.PreflightError as error:
        raise RunnerError(str(error)) from None


def dry_run(root: Path, params_file: Path, only: list[str] | None = None) -> list[str]:
    """The dry run's report (:func:`neuron_ig.report.preflight.report`): every model and dataset the chosen pages
    need, whether each is in the local cache, its download size where known. Runs no notebook, computes nothing."""

    with tempfile.TemporaryDirectory(prefix="neuron_ig_runner_") as scratch:
        steps = plan(Path(root).resolve(), Path(params_file), Path(scratch))
    unknown = sorted(set(only or []) - {page for page, *_ in steps})
    if unknown:
        raise RunnerError(f"--only {' '.join(unknown)}: not in _toc.yml")
    return checks.report([step for step in steps if not only or step[0] in only])


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints a one-line error and returns 1 on failure."""
    parser = argparse.ArgumentParser(prog="python -m neuron_ig.report.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--params", required=True, type=Path, help="YAML params file (params/default.yml)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these pages (names in _toc.yml)")
    parser.add_argument("--no-build", action="store_true", help="execute the notebooks, do not build the book")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the book's root folder (default: here)")
    parser.add_argument("--rerun", action="store_true",
                        help="execute every page, even one already executed with the same notebook, parameters and code")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the models and datasets the build needs, whether each is in the local cache, "
                             "and their download sizes; run nothing")
    args = parser.parse_args(argv)
    try:
        if args.dry_run:
            print("\n".join(dry_run(args.root, args.params, only=args.only)))
            return 0
        run(args.root, args.params, only=args.only, build=not args.no_build, rerun=args.rerun)
    except RunnerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Stopped:
        print("error: stopped by torchrun, as when another rank fails (see its error); rerun to resume", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
