"""The book's runner: executes the notebooks with the parameters of a YAML file, then builds the book.

A params file has a ``book:`` section of parameters shared by every notebook, and optionally one
section per notebook, keyed by its stem, whose values override the shared ones for that notebook::

    book:
      model: castorini/monobert-large-msmarco
      steps: 50
    02_relevance_neurons:
      steps: 20

The notebooks are ``notebooks/NN_name.md`` (jupytext MyST markdown with a cell tagged
``parameters``), taken in the order ``_toc.yml`` lists ``book/generated/NN_name``. Each is converted
to ``.ipynb`` and run by papermill into ``book/generated/NN_name.ipynb`` (working directory
``book/generated/``), with the parameters it declares; every parameter is type-checked against the
notebook's default before anything runs. The run stops at the first failing notebook. Finally
``jupyter-book build . -W`` makes the HTML site in ``_build/html``.

Usage: ``python -m neuron_ig.runner --params params/default.yml [--only NAME ...] [--no-build]``.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

GENERATED = Path("book") / "generated"
NOTEBOOKS = Path("notebooks")
KERNEL = "python3"
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


def toc_notebooks(root: Path) -> list[str]:
    """Stems of the generated pages in _toc.yml order, each checked to have ``notebooks/STEM.md``."""
    toc_path = root / "_toc.yml"
    if not toc_path.is_file():
        raise RunnerError(f"{toc_path} not found: run from the repository root or pass --root")
    toc = yaml.safe_load(toc_path.read_text()) or {}
    files = ([toc["root"]] if "root" in toc else []) + _toc_files(toc)
    stems = []
    for file in files:
        path = Path(file)
        if path.parent != GENERATED:
            continue  # a hand-written page
        source = root / NOTEBOOKS / f"{path.stem}.md"
        if not source.is_file():
            raise RunnerError(
                f"_toc.yml lists {file} but its source {source.relative_to(root)} does not exist: "
                "write the notebook or remove the entry"
            )
        stems.append(path.stem)
    return stems


# --- parameters --------------------------------------------------------------------------------


def load_params(params_file: Path, stems: list[str]) -> dict:
    """The params file as ``{"book": {...}, stem: {...}}``, its sections checked against the book."""
    try:
        params = yaml.safe_load(Path(params_file).read_text())
    except OSError as error:
        raise RunnerError(f"cannot read the params file {params_file}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise RunnerError(f"{params_file} is not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(params, dict) or not isinstance(params.get("book"), dict):
        raise RunnerError(f"{params_file} needs a `book:` section mapping parameter names to values")
    for key, section in params.items():
        if key != "book" and key not in stems:
            raise RunnerError(
                f"{params_file} has a section `{key}:` but the book has no notebook of that name "
                f"(its notebooks: {', '.join(stems) or 'none'})"
            )
        if not isinstance(section, dict):
            raise RunnerError(f"{params_file}: section `{key}:` must map parameter names to values")
    return params


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


def notebook_parameters(stem: str, declared: dict, params: dict, params_file: Path) -> dict:
    """The parameters to pass to one notebook: the shared ones it declares, then its own section.

    Raises RunnerError for a parameter of its own section that it does not declare, or for any value
    whose type does not match the notebook's default.
    """
    own = params.get(stem, {})
    for name in own:
        if name not in declared:
            raise RunnerError(
                f"notebook {stem} has no parameter '{name}' (it declares: {', '.join(declared)}): "
                f"fix section `{stem}:` of {params_file}"
            )
    chosen = {name: value for name, value in params["book"].items() if name in declared}
    chosen.update(own)
    for name, value in chosen.items():
        default = declared[name]
        if not type_matches(default, value):
            raise RunnerError(
                f"notebook {stem}: parameter '{name}' expects {_type_name(default)} "
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


def execute(stem: str, ipynb: Path, parameters: dict, generated: Path) -> Path:
    """Run one notebook with papermill into ``generated/STEM.ipynb``, working in ``generated``.

    On failure the partial output is renamed ``STEM.failed.ipynb`` (so nothing builds on it) and a
    RunnerError names the notebook, the cell and its exception.
    """
    import papermill

    output = generated / f"{stem}.ipynb"
    failed = generated / f"{stem}.failed.ipynb"
    failed.unlink(missing_ok=True)
    try:
        papermill.execute_notebook(
            str(ipynb), str(output), parameters=parameters, kernel_name=KERNEL,
            cwd=str(generated), progress_bar=True,
        )
    except BaseException as error:
        if output.exists():
            output.replace(failed)
        if isinstance(error, papermill.PapermillExecutionError):
            message = (error.evalue or "").strip().splitlines()
            raise RunnerError(
                f"notebook {stem} failed in cell In [{error.exec_count}]: {error.ename}: "
                f"{message[0] if message else ''} (partial output kept as {failed})"
            ) from None
        if isinstance(error, Exception):
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise RunnerError(f"notebook {stem} failed: {type(error).__name__}: {first_line}") from None
        raise
    _hide_parameter_cells(output)
    return output


def _hide_parameter_cells(notebook_path: Path) -> None:
    """Tag the ``parameters`` cell and papermill's injected cell ``remove-cell``: the page shows the
    values it ran with in its provenance table, not as code."""
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.setdefault("tags", [])
        if {"parameters", "injected-parameters"} & set(tags) and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(notebook, notebook_path)


def build_book(root: Path) -> None:
    """Build the HTML book with ``jupyter-book build ROOT -W`` (warnings are errors)."""
    stems = toc_notebooks(root)
    for stem in stems:
        if not (root / GENERATED / f"{stem}.ipynb").is_file():
            raise RunnerError(
                f"cannot build the book: {GENERATED / stem}.ipynb has not been made yet "
                "(run without --only, or add --no-build)"
            )
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book if jupyter_book.exists() else "jupyter-book"), "build", str(root), "-W"]
    print(f"building the book: {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=root)
    if result.returncode != 0:
        raise RunnerError(f"jupyter-book build failed (exit {result.returncode}): see its messages above")
    print(f"book built: {root / '_build' / 'html' / 'index.html'}", flush=True)


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


def run(root: Path, params_file: Path, only: list[str] | None = None, build: bool = True) -> None:
    """Check every parameter, execute the chosen notebooks in toc order, then build the book."""
    root = Path(root).resolve()
    held = one_build_at_a_time(root)  # released at the end, or when an error's traceback is dropped
    params_file = Path(params_file)
    stems = toc_notebooks(root)
    params = load_params(params_file, stems)
    unknown = sorted(set(only or []) - set(stems))
    if unknown:
        raise RunnerError(f"--only {' '.join(unknown)}: not in _toc.yml (its notebooks: {', '.join(stems)})")
    chosen = [stem for stem in stems if not only or stem in only]

    cache = os.environ.get("NEURON_IG_CACHE") or str(root / ".cache" / "neuron_ig")
    os.environ["NEURON_IG_CACHE"] = str(Path(cache).resolve())  # notebooks run in book/generated
    generated = root / GENERATED
    generated.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="neuron_ig_runner_") as scratch:
        plan = []
        for stem in chosen:  # check everything before running anything
            ipynb = Path(scratch) / f"{stem}.ipynb"
            to_ipynb(root / NOTEBOOKS / f"{stem}.md", ipynb)
            plan.append((stem, ipynb, notebook_parameters(stem, declared_parameters(ipynb), params, params_file)))
        if plan:
            check_kernel()
        for number, (stem, ipynb, parameters) in enumerate(plan, start=1):
            shown = ", ".join(f"{name}={value!r}" for name, value in parameters.items())
            print(f"[{number}/{len(plan)}] {stem} ({shown})", flush=True)
            start = time.monotonic()
            output = execute(stem, ipynb, parameters, generated)
            print(f"[{number}/{len(plan)}] {stem} done in {time.monotonic() - start:.1f} s: {output}", flush=True)
    if build:
        build_book(root)
    held.release()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints a one-line error and returns 1 on failure."""
    parser = argparse.ArgumentParser(prog="python -m neuron_ig.runner", description=__doc__.split("\n")[0])
    parser.add_argument("--params", required=True, type=Path, help="YAML params file (params/default.yml)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these notebooks, by stem")
    parser.add_argument("--no-build", action="store_true", help="execute the notebooks, do not build the book")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the book's root folder (default: here)")
    args = parser.parse_args(argv)
    try:
        run(args.root, args.params, only=args.only, build=not args.no_build)
    except RunnerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
