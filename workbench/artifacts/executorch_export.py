"""ExecuTorch targets: ``executorch`` (fp32 .pte lowered to XNNPACK) and ``executorch-int8`` (PT2E static int8 with
the XNNPACK quantizer, calibrated on the task), both through `workbench.formats.pte_file.to_pte`.

A .pte keeps its weights inside the XNNPACK delegate's payload, so `storage` reads each payload's graph (the
delegate's own flatbuffer, decoded with the flatc that ships with ExecuTorch) and counts its constant tensors by
XNNPACK datatype, beside any constant tensors the program keeps outside the delegate.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from workbench.artifacts.targets import Built, Target, carried
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle

XNN_TYPES = {1: ("FLOAT32", 4), 2: ("FLOAT16", 2), 3: ("INT8", 1), 4: ("UINT8", 1), 5: ("INT32", 4), 6: ("INT8", 1),
             7: ("INT32", 4), 8: ("INT4", 0.5), 10: ("INT4", 0.5), 12: ("INT32", 4), 14: ("BFLOAT16", 2)}
"""XNNPACK datatype codes (runtime_schema.fbs ``XNNDatatype``) -> (storage type, bytes per element)."""
_ET_TYPES = {0: ("UINT8", 1), 1: ("INT8", 1), 3: ("INT32", 4), 4: ("INT64", 8), 5: ("FLOAT16", 2), 6: ("FLOAT32", 4),
             7: ("FLOAT64", 8), 15: ("BFLOAT16", 2)}


def build_float(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """``executorch``: the fp32 program (`to_pte`), XNNPACK-delegated."""
    from workbench.formats.pte_file import MAX_BATCH, to_pte

    realized, notes = _check(handle, target)
    path = to_pte(handle)
    how = ("as loaded" if handle.framework == "executorch"
           else "torch.export + to_edge_transform_and_lower(XnnpackPartitioner)")
    return Built(path, {"converter": how, "backend": "XNNPACK", "batch": f"dynamic, 1..{MAX_BATCH} per call"},
                 tuple([*notes, *_delegation(path)]), realized)


def build_int8(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """``executorch-int8``: PT2E with the XNNPACK quantizer (symmetric, per-channel int8 weights, int8 activations
    calibrated on `calibration`), lowered to XNNPACK."""
    from workbench.formats.pte_file import MAX_BATCH, to_pte

    realized, notes = _check(handle, target)
    if handle.framework != "torch":
        raise WorkbenchError(f"{handle.name}: {target.name} quantises a PyTorch model with PT2E; this is a "
                             f"{handle.framework} file. Export it with target 'executorch'.")
    if not calibration:
        raise WorkbenchError(f"{handle.name}: {target.name} calibrates activation ranges; pass task=... (its "
                             "calibration split) or calibration=[arrays] to export().")
    path = to_pte(handle, "int8", calibration)
    recipe = {"quantizer": "XNNPACKQuantizer (torchao PT2E prepare_pt2e/convert_pt2e)",
              "config": "get_symmetric_quantization_config(is_per_channel=True)", "mode": "static",
              "calibration_samples": int(len(calibration[0])), "backend": "XNNPACK",
              "batch": f"dynamic, 1..{MAX_BATCH} per call"}
    return Built(path, recipe, tuple([*notes, *_delegation(path)]), realized)


def _check(handle: ModelHandle, target: Target) -> tuple[bool, list[str]]:
    realized, notes = carried(handle, target)
    if handle.framework not in ("torch", "executorch"):
        raise WorkbenchError(f"{handle.name}: {target.name} converts PyTorch models to ExecuTorch; this is a "
                             f"{handle.framework} file. Export it to a {handle.framework} target instead.")
    return realized, notes


def _delegation(path: Path) -> list[str]:
    from workbench.formats.loader import load
    from workbench.realize.executorch_realizer import delegation_note

    note = delegation_note(load(path))
    return [note] if note else []


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """Constant storage by type (tensors, elements, bytes): the XNNPACK delegates' constant tensors (by their
    datatype and dims) plus the program's own constant tensors."""
    from executorch.exir._serialize._program import deserialize_pte_binary

    pte = deserialize_pte_binary(Path(path).read_bytes())
    out: dict[str, dict[str, int]] = {}

    def add(kind: str, elements: int, nbytes: float) -> None:
        row = out.setdefault(kind, {"tensors": 0, "elements": 0, "bytes": 0})
        row["tensors"] += 1
        row["elements"] += int(elements)
        row["bytes"] += int(round(nbytes))

    for plan in pte.program.execution_plan:
        for v in plan.values:
            t = v.val
            if type(t).__name__ == "Tensor" and t.data_buffer_idx > 0 and t.sizes:
                kind, width = _ET_TYPES.get(int(t.scalar_type), (f"TYPE{int(t.scalar_type)}", 0))
                n = _prod(t.sizes)
                add(kind, n, n * width)
        for d in plan.delegates:
            if "xnnpack" not in d.id.lower():
                continue
            data = pte.program.backend_delegate_data[d.processed.index].data
            for dtype, dims in _xnn_constants(data):
                kind, width = XNN_TYPES.get(dtype, (f"XNN{dtype}", 0))
                add(kind, _prod(dims), _prod(dims) * width)
    return out


def _xnn_constants(payload: bytes) -> list[tuple[int, list[int]]]:
    """(XNNPACK datatype, dims) of each constant tensor in one XNNPACK delegate payload."""
    from executorch.exir._serialize._flatbuffer import _get_flatc_path

    if payload[4:8] == b"XH00":  # header: flatbuffer offset and size at bytes 10-18
        offset, size = struct.unpack_from("<II", payload, 10)
        flat = payload[offset:offset + size]
    else:
        flat = payload
    schema = _schema_dir() / "runtime_schema.fbs"
    with tempfile.TemporaryDirectory() as tmp:
        bin_path = Path(tmp) / "graph.bin"
        bin_path.write_bytes(flat)
        proc = subprocess.run([_get_flatc_path(), "--json", "--strict-json", "--raw-binary",
                               "-o", tmp, str(schema), "--", str(bin_path)], capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            raise WorkbenchError(f"the XNNPACK delegate's graph could not be decoded: {proc.stderr.strip()[:200]}")
        text = (Path(tmp) / "graph.json").read_text()
    # flatc writes non-finite floats (a ReLU's unbounded output_max) as bare inf / nan
    graph = json.loads(re.sub(r"(?<=[:\[,\s])(-?)(inf|nan)\b", lambda m: f"{m.group(1)}{'Infinity' if m.group(2) == 'inf' else 'NaN'}", text))
    out = []
    for xv in graph.get("xvalues", []):
        value = xv.get("xvalue_union", {})
        tensor = value.get("tensor_value", value)
        if tensor.get("constant_buffer_idx", 0):
            dtype = tensor.get("datatype", 0)
            out.append((_datatype_code(dtype), list(tensor.get("dims", []))))
    return out


def _datatype_code(dtype: Any) -> int:
    """flatc writes enums by name (``xnn_datatype_fp32``); map back to the code."""
    if isinstance(dtype, int):
        return dtype
    names = {"xnn_datatype_fp32": 1, "xnn_datatype_fp16": 2, "xnn_datatype_qint8": 3, "xnn_datatype_quint8": 4,
             "xnn_datatype_qint32": 5, "xnn_datatype_qcint8": 6, "xnn_datatype_qcint32": 7, "xnn_datatype_qcint4": 8,
             "xnn_datatype_qbint4": 10, "xnn_datatype_int32": 12, "xnn_datatype_bf16": 14}
    return names.get(str(dtype), 0)


def _schema_dir() -> Path:
    import executorch.backends.xnnpack.serialization as ser

    return Path(ser.__path__[0])


def _prod(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= int(d)
    return n
