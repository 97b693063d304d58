"""The library's layers, read from its source with `ast` (nothing is imported).

`neuron_ig`'s subpackages are layers (see `neuron_ig/__init__.py`): a module imports only from its own
subpackage or from a lower layer, the three packages of layer 2 do not import each other, no modules import
each other in a circle (imports inside functions included), and at most 15% of the imports of the library's
own modules sit inside functions, where they would hide a circle. The charting and notebook stack is imported
by the `report` layer alone, so that `pip install .` without the `book` extra gives the core.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
#: subpackage -> layer; a module may import its own subpackage and any subpackage of a lower layer
LAYERS = {"runtime": 1, "engine": 2, "ir": 2, "stats": 2, "embedded_model": 3, "studies": 4, "report": 5}
BOOK_ONLY = ("altair", "vl_convert", "IPython", "papermill", "jupytext", "nbformat", "sphinx", "jupyter_book")
STATS_ALLOWED = ("numpy", "scipy", "pandas", "math", "itertools", "typing", "collections", "__future__", "neuron_ig")
MAX_INSIDE_SHARE = 0.15


def module_name(path: Path, lib: Path) -> str:
    parts = list(path.relative_to(lib).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def own_imports(path: Path, lib: Path) -> list[tuple[str, bool, int]]:
    """``(imported module, inside a function, line)`` for each import of ``neuron_ig`` in ``path``."""
    name = module_name(path, lib)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, inside):
        for child in ast.iter_child_nodes(node):
            nested = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - child.level + 1]
                    base = ".".join(parts + ([child.module] if child.module else []))
                # `from package import module` imports the module; `from module import name` the module
                targets = [f"{base}.{alias.name}" if (lib / f"{base}.{alias.name}".replace(".", "/")).exists()
                           or (lib / (f"{base}.{alias.name}".replace(".", "/") + ".py")).exists() else base
                           for alias in child.names]
            found.extend((t, inside, child.lineno) for t in targets if t.split(".")[0] == "neuron_ig")
            visit(child, nested)

    visit(tree, False)
    return found


def third_party_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add((node.module or "").split(".")[0])
    return names - {"neuron_ig"}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def problems(lib: Path) -> list[str]:
    """Every import against the layers, every circle, and too many imports inside functions, as sentences."""
    graph: dict[str, set[str]] = {}
    found = []
    inside = total = 0
    for path in sorted((lib / "neuron_ig").rglob("*.py")):
        name = module_name(path, lib)
        graph.setdefault(name, set())
        for target, in_function, line in own_imports(path, lib):
            total += 1
            inside += in_function
            if target != name:
                graph[name].add(target)
            source_layer, target_layer = layer_of(name), layer_of(target)
            if name == "neuron_ig" or source_layer is None or target_layer is None or source_layer == target_layer:
                continue
            if LAYERS[target_layer] >= LAYERS[source_layer]:
                found.append(f"{path.relative_to(lib)}:{line}: {name} (layer {LAYERS[source_layer]}) imports "
                             f"{target} (layer {LAYERS[target_layer]})")
    if total and inside / total > MAX_INSIDE_SHARE:
        found.append(f"{inside} of {total} imports of the library's own modules are inside functions "
                     f"(at most {MAX_INSIDE_SHARE:.0%}): move them to the top of their files")
    found += [f"circle: {' -> '.join(cycle)}" for cycle in circles(graph)]
    return found


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each closed into a loop."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def connect(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                out.append(sorted(component) + [min(component)])

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return out


def test_the_library_keeps_its_layers():
    assert problems(LIB) == []


def test_every_module_belongs_to_a_layer():
    loose = [module_name(p, LIB) for p in (LIB / "neuron_ig").glob("*.py") if p.name != "__init__.py"]
    packages = {p.name for p in (LIB / "neuron_ig").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert loose == [] and packages == set(LAYERS)


def test_the_checker_finds_circles_and_imports_against_the_layers(tmp_path):
    package = tmp_path / "neuron_ig"
    for sub in ("runtime", "engine", "ir"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "runtime" / "base.py").write_text("from neuron_ig.engine.top import x\n")  # upward
    (package / "engine" / "top.py").write_text("x = 1\nfrom neuron_ig.ir import sibling\n")  # across layer 2
    (package / "ir" / "sibling.py").write_text("def f():\n    from neuron_ig.ir.other import y\n")
    (package / "ir" / "other.py").write_text("from neuron_ig.ir.sibling import f\ny = 1\n")  # a circle
    found = problems(tmp_path)
    assert any("neuron_ig.runtime.base (layer 1) imports neuron_ig.engine.top (layer 2)" in p for p in found)
    assert any("circle: neuron_ig.ir.other -> neuron_ig.ir.sibling" in p for p in found)
    assert any("inside functions" in p for p in found)
    # same layer, another package: engine -> ir is against the layers too
    assert any("neuron_ig.engine.top (layer 2) imports neuron_ig.ir.sibling (layer 2)" in p for p in found)


@pytest.mark.parametrize("layer", sorted(set(LAYERS) - {"report"}))
def test_only_the_report_imports_the_book_stack(layer):
    used = {p.relative_to(LIB).as_posix(): third_party_imports(p) & set(BOOK_ONLY)
            for p in (LIB / "neuron_ig" / layer).rglob("*.py")}
    assert {k: v for k, v in used.items() if v} == {}


def test_statistics_need_only_numpy_scipy_and_pandas():
    used = {p.name: third_party_imports(p) - set(STATS_ALLOWED) for p in (LIB / "neuron_ig" / "stats").glob("*.py")}
    assert {k: v for k, v in used.items() if v} == {}


def test_made_models_are_registered_by_functions_that_exist():
    points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["neuron_ig.made_models"]
    assert points
    for name, target in points.items():
        module, _, function = target.partition(":")
        tree = ast.parse((LIB / (module.replace(".", "/") + ".py")).read_text())
        assert function in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, name


def test_the_public_api_resolves_and_the_api_page_documents_exactly_it():
    import neuron_ig

    assert all(getattr(neuron_ig, name) is not None for name in neuron_ig.__all__)
    documented = re.findall(r"^\.\. auto(?:function|class|data):: neuron_ig\.([\w.]+)\.(\w+)$",
                            (ROOT / "book" / "api.md").read_text(), re.MULTILINE)
    public = {name: module for module, name in documented if not module.startswith("runtime.")}
    assert public == neuron_ig._API


def test_importing_the_package_loads_no_layer_and_no_chart():
    code = "import sys, neuron_ig; print(sorted(m for m in sys.modules if m.startswith(('neuron_ig.', 'altair', 'torch'))))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert shown.stdout.strip() == "[]"
