"""Read and validate an ONNX file (external data included) into a `ModelHandle`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, file_sha256


def load_onnx(path: Path, examples: list[np.ndarray] | None, name: str) -> ModelHandle:
    """Parse, check and open an ONNX model; every failure becomes a `WorkbenchError` naming the file."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError, UnicodeDecodeError) as e:
        raise WorkbenchError(
            f"{path}: not a valid ONNX protobuf ({first_line(e)}). The file is truncated or not ONNX; "
            "re-export it with torch.onnx.export()."
        ) from e
    if not proto.graph.node and not proto.graph.output:
        raise WorkbenchError(f"{path}: parsed as ONNX but holds no graph. The file is not an ONNX model.")
    external = _external_files(path, proto)
    missing = [p for p in external if not p.is_file()]
    if missing:
        raise WorkbenchError(
            f"{path}: its weights live in external data file(s) that are missing: "
            f"{', '.join(str(m) for m in missing)}. Keep the .onnx file and its data file(s) in the same folder."
        )
    undefined = _undefined_inputs(proto)
    if undefined:
        node, value = undefined[0]
        raise WorkbenchError(
            f"{path}: node {node} reads {value!r}, which no initializer, graph input or other node provides "
            f"({len(undefined)} such input(s)); the file is missing weights (initialisers) or was edited. "
            "Re-export the model."
        )
    try:
        onnx.checker.check_model(str(path))
    except Exception as e:  # onnx.checker.ValidationError and friends
        raise WorkbenchError(f"{path}: invalid ONNX model: {first_line(e)}. Re-export the model.") from e
    session_error = _try_session(path, bool(external))
    if session_error:
        raise WorkbenchError(
            f"{path}: ONNX Runtime cannot load this model: {session_error}. If an operator is unsupported, "
            "re-export with a different opset (torch.onnx.export(..., opset_version=...)) or replace the op."
        )
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [_spec(v) for v in proto.graph.input if v.name not in initializers]
    outputs = [_spec(v) for v in proto.graph.output]
    # int64 initialisers are shapes, axes and indices (ONNX requires int64 for those), not weights.
    num_params = sum(
        int(np.prod(i.dims)) if i.dims else 1 for i in proto.graph.initializer if i.data_type != onnx.TensorProto.INT64
    )
    # Some toolchains (paddle2onnx) keep the weights in Constant nodes instead: count those tensors too.
    num_params += sum(
        int(np.prod(a.t.dims)) for n in proto.graph.node if n.op_type == "Constant" for a in n.attribute
        if a.name == "value" and a.t.dims and a.t.data_type != onnx.TensorProto.INT64
    )
    return ModelHandle(
        framework="onnx",
        inputs=inputs,
        outputs=outputs,
        num_params=num_params,
        fingerprint=file_sha256([path, *external]),
        source_format="onnx",
        name=name,
        path=path,
        example_inputs=examples,
    )


def _external_files(path: Path, proto) -> list[Path]:
    from onnx.external_data_helper import uses_external_data

    locations: set[str] = set()
    for init in proto.graph.initializer:
        if uses_external_data(init):
            for entry in init.external_data:
                if entry.key == "location":
                    locations.add(entry.value)
    return [path.parent / loc for loc in sorted(locations)]


def _undefined_inputs(proto) -> list[tuple[str, str]]:
    """(node, input) pairs of the main graph whose input nothing defines, e.g. a deleted initialiser."""
    graph = proto.graph
    known = {""}  # an empty name marks an omitted optional input
    known.update(v.name for v in graph.input)
    known.update(i.name for i in graph.initializer)
    known.update(s.values.name for s in graph.sparse_initializer)
    for node in graph.node:
        known.update(node.output)
    return [
        (f"{node.name or '#' + str(k)} ({node.op_type})", name)
        for k, node in enumerate(graph.node)
        for name in node.input
        if name not in known
    ]


def session_source(path: Path, has_external_data: bool | None = None) -> str | bytes:
    """What to hand `ort.InferenceSession`: the path, or the model bytes with external data inlined.

    ONNX Runtime's shape inference cannot read constant tensors that live in an external data file (a model saved
    with ``size_threshold=0`` fails on e.g. ReduceMean's axes), so such a model is loaded into memory first when
    it fits in a protobuf (2 GiB).
    """
    import onnx

    if has_external_data is None:
        try:
            proto = onnx.load(str(path), load_external_data=False)
        except Exception:  # noqa: BLE001 - let ORT report the problem with the file itself
            return str(path)
        has_external_data = bool(_external_files(path, proto))
    if not has_external_data:
        return str(path)
    proto = onnx.load(str(path), load_external_data=True)
    if proto.ByteSize() >= (1 << 31) - (1 << 20):
        return str(path)
    return proto.SerializeToString()


def _try_session(path: Path, has_external_data: bool) -> str | None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    try:
        ort.InferenceSession(session_source(path, has_external_data), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - ORT raises its own Fail/InvalidGraph/NotImplemented types
        return first_line(e)
    return None


def _spec(value_info) -> TensorSpec:
    from onnx.helper import tensor_dtype_to_np_dtype

    t = value_info.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)
    try:
        dtype = np.dtype(tensor_dtype_to_np_dtype(t.elem_type)).name
    except (KeyError, TypeError):
        dtype = None
    return TensorSpec(value_info.name, dims if t.HasField("shape") else None, dtype)


def onnx_layer_name(node: Any, initializer: str) -> str:
    """The layer name of a weight initializer (what `exclude`/`per_layer` and sensitivity tables call it).

    Its name without ``.weight`` (``stem.conv``) or, for weights the exporter renamed, the PyTorch module that
    torch.onnx recorded in the node's metadata; otherwise the initializer's own name.
    """
    if initializer.endswith(".weight"):
        return initializer[: -len(".weight")]
    for prop in node.metadata_props:  # torch.onnx (dynamo) records the module path of every node
        if prop.key == "pkg.torch.onnx.name_scopes":
            scopes = [s.strip(" '\"") for s in prop.value.strip("[]").split(",")]
            if len(scopes) >= 2 and scopes[-2]:
                return scopes[-2]
    return initializer
