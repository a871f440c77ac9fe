"""Per-kernel timings from each runtime's own profiler, in one shape (`OpProfile`), found by name in `PROFILERS`.

==============  ==================================================================================================
onnxruntime     ``SessionOptions.enable_profiling``: the JSON trace's ``cat == "Node"`` events (kernel time of each
                node of the optimised graph, ``args.op_name`` its kernel); precision from ``args.input_type_shape``
openvino        ``PERF_COUNT``: ``InferRequest.get_profiling_info()`` after each call (``node_type``, ``real_time``);
                precision from ``exec_type`` (``brgconv_avx512_I8`` runs int8, ``..._f32`` float)
executorch      ETDump (``Runtime.load_program(enable_etdump=True)``) read by ``executorch.devtools.Inspector``:
                XNNPACK's per-operator events (``Convolution (NHWC, QC8) IGEMM #1``) and portable kernels
litert,         none: LiteRT's Python ``Interpreter`` exposes no per-operator profiler (op profiling lives in the C++
tflite_runtime  ``benchmark_model`` tool, ``--enable_op_profiling=true``) — `UNSUPPORTED` says so
torch           none here: the torch runtime runs quantisation as fake-quantised float (see `workbench.realize`)
==============  ==================================================================================================

Each profiler is ``open(realized, inputs, threads) -> Session``; a `Session` runs the model under the profiler
(``run(n, record)``) and without it (``time(n)``: a second, unprofiled session of the same file), and once done
gives its `OpProfile`. Sessions of the variant and of its original run in alternating rounds, so load on a shared
machine hits both alike.

Profilers cost time of their own: ONNX Runtime's roughly triples the call of a 0.07 ms CNN (each node writes a
trace event), enough to turn a 1.12× int8 speed-up into a 0.80× slow-down (digits CNN, one thread, measured). So
the call time that counts, `OpProfile.latency_ms`, is timed without the profiler; kernel times say where the time
goes, not the headline ratio; and the time ONNX Runtime's profiler adds inside each kernel window
(`ort_profiler_floor_ms`) is measured and subtracted.

Every time is a mean over the middle 80 % of calls (`TRIM`): on a shared machine whole calls get pre-empted
(MiniLM's 12 ms calls took 25–30 ms a third of the time here), and the kernels of one call are averaged over the
same calls (`middle_calls`), so they add up to the mean call and the time outside kernels is what is left.
"""

from __future__ import annotations

import bisect
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from workbench.core.errors import WorkbenchError, first_line

CATEGORIES = ("compute", "quantize/dequantize", "layout", "other", "overhead")
"""What a row of time is spent on: MAC-heavy kernels, (de)quantisation, layout conversion, everything else, and
the per-call time outside any kernel (the runtime's own work between kernels and at the call boundary)."""
QUANTISABLE = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "Attention", "LSTM", "GRU", "Convolution",
                         "GroupConvolution", "FullyConnected", "Fully Connected", "Batch Matrix Multiply",
                         "Deconvolution", "Einsum"})
"""Operator families with integer kernels on some runtime: one of these left in float in an int8 variant "stayed
float" (`SpeedExplanation.stayed_float`)."""
PRECISION_RANK = {"int4": 0, "int8": 1, "fp16": 2, "bf16": 2, "fp32": 3}
TRIM = 0.1
"""Share of calls dropped at each end (slowest: pre-empted on a shared machine; fastest) before averaging."""


@dataclass(frozen=True)
class KernelTime:
    """One node of the executed graph.

    Attributes:
        node: its name in the graph the runtime executes (after the runtime's own fusions).
        kernel: the runtime's kernel type (``QLinearConv``, ``Convolution``, ``Fully Connected (NC, QS8, QC8W)``).
        family: the operator it computes (``Conv`` for ``QLinearConv``), so a variant's rows line up with its
            original's.
        precision: ``"fp32"``, ``"fp16"``, ``"bf16"``, ``"int8"`` or ``""`` (not applicable).
        category: one of `CATEGORIES`.
        ms: median time per inference (measured by the runtime's profiler).
    """

    node: str
    kernel: str
    family: str
    precision: str
    category: str
    ms: float


@dataclass(frozen=True)
class OpProfile:
    """A runtime's profile of one model: per-node kernel times and the time per call, both measured."""

    runtime: str
    version: str
    kernels: tuple[KernelTime, ...]
    call_ms: float     # median time of one call under the profiler
    latency_ms: float  # median wall time of one call without the profiler (perf_counter around the call)
    calls: int         # recorded calls
    floor_ms: float = 0.0  # the profiler's own time per one-input node, subtracted (`ort_profiler_floor_ms`)
    note: str = ""         # what the profiler's resolution or corrections mean for these numbers, in words

    @property
    def kernel_ms(self) -> float:
        return float(sum(k.ms for k in self.kernels))


class Session(Protocol):
    def run(self, n: int, record: bool) -> None: ...

    def time(self, n: int) -> None: ...

    def profile(self) -> OpProfile: ...


def trimmed_mean(values: Sequence[float]) -> float:
    """The mean of the middle 80 % (`TRIM` dropped at each end): robust to a pre-empted call, and it keeps the
    sub-microsecond resolution that a median of whole-microsecond samples loses.

    Example:
        >>> trimmed_mean([1, 2, 2, 2, 2, 2, 2, 2, 2, 100])
        2.0
    """
    a = np.sort(np.asarray(values, float))
    cut = int(len(a) * TRIM)
    return float(a[cut: len(a) - cut].mean()) if len(a) else 0.0


def middle_calls(totals: Sequence[float]) -> np.ndarray:
    """A mask of the calls whose total lies in the middle 80 %: per-node means over the same calls add up to the
    mean call, which per-node trimming would not (a loaded machine slows whole calls, not single nodes).

    Example:
        >>> middle_calls([5, 1, 2, 3, 4, 9, 6, 7, 8, 100]).tolist()
        [True, False, True, True, True, True, True, True, True, False]
    """
    a = np.asarray(totals, float)
    order = np.argsort(a, kind="stable")
    cut = int(len(a) * TRIM)
    keep = np.zeros(len(a), bool)
    keep[order[cut: len(a) - cut]] = True
    return keep


def timed(call: Callable[[], Any], n: int, into: list[float]) -> None:
    """Append the wall time of `n` calls, in ms."""
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        into.append((time.perf_counter() - t0) * 1e3)


# ------------------------------------------------------------------------------------------- classifying


_ORT_FAMILY = {"QLinearConv": "Conv", "ConvInteger": "Conv", "FusedConv": "Conv", "NhwcFusedConv": "Conv",
               "NhwcConv": "Conv", "QGemm": "Gemm", "FusedGemm": "Gemm", "QLinearMatMul": "MatMul",
               "MatMulInteger": "MatMul", "MatMulIntegerToFloat": "MatMul", "DynamicQuantizeMatMul": "MatMul",
               "MatMulNBits": "MatMul", "FusedMatMul": "MatMul", "QAttention": "Attention",
               "QEmbedLayerNormalization": "EmbedLayerNormalization", "DynamicQuantizeLSTM": "LSTM"}
QDQ_KERNELS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "FakeQuantize", "Convert",
                         "QuantizeLinear_fused"})
LAYOUT_KERNELS = frozenset({"Transpose", "ReorderInput", "ReorderOutput", "Reorder"})
_PREC = {"float": "fp32", "float32": "fp32", "f32": "fp32", "fp32": "fp32", "float16": "fp16", "f16": "fp16",
         "fp16": "fp16", "bfloat16": "bf16", "bf16": "bf16", "uint8": "int8", "int8": "int8", "u8": "int8",
         "i8": "int8", "qs8": "int8", "qu8": "int8", "qc8": "int8", "qd8": "int8", "qc8w": "int8", "x8": "int8",
         "x32": "fp32", "int4": "int4", "uint4": "int4", "qc4w": "int4", "qb4w": "int4", "x16": "fp16"}


def category_of(family: str) -> str:
    """The `CATEGORIES` entry of an operator family (the runtime's kernel name with integer variants mapped back).

    Example:
        >>> category_of("QuantizeLinear"), category_of("Transpose"), category_of("Conv"), category_of("Relu")
        ('quantize/dequantize', 'layout', 'compute', 'other')
    """
    if family in QDQ_KERNELS:
        return "quantize/dequantize"
    if family in LAYOUT_KERNELS:
        return "layout"
    return "compute" if family in QUANTISABLE else "other"


def ort_family(kernel: str) -> str:
    """The ONNX operator an ONNX Runtime kernel computes: ``QLinearConv`` -> ``Conv``, ``QLinearAdd`` -> ``Add``.

    Example:
        >>> ort_family("QLinearConv"), ort_family("QLinearGlobalAveragePool"), ort_family("QuantizeLinear")
        ('Conv', 'GlobalAveragePool', 'QuantizeLinear')
    """
    if kernel in _ORT_FAMILY:
        return _ORT_FAMILY[kernel]
    if kernel.startswith("QLinear") and len(kernel) > 7:
        return kernel[7:]
    return kernel


def _precision(types: Sequence[str]) -> str:
    """The narrowest compute precision among a kernel's input element types."""
    found = [_PREC[t.lower()] for t in types if t.lower() in _PREC]
    return min(found, key=PRECISION_RANK.__getitem__) if found else ""


# ----------------------------------------------------------------------------------------- onnxruntime


_FLOORS: dict[int, tuple[float, float]] = {}


def ort_profiler_floor_ms(threads: int) -> tuple[float, float]:
    """The time ONNX Runtime's profiler adds to a node's ``kernel_time``: ``(a, b)`` ms, ``a + b * inputs``.

    Its kernel window holds the profiler's own bookkeeping, which grows with the node's inputs: on chains of `Sum`
    nodes over one float a node takes 0.3–0.9 µs unprofiled but reads 3.0 µs with one input and 6.5 µs with nine
    in the trace (measured on this project's 2-core EPYC) — as much as a whole convolution of a small CNN, whose
    QLinearConv has eight inputs. No ONNX Runtime option turns that off, so it is measured here on such chains
    (built by hand: the smallest graphs with many nodes and no work) and subtracted from every node by its input
    count. A node's true time is the difference of two unprofiled chains (48 and 16 nodes), so per-call overhead
    cancels. Cached per thread count for the process.
    """
    if threads in _FLOORS:
        return _FLOORS[threads]
    floors = [_ort_floor(k, threads) for k in (1, 9)]
    slope = max((floors[1] - floors[0]) / 8, 0.0)
    _FLOORS[threads] = (max(floors[0] - slope, 0.0), slope)
    return _FLOORS[threads]


def _ort_floor(inputs: int, threads: int) -> float:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def chain(n: int) -> bytes:
        nodes = [helper.make_node("Sum", [f"t{i}"] * inputs, [f"t{i + 1}"]) for i in range(n)]
        graph = helper.make_graph(nodes, "floor", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1, 1])],
                                  [helper.make_tensor_value_info(f"t{n}", TensorProto.FLOAT, [1, 1])])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()

    feed = {"t0": np.ones((1, 1), np.float32)}
    with tempfile.TemporaryDirectory(prefix="workbench-ort-floor-") as tmp:
        def session(n: int, profiled: bool) -> Any:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = threads
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every node
            opts.enable_profiling = profiled
            opts.profile_file_prefix = str(Path(tmp) / "floor")
            return ort.InferenceSession(chain(n), opts, providers=["CPUExecutionProvider"])

        short, long, traced = session(16, False), session(48, False), session(32, True)
        walls: dict[int, list[float]] = {16: [], 48: []}
        for s in (short, long, traced):
            for _ in range(10):
                s.run(None, feed)
        for _ in range(5):  # interleaved, so load on the machine hits both chains alike
            timed(lambda: short.run(None, feed), 20, walls[16])
            timed(lambda: long.run(None, feed), 20, walls[48])
            timed(lambda: traced.run(None, feed), 20, [])
        events = json.loads(Path(traced.end_profiling()).read_text())
    durs = [e["dur"] / 1e3 for e in events if e.get("cat") == "Node"][10 * 32:]
    true = (trimmed_mean(walls[48]) - trimmed_mean(walls[16])) / 32
    return max(trimmed_mean(durs) - max(true, 0.0), 0.0)


class _OrtSession:
    def __init__(self, realized: Any, inputs: list[np.ndarray], threads: int) -> None:
        import onnxruntime as ort

        from workbench.formats.onnx_file import session_source

        self.version = ort.__version__
        self.tmp = tempfile.TemporaryDirectory(prefix="workbench-ort-profile-")
        sessions = []
        for profiled in (True, False):  # the runner's options (workbench.runtimes.onnxruntime_runner), +profiling
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.enable_profiling = profiled
            opts.profile_file_prefix = str(Path(self.tmp.name) / "ort")
            try:
                sessions.append(ort.InferenceSession(session_source(realized.path), opts,
                                                     providers=["CPUExecutionProvider"]))
            except Exception as e:
                raise WorkbenchError(f"{realized.path}: ONNX Runtime cannot load the model: {first_line(e)}.") from e
        self.session, self.plain = sessions
        self.floor = ort_profiler_floor_ms(threads)
        self.feed = {i.name: a for i, a in zip(self.session.get_inputs(), inputs)}
        self.skipped = 0  # profiled calls before the first recorded one (warm-up), dropped from the trace
        self.recorded = 0
        self.walls: list[float] = []

    def run(self, n: int, record: bool) -> None:
        if not record and self.recorded:
            raise WorkbenchError("onnxruntime profiling: warm-up calls must come before recorded ones.")
        for _ in range(n):
            self.session.run(None, self.feed)
        if not record:
            for _ in range(n):
                self.plain.run(None, self.feed)
        self.recorded += n if record else 0
        self.skipped += 0 if record else n

    def time(self, n: int) -> None:
        timed(lambda: self.plain.run(None, self.feed), n, self.walls)

    def profile(self) -> OpProfile:
        trace = Path(self.session.end_profiling())
        events = json.loads(trace.read_text())
        self.tmp.cleanup()
        runs = sorted((e["ts"], e["dur"]) for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
        runs = runs[self.skipped:]
        if not runs or not self.walls:
            raise WorkbenchError("onnxruntime profiling recorded no call; run and time at least one.")
        starts = [ts for ts, _ in runs]
        totals = np.array([d for _, d in runs]) / 1e3
        keep = middle_calls(totals)
        per_node: dict[str, np.ndarray] = {}
        info: dict[str, tuple[str, str, int]] = {}
        for e in events:
            if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < starts[0]:
                continue
            args = e.get("args", {})
            node = e["name"][: -len("_kernel_time")]
            call = bisect.bisect_right(starts, e["ts"]) - 1
            per_node.setdefault(node, np.zeros(len(runs)))[call] += e["dur"] / 1e3
            types = [next(iter(t)) for t in args.get("input_type_shape", []) if t]
            info[node] = (args.get("op_name", node), _precision(types), len(args.get("input_type_shape", [])))
        kernels = []
        for node, times in per_node.items():
            kernel, precision, inputs = info[node]
            family = ort_family(kernel)
            floor = (self.floor[0] + self.floor[1] * inputs) * (times > 0).mean()
            ms = max(float(times[keep].mean()) - floor, 0.0)
            kernels.append(KernelTime(node, kernel, family, precision, category_of(family), ms))
        note = (f"ONNX Runtime's profiler adds about {1e3 * self.floor[0]:.1f} µs + {1e3 * self.floor[1]:.2f} µs per "
                "input to every node's kernel time (measured on chains of trivial nodes), subtracted from each")
        return OpProfile("onnxruntime", self.version, tuple(kernels), float(totals[keep].mean()),
                         trimmed_mean(self.walls), len(runs), self.floor[0] + self.floor[1], note)


# -------------------------------------------------------------------------------------------- openvino


_OV_PRECISION_REORDER = re.compile(r"_(f32|f16|bf16|u8|i8)_(f32|f16|bf16|u8|i8)_")


def ov_classify(node_type: str, name: str, exec_type: str) -> tuple[str, str, str]:
    """(family, precision, category) of one OpenVINO CPU-plugin node.

    A ``Reorder`` between precisions (``..._f32_u8_...``) quantises; between layouts it is layout work. A fused
    ``Subgraph`` (snippets) that came from a FakeQuantize (``.../fq_output_0``) quantises.

    Example:
        >>> ov_classify("Convolution", "conv", "brgconv_avx512_I8")
        ('Convolution', 'int8', 'compute')
        >>> ov_classify("Reorder", "a_f32_u8_b", "jit_uni_f32")[2], ov_classify("Reorder", "x_abcd_acdb_y", "ref")[2]
        ('quantize/dequantize', 'layout')
    """
    family = re.sub(r"(QuantizedLegacy|Quantized|Compressed)$", "", node_type)
    precision = _precision([exec_type.rsplit("_", 1)[-1]])
    if node_type == "Reorder" and _OV_PRECISION_REORDER.search(name):
        return "Reorder (precision)", precision, "quantize/dequantize"
    if node_type == "Subgraph" and "fq_output" in name:
        return "FakeQuantize", precision, "quantize/dequantize"
    return family, precision, category_of(family)


class _OvSession:
    """OpenVINO's CPU plugin reports, per node, the *average* time over every call since compilation (its counters
    are never reset: the values after calls 1, 2, 3 of the digits CNN's FullyConnected read 15.7, 7.8, 5.2 ms), so
    the recorded calls' mean is taken from the counters' totals before and after them.

    Its counters add each call's time truncated to whole microseconds (``PerfCount::finish_itr`` in the CPU
    plugin), so a node reads about 0.5 µs low per call and one under 1 µs reads 0 (and ``NOT_RUN``); on a model
    whose kernels take a few microseconds that deficit lands in the overhead row."""

    def __init__(self, realized: Any, inputs: list[np.ndarray], threads: int) -> None:
        from importlib.metadata import version

        import openvino as ov

        from workbench.runtimes.openvino_runner import PRECISIONS

        self.version = version("openvino")
        precision = PRECISIONS.get(str(realized.handle.meta.get("inference_precision", "f32")).lower(), "f32")
        # the runner's settings (pinned precision, latency hint, one stream, static shapes), plus the counters
        config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                  "INFERENCE_NUM_THREADS": int(threads)}
        core = ov.Core()
        try:
            model = core.read_model(str(realized.path))
            model.reshape({i: ov.PartialShape(list(a.shape)) for i, a in enumerate(inputs)})
            self.request, self.plain = (core.compile_model(model, "CPU", {**config, "PERF_COUNT": perf})
                                        .create_infer_request() for perf in ("YES", "NO"))
        except Exception as e:
            raise WorkbenchError(f"{realized.path}: OpenVINO cannot compile the model: {first_line(e)}.") from e
        # inputs bound once, without a copy, as the runner binds them (`openvino_runner._Compiled.run`)
        for request in (self.request, self.plain):
            for i, a in enumerate(inputs):
                request.set_input_tensor(i, ov.Tensor(a, shared_memory=True))
        self.inputs = inputs
        self.skipped = 0
        self.start: dict[str, float] | None = None  # counters (average ms per call) when recording began
        self.calls: list[float] = []
        self.walls: list[float] = []

    def _counters(self) -> dict[str, Any]:
        return {p.node_name: p for p in self.request.get_profiling_info()}

    def run(self, n: int, record: bool) -> None:
        if not record and self.start is not None:
            raise WorkbenchError("openvino profiling: warm-up calls must come before recorded ones.")
        if record and self.start is None:
            self.start = {k: p.real_time.total_seconds() * 1e3 for k, p in self._counters().items()
                          if p.status == p.Status.EXECUTED} if self.skipped else {}
        timed(lambda: self.request.infer(), n, self.calls if record else [])
        if not record:
            for _ in range(n):
                self.plain.infer()
            self.skipped += n

    def time(self, n: int) -> None:
        timed(lambda: self.plain.infer(), n, self.walls)

    def profile(self) -> OpProfile:
        if not self.calls or not self.walls or self.start is None:
            raise WorkbenchError("openvino profiling recorded no call; run and time at least one.")
        total, before = self.skipped + len(self.calls), self.skipped
        kernels = []
        for node, p in self._counters().items():
            if p.status != p.Status.EXECUTED and node not in self.start:
                continue
            ms = (p.real_time.total_seconds() * 1e3 * total - self.start.get(node, 0.0) * before) / len(self.calls)
            family, precision, category = ov_classify(p.node_type, node, p.exec_type)
            kernels.append(KernelTime(node, p.node_type, family, precision, category, max(ms, 0.0)))
        note = (f"OpenVINO's counters keep whole microseconds per node and call, so about 0.5 µs for each of the "
                f"{len(kernels)} executed nodes counts as outside kernels")
        return OpProfile("openvino", self.version, tuple(kernels), float(np.mean(self.calls)),
                         trimmed_mean(self.walls), len(self.calls), note=note)


# ------------------------------------------------------------------------------------------ executorch


_ET_WRAPPERS = frozenset({"DELEGATE_CALL", "OPERATOR_CALL", "Method::execute", "Method::init",
                          "Program::load_method"})


def et_classify(event: str) -> tuple[str, str, str, str]:
    """(kernel, family, precision, category) of one ETDump event name.

    XNNPACK names its operators ``Name (layout, types) variant #n``; portable kernels are ``native_call_<op>``.

    Example:
        >>> et_classify("Convolution (NHWC, QC8) IGEMM #1")
        ('Convolution (NHWC, QC8) IGEMM', 'Convolution', 'int8', 'compute')
        >>> et_classify("native_call_mean.out")
        ('aten::mean', 'aten::mean', 'fp32', 'other')
    """
    kernel = re.sub(r"\s*#\d+$", "", event)
    if event.startswith("native_call_"):
        op = "aten::" + event[len("native_call_"):].split(".")[0]
        return op, op, "fp32", "other"
    m = re.match(r"([^(]+?)\s*\(([^)]*)\)", kernel)
    family = m.group(1).strip() if m else kernel
    parts = [p.strip() for p in m.group(2).split(",")] if m else []
    if family == "Convert":
        return kernel, family, _precision(parts), "quantize/dequantize"
    return kernel, family, _precision(parts) or "fp32", category_of(family)


class _EtSession:
    def __init__(self, realized: Any, inputs: list[np.ndarray], threads: int) -> None:
        from importlib.metadata import version

        import torch
        from executorch.runtime import Runtime

        from workbench.formats.pte_file import quiet_executorch
        from workbench.runtimes.executorch_runner import thread_pinner

        self.version = version("executorch")
        self.pin = thread_pinner(threads)
        self.pin()
        try:
            with quiet_executorch():
                self.program = Runtime.get().load_program(realized.path, enable_etdump=True, debug_buffer_size=0)
                self.method = self.program.load_method("forward")
                self.plain = Runtime.get().load_program(realized.path).load_method("forward")
        except Exception as e:
            raise WorkbenchError(f"{realized.path}: ExecuTorch cannot load the program with ETDump: "
                                 f"{first_line(e)}.") from e
        self.inputs = [torch.from_numpy(a) for a in inputs]
        self.skipped = 0
        self.recorded = 0
        self.walls: list[float] = []

    def run(self, n: int, record: bool) -> None:
        self.pin()
        for _ in range(n):
            self.method.execute(self.inputs)
            if not record:
                self.plain.execute(self.inputs)
        self.recorded += n if record else 0
        self.skipped += 0 if record else n

    def time(self, n: int) -> None:
        self.pin()
        timed(lambda: self.plain.execute(self.inputs), n, self.walls)

    def profile(self) -> OpProfile:
        from executorch.devtools import Inspector

        with tempfile.TemporaryDirectory(prefix="workbench-etdump-") as tmp:
            dump = str(Path(tmp) / "run.etdp")
            self.program.write_etdump_result_to_file(dump, str(Path(tmp) / "debug.bin"))
            try:
                inspector = Inspector(etdump_path=dump)
            except Exception as e:  # a build without the event tracer writes an empty dump
                raise WorkbenchError(f"ExecuTorch wrote no readable ETDump ({first_line(e)}); this build may lack the "
                                     "event tracer. Explain on 'onnxruntime' or 'openvino' instead.") from e
        events = [(f"{e.name} [{block.name}:{i}]", e.name, list(e.perf_data.raw)[self.skipped:])
                  for block in inspector.event_blocks for i, e in enumerate(block.events) if e.perf_data is not None]
        calls = next((np.array(raw) for _, name, raw in events if name == "Method::execute"), np.array([]))
        if not len(calls) or not self.walls:
            raise WorkbenchError("ExecuTorch's ETDump holds no Method::execute event; explain on 'onnxruntime' or "
                                 "'openvino' instead.")
        keep = middle_calls(calls)
        kernels = []
        for node, name, raw in events:
            if name in _ET_WRAPPERS or not raw:
                continue
            kernel, family, precision, category = et_classify(name)
            # an event logged once per call averages over the kept calls; any other over all its samples
            ms = float(np.array(raw)[keep].mean()) if len(raw) == len(calls) else float(np.mean(raw))
            kernels.append(KernelTime(node, kernel, family, precision, category, ms))
        return OpProfile("executorch", self.version, tuple(kernels), float(calls[keep].mean()),
                         trimmed_mean(self.walls), len(calls))


PROFILERS: dict[str, Callable[[Any, list[np.ndarray], int], Session]] = {
    "onnxruntime": _OrtSession,
    "openvino": _OvSession,
    "executorch": _EtSession,
}
"""Runtime name -> ``open(realized, inputs, threads)``; adding a runtime is one class and one line here."""

UNSUPPORTED: dict[str, str] = {
    "litert": "LiteRT's Python Interpreter exposes no per-operator profiler; its op profiling is in the C++ "
              "benchmark_model tool (benchmark_model --graph=FILE --num_threads=1 --enable_op_profiling=true)",
    "tflite_runtime": "tflite_runtime's Python Interpreter exposes no per-operator profiler; its op profiling is in "
                      "the C++ benchmark_model tool (--enable_op_profiling=true)",
    "torch": "the torch runtime executes quantisation as fake-quantised float weights (see workbench.realize), so "
             "an operator profile would compare float kernels with float kernels",
}
"""Runtime name -> why `explain_speed` cannot profile it, said in the error."""


__all__ = ["CATEGORIES", "KernelTime", "OpProfile", "PRECISION_RANK", "PROFILERS", "QUANTISABLE", "Session",
           "UNSUPPORTED", "category_of", "et_classify", "ort_family", "ort_profiler_floor_ms", "ov_classify", "timed",
           "trimmed_mean"]
