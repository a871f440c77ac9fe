"""Read and rewrite a TFLite flatbuffer: its weight tensors, a copy with new weights, fp16 weights folded to fp32.

The flatbuffer is read and written with the schema's object API (``ai_edge_litert.schema_py_generated`` through
``ai_edge_litert.tools.flatbuffer_utils``, the TensorFlow tool that also backs ai_edge_quantizer). What no
library offers is written here, each piece small and commented: finding the weight behind each op (through a
``DEQUANTIZE`` when the weights are stored as float16), decoding and encoding a buffer in its stored dtype,
folding float16 ``DEQUANTIZE`` ops away, upgrading old operator codes, and adding a signature.

Files from other toolchains differ from litert_torch's output in three ways that matter to ai_edge_quantizer
(`quantizer_fixes` lists which apply; `prepare_for_quantizer` applies them to a copy):

* **old operator codes**: files written before schema v3a (MediaPipe's ``keras2tflite`` files) keep the op in
  ``deprecated_builtin_code`` and leave ``builtin_code`` 0, which is ``ADD``. The interpreter reads the larger
  of the two; ai_edge_quantizer 0.10 reads ``builtin_code`` only, so every op of such a file looks like an
  ``ADD`` and no weight is quantised (hand_recrop.tflite, face_detection_short_range.tflite).
* **float16 weights behind DEQUANTIZE**: the weight input of each CONV_2D is then the output of a DEQUANTIZE
  op, not a constant, and ai_edge_quantizer leaves it alone (face_detection_short_range.tflite, 74 of them).
* **no signature**: calibration (static int8) runs the model through a signature runner, which needs one.

A layer is named after its weight tensor, without the Keras ``/Kernel`` suffix (``conv2d_1/Kernel`` is layer
``conv2d_1``); for files converted by litert_torch, whose tensor names are the PyTorch scopes
(``pkg.Net/torch.nn.modules.conv.Conv2d_conv;``), after the PyTorch module (``conv``), so names match the
PyTorch and ONNX paths.

Example:
    >>> from workbench.core.paths import data_file
    >>> face = data_file("foreign/face_detection_short_range.tflite")
    >>> weights = tflite_weights(face)
    >>> w = weights[0]
    >>> w.layer, w.op_type, w.dtype, w.dequantize, w.array.shape, w.array.dtype
    ('conv2d', 'CONV_2D', 'float16', True, (24, 5, 5, 3), dtype('float32'))
    >>> quantizer_fixes(face)
    ('operator codes upgraded', '74 fp16 tensors dequantised')
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.core.errors import WorkbenchError

# op name: (weight input index, output-channel axis of the weight). CONV_2D / TRANSPOSE_CONV weights are OHWI,
# DEPTHWISE_CONV_2D's are 1HW(C*m), FULLY_CONNECTED's (out, in), CONV_3D's DHWIO, BATCH_MATMUL's rhs (in, out).
WEIGHT_OPS = {"CONV_2D": (1, 0), "DEPTHWISE_CONV_2D": (1, 3), "FULLY_CONNECTED": (1, 0), "TRANSPOSE_CONV": (1, 0),
              "CONV_3D": (1, 4), "BATCH_MATMUL": (1, -1)}
"""The ops whose constant weight `tflite_weights` reports: ``{op: (input slot, output-channel axis)}``."""
_DTYPES = {"FLOAT32": "float32", "FLOAT16": "float16", "INT8": "int8", "INT4": "int4"}
_TORCH_WEIGHT_MODULES = re.compile(r"^(Conv\dd|ConvTranspose\dd|Linear|LazyLinear|Bilinear)$")


@dataclass(frozen=True, eq=False)
class TfliteWeight:
    """One weight tensor of a TFLite graph.

    Attributes:
        layer: its layer name (see the module docstring), unique in the file.
        tensor_name: the stored tensor's name.
        tensor: index of the tensor that holds the data (the DEQUANTIZE's input when `dequantize`).
        buffer: index of its buffer.
        op_type: the op that consumes it (a key of `WEIGHT_OPS`).
        axis: the output-channel axis of `array` (non-negative).
        dtype: stored dtype: ``"float32"``, ``"float16"``, ``"int8"`` or ``"int4"``.
        array: the values as float32 (integer weights dequantised with their scales), or `None` for an encoding
            this module does not decode (blockwise scales).
        dequantize: whether the op reads it through a DEQUANTIZE op.
        subgraph: the subgraph holding the op.
    """

    layer: str
    tensor_name: str
    tensor: int
    buffer: int
    op_type: str
    axis: int
    dtype: str
    array: np.ndarray | None
    dequantize: bool = False
    subgraph: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape) if self.array is not None else ()


def read_model(path: str | os.PathLike) -> Any:
    """The flatbuffer as a mutable ``ModelT`` (buffers stored by offset are resolved)."""
    from ai_edge_litert.tools import flatbuffer_utils

    try:
        return flatbuffer_utils.read_model(str(path))
    except Exception as e:  # noqa: BLE001 - the flatbuffer reader raises anything on a corrupt file
        from workbench.core.errors import first_line

        raise WorkbenchError(f"{path}: not a readable TFLite flatbuffer ({first_line(e)}).") from e


def write_model(model: Any, dst: str | os.PathLike) -> Path:
    """Serialise a ``ModelT`` to `dst` (atomically: never a half-written file)."""
    from ai_edge_litert.tools import flatbuffer_utils

    from workbench.core.paths import atomic_write

    try:
        data = flatbuffer_utils.convert_object_to_bytearray(model)
    except Exception as e:  # noqa: BLE001 - flatbuffers raises plain exceptions past its 2 GB limit
        from workbench.core.errors import first_line

        raise WorkbenchError(f"{Path(dst).name}: the TFLite flatbuffer could not be written ({first_line(e)}); "
                             "files over 2 GB cannot be rewritten here.") from e
    return atomic_write(Path(dst), lambda tmp: tmp.write_bytes(bytes(data)))


def tflite_weights(path: str | os.PathLike) -> list[TfliteWeight]:
    """The weight tensors of the ops in `WEIGHT_OPS`, in graph order, each buffer once.

    A float16 (or int8) constant behind a DEQUANTIZE op is reported as the weight, read through it. Weights that
    are not constants (computed at run time) are not reported.
    """
    return model_weights(read_model(path))


def model_weights(model: Any) -> list[TfliteWeight]:
    """`tflite_weights` of a ``ModelT`` already read."""
    ops = _op_names(model)
    found: list[TfliteWeight] = []
    seen: set[int] = set()
    for g, sg in enumerate(model.subgraphs or []):
        producer = {o: op for op in sg.operators or [] for o in op.outputs or []}
        for op in sg.operators or []:
            name = ops[op.opcodeIndex]
            if name not in WEIGHT_OPS or len(op.inputs) <= WEIGHT_OPS[name][0]:
                continue
            idx = op.inputs[WEIGHT_OPS[name][0]]
            through = False
            src = producer.get(idx)
            if src is not None and ops[src.opcodeIndex] == "DEQUANTIZE":
                idx, through = src.inputs[0], True
            if idx < 0:
                continue
            t = sg.tensors[idx]
            data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
            dtype = _DTYPES.get(_type_name(t.type))
            if data is None or dtype is None or t.buffer in seen or t.shape is None or len(t.shape) < 2:
                continue
            axis = WEIGHT_OPS[name][1]
            if name == "BATCH_MATMUL":
                if len(t.shape) != 2:
                    continue
                axis = 0 if getattr(op.builtinOptions, "adjY", False) else 1
            seen.add(t.buffer)
            tname = _text(t.name) or f"tensor{idx}"
            found.append(TfliteWeight(_layer_name(tname), tname, idx, int(t.buffer), name, axis, dtype,
                                      _decode(t, data, dtype), through, g))
    return _unique(found)


def op_counts(path: str | os.PathLike) -> dict[str, int]:
    """``{op name: count}`` over every subgraph (``CUSTOM`` for custom ops), in order of first appearance."""
    model = read_model(path)
    names = _op_names(model)
    counts: dict[str, int] = {}
    for sg in model.subgraphs or []:
        for op in sg.operators or []:
            counts[names[op.opcodeIndex]] = counts.get(names[op.opcodeIndex], 0) + 1
    return counts


def with_weights(src: str | os.PathLike, replacements: Mapping[str, np.ndarray], dst: str | os.PathLike) -> Path:
    """Write a copy of `src` with the named weights replaced; every other byte of meaning stays as it was.

    Args:
        src: the TFLite file (read, never changed).
        replacements: ``{layer: array}`` with the shape of that weight (layer names as `tflite_weights` gives).
            Each array is stored in the weight's own dtype: float16 weights stay float16 behind their
            DEQUANTIZE, int8 weights are re-quantised with their stored scales and zero points.
        dst: where to write the copy.

    Returns:
        `dst`.

    Raises:
        WorkbenchError: an unknown layer name, a shape that differs, or an int4 / blockwise weight (prune or
            edit before quantising).
    """
    model = read_model(src)
    weights = {w.layer: w for w in model_weights(model)}
    unknown = [n for n in replacements if n not in weights]
    if unknown:
        near = {n: difflib.get_close_matches(n, list(weights), n=2) for n in unknown}
        said = "; ".join(f"{n!r}" + (f" (did you mean {', '.join(h)}?)" if h else "") for n, h in near.items())
        raise WorkbenchError(f"{Path(src).name}: no weight is called {said}. Its weights: "
                             f"{', '.join(list(weights)[:8])}{', ...' if len(weights) > 8 else ''}.")
    for layer, value in replacements.items():
        w = weights[layer]
        arr = np.asarray(value, dtype=np.float32)
        if arr.shape != w.shape:
            raise WorkbenchError(f"{Path(src).name}: {layer} has shape {w.shape}; the replacement has {arr.shape}.")
        t = model.subgraphs[w.subgraph].tensors[w.tensor]
        model.buffers[w.buffer].data = np.frombuffer(_encode(t, arr, w.dtype, layer), dtype=np.uint8).copy()
    return write_model(model, dst)


# ------------------------------------------------------------------------------------- quantizer input


def quantizer_fixes(path: str | os.PathLike, *, signature: bool = False) -> tuple[str, ...]:
    """What `prepare_for_quantizer` would change in this file (empty: ai_edge_quantizer reads it as it is)."""
    return _fix(read_model(path), signature)


def prepare_for_quantizer(src: str | os.PathLike, dst: str | os.PathLike, *,
                          signature: bool = False) -> tuple[str, ...]:
    """Write a copy of `src` that ai_edge_quantizer reads correctly; return what was changed.

    Operator codes are upgraded to the current schema, float16 constants behind DEQUANTIZE become float32
    constants (see `dequantized_weights`) and, with ``signature=True``, a ``serving_default`` signature over the
    graph's inputs and outputs is added to a file without one (calibration runs through it).
    """
    model = read_model(src)
    done = _fix(model, signature)
    write_model(model, dst)
    return done


def dequantized_weights(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A copy of `src` with float16 constants behind DEQUANTIZE folded into float32 constants.

    Each such DEQUANTIZE op is removed with its output tensor, and its consumers read the constant (now float32,
    same name) directly; outputs are unchanged up to float16 round-off of the interpreter's own DEQUANTIZE
    (none: the float32 values are exactly the float16 ones). Old operator codes are upgraded too.
    """
    model = read_model(src)
    _upgrade_opcodes(model)
    _fold_fp16_dequantize(model)
    return write_model(model, dst)


def _fix(model: Any, signature: bool) -> tuple[str, ...]:
    done = []
    if _upgrade_opcodes(model):
        done.append("operator codes upgraded")
    folded = _fold_fp16_dequantize(model)
    if folded:
        done.append(f"{folded} fp16 tensors dequantised")
    if signature and _add_signature(model):
        done.append("signature added")
    return tuple(done)


def _upgrade_opcodes(model: Any) -> int:
    """Set ``builtinCode`` from ``deprecatedBuiltinCode`` where only the latter is set; return how many changed.

    Written here: the schema upgrade that does this lives in TensorFlow's converter (upgrade_schema.py), not in
    any library installed; the interpreter itself reads ``max(builtin_code, deprecated_builtin_code)``.
    """
    changed = 0
    for code in model.operatorCodes or []:
        best = max(code.builtinCode, code.deprecatedBuiltinCode)
        if code.builtinCode != best:
            code.builtinCode = best
            changed += 1
    return changed


def _fold_fp16_dequantize(model: Any) -> int:
    """Turn each float16 constant read only through DEQUANTIZE ops into a float32 constant; drop those ops.

    Written here: no installed library removes DEQUANTIZE ops (ai_edge_quantizer only adds them). The constant
    keeps its name, and the DEQUANTIZE's output tensor is removed. A constant that some op
    reads as float16 directly, or whose buffer such a constant shares, stays as it is.
    """
    ops = _op_names(model)
    graphs = list(model.subgraphs or [])
    candidates: set[tuple[int, int]] = set()  # (subgraph, tensor) of the float16 constants to fold
    for g, sg in enumerate(graphs):
        graph_io = set(sg.inputs or []) | set(sg.outputs or [])
        readers: dict[int, set[str]] = {}
        for op in sg.operators or []:
            for i in op.inputs or []:
                readers.setdefault(i, set()).add(ops[op.opcodeIndex])
        for op in sg.operators or []:
            if ops[op.opcodeIndex] != "DEQUANTIZE" or op.outputs[0] in graph_io:
                continue
            t = sg.tensors[op.inputs[0]]
            if (_type_name(t.type) == "FLOAT16" and model.buffers[t.buffer].data is not None
                    and readers[op.inputs[0]] == {"DEQUANTIZE"}):
                candidates.add((g, op.inputs[0]))
    users: dict[int, set[tuple[int, int]]] = {}
    for g, sg in enumerate(graphs):
        for i, t in enumerate(sg.tensors or []):
            users.setdefault(t.buffer, set()).add((g, i))
    candidates = {c for c in candidates if users[graphs[c[0]].tensors[c[1]].buffer] <= candidates}
    for b in {graphs[g].tensors[i].buffer for g, i in candidates}:
        values = np.frombuffer(model.buffers[b].data, dtype=np.float16).astype(np.float32)
        model.buffers[b].data = np.frombuffer(values.tobytes(), dtype=np.uint8).copy()
    folded = 0
    for g, sg in enumerate(graphs):
        for _, i in filter(lambda c: c[0] == g, candidates):
            sg.tensors[i].type = _type_code("FLOAT32")
        rewire = {op.outputs[0]: op.inputs[0] for op in sg.operators or []
                  if ops[op.opcodeIndex] == "DEQUANTIZE" and (g, op.inputs[0]) in candidates}
        if not rewire:
            continue
        sg.operators = [op for op in sg.operators if not (ops[op.opcodeIndex] == "DEQUANTIZE"
                                                          and op.outputs[0] in rewire)]
        for op in sg.operators:
            op.inputs = [rewire.get(i, i) for i in op.inputs]
        _drop_tensors(model, g, set(rewire))
        folded += len(rewire)
    return folded


def _drop_tensors(model: Any, g: int, drop: set[int]) -> None:
    """Remove unused tensors `drop` from subgraph `g`, renumbering every reference to the others.

    Written here: no library removes tensors. Unused tensors must go because tools that walk every tensor
    (ai_edge_quantizer's calibrator reads each one after a run) fail on a tensor without data.
    """
    sg = model.subgraphs[g]
    keep = [i for i in range(len(sg.tensors)) if i not in drop]
    new = {old: n for n, old in enumerate(keep)}
    new[-1] = -1

    def renumber(indices: Any) -> Any:
        return None if indices is None else [new[i] for i in indices]

    sg.tensors = [sg.tensors[i] for i in keep]
    for op in sg.operators or []:
        op.inputs, op.outputs, op.intermediates = map(renumber, (op.inputs, op.outputs, op.intermediates))
    sg.inputs, sg.outputs = renumber(sg.inputs), renumber(sg.outputs)
    for sig in model.signatureDefs or []:
        if sig.subgraphIndex == g:
            for m in (*(sig.inputs or []), *(sig.outputs or [])):
                m.tensorIndex = new[m.tensorIndex]


def _add_signature(model: Any) -> bool:
    """Add a ``serving_default`` signature over subgraph 0's inputs and outputs, when the file has none."""
    from ai_edge_litert import schema_py_generated as schema

    if model.signatureDefs:
        return False
    sg = model.subgraphs[0]

    def maps(indices: list[int]) -> list[Any]:
        return [schema.TensorMapT(name=_text(sg.tensors[i].name) or f"tensor{i}", tensorIndex=i) for i in indices]

    model.signatureDefs = [schema.SignatureDefT(inputs=maps(sg.inputs), outputs=maps(sg.outputs),
                                                signatureKey="serving_default", subgraphIndex=0)]
    return True


# ----------------------------------------------------------------------------------------- encodings


def _decode(t: Any, data: Any, dtype: str) -> np.ndarray | None:
    raw = np.frombuffer(data, dtype=np.uint8)
    shape = tuple(int(s) for s in t.shape)
    if dtype in ("float32", "float16"):
        return raw.view(dtype).reshape(shape).astype(np.float32)
    q = t.quantization
    if q is None or q.scale is None or q.details is not None:
        return None
    ints = raw.view(np.int8) if dtype == "int8" else _unpack_int4(raw, int(np.prod(shape)))
    scale, zero = _per_axis(q, shape)
    return ((ints.reshape(shape).astype(np.float32) - zero) * scale).astype(np.float32)


def _encode(t: Any, arr: np.ndarray, dtype: str, layer: str) -> bytes:
    if dtype in ("float32", "float16"):
        return np.ascontiguousarray(arr.astype(dtype)).tobytes()
    q = t.quantization
    if dtype != "int8" or q is None or q.scale is None or q.details is not None:
        raise WorkbenchError(
            f"{layer}: its weights are stored as {dtype}{' blockwise' if q is not None and q.details else ''}, "
            "which this rewriter does not encode; prune or edit the float model, then quantise it."
        )
    scale, zero = _per_axis(q, arr.shape)
    ints = np.clip(np.round(arr / scale) + zero, -128, 127).astype(np.int8)
    return np.ascontiguousarray(ints).tobytes()


def _per_axis(q: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Scale and zero point broadcast to `shape` (per tensor, or along ``quantizedDimension``)."""
    scale = np.asarray(q.scale, dtype=np.float32)
    zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else np.zeros_like(scale), dtype=np.float32)
    if scale.size > 1:
        view = [1] * len(shape)
        view[int(q.quantizedDimension)] = scale.size
        scale, zero = scale.reshape(view), zero.reshape(view)
    return scale, zero


def _unpack_int4(raw: np.ndarray, n: int) -> np.ndarray:
    """TFLite packs two int4 values per byte, the first in the low nibble (written here: numpy has no int4)."""
    nibbles = np.stack([raw & 0x0F, raw >> 4], axis=-1).reshape(-1)[:n].astype(np.int8)
    return np.where(nibbles > 7, nibbles - 16, nibbles).astype(np.int8)


# -------------------------------------------------------------------------------------------- naming


def _layer_name(tensor_name: str) -> str:
    """The PyTorch module path in a litert_torch scope name, the Keras layer of a ``<layer>/Kernel`` tensor, else
    the tensor name itself.

    litert_torch names a tensor ``Root/pkg.Class_attr/pkg.Class_attr;`` (fused ops join several with ``;``):
    the attribute after each class, joined by dots, is the module path (``blocks.0.dw.conv``).
    """
    for scope in filter(None, tensor_name.split(";")):
        parts = scope.split("/")
        leaf = parts[-1].rsplit(".", 1)[-1]
        if len(parts) < 2 or "_" not in leaf or not _TORCH_WEIGHT_MODULES.match(leaf.split("_", 1)[0]):
            continue
        attrs = [p.rsplit(".", 1)[-1].split("_", 1) for p in parts[1:]]
        if all(len(a) == 2 and a[1] for a in attrs):
            return ".".join(a[1] for a in attrs)
    for suffix in ("/Kernel", "/kernel"):  # Keras: "conv2d_1/Kernel" is the kernel of layer "conv2d_1"
        if tensor_name.endswith(suffix) and len(tensor_name) > len(suffix):
            return tensor_name[: -len(suffix)]
    return tensor_name


def _unique(weights: list[TfliteWeight]) -> list[TfliteWeight]:
    seen: dict[str, int] = {}
    out = []
    for w in weights:
        seen[w.layer] = seen.get(w.layer, 0) + 1
        out.append(w if seen[w.layer] == 1 else dataclasses.replace(w, layer=f"{w.layer}#{seen[w.layer]}"))
    return out


def _op_names(model: Any) -> list[str]:
    """The op name of each operator code (``max(builtin, deprecated)``, as the interpreter reads it)."""
    from ai_edge_litert.tools import flatbuffer_utils

    names = _builtin_names()
    return [names.get(flatbuffer_utils.get_builtin_code_from_operator_code(c), "CUSTOM")
            for c in model.operatorCodes or []]


def _builtin_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _type_name(code: int) -> str:
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.type_to_name(code)


def _type_code(name: str) -> int:
    from ai_edge_litert import schema_py_generated as schema

    return getattr(schema.TensorType, name)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value or "")
