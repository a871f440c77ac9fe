"""ExecuTorch programs (.pte): torch → .pte conversion lowered to XNNPACK (cached), and reading a .pte file.

`to_pte` exports a torch handle with `torch.export.export` (dynamic batch up to `MAX_BATCH`), optionally quantises
it to int8 through PT2E with the XNNPACK quantizer, and lowers it with
``to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()``. The file is cached under
the workbench cache by the model's fingerprint, the recipe and the library versions, written atomically.

`load_pte` reads a .pte a user hands over: the flatbuffer identifier is checked here (bytes 4-8 are ``ET`` and two
digits, ``ET12`` for ExecuTorch 1.x), then the file is opened in a child process (the ExecuTorch runtime's own
parser and its XNNPACK delegate's loader, which are C++), so a malformed file costs an error message, not the
kernel. Nothing else from the file runs. A .pte keeps its weights as raw bytes inside the delegate's data, with
no element count or dtype the runtime exposes: `num_params` counts the program's own constant tensors only (0 for
a fully delegated program) and ``meta["pte"]["constant_bytes"]`` says how many bytes of weights it holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, file_sha256, fixed_batch_of
from workbench.core.paths import atomic_write, cache_dir

MAX_BATCH = 64
"""Largest batch a converted program takes in one call (its memory is planned for it); the runner feeds larger
batches through in chunks of this size. 64 is the batch `Task.run` evaluates in."""

QUANT_MODES = {"int8": "int8 XNNPACK (PT2E static, calibrated)",
               "int8-dynamic": "int8 XNNPACK (PT2E dynamic activations)"}
"""`to_pte(quant=...)` modes and what each executes, in words."""

SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64",
                11: "bool", 15: "bfloat16"}
"""ExecuTorch ScalarType codes (runtime/core/portable_type/scalar_type.h) as numpy dtype names."""

_IDENTIFIER = re.compile(rb"ET\d\d")


# ------------------------------------------------------------------------------------------------ convert


def to_pte(handle: ModelHandle, quant: str | None = None, calibration: Sequence[np.ndarray] | None = None) -> Path:
    """The handle as an ExecuTorch program lowered to XNNPACK (cached): fp32, or int8 (`QUANT_MODES`).

    Args:
        handle: a torch handle with example inputs (an executorch handle returns its own file for ``quant=None``).
        quant: `None` (fp32), ``"int8"`` (PT2E static: int8 weights per channel and int8 activations calibrated on
            `calibration`) or ``"int8-dynamic"`` (int8 weights, activations quantised at run time).
        calibration: inputs for static int8, one array per model input.
    """
    if handle.framework == "executorch" and quant is None:
        assert handle.path is not None
        return handle.path
    if handle.framework != "torch":
        raise WorkbenchError(f"{handle.name}: only PyTorch models convert to ExecuTorch (.pte); this is "
                             f"{handle.framework}. Load the PyTorch model (or its .pt2) to run it on 'executorch'.")
    if quant is not None and quant not in QUANT_MODES:
        raise ValueError(f"quant must be None or one of {sorted(QUANT_MODES)}, got {quant!r}")
    if quant == "int8" and not calibration:
        raise WorkbenchError(f"{handle.name}: static int8 for ExecuTorch calibrates activation ranges; pass the "
                             "task (its calibration split) or calibration=[arrays].")
    if not handle.example_inputs:
        raise WorkbenchError(f"{handle.name}: converting to ExecuTorch needs sample inputs. Load the model with "
                             "workbench.load(model, example_inputs=[...]) (one array per input, batch first).")
    kind = f"pte-{quant or 'fp32'}"
    cached = handle._artifacts.get(kind)
    if cached is not None and cached.is_file():
        return cached
    out = _cache_path(handle, kind, calibration if quant == "int8" else None)
    if not out.is_file():
        atomic_write(out, lambda tmp: tmp.write_bytes(lower(handle, quant, calibration)))
    handle._artifacts[kind] = out
    return out


def lower(handle: ModelHandle, quant: str | None = None, calibration: Sequence[np.ndarray] | None = None) -> bytes:
    """The .pte bytes of a torch handle: export, optional PT2E int8, XNNPACK lowering.

    Raises:
        WorkbenchError: torch.export or the lowering failed; the message names the operator when it can.
    """
    import torch

    module = handle.module
    if isinstance(module, torch.jit.ScriptModule):
        raise WorkbenchError(f"{handle.name}: torch.export cannot trace TorchScript, so it cannot become a .pte. "
                             "Load the original nn.Module or a torch.export (.pt2) file.")
    fixed = fixed_batch_of(handle.inputs)
    data = _exported(handle, module, quant, calibration, fixed)
    if fixed is None and not _runs_at_another_batch(data, handle.example_inputs, 1):
        # an operator left on portable kernels (e.g. the `index` a reflection pad decomposes into) kept the batch
        # the graph was traced with, so the "dynamic" program fails at any other batch: export for batch 1 instead
        # (the runner sees the static input shape and feeds rows one call at a time)
        data = _exported(handle, module, quant, calibration, 1)
    return data


def _exported(handle: ModelHandle, module: Any, quant: str | None, calibration: Sequence[np.ndarray] | None,
              fixed: int | None) -> bytes:
    import torch

    args = tuple(torch.from_numpy(np.ascontiguousarray(_rows(a, fixed or 2))) for a in handle.example_inputs)
    dynamic = None if fixed else tuple({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)} for _ in args)
    with quiet_executorch(), torch.no_grad():
        if quant:
            try:
                module = _quantized(module, args, dynamic, quant, calibration, fixed)
            except Exception as e:
                raise WorkbenchError(f"{handle.name}: PT2E {quant} quantisation with the XNNPACK quantizer failed"
                                     f"{_op_of(e)}: {first_line(e)}. Use the fp32 program, or another runtime's "
                                     "int8 (e.g. onnx-int8-dynamic for transformers).") from e
        try:
            program = torch.export.export(module, args, dynamic_shapes=dynamic)
        except Exception as e:
            raise WorkbenchError(f"{handle.name}: torch.export failed{_op_of(e)}: {first_line(e)}. Replace that "
                                 "operator, or run the model on 'onnxruntime' instead.") from e
        try:
            return _lowered(program)
        except Exception as e:
            raise WorkbenchError(f"{handle.name}: lowering to ExecuTorch/XNNPACK failed{_op_of(e)}: {first_line(e)}. "
                                 "ExecuTorch runs only core ATen operators (or ones a backend takes); replace that "
                                 "operator, or use 'onnxruntime'.") from e


def _runs_at_another_batch(data: bytes, examples: Sequence[np.ndarray], batch: int) -> bool:
    """Whether the program (traced at batch 2) executes at `batch`; the runtime's complaint goes to /dev/null."""
    import torch
    from executorch.runtime import Runtime

    inputs = [torch.from_numpy(np.ascontiguousarray(_rows(a, batch))) for a in examples]
    with _quiet_stderr():
        try:
            Runtime.get().load_program(data).load_method("forward").execute(inputs)
        except RuntimeError:
            return False
    return True


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 pointed at /dev/null (the C++ runtime logs there, below Python's sys.stderr)."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _quantized(module: Any, args: tuple[Any, ...], dynamic: Any, quant: str,
               calibration: Sequence[np.ndarray] | None, fixed: int | None = None) -> Any:
    """PT2E: the exported module annotated by the XNNPACK quantizer, calibrated (static) and converted."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    class Quantizer(XNNPACKQuantizer):
        def transform_for_annotation(self, model: Any) -> Any:
            # upstream turns the scalar operand of every add/mul into a float32 tensor, which makes integer index
            # arithmetic float (transformers' attention-mask positions: `arange + 0` then fails as an index):
            # hide the integer-valued ones from it
            ints = {n: n.target for n in model.graph.nodes if n.op == "call_function"
                    and n.target in (torch.ops.aten.add.Tensor, torch.ops.aten.mul.Tensor)
                    and not getattr(n.meta.get("val"), "is_floating_point", lambda: True)()}
            for n in ints:
                n.target = _integer_arithmetic
            try:
                return super().transform_for_annotation(model)
            finally:
                for n, target in ints.items():
                    n.target = target
                model.recompile()

    static = quant == "int8"
    quantizer = Quantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=not static))
    graph = torch.export.export(module, args, dynamic_shapes=dynamic).module()
    prepared = prepare_pt2e(graph, quantizer)
    if static:
        n, step = len(calibration[0]), fixed or 32
        for i in range(0, n - (n % step if fixed else 0), step):
            prepared(*[torch.from_numpy(np.ascontiguousarray(a[i:i + step])) for a in calibration])
    else:
        prepared(*args)
    return convert_pt2e(prepared)


def _integer_arithmetic(*args: Any) -> Any:  # pragma: no cover - a stand-in target, never called
    raise AssertionError("placeholder")


def _lowered(program: Any) -> bytes:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    ranges = dict(program.range_constraints)
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    # XNNPACK's channels-last pass re-runs convolutions on fake tensors, and torch's convolution backend choice
    # guards on `batch < 16`: that narrows the batch symbol's range to [2, 15], and memory planning would then
    # size the program for 15 samples. The exported range is the one the graph was checked for: put it back.
    env = _shape_env(edge.exported_program().graph_module)
    if env is not None:
        from torch.utils._sympy.value_ranges import ValueRanges

        for sym, vr in ranges.items():
            now = env.var_to_range.get(sym)
            if now is not None and now.upper < vr.upper:
                env.var_to_range[sym] = ValueRanges(now.lower, vr.upper)
    return edge.to_executorch().buffer


def _shape_env(graph_module: Any) -> Any:
    import torch

    for node in graph_module.graph.nodes:
        val = node.meta.get("val")
        for d in getattr(val, "shape", ()):
            if isinstance(d, torch.SymInt):
                return d.node.shape_env
    return None


def _op_of(e: BaseException) -> str:
    """`` at operator aten.xxx`` when the error text names one."""
    m = re.search(r"\b(aten[.:]+[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?|torch\.ops\.[A-Za-z0-9_.]+)", str(e))
    return f" at operator {m.group(1)}" if m else ""


def _rows(a: np.ndarray, n: int) -> np.ndarray:
    """`a` with exactly `n` rows (repeating rows when it has fewer)."""
    return a if a.ndim == 0 or a.shape[0] == n else np.resize(a, (n, *a.shape[1:]))


def _cache_path(handle: ModelHandle, kind: str, calibration: Sequence[np.ndarray] | None) -> Path:
    from importlib.metadata import version

    libs = ",".join(f"{lib}={version(lib)}" for lib in ("torch", "executorch", "torchao"))
    h = hashlib.sha256()
    for a in calibration or ():
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode() + a.tobytes())
    digest = h.hexdigest() if calibration else ""
    recipe = 2  # bumped when the lowering changes what a cached file would hold (2: the fixed-batch fallback)
    key = hashlib.sha256(f"{handle.fingerprint}|{kind}|{libs}|{digest}|{MAX_BATCH}|{recipe}".encode()).hexdigest()[:24]
    return cache_dir() / "conversions" / f"{handle.name.split('|', 1)[0]}-{kind}-{key}.pte"


def quiet_executorch() -> Any:
    """Silence the exporters' and torchao's chatter (warnings, prints, log lines), keeping exceptions."""
    from workbench.formats.convert import quiet_conversion

    return quiet_conversion("torchao", "executorch", "torch._export")


# ------------------------------------------------------------------------------------------------- read

_PROBE = r"""
import json, sys, logging
logging.disable(logging.WARNING)
from executorch.runtime import Runtime
from executorch.exir._serialize._program import deserialize_pte_binary
path = sys.argv[1]
program = Runtime.get().load_program(path)
if "forward" not in program.method_names:
    raise SystemExit("no method 'forward' (methods: %s)" % sorted(program.method_names))
method = program.load_method("forward")
meta = method.metadata
def info(t):
    return {"sizes": [int(s) for s in t.sizes()], "dtype": int(t.dtype()), "nbytes": int(t.nbytes())}
ins = [info(meta.input_tensor_meta(i)) for i in range(meta.num_inputs())]
outs = [info(meta.output_tensor_meta(i)) for i in range(meta.num_outputs())]
with open(path, "rb") as f:
    pte = deserialize_pte_binary(f.read())
plan = next(p for p in pte.program.execution_plan if p.name == "forward")
def dynamism(i):
    return int(getattr(plan.values[i].val, "shape_dynamism", 0))
for d, i in zip(ins, plan.inputs): d["dynamic"] = dynamism(i)
for d, i in zip(outs, plan.outputs): d["dynamic"] = dynamism(i)
params = 0
for v in plan.values:
    t = v.val
    if type(t).__name__ == "Tensor" and t.data_buffer_idx > 0 and int(t.scalar_type) in (5, 6, 7, 15, 1, 0):
        n = 1
        for s in t.sizes: n *= int(s)
        params += n if t.sizes else 0
constant = sum(len(b.storage) for b in pte.program.constant_buffer)
if pte.named_data is not None:
    constant += sum(len(getattr(b, "buffer", b)) for b in pte.named_data.buffers)
ops = sorted({o.name + ("." + o.overload if o.overload else "") for o in plan.operators})
print(json.dumps({"inputs": ins, "outputs": outs, "num_params": params, "constant_bytes": constant,
                  "portable_ops": ops, "delegates": [d.id for d in plan.delegates]}))
"""


def is_pte(path: Path) -> bool:
    """Whether the file starts like an ExecuTorch flatbuffer (identifier ``ET`` + two digits at bytes 4-8)."""
    with path.open("rb") as f:
        head = f.read(8)
    return len(head) == 8 and bool(_IDENTIFIER.fullmatch(head[4:8]))


def load_pte(path: Path, examples: list[np.ndarray] | None, name: str) -> ModelHandle:
    """Validate a .pte in a child process, then describe its ``forward`` method.

    Raises:
        WorkbenchError: not an ExecuTorch program, no ``forward`` method, or the runtime cannot load it.
    """
    path = Path(path)
    size = path.stat().st_size
    if size < 16:
        raise WorkbenchError(f"{path}: {size} bytes is too small to be an ExecuTorch program; the file is truncated.")
    if not is_pte(path):
        with path.open("rb") as f:
            found = f.read(8)[4:8]
        raise WorkbenchError(
            f"{path}: not an ExecuTorch program (bytes 4-8 should be the identifier 'ET' and two digits, e.g. "
            f"'ET12', found {found!r}). The file is corrupt or another format; re-export it with "
            "executorch.exir (or workbench.export(..., 'executorch'))."
        )
    fingerprint = file_sha256([path])
    info = probe(str(path), fingerprint)
    inputs = [_spec(f"input_{i}", d) for i, d in enumerate(info["inputs"])]
    outputs = [_spec(f"output_{i}", d) for i, d in enumerate(info["outputs"])]
    meta = {"pte": {k: info[k] for k in ("constant_bytes", "portable_ops", "delegates")},
            "num_params_note": "a .pte stores delegated weights as raw bytes: num_params counts the program's own "
                               "constant tensors only"}
    return ModelHandle(framework="executorch", inputs=inputs, outputs=outputs, num_params=int(info["num_params"]),
                       fingerprint=fingerprint, source_format="pte", name=name, path=path, example_inputs=examples,
                       meta=meta)


def pte_handle(source: ModelHandle, path: Path, *, meta: dict[str, Any] | None = None) -> ModelHandle:
    """`load_pte` of a file converted from `source`, named like it: its input/output names and parameter count."""
    loaded = load_pte(path, source.example_inputs, source.name.split("|", 1)[0])
    inputs = _renamed(loaded.inputs, source.inputs)
    outputs = _renamed(loaded.outputs, source.outputs)
    return ModelHandle(framework="executorch", inputs=inputs, outputs=outputs, num_params=source.num_params,
                       fingerprint=loaded.fingerprint, source_format="pte", name=loaded.name, path=path,
                       example_inputs=source.example_inputs, meta={**loaded.meta, **(meta or {})})


def _renamed(specs: list[TensorSpec], names: list[TensorSpec]) -> list[TensorSpec]:
    if len(specs) != len(names):
        return specs
    return [TensorSpec(n.name, s.shape, s.dtype) for s, n in zip(specs, names)]


def _spec(name: str, d: dict[str, Any]) -> TensorSpec:
    dims: list[int | None] = list(d["sizes"])
    if d.get("dynamic") and dims:
        dims[0] = None  # a bounded dynamic batch: any size up to the planned one (the runner chunks beyond it)
    return TensorSpec(name, tuple(dims), SCALAR_TYPES.get(int(d["dtype"]), f"scalar_type_{d['dtype']}"))


@lru_cache(maxsize=64)
def probe(path: str, fingerprint: str) -> dict:
    """Load the program and its ``forward`` method in a child process; return their description (JSON)."""
    from workbench.core.isolated import run_child

    child = run_child(_PROBE, path, timeout=180)
    if child.status == "timeout":
        raise WorkbenchError(f"{path}: the ExecuTorch runtime did not finish loading this program in 180 s.")
    if child.status == "crash":
        raise WorkbenchError(
            f"{path}: the ExecuTorch runtime crashed ({child.detail}) while opening this file, so it is corrupt or "
            "malformed. Re-export the model (workbench.export(..., 'executorch')) and copy it again."
        )
    if child.status == "error":
        raise WorkbenchError(
            f"{path}: not a loadable ExecuTorch program ({child.detail}). The file is truncated or corrupt, or needs "
            "a backend or kernel this ExecuTorch build lacks; re-export it."
        )
    try:
        return json.loads(child.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError) as e:  # pragma: no cover - the probe prints one JSON line
        raise WorkbenchError(f"{path}: the ExecuTorch probe returned no description ({child.stdout[-300:]!r}).") from e
