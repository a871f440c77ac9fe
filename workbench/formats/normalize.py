"""Foreign ONNX graphs made regular before compressing: Constant weights folded into initializers, BatchNorm
folded into the convolutions before it, shapes inferred.

Other toolchains write graphs the compression code cannot read as they are: paddle2onnx keeps every weight in a
``Constant`` node (0 initializers) and leaves ``BatchNormalization`` unfolded; a quantiser or pruner that looks
for weight initializers then finds none. `normalized` runs `onnxslim` (constant folding, Conv+BN fusion, shape
inference), checks on the model's example inputs that the outputs did not change, and returns a handle of the
normalised copy whose `origin` is the original: the original file stays the reference for fidelity. Graphs that
are already regular (everything `torch.onnx` writes) come back unchanged, so their variants are what they were.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle
from workbench.core.paths import atomic_write, cache_dir

WEIGHT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
VERSION = 2  # of the normalisation steps below: part of the cache key
MIN_OPSET = 13  # per-channel QuantizeLinear/DequantizeLinear (ONNX Runtime's static int8) need opset 13
TOLERANCE = 1e-4  # max |diff| / max |output| allowed between the original and the normalised graph


def irregularities(proto) -> list[str]:
    """What makes a graph foreign: weights held in Constant nodes, BatchNorm left unfolded (empty: regular).

    Example:
        >>> import onnx
        >>> from onnx import helper, TensorProto
        >>> w = helper.make_node("Constant", [], ["w"], value=helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1, 0, 0, 1]))
        >>> mm = helper.make_node("MatMul", ["x", "w"], ["y"])
        >>> g = helper.make_graph([w, mm], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        ...                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])])
        >>> irregularities(helper.make_model(g))
        ['1 MatMul weight(s) in Constant nodes']
    """
    constants = {o for n in proto.graph.node if n.op_type == "Constant" for o in n.output}
    in_constants = sum(1 for n in proto.graph.node if n.op_type in WEIGHT_OPS and any(i in constants for i in n.input))
    found = []
    if in_constants:
        ops = sorted({n.op_type for n in proto.graph.node if n.op_type in WEIGHT_OPS
                      and any(i in constants for i in n.input)})
        found.append(f"{in_constants} {'/'.join(ops)} weight(s) in Constant nodes")
    bn = sum(1 for n in proto.graph.node if n.op_type == "BatchNormalization")
    if bn:
        found.append(f"{bn} unfolded BatchNormalization node(s)")
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset < MIN_OPSET:
        found.append(f"opset {opset} raised to {MIN_OPSET}")
    return found


def normalized(handle: ModelHandle, *, always: bool = False) -> ModelHandle:
    """`handle` itself when its graph is regular (and not `always`), else a handle of its normalised copy
    (cached on disk). `always` folds constants even in a regular graph (before converting it to a module).

    The copy's `origin` is `handle` (or `handle.origin`), its `meta["normalized"]` says what was changed, and
    its outputs equal the original's on the example inputs (checked; a `WorkbenchError` otherwise).
    """
    import onnx

    if handle.framework != "onnx" or handle.path is None:
        return handle
    if handle.meta.get("normalized") is not None:
        return handle
    proto = onnx.load(str(handle.path), load_external_data=False)
    found = irregularities(proto)
    if not found and not always:
        return handle
    found = found or ["constants folded"]
    out = _cache_path(handle)
    if not out.is_file():
        _write_normalized(handle, out)
    from workbench.formats.loader import load

    new = load(out, example_inputs=handle.example_inputs, name=handle.name)
    _check_same_outputs(handle, new)
    return dataclasses.replace(
        new, name=handle.name, origin=handle.origin if handle.origin is not None else handle,
        lineage=handle.lineage, meta={**handle.meta, "normalized": found},
    )


def _cache_path(handle: ModelHandle) -> Path:
    from importlib.metadata import version

    key = hashlib.sha256(f"{handle.fingerprint}|onnxslim={version('onnxslim')}|v{VERSION}".encode()).hexdigest()[:24]
    return cache_dir() / "normalized" / f"{handle.name}-{key}.onnx"


def _write_normalized(handle: ModelHandle, out: Path) -> None:
    import onnx
    import onnxslim

    model = onnx.load(str(handle.path))
    try:
        slim = onnxslim.slim(model)
    except Exception as e:  # noqa: BLE001 - onnxslim raises whatever its passes raise
        raise WorkbenchError(f"{handle.name}: onnxslim could not normalise this graph ({first_line(e)}); "
                             "simplify it with onnxslim or onnxsim yourself and load the result.") from e
    opset = next((o.version for o in slim.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset < MIN_OPSET:
        from onnx import version_converter

        try:
            slim = version_converter.convert_version(slim, MIN_OPSET)
        except Exception as e:  # noqa: BLE001 - the converter raises RuntimeError/ValueError per op adapter
            raise WorkbenchError(f"{handle.name}: cannot raise this opset-{opset} graph to opset {MIN_OPSET} "
                                 f"({first_line(e)}); re-export it at opset 13 or newer.") from e
    left = irregularities(slim)
    if any("Constant" in f or "opset" in f for f in left):
        raise WorkbenchError(f"{handle.name}: after constant folding the graph still has {left[0]}: their values "
                             "depend on the inputs, so there are no weights to compress there.")
    atomic_write(out, lambda tmp: onnx.save(slim, str(tmp)))


def _check_same_outputs(original: ModelHandle, new: ModelHandle) -> None:
    if not original.example_inputs:
        return
    a, b = run_onnx(original, original.example_inputs), run_onnx(new, original.example_inputs)
    for x, y in zip(a, b):
        err = relative_error(x, y)
        if x.shape != y.shape or err > TOLERANCE:
            raise WorkbenchError(f"{original.name}: normalising the graph changed its outputs (relative error "
                                 f"{err:.2e}); compress a copy simplified with onnxsim instead.")


def relative_error(ref: np.ndarray, got: np.ndarray) -> float:
    """max |ref - got| / max |ref| (0 for empty arrays): how far one graph's outputs moved from another's."""
    if not ref.size or ref.shape != got.shape:
        return 0.0 if not ref.size else float("inf")
    return float(np.max(np.abs(ref.astype(np.float64) - got))) / max(float(np.max(np.abs(ref))), 1e-12)


def run_onnx(handle: ModelHandle, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Outputs of an ONNX file on `arrays` in ONNX Runtime (no runner: formats sit below runtimes)."""
    import onnxruntime as ort

    from workbench.formats.onnx_file import session_source

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(session_source(handle.path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return list(session.run(None, dict(zip(names, arrays))))
