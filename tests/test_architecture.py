"""The package's shape: an acyclic import graph, no private names across modules, no function shadowing a
module, modules of one responsibility and modest size, a stable public surface, and ruff clean.

The import graph is read with `ast`, so imports inside functions count, and so do
``importlib.import_module("workbench...")`` calls with a literal name; imports under ``if TYPE_CHECKING:`` do not.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "workbench"
MAX_LINES = 600
# The only modules allowed to import the package root (`import workbench`, `from workbench import load`):
# the user-facing top layer, which may use the public API like a user does.
TOP = ("workbench.ui", "workbench.cli", "workbench.__main__")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@lru_cache(maxsize=None)
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def _resolve(name: str) -> str | None:
    """The module a dotted import target lands in (the longest prefix that is a module of ours)."""
    mods = modules()
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


@lru_cache(maxsize=None)
def imports() -> dict[str, list[tuple[str, str | None, int]]]:
    """module -> [(imported module, imported name or None, line)] for every workbench import it makes."""
    out: dict[str, list[tuple[str, str | None, int]]] = {}
    for mod, path in modules().items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_nodes(tree)
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        found: list[tuple[str, str | None, int]] = []
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            if isinstance(node, ast.Import):
                found += [(a.name, None, node.lineno) for a in node.names if a.name.split(".")[0] == "workbench"]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                if base.split(".")[0] != "workbench":
                    continue
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    # `from workbench.x import y` imports the module x.y when y is a module, else name y of x
                    found.append((full, None, node.lineno) if full in modules() else (base, alias.name, node.lineno))
            elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args
                  and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("workbench")):
                found.append((str(node.args[0].value), None, node.lineno))
        out[mod] = found
    return out


def graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {m: set() for m in modules()}
    for mod, found in imports().items():
        for target, _, _ in found:
            r = _resolve(target)
            if r is not None and r != mod:
                g[mod].add(r)
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    cycles = _cycles(graph())
    assert not cycles, "import cycles (a module that imports itself through others):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_the_folders_depend_on_each_other_one_way():
    """Coarser than modules: no two folders (subpackages, top-level modules) import each other, even indirectly."""
    def folder(mod: str) -> str:
        return ".".join(mod.split(".")[:2])

    g: dict[str, set[str]] = {}
    for mod, targets in graph().items():
        g.setdefault(folder(mod), set()).update(folder(t) for t in targets if folder(t) != folder(mod))
    for targets in list(g.values()):
        for t in targets:
            g.setdefault(t, set())
    g.pop("workbench", None)  # the package root re-exports the public API from everything below it
    for targets in g.values():
        targets.discard("workbench")
    cycles = _cycles(g)
    assert not cycles, "folders that depend on each other:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_check_finds_a_cycle():
    # guard against a check that can never fail
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_every_import_resolves_to_a_module_of_the_package():
    bad = [f"{m}:{line} imports {t}" for m, found in imports().items() for t, _, line in found
           if _resolve(t) is None]
    assert not bad, "\n".join(bad)


def test_no_private_name_is_imported_from_another_module():
    bad = [f"{mod}:{line} imports {name} from {target}" for mod, found in imports().items()
           for target, name, line in found
           if name and name.startswith("_") and not name.startswith("__") and _resolve(target) != mod]
    assert not bad, "give these a public name in the module that owns them:\n" + "\n".join(bad)


def test_nothing_below_the_ui_and_cli_imports_the_package_root():
    bad = [f"{mod}:{line}" for mod, found in imports().items() for target, _, line in found
           if _resolve(target) == "workbench" and mod != "workbench" and not mod.startswith(TOP)]
    assert not bad, "import from the owning module instead of the package root:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", sorted(m for m in modules() if m != "workbench.__main__"))
def test_every_module_imports_and_its_parent_attribute_is_the_module(name):
    module = importlib.import_module(name)
    if "." in name:
        parent, _, leaf = name.rpartition(".")
        attr = getattr(importlib.import_module(parent), leaf)
        assert attr is module, f"{parent}.{leaf} is {attr!r}, which shadows the module {name}"


def test_no_module_is_over_the_size_limit():
    big = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"split these by responsibility (limit {MAX_LINES} lines): {big}"


def test_each_runtime_is_one_module_found_in_the_registry():
    from workbench.runtimes import RUNNERS, RUNTIMES

    assert RUNTIMES == tuple(RUNNERS)
    for name, entry in RUNNERS.items():
        module = importlib.import_module(entry.module)
        assert callable(module.make_runner), name


def test_public_surface():
    import workbench

    assert sorted(workbench.__all__) == sorted([
        "Artifact", "Decision", "DeviceProfile", "Distill", "Estimate", "Grid", "LowRank", "Measurement", "ModelHandle", "Prune",
        "Quantize", "RUNTIMES", "Recover", "ResultStore", "Runner", "SpeedExplanation", "Task", "TensorSpec", "Tolerance",
        "VerifiedArtifact", "WorkbenchError", "__version__", "auto_mixed_precision", "available_runtimes",
        "baseline", "best", "calibrate_host", "compress", "decide", "decrypt", "device", "devices", "estimate", "explain_speed", "export", "federated", "grid",
        "keys", "load", "measure", "pareto", "plan", "profile_layers", "prune_plan", "results_frame", "runtime", "sensitivity",
        "Space", "hypervolume", "search", "sweep", "to_frame", "verify", "zoo",
    ])
    for name in workbench.__all__:
        assert hasattr(workbench, name), name
    for fn in ("compress", "measure", "sweep", "search", "export", "runtime", "load", "estimate", "devices", "grid"):
        assert callable(getattr(workbench, fn)), f"workbench.{fn} must stay the function"


def test_readme_layout_names_every_package_folder():
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout"):]
    folders = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    missing = [f for f in folders if not re.search(rf"^\s+{f}/", layout, re.M)]
    assert not missing, f"README's layout section lacks {missing}"
    named = re.findall(r"^  (\w+)/\s", layout, re.M)
    stale = [f for f in named if not (PACKAGE / f).is_dir()]
    assert not stale, f"README's layout section names folders that do not exist: {stale}"


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is installed with the test extras (pip install -e .[test])")
def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    done = subprocess.run([ruff, "check", "--no-cache", "workbench", "tests", "benchmarks", "conftest.py"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_import_workbench_loads_no_heavy_library_and_every_public_name_resolves():
    code = ("import sys, workbench\n"
            "heavy = [m for m in ('torch', 'pandas', 'onnxruntime', 'plotly', 'openvino', 'executorch') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert {'zoo', 'viz', 'hardware', 'ui'} <= set(dir(workbench))\n"
            "for name in workbench.__all__:\n"
            "    getattr(workbench, name)\n"
            "assert callable(workbench.viz.pareto_scatter) and workbench.compress.__module__.startswith('workbench.')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    try:
        import workbench

        workbench.no_such_name  # noqa: B018
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("an unknown attribute must raise AttributeError")
