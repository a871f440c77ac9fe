"""Hand-written references: the ~20 lines of raw library calls a competent user would write instead of the
workbench, for the benchmarks to time beside the workbench's own path (same inputs, same thread count).

    from references import ort_int8_cnn, litert_int8_cnn, ort_int8_transformer, scaled_dscnn, interleaved

Each ``*_cnn`` / ``*_transformer`` function returns ``{row label: runner}`` where a runner is ``f(*arrays) ->
outputs`` over raw sessions (no workbench code in the path), plus the files it wrote. Nothing here is tuned
beyond what the libraries' own documentation shows: that is the point of a reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

Runner = Callable[..., list]


def interleaved(runners: dict, inputs: list[np.ndarray], rounds: int, min_seconds: float = 0.2,
                max_seconds: float = 2.0) -> tuple[dict, dict]:
    """Median over `rounds` interleaved rounds of each runner's p50 (ms), and the IQR of those round medians: a
    burst of background load hits every runner alike."""
    from workbench.measurement.latency import time_runner

    p50: dict = {k: [] for k in runners}
    for _ in range(rounds):
        for k, run in runners.items():
            p50[k].append(time_runner(run, inputs, min_seconds=min_seconds, max_seconds=max_seconds).p50)
    med = {k: float(np.median(v)) for k, v in p50.items()}
    iqr = {k: float(np.subtract(*np.percentile(v, [75, 25]))) for k, v in p50.items()}
    return med, iqr


def per_row(run: Runner) -> Runner:
    """`run` called one row at a time (a file fixed at batch 1, as litert_torch writes them), outputs stacked."""

    def batched(*xs):
        parts = [run(*(x[i:i + 1] for x in xs)) for i in range(len(xs[0]))]
        return [np.concatenate(o) for o in zip(*parts)]

    return batched


def ort_session(path: str | Path, threads: int) -> Runner:
    """A plain `onnxruntime.InferenceSession` (default graph optimisations), `threads` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return lambda *xs: sess.run(None, dict(zip(names, xs)))


def litert_session(path: str | Path, threads: int) -> Runner:
    """A plain `ai_edge_litert` Interpreter (XNNPACK by default), float or int8 I/O handled by its details."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()

    def run(*xs):
        for d, x in zip(ins, xs):
            scale, zero = d["quantization"]
            if d["dtype"] != np.float32 and scale:
                x = np.clip(np.round(x / scale + zero), -128, 127)
            interp.set_tensor(d["index"], np.ascontiguousarray(x, dtype=d["dtype"]))
        interp.invoke()
        return [interp.get_tensor(d["index"]) for d in outs]

    return run


def ort_int8_cnn(module, example: np.ndarray, calibration: np.ndarray, out: Path, threads: int) -> dict:
    """torch.onnx.export -> onnxruntime's quant_pre_process -> quantize_static (QDQ, per-channel int8 weights,
    uint8 activations, MinMax on 128 samples), as ONNX Runtime's quantisation guide shows; fp32 and int8 rows."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out.mkdir(parents=True, exist_ok=True)
    fp32, pre, int8 = out / "ref.onnx", out / "ref-pre.onnx", out / "ref-int8.onnx"
    x = torch.from_numpy(np.ascontiguousarray(example[:1]))
    torch.onnx.export(module, (x,), str(fp32), input_names=["x"], output_names=["y"], dynamo=False,
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    quant_pre_process(str(fp32), str(pre))
    samples = np.asarray(calibration[:128], dtype=np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(range(0, len(samples), 16))

        def get_next(self):
            i = next(self.rows, None)
            return None if i is None else {"x": samples[i:i + 16]}

    quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return {"fp32": ort_session(fp32, threads), "int8": ort_session(int8, threads)}


def litert_int8_cnn(module, example: np.ndarray, calibration: np.ndarray, out: Path, threads: int) -> dict:
    """litert_torch.convert (fp32), and PT2E static int8 (litert_torch's PT2EQuantizer, per-channel symmetric,
    128 calibration samples) -> litert_torch.convert, as litert_torch's own tests do; fp32 and int8 rows."""
    import os

    import torch

    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer, quant_config
    from torchao.quantization.pt2e import quantize_pt2e

    out.mkdir(parents=True, exist_ok=True)
    args = (torch.from_numpy(np.ascontiguousarray(example[:1])),)
    litert_torch.convert(module.eval(), args).export(str(out / "ref.tflite"))
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    m = quantize_pt2e.prepare_pt2e(torch.export.export(module.eval(), args).module(), quantizer)
    with torch.no_grad():
        for row in np.asarray(calibration[:128], dtype=np.float32):
            m(torch.from_numpy(row[None]))
    m = quantize_pt2e.convert_pt2e(m, fold_quantize=False)
    litert_torch.convert(m, args, quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer)).export(
        str(out / "ref-int8.tflite"))
    return {"fp32": litert_session(out / "ref.tflite", threads),
            "int8": litert_session(out / "ref-int8.tflite", threads)}


def ort_int8_transformer(module, examples: list[np.ndarray], names: list[str], out: Path, threads: int,
                         num_heads: int, hidden_size: int) -> dict:
    """torch.onnx.export (TorchScript exporter, the model as it is) -> onnxruntime.transformers.optimizer
    .optimize_model(model_type="bert") -> quantize_dynamic (QInt8, its defaults), as ONNX Runtime's BERT
    quantisation example does; fp32 (plain export), fp32 fused and int8 rows."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    out.mkdir(parents=True, exist_ok=True)
    plain, fused, int8 = out / "ref.onnx", out / "ref-fused.onnx", out / "ref-int8.onnx"
    args = tuple(torch.from_numpy(np.concatenate([a[:1], a[:1]])) for a in examples)
    with torch.no_grad():
        torch.onnx.export(module, args, str(plain), dynamo=False, opset_version=17, input_names=names,
                          dynamic_axes={n: {0: "batch"} for n in names})
    optimize_model(str(plain), model_type="bert", num_heads=num_heads, hidden_size=hidden_size).save_model_to_file(
        str(fused))
    # the quantiser's own error message asks for DefaultTensorType when fused ops hide their output types
    quantize_dynamic(str(fused), str(int8), weight_type=QuantType.QInt8,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"fp32": ort_session(plain, threads), "fp32 fused": ort_session(fused, threads),
            "int8": ort_session(int8, threads)}


def scaled_dscnn(width: int, seed: int = 0):
    """The kws DS-CNN (MLPerf Tiny) with `width` x its 64 channels, freshly initialised (speed, not accuracy)."""
    from collections import OrderedDict

    import torch
    from torch import nn

    from workbench.nets.blocks import DepthwiseSeparable
    from workbench.zoo import kws_net

    c = kws_net.CHANNELS * width

    class ScaledDSCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(kws_net.INPUT_SHAPE[0], c, (10, 4), stride=2, padding=(5, 1), bias=False),
                bn=nn.BatchNorm2d(c), act=nn.ReLU(inplace=True)))
            self.blocks = nn.Sequential(*(DepthwiseSeparable(c, c, 1) for _ in range(kws_net.BLOCKS)))
            self.classifier = nn.Linear(c, len(kws_net.CLASSES))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))

    torch.manual_seed(seed)
    return ScaledDSCNN().eval()
