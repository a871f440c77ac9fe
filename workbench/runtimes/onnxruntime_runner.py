"""The ONNX Runtime runner (CPU execution provider); torch models are converted to ONNX first (cached)."""

from __future__ import annotations

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, fixed_batch_of
from workbench.runtimes.runner import Runner, renamed_specs


def make_runner(handle: ModelHandle, threads: int | None, name: str = "onnxruntime") -> Runner:
    import onnxruntime as ort

    from workbench.formats.convert import to_onnx

    if handle.framework == "tflite":
        raise WorkbenchError(f"{handle.name} is a TFLite model; run it with 'litert', not 'onnxruntime'.")
    path = to_onnx(handle)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads or 0
    opts.inter_op_num_threads = 1
    try:
        from workbench.formats.onnx_file import session_source

        # ORT 1.32's CPU SkipLayerNormalization kernel is a scalar loop (250-340 us vs 40-57 us for Add +
        # LayerNormalization on MiniLM's 64x384): with that fusion off at load MiniLM ran fp32 12.8 -> 11.6 ms and int8
        # 6.0 -> 4.9 ms, so the session leaves it off.
        session = ort.InferenceSession(session_source(path), opts, providers=["CPUExecutionProvider"],
                                       disabled_optimizers=["SkipLayerNormFusion"])
    except Exception as e:
        raise WorkbenchError(f"{path}: ONNX Runtime cannot load the model: {first_line(e)}.") from e
    names = [i.name for i in session.get_inputs()]
    specs = handle.inputs if handle.framework == "onnx" else renamed_specs(handle.inputs, names)

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return list(session.run(None, dict(zip(names, arrays))))

    return Runner("onnxruntime", handle, path, threads, ort.__version__, specs, call, fixed_batch=fixed_batch_of(specs))

