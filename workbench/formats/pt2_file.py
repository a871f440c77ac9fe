"""Make `torch.export.load()` safe on an untrusted .pt2 archive.

`torch.export.load()` trusts its input. It falls back to `torch.load(weights_only=False)` / `pickle.loads` for
pickled weights, constants and sample inputs; it parses every symbolic-shape expression with `sympy.sympify`
(which is Python `eval`); and it compiles the archive's `guards_code` strings into a function that runs on every
call of the loaded module. A crafted file can therefore run arbitrary code through any of the three.

So, before loading, `check_archive` checks every expression and guard string in the archive's JSON against the
small grammar torch itself writes (symbols, numbers, arithmetic, comparisons and a fixed list of functions), and
during loading `no_unpickling` blocks the unpickling of any Python global outside torch's weights-only allowlist.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import json
import math
import re
import sys
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, file_sha256, module_fingerprint
from workbench.formats.module import examples_from_specs, np_dtype_name

# Functions torch's serializer writes into `expr_str` (sympy `srepr` of shape expressions).
_SYMPY_CALLS = frozenset({
    "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs", "floor", "ceiling",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality", "Unequality", "StrictLessThan", "LessThan",
    "StrictGreaterThan", "GreaterThan", "And", "Or", "Not", "Xor", "Piecewise", "ITE", "ExprCondPair", "sqrt",
    "Tuple",
})
_SYMPY_CONSTANTS = frozenset({"true", "false", "oo", "zoo", "nan", "pi", "E", "S_true", "S_false"})
# Names the guard printer (torch ShapeGuardPythonPrinter) writes, besides `L[...]` input paths.
_GUARD_NAMES = frozenset({
    "L", "math", "torch", "inf", "nan", "max", "min", "abs", "round", "int", "float", "bool",
    "IsNonOverlappingAndDenseIndicator", "cast_symbool_to_symint_guardless",
})
_TENSOR_METHODS = frozenset({"size", "stride", "storage_offset", "numel", "dim"})
_SAFE_STR = re.compile(r"^[\w.+\-/ ]*$")
_OPERATORS = (ast.operator, ast.unaryop, ast.boolop, ast.cmpop, ast.expr_context)


def check_archive(path: Path) -> None:
    """Raise `WorkbenchError` if any expression or guard in the archive is not a plain shape expression."""
    try:
        with zipfile.ZipFile(path) as zf:
            documents = [(i.filename, zf.read(i)) for i in zf.infolist() if i.filename.endswith(".json")]
    except Exception as e:  # BadZipFile, NotImplementedError, EOFError, zlib.error, … from a corrupt archive
        raise WorkbenchError(
            f"{path}: corrupt torch.export archive ({first_line(e)}). Re-save it with torch.export.save()."
        ) from e
    for member, raw in documents:
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):
            continue  # not ours to judge: torch.export.load reports a broken file itself
        for kind, text in _expressions(doc):
            problem = _check(text, guard=(kind == "guards_code"))
            if problem:
                raise WorkbenchError(
                    f"{path}: {member} holds a {kind!r} entry that is not a shape expression ({problem}: "
                    f"{text[:120]!r}). torch.export.load() would run it as Python code, so the workbench refuses "
                    "the file. Re-export the model with torch.export.save() from a source you trust."
                )


def _expressions(doc: Any) -> Iterator[tuple[str, str]]:
    """Every `expr_str` value and every `guards_code` entry, anywhere in a JSON document."""
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr_str" and isinstance(value, str):
                    yield "expr_str", value
                elif key == "guards_code" and isinstance(value, list):
                    for g in value:
                        yield "guards_code", g if isinstance(g, str) else repr(g)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


def _check(text: str, *, guard: bool) -> str | None:
    """`None` if `text` is a plain expression in the shape grammar, else what is wrong with it."""
    if "#" in text or "\\" in text:
        return "a comment or backslash"  # guards are pasted into generated source, where these would escape
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "not a Python expression"
    for node in ast.walk(tree):
        if _is_power(node) and all(_is_number(operand) for operand in _power_operands(node)):
            return "a power of constants"  # e.g. 10**10**10: torch would evaluate it eagerly, forever
        if isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, *_OPERATORS)):
            continue
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str) and not _SAFE_STR.match(node.value):
                return "a string with unexpected characters"
            if not isinstance(node.value, (str, int, float, bool, type(None))):
                return f"a {type(node.value).__name__} constant"
            continue
        if isinstance(node, ast.keyword):
            if node.arg is None or node.arg.startswith("_") or not isinstance(node.value, ast.Constant):
                return "an unexpected keyword argument"
            continue
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) or (guard and isinstance(node.func, ast.Attribute))):
                return "a call of something other than a known function"
            continue
        if isinstance(node, ast.Name):
            if not _name_ok(node.id, guard):
                return f"the name {node.id!r}"
            continue
        if guard and isinstance(node, ast.Attribute):
            if not _attribute_ok(node):
                return f"the attribute .{node.attr}"
            continue
        if guard and isinstance(node, ast.Subscript):
            if not (isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, (int, str))):
                return "a computed subscript"
            continue
        return f"a {type(node).__name__} expression"
    return None


def _is_power(node: ast.AST) -> bool:
    return (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Pow"
    )


def _power_operands(node: ast.AST) -> list[ast.AST]:
    return [node.left, node.right] if isinstance(node, ast.BinOp) else list(node.args)


def _is_number(node: ast.AST) -> bool:
    """A subtree made only of numeric literals (no symbol or tensor size anywhere in it)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id not in ("Integer", "Float", "Rational", "Pow", "Mul", "Add"):
            return False
        if isinstance(sub, (ast.Attribute, ast.Subscript)):
            return False
    return True


def _name_ok(name: str, guard: bool) -> bool:
    if guard:
        return name in _GUARD_NAMES
    if name in _SYMPY_CALLS or name in _SYMPY_CONSTANTS or name in _torch_sympy_functions():
        return True
    # Any other bare name becomes a sympy Symbol, unless it already means something to eval().
    return not name.startswith("_") and name not in _builtin_names() and name not in _sympy_names()


def _attribute_ok(node: ast.Attribute) -> bool:
    base = node.value
    if isinstance(base, ast.Name) and base.id == "math":
        return not node.attr.startswith("_") and callable(getattr(math, node.attr, None))
    if isinstance(base, ast.Name) and base.id == "torch":
        return node.attr.startswith("sym_")
    return node.attr in _TENSOR_METHODS and not (isinstance(base, ast.Name) and base.id in ("math", "torch"))


@lru_cache(maxsize=1)
def _builtin_names() -> frozenset[str]:
    import builtins

    return frozenset(dir(builtins))


@lru_cache(maxsize=1)
def _sympy_names() -> frozenset[str]:
    import sympy

    return frozenset(dir(sympy))


@lru_cache(maxsize=1)
def _torch_sympy_functions() -> frozenset[str]:
    import sympy
    from torch.utils._sympy import functions

    return frozenset(
        n for n, v in vars(functions).items()
        if isinstance(v, type) and issubclass(v, sympy.Basic) and not n.startswith("_")
    )


# ------------------------------------------------------------------------------------------- unpickling

_BLOCKED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("workbench_no_unpickling", default=None)
_HOOK_INSTALLED = False


class UnsafePickleError(Exception):
    """Raised inside the unpickler when a blocked global is requested (never reaches users as such)."""


@contextlib.contextmanager
def no_unpickling(blocked: list[str]) -> Iterator[None]:
    """Within the block, refuse to unpickle any Python global outside torch's weights-only allowlist.

    Uses the ``pickle.find_class`` audit event (PEP 578), so it covers `pickle.loads`, `torch.load(
    weights_only=False)` and any other route to the standard unpickler. Names refused are appended to `blocked`.
    """
    global _HOOK_INSTALLED
    if not _HOOK_INSTALLED:
        sys.addaudithook(_audit)
        _HOOK_INSTALLED = True
    token = _BLOCKED.set(blocked)
    try:
        yield
    finally:
        _BLOCKED.reset(token)


def _audit(event: str, args: tuple) -> None:
    if event != "pickle.find_class":
        return
    blocked = _BLOCKED.get()
    if blocked is None:
        return
    qualname = f"{args[0]}.{args[1]}"
    if qualname not in _weights_only_globals() and qualname not in _user_safe_globals():
        blocked.append(qualname)
        raise UnsafePickleError(f"refused to unpickle {qualname}")


@lru_cache(maxsize=1)
def _weights_only_globals() -> frozenset[str]:
    """What `torch.load(weights_only=True)` accepts: tensors, storages, containers, dtypes, …"""
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        return frozenset(_get_allowed_globals())
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - private torch API moved
        return frozenset()


def _user_safe_globals() -> frozenset[str]:
    """Classes the user trusts via `torch.serialization.add_safe_globals` (e.g. a quantised tensor subclass)."""
    try:
        from torch._weights_only_unpickler import _get_user_allowed_globals

        return frozenset(_get_user_allowed_globals())
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - private torch API moved
        return frozenset()


def load_exported_program(path: Path, examples: list[np.ndarray] | None, name: str) -> ModelHandle:
    import torch

    from workbench.formats.pt2_file import check_archive, no_unpickling

    check_archive(path)  # torch.export.load() evaluates the archive's expressions: vet them first
    blocked: list[str] = []
    error: Exception | None = None
    try:
        with no_unpickling(blocked):
            ep = torch.export.load(str(path))
    except Exception as e:  # noqa: BLE001 - kept and reported below, after the unpickling check
        error = e
    if blocked:
        raise WorkbenchError(
            f"{path} holds pickled Python objects ({', '.join(sorted(set(blocked))[:3])}) besides tensors. "
            "Unpickling them can run arbitrary code, so the workbench refuses the file. If you trust it and the "
            "names are tensor classes you use, allow them with torch.serialization.add_safe_globals([...])."
        ) from error
    if error is not None:
        raise WorkbenchError(
            f"{path}: not a loadable torch.export archive ({first_line(error)}). Re-save it with "
            "torch.export.save()."
        ) from error
    try:
        return from_exported_program(ep, path, examples, name)
    except WorkbenchError:
        raise
    except Exception as e:  # a hand-edited archive can deserialize yet not form a usable program
        raise WorkbenchError(
            f"{path}: the torch.export archive loads but its program is inconsistent ({first_line(e)}). "
            "Re-save it with torch.export.save()."
        ) from e


def from_exported_program(
    ep: Any, path: Path | None, examples: list[np.ndarray] | None, name: str
) -> ModelHandle:
    import torch

    nodes = {n.name: n for n in ep.graph.nodes}
    user_inputs = list(ep.graph_signature.user_inputs)
    inputs = [_spec_from_fake(n, nodes[n].meta.get("val")) for n in user_inputs]
    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    out_vals = out_node.args[0] if isinstance(out_node.args[0], (tuple, list)) else [out_node.args[0]]
    user_outputs = list(ep.graph_signature.user_outputs)
    outputs = [
        _spec_from_fake(n, getattr(v, "meta", {}).get("val"))
        for n, v in zip(user_outputs, out_vals[-len(user_outputs):] if user_outputs else [])
    ]
    module = ep.module()
    fp = file_sha256([path]) if path is not None else module_fingerprint(module)
    if examples is None:
        examples = examples_from_specs(inputs)
    return ModelHandle(
        framework="torch",
        inputs=inputs,
        outputs=outputs,
        num_params=sum(int(t.numel()) for t in ep.state_dict.values() if isinstance(t, torch.Tensor)),
        fingerprint=fp,
        source_format="exported_program",
        name=name,
        module=module,
        path=path,
        example_inputs=examples,
    )


def _spec_from_fake(name: str, val: Any) -> TensorSpec:
    if val is None or not hasattr(val, "shape"):
        return TensorSpec(name, None, None)
    shape = tuple(int(d) if isinstance(d, int) or str(d).isdigit() else None for d in val.shape)
    return TensorSpec(name, shape, np_dtype_name(val))
