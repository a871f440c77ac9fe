"""The OpenVINO runner (CPU plugin): ONNX files and OpenVINO IR read directly; torch models go through their cached
ONNX conversion.

Precision is pinned: the CPU plugin infers in bf16 by default on CPUs with AVX-512 BF16 or AMX, so every model is
compiled with ``INFERENCE_PRECISION_HINT`` set: ``f32`` unless the handle asks for a 16-bit precision
(``handle.meta["inference_precision"]``, written by `workbench.realize.openvino_realizer` for an fp16 variant).
Timing is batch-1 latency: one stream, the latency hint, ``INFERENCE_NUM_THREADS`` = `threads`.

The model is compiled once with its dynamic dimensions and, for the input shapes it is called with (the last few),
once more reshaped to those static shapes, which the CPU plugin runs faster (0.12 → 0.09 ms for the digits CNN
at one thread); each compiled model keeps one infer request, whose input tensors share the caller's arrays.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, fixed_batch_of
from workbench.runtimes.runner import Runner, renamed_specs

PRECISIONS = {"f32": "f32", "fp32": "f32", "bf16": "bf16", "f16": "f16", "fp16": "f16"}
"""Accepted ``meta["inference_precision"]`` values -> OpenVINO's precision names."""
STATIC_SHAPES = 4
"""How many static-shape compilations a runner keeps (least recently used dropped first)."""


def make_runner(handle: ModelHandle, threads: int | None, name: str = "openvino") -> Runner:
    from importlib.metadata import version

    import openvino as ov

    from workbench.formats.convert import to_onnx

    if handle.framework not in ("torch", "onnx", "openvino"):
        raise WorkbenchError(
            f"{handle.name} is a {handle.framework} model; OpenVINO runs PyTorch (via ONNX), ONNX and OpenVINO IR "
            f"models. Run it with {'litert' if handle.framework == 'tflite' else handle.framework!r}, or load the "
            "original model."
        )
    precision = PRECISIONS.get(str(handle.meta.get("inference_precision", "f32")).lower())
    if precision is None:
        raise WorkbenchError(f"{handle.name}: meta['inference_precision'] must be one of {sorted(PRECISIONS)}, got "
                             f"{handle.meta['inference_precision']!r}.")
    path = handle.path if handle.framework == "openvino" else to_onnx(handle)
    assert path is not None
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    core = ov.Core()
    try:
        model = core.read_model(str(path))
        dynamic = _Compiled(core.compile_model(model, "CPU", config))
    except Exception as e:
        raise WorkbenchError(f"{path}: OpenVINO cannot compile the model: {first_line(e)}.") from e
    names = [sorted(p.get_names())[0] if p.get_names() else s.name for p, s in zip(model.inputs, handle.inputs)]
    specs = handle.inputs if handle.framework != "torch" else renamed_specs(handle.inputs, names)
    static: OrderedDict[tuple, _Compiled | None] = OrderedDict()

    def compiled_for(shapes: tuple) -> _Compiled:
        if shapes in static:
            static.move_to_end(shapes)
            return static[shapes] or dynamic
        try:  # a model whose graph depends on its shapes may refuse a reshape: it runs dynamic then
            fixed = model.clone()
            fixed.reshape({i: ov.PartialShape(list(s)) for i, s in enumerate(shapes)})
            entry: _Compiled | None = _Compiled(core.compile_model(fixed, "CPU", config))
        except Exception:  # noqa: BLE001 - the dynamic compilation still runs every shape
            entry = None
        static[shapes] = entry
        if len(static) > STATIC_SHAPES:
            static.popitem(last=False)
        return entry or dynamic

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return compiled_for(tuple(a.shape for a in arrays)).run(arrays)

    return Runner(name, handle, path, threads, version("openvino"), specs, call, fixed_batch=fixed_batch_of(specs))


class _Compiled:
    """One compiled model and its infer request; inputs are wrapped without copying, outputs copied out."""

    def __init__(self, compiled: Any) -> None:
        import openvino as ov

        self.request = compiled.create_infer_request()
        self.types = [np.dtype(p.get_element_type().to_dtype()) for p in compiled.inputs]
        self.outputs = len(compiled.outputs)
        self.tensor = ov.Tensor

    def run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        req = self.request
        held = [np.ascontiguousarray(a if a.dtype == t else a.astype(t)) for a, t in zip(arrays, self.types)]
        for i, a in enumerate(held):  # `held` keeps the shared buffers alive until infer() returns
            req.set_input_tensor(i, self.tensor(a, shared_memory=True))
        req.infer()
        return [np.array(req.get_output_tensor(i).data, copy=True) for i in range(self.outputs)]

