"""OpenVINO IR (``model.xml`` graph beside ``model.bin`` weights): read and validate into a `ModelHandle`, convert
to one, and describe what an IR stores.

An IR is plain XML plus a raw weight blob: nothing in it executes. OpenVINO's reader is native code, though, and a
tampered or truncated pair can make it abort, so the first open of an IR happens in a child process (like a TFLite
flatbuffer, `workbench.formats.tflite_file`): it reads, compiles and (where the shapes allow) runs the model once,
and reports the signature and parameter count. The answer is cached by the content hash of both files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, file_sha256
from workbench.core.isolated import run_child

INSTALL = "OpenVINO is not installed; install it with: pip install openvino nncf (the README's setup installs both)."

_PROBE = r"""
import json, sys
import numpy as np
import openvino as ov
xml, bin_ = sys.argv[1], sys.argv[2]
core = ov.Core()
model = core.read_model(xml, bin_)
def spec(port, i, kind):
    ps = port.get_partial_shape()
    shape = None if ps.rank.is_dynamic else [None if d.is_dynamic else int(d.get_length()) for d in ps]
    names = sorted(port.get_names())
    return {"name": names[0] if names else f"{kind}_{i}", "shape": shape, "dtype": np.dtype(port.get_element_type().to_dtype()).name}
ins = [spec(p, i, "input") for i, p in enumerate(model.inputs)]
outs = [spec(p, i, "output") for i, p in enumerate(model.outputs)]
compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
if all(s["shape"] is not None for s in ins):
    arrays = [np.zeros([1 if d is None else d for d in s["shape"]], s["dtype"]) for s in ins]
    compiled.create_infer_request().infer(arrays)
skip = {"i32", "i64", "u32", "u64", "boolean"}
def scale_or_range(node):
    # a constant that only parameterises another one: FakeQuantize ranges, decompression zero points and scales
    for out in node.outputs():
        for target in out.get_target_inputs():
            op, port = target.get_node(), target.get_index()
            kind = op.get_type_name()
            if kind == "Convert":
                if not scale_or_range(op):
                    return False
            elif kind == "FakeQuantize" and port > 0:
                continue
            elif kind in ("Subtract", "Multiply") and port == 1 and op.input_value(0).get_node().get_type_name() in ("Convert", "Subtract"):
                continue
            else:
                return False
    return True
params = 0
for node in model.get_ordered_ops():
    if node.get_type_name() == "Constant" and node.get_element_type().get_type_name() not in skip:
        if len(node.get_output_shape(0)) and not scale_or_range(node):  # rank 0: Gemm's alpha/beta, not weights
            params += int(np.prod(list(node.get_output_shape(0)), dtype=np.int64))
print(json.dumps({"inputs": ins, "outputs": outs, "num_params": params}))
"""


def ir_files(xml: Path) -> tuple[Path, Path]:
    """The (graph, weights) pair of an IR: ``model.xml`` and the ``model.bin`` beside it."""
    xml = Path(xml)
    return xml, xml.with_suffix(".bin")


def ir_size(xml: Path) -> int:
    """Bytes of an IR: its .xml and its .bin together (what a device stores)."""
    return sum(p.stat().st_size for p in ir_files(xml) if p.is_file())


def find_ir(folder: Path) -> Path | None:
    """The one IR graph (``*.xml`` with its ``.bin``) in a folder, or `None` when there is none or several."""
    graphs = [p for p in Path(folder).glob("*.xml") if p.with_suffix(".bin").is_file()]
    return graphs[0] if len(graphs) == 1 else None


def load_openvino_ir(path: Path, examples: list[np.ndarray] | None, name: str) -> ModelHandle:
    """Validate an IR pair in a child process, then describe it.

    Raises:
        WorkbenchError: the .xml is not an IR, its .bin is missing or does not hold the weights the graph names,
            or OpenVINO is not installed.
    """
    import importlib.util

    xml, bin_ = ir_files(path)
    with xml.open("rb") as f:
        head = f.read(4096)
    text = head.decode("utf-8", errors="replace")
    if "<net" not in text:
        raise WorkbenchError(
            f"{xml}: an .xml file that is not an OpenVINO IR (no <net> element near its start). Pass the model.xml "
            "that OpenVINO wrote (ov.save_model or ovc), beside its model.bin."
        )
    if not bin_.is_file():
        raise WorkbenchError(
            f"{xml}: the IR's weights file {bin_.name} is missing; an IR is two files. Copy {bin_.name} beside "
            f"{xml.name} (same name, .bin) and load again."
        )
    if importlib.util.find_spec("openvino") is None:
        raise WorkbenchError(INSTALL)
    fingerprint = file_sha256([xml, bin_])
    info = probe(str(xml), str(bin_), fingerprint)
    return ModelHandle(
        framework="openvino",
        inputs=[_spec(d) for d in info["inputs"]],
        outputs=[_spec(d) for d in info["outputs"]],
        num_params=int(info["num_params"]),
        fingerprint=fingerprint,
        source_format="openvino_ir",
        name=name,
        path=xml,
        example_inputs=examples,
    )


def _spec(d: dict) -> TensorSpec:
    return TensorSpec(d["name"], None if d["shape"] is None else tuple(d["shape"]), d["dtype"])


@lru_cache(maxsize=64)
def probe(xml: str, bin_: str, fingerprint: str) -> dict:
    """Read, compile and run the IR once in a child process; return its description."""
    child = run_child(_PROBE, xml, bin_, timeout=300)
    if child.status == "timeout":
        raise WorkbenchError(f"{xml}: OpenVINO did not finish reading this IR in 300 s.")
    if child.status == "crash":
        raise WorkbenchError(
            f"{xml}: OpenVINO crashed ({child.detail}) while reading this IR, so the .xml or .bin is corrupt or was "
            "changed. Re-export the model (workbench.export(..., 'openvino') or ov.save_model) and copy both files."
        )
    if child.status == "error":
        raise WorkbenchError(
            f"{xml}: not a loadable OpenVINO IR ({child.detail}). The .xml is malformed, or the .bin is truncated or "
            "belongs to another model; re-export it and copy model.xml and model.bin together."
        )
    try:
        return json.loads(child.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError) as e:  # pragma: no cover - the probe prints one JSON line
        raise WorkbenchError(f"{xml}: the OpenVINO probe returned no description ({child.stdout[-300:]!r}).") from e


# ---------------------------------------------------------------------------------------------- writing


def save_ir(model: Any, folder: Path, *, compress_to_fp16: bool = False) -> Path:
    """Write an `ov.Model` as ``folder/model.xml`` + ``model.bin``, atomically (the folder appears whole or not at
    all). fp32 weights stay fp32 unless `compress_to_fp16` (OpenVINO's own default is to halve them)."""
    import openvino as ov

    from workbench.formats.lm_folder import write_folder

    write_folder(Path(folder), lambda tmp: ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=compress_to_fp16))
    return Path(folder) / "model.xml"


def read_model(handle: ModelHandle) -> Any:
    """The handle as an `ov.Model`: an IR as it is, an ONNX file read directly, a torch model via its (cached)
    ONNX conversion."""
    import openvino as ov

    from workbench.formats.convert import to_onnx

    if handle.framework not in ("torch", "onnx", "openvino"):
        raise WorkbenchError(f"{handle.name} is a {handle.framework} model; OpenVINO reads PyTorch (via ONNX), ONNX "
                             "and OpenVINO IR models.")
    path = handle.path if handle.framework == "openvino" else to_onnx(handle)
    try:
        return ov.Core().read_model(str(path))
    except Exception as e:
        raise WorkbenchError(f"{path}: OpenVINO cannot read the model: {first_line(e)}.") from e


def ir_folder(handle: ModelHandle, tag: str) -> Path:
    """Where a conversion of `handle` to IR (`tag`: what was done to it) is cached, keyed by content and versions."""
    import re
    from importlib.metadata import version

    from workbench.core.paths import cache_dir

    key = hashlib.sha256(f"{handle.fingerprint}|{tag}|openvino={version('openvino')}".encode()).hexdigest()[:24]
    stem = re.sub(r"[^A-Za-z0-9._+-]+", "_", handle.name)[:80]
    return cache_dir() / "conversions" / f"{stem}-{tag}-{key}.openvino"


def to_openvino_ir(handle: ModelHandle) -> Path:
    """The handle as a float32 IR (``model.xml`` beside ``model.bin``; cached): an IR as loaded, otherwise the
    ONNX file (a torch model's cached conversion) read by OpenVINO and saved without fp16 compression."""
    if handle.framework == "openvino":
        assert handle.path is not None
        return handle.path
    cached = handle._artifacts.get("openvino")
    if cached is not None and cached.is_file():
        return cached
    folder = ir_folder(handle, "fp32")
    xml = folder / "model.xml"
    if not (xml.is_file() and xml.with_suffix(".bin").is_file()):
        shutil.rmtree(folder, ignore_errors=True)
        save_ir(read_model(handle), folder)
    handle._artifacts["openvino"] = xml
    return xml


STORAGE_NAMES = {"f32": "FLOAT32", "f16": "FLOAT16", "bf16": "BFLOAT16", "f64": "FLOAT64", "i8": "INT8", "u8": "UINT8",
                 "i4": "INT4", "u4": "UINT4", "nf4": "NF4", "i16": "INT16", "u16": "UINT16", "i32": "INT32",
                 "i64": "INT64", "u1": "UINT1", "boolean": "BOOL"}


def ir_storage(xml: Path) -> dict[str, dict[str, int]]:
    """What an IR's constants store, by element type (tensors, elements, bytes), e.g. ``INT8`` weights with their
    ``FLOAT32`` scales. Shape constants (``INT64``) are listed too."""
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    out: dict[str, dict[str, int]] = {}
    for node in model.get_ordered_ops():
        if node.get_type_name() != "Constant":
            continue
        et = node.get_element_type().get_type_name()
        row = out.setdefault(STORAGE_NAMES.get(et, et.upper()), {"tensors": 0, "elements": 0, "bytes": 0})
        row["tensors"] += 1
        row["elements"] += int(np.prod(list(node.get_output_shape(0)), dtype=np.int64))
        row["bytes"] += int(node.get_byte_size())
    return out
