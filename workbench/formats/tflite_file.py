"""Read and validate a TFLite flatbuffer into a `ModelHandle`.

The TFLite interpreter is C++ and a corrupt flatbuffer can crash it (segfault) rather than raise. So the first
open of a file happens in a child process: if that child dies, the user's kernel does not, and they get a
`WorkbenchError` instead. The probe's answer (signature, parameter count) is cached by content hash.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle, TensorSpec, file_sha256
from workbench.core.isolated import run_child

_PROBE = r"""
import json, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1], num_threads=1)
it.allocate_tensors()
def spec(d):
    sig = d.get("shape_signature", d["shape"])
    scale, zp = d.get("quantization", (0.0, 0))
    return {"name": d["name"], "shape": [None if int(s) < 0 else int(s) for s in sig],
            "dtype": np.dtype(d["dtype"]).name, "scale": float(scale), "zero_point": int(zp)}
ins = [spec(d) for d in it.get_input_details()]
outs = [spec(d) for d in it.get_output_details()]
for d in it.get_input_details():
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
it.invoke()
ops = it._get_ops_details()
produced, used = set(), set()
for op in ops:
    produced.update(int(i) for i in op["outputs"])
    used.update(int(i) for i in op["inputs"] if int(i) >= 0)
graph_in = {d["index"] for d in it.get_input_details()}
shapes = {}
for i in used - produced - graph_in:
    try:
        d = it._get_tensor_details(i, 0)
    except Exception:
        continue
    # Weights are float, or integer with quantisation parameters; plain int32/int64 constants are shapes,
    # axes and permutations, which are not parameters.
    # Per-channel int8 weights report quantization (0.0, 0): their scales are in quantization_parameters.
    qp = d.get("quantization_parameters") or {}
    if np.dtype(d["dtype"]).kind == "f" or d["quantization"][0] or len(qp.get("scales", ())):
        shapes[i] = int(np.prod(d["shape"]))
print(json.dumps({"inputs": ins, "outputs": outs, "num_params": sum(shapes.values()), "num_ops": len(ops)}))
"""


def load_tflite(path: Path, examples: list[np.ndarray] | None, name: str) -> ModelHandle:
    """Validate a .tflite in a child process, then describe it."""
    size = path.stat().st_size
    if size < 16:
        raise WorkbenchError(f"{path}: {size} bytes is too small to be a TFLite model; the file is truncated.")
    with path.open("rb") as f:
        identifier = f.read(8)[4:8]
    if identifier != b"TFL3":
        raise WorkbenchError(
            f"{path}: not a TFLite flatbuffer (bytes 4-8 should be the identifier 'TFL3', found {identifier!r}). "
            "The file is corrupt or another format; re-convert the model to .tflite."
        )
    fingerprint = file_sha256([path])
    info = probe(str(path), fingerprint)
    inputs = [_spec(d) for d in info["inputs"]]
    outputs = [_spec(d) for d in info["outputs"]]
    return ModelHandle(
        framework="tflite",
        inputs=inputs,
        outputs=outputs,
        num_params=int(info["num_params"]),
        fingerprint=fingerprint,
        source_format="tflite",
        name=name,
        path=path,
        example_inputs=examples,
    )


def _spec(d: dict) -> TensorSpec:
    # Quantised int8/uint8 I/O is (de)quantised by the runner, so callers see the float signature.
    dtype = "float32" if d["scale"] and d["dtype"] in ("int8", "uint8", "int16") else d["dtype"]
    return TensorSpec(d["name"], tuple(d["shape"]), dtype)


@lru_cache(maxsize=64)
def probe(path: str, fingerprint: str) -> dict:
    """Open, allocate and run the model once on zeros in a child process; return its description."""
    child = run_child(_PROBE, path, timeout=120, env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    if child.status == "timeout":
        raise WorkbenchError(f"{path}: the TFLite interpreter did not finish loading in 120 s.")
    if child.status == "crash":
        raise WorkbenchError(
            f"{path}: the TFLite interpreter crashed ({child.detail}) while opening this file, so it is corrupt or "
            "malformed. Re-convert the model (e.g. with litert_torch) and copy it again."
        )
    if child.status == "error":
        raise WorkbenchError(
            f"{path}: not a loadable TFLite model ({child.detail}). The flatbuffer is broken or uses an "
            "operator this LiteRT build lacks; re-convert it."
        )
    try:
        return json.loads(child.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError) as e:  # pragma: no cover - probe prints one JSON line
        raise WorkbenchError(f"{path}: the TFLite probe returned no description ({child.stdout[-300:]!r}).") from e
