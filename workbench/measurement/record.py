"""`measure`: one variant on one runtime — accuracy, size, latency, memory, compute, and device estimates.

Every figure in a `Measurement` is measured here on the named runtime, except the `*_est` columns, which come
from a device profile and the formula stated in `workbench.hardware.roofline`. A runtime that cannot run a
variant yields a record with `error` set instead of an exception, so a sweep goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle
from workbench.core.lm import is_language_model

LIBRARIES = ("torch", "onnxruntime", "ai-edge-litert", "onnx", "litert-torch", "ai-edge-quantizer", "torch-pruning",
             "openvino", "nncf", "executorch", "torchao")

COLUMNS = [
    "variant", "runtime", "threads", "batch", "fidelity", "fidelity_low", "fidelity_high", "size_bytes",
    "size_deflated_bytes", "size_coded_bytes", "size_entropy_bytes", "params", "params_nonzero", "bits_effective", "realized", "realization", "latency_ms_p10",
    "latency_ms_p50", "latency_ms_p90",
    "latency_ms_p99", "latency_ms_mean", "latency_ms_iqr", "reps", "weight_bytes", "peak_mem_bytes", "macs",
    "tokens_per_s", "ttft_ms", "kv_cache_bytes", "energy_mj", "energy_note", "error",
]
DEVICE_COLUMNS = ["device", "latency_ms_est", "energy_mj_est", "power_w_est", "battery_h_est", "fits", "deployable",
                  "tokens_per_s_est", "energy_mj_per_token_est"]


@dataclass(frozen=True)
class Measurement:
    """One variant measured on one runtime (plus estimates for the devices asked for).

    `metrics` holds the task's metric(s) with their 95 % intervals (e.g. ``{"accuracy": 0.98, "accuracy_low":
    0.97, "accuracy_high": 0.99}``); `to_frame` spreads them into columns. `fidelity_low` / `fidelity_high` bound
    `fidelity` the same way; `latency_ms_p10` .. `latency_ms_p90` is the spread of the timed calls.
    `size_coded_bytes` is the variant Huffman-coded as Deep Compression ships it (grid indices of the quantised
    weights entropy-coded, code book, scales, the rest of the ONNX file deflated) and `size_entropy_bytes` the
    same with the indices at their Shannon bound: both measured by `workbench.measurement.coding` (which says
    exactly what counts) on the artefact when it is ONNX, else on the variant's ONNX export; empty for a
    language model and for a file with no ONNX graph.
    `energy_mj` is energy per inference *measured* on this host's RAPL counters (`workbench.measurement.energy`),
    empty where the host has none, with `energy_note` saying how it was measured or why not.
    """

    variant: str
    runtime: str
    threads: int | None
    batch: int
    metrics: dict[str, float] = field(default_factory=dict)
    fidelity: float | None = None
    fidelity_low: float | None = None
    fidelity_high: float | None = None
    size_bytes: int | None = None
    size_deflated_bytes: int | None = None
    size_coded_bytes: int | None = None
    size_entropy_bytes: int | None = None
    params: int | None = None
    params_nonzero: int | None = None
    bits_effective: float | None = None
    realized: bool | None = None
    realization: str = ""
    latency_ms_p10: float | None = None
    latency_ms_p50: float | None = None
    latency_ms_p90: float | None = None
    latency_ms_p99: float | None = None
    latency_ms_mean: float | None = None
    latency_ms_iqr: float | None = None
    reps: int | None = None
    weight_bytes: int | None = None
    peak_mem_bytes: int | None = None
    macs: int | None = None
    tokens_per_s: float | None = None
    ttft_ms: float | None = None
    kv_cache_bytes: int | None = None
    energy_mj: float | None = None
    energy_note: str = ""
    error: str | None = None
    task: str = ""
    lineage: tuple[str, ...] = ()
    artifact: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    estimates: tuple[Any, ...] = ()

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows: one per device estimate, or one with ``device=None``."""
        base = {k: getattr(self, k) for k in COLUMNS}
        base.update(self.metrics)
        base.update(task=self.task, lineage=" + ".join(self.lineage), artifact=self.artifact,
                    versions=json.dumps(self.versions, sort_keys=True))
        if not self.estimates:
            return [{**base, **{c: None for c in DEVICE_COLUMNS}}]
        return [{**base, **e.to_row()} for e in self.estimates]


def to_frame(measurements: Sequence[Measurement]) -> pd.DataFrame:
    """Stack measurements into a DataFrame: one row per measurement and device."""
    rows = [r for m in measurements for r in m.rows()]
    return pd.DataFrame(rows)


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except Exception:  # noqa: BLE001 - a missing optional library just isn't listed
            continue
    return out


def measure(
    handle: ModelHandle,
    task: Any,
    *,
    runtime: str | Sequence[str] = "onnxruntime",
    threads: int | None = None,
    devices: Sequence[Any] = (),
    batch: int = 1,
    memory: bool = True,
    limit: int | None = None,
) -> Measurement | list[Measurement]:
    """Measure a variant on a runtime: accuracy, fidelity, size, latency, memory, MACs, device estimates.

    A language model (`workbench.core.lm.is_language_model`) is measured by `workbench.measurement.lm`: its
    metrics are perplexity, agreement and pass rate, and it adds ``tokens_per_s``, ``ttft_ms`` and
    ``kv_cache_bytes`` (latency columns: milliseconds per decoded token).

    Where the runtime can execute the variant's compression for real it is realised first (see
    `workbench.realize`), so size and latency are real; otherwise the float artefact is measured and
    `realized` is False. The handle is never changed.

    Args:
        handle: the model or variant.
        task: the task whose evaluation split and metric to use (`task.model` is the fidelity reference).
        runtime: ``"torch"``, ``"onnxruntime"``, ``"litert"``, ``"openvino"`` or ``"executorch"``; a list of them,
            or ``"all"`` (every installed runtime), measures the same variant on each in turn.
        threads: intra-op threads (`None`: the runtime's default).
        devices: device profile names (or profiles) to estimate for.
        batch: batch size for latency timing.
        memory: measure peak resident memory in a child process (~1 s).
        limit: evaluate on the first `limit` samples only.

    Returns:
        A `Measurement` (a list of them, in order, for a list of runtimes or ``"all"``); `error` is set (and
        figures left empty) if the runtime could not run the variant.

    Example:
        >>> m = measure(task.model, task, runtime="onnxruntime", threads=1, devices=["raspberry-pi-4"])
        >>> row = to_frame([m]).iloc[0]
        >>> row["runtime"], round(float(row["accuracy"]), 3), bool(row["latency_ms_p50"] > 0), row["device"]
        ('onnxruntime', 0.989, True, 'raspberry-pi-4')
        >>> bool(row["accuracy_low"] <= row["accuracy"] <= row["accuracy_high"])
        True
    """
    from workbench.measurement.energy import measure_energy
    from workbench.measurement.latency import time_runner, timing_section
    from workbench.measurement.size import artifact_size, count_nonzero, deflated_size
    from workbench.realize import realize
    from workbench.runtimes import runtime as make_runtime

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise WorkbenchError(f"batch must be a positive integer, got {batch!r}.")
    if not isinstance(runtime, str) or runtime == "all":
        from workbench.runtimes import resolve_runtimes

        return [measure(handle, task, runtime=r, threads=threads, devices=devices, batch=batch, memory=memory,
                        limit=limit) for r in resolve_runtimes(runtime)]
    label = "+".join(c.label for c in handle.lineage) or "baseline"
    common = dict(variant=label, runtime=runtime, threads=threads, batch=batch, task=getattr(task, "name", ""),
                  lineage=tuple(c.label for c in handle.lineage), versions=library_versions(),
                  params=handle.num_params, bits_effective=_bits(handle))
    if is_language_model(handle):
        from workbench.measurement.lm import measure_lm

        # No size_coded_bytes for a language model: its artefacts are runtime folders (ONNX Runtime GenAI,
        # LiteRT-LM, ...) with no single ONNX graph to code, and an ONNX export just to code it costs minutes.
        return Measurement(**measure_lm(handle, task, runtime=runtime, threads=threads, devices=devices,
                                        memory=memory, limit=limit, common=common),
                           energy_note="not measured for language models (per-token energy is estimated)")
    common["macs"] = _macs(handle)
    try:
        real = realize(handle, runtime, task)
        run = make_runtime(real.handle, runtime, threads=threads)
        outputs, rows = task.run(run, limit=limit)
        metrics = task.score(outputs, rows)
        fidelity = fidelity_scores(task, outputs, rows)
        sample = [np.ascontiguousarray(np.repeat(a[:1], batch, axis=0)) for a in task.example_inputs]
        with timing_section():  # one worker at a time where a parallel search asks for it
            stats = time_runner(run, sample)
            energy = measure_energy(run, sample)
    except Exception as e:  # noqa: BLE001 - one failing runtime is a row, not a crashed sweep
        return Measurement(**common, error=f"{type(e).__name__}: {first_line(e)}",
                           estimates=_estimates(handle, devices, runtime=runtime))
    path = real.path
    size = artifact_size(path) if path else None
    coded = _coded(handle, path)
    weight_bytes = int(round(handle.num_params * (common["bits_effective"] or 32) / 8))
    return Measurement(
        **common,
        metrics=metrics,
        fidelity=fidelity["fidelity"],
        fidelity_low=fidelity.get("fidelity_low"),
        fidelity_high=fidelity.get("fidelity_high"),
        size_bytes=size,
        size_deflated_bytes=deflated_size(path) if path else None,
        size_coded_bytes=coded.total if coded else None,
        size_entropy_bytes=coded.entropy_total if coded else None,
        params_nonzero=count_nonzero(handle),
        realized=real.realized,
        realization=real.note,
        latency_ms_p10=stats.p10,
        latency_ms_p50=stats.p50,
        latency_ms_p90=stats.p90,
        latency_ms_p99=stats.p99,
        latency_ms_mean=stats.mean,
        latency_ms_iqr=stats.iqr,
        reps=stats.reps,
        energy_mj=energy.mj_per_inference,
        energy_note=energy.note,
        weight_bytes=weight_bytes,
        peak_mem_bytes=peak_memory(runtime, path, sample, threads) if memory and path else None,
        artifact=str(path) if path else None,
        # Estimates cost the kernels the runtime ran (int8 when it quantised activations too).
        estimates=_estimates(handle, devices, dtype=real.compute_dtype, runtime=runtime),
    )


def fidelity_scores(task: Any, outputs: list[np.ndarray], rows: slice) -> dict[str, float]:
    """``fidelity`` and its interval from the task (`Task.fidelity_scores`); a task-like object with only a
    `fidelity` method gets no interval."""
    if hasattr(task, "fidelity_scores"):
        return task.fidelity_scores(outputs, rows)
    return {"fidelity": task.fidelity(outputs, rows)}


def _coded(handle: ModelHandle, path: Any) -> Any:
    from workbench.measurement.coding import variant_coded_size

    try:
        return variant_coded_size(handle, path)
    except Exception:  # noqa: BLE001 - an informative size: a variant whose ONNX export fails has none
        return None


def _macs(handle: ModelHandle) -> int | None:
    from workbench.core.layers import count_macs

    if handle.framework != "torch":
        return None
    try:
        return count_macs(handle)
    except Exception:  # noqa: BLE001 - MACs are informative; a model the counter cannot trace has none
        return None


def _bits(handle: ModelHandle) -> float:
    if handle.framework != "torch":
        return 32.0
    from workbench.compression.quantize import effective_bits_per_weight

    return float(effective_bits_per_weight(handle))


@dataclass(frozen=True)
class _NoEstimate:
    """A device row for a variant the estimator could not cost (e.g. an ONNX file with no PyTorch model)."""

    device: str
    reason: str

    def to_row(self) -> dict[str, Any]:
        return {**{c: None for c in DEVICE_COLUMNS}, "device": self.device, "deployable": False,
                "reason": self.reason}


def _estimates(handle: ModelHandle, devices: Sequence[Any], dtype: str | None = None,
               runtime: str | None = None) -> tuple[Any, ...]:
    if not devices:
        return ()
    from workbench.hardware import device as get_device
    from workbench.hardware import estimate

    out = []
    for d in devices:
        profile = get_device(d) if isinstance(d, str) else d  # an unknown name is the caller's error: raise
        try:
            out.append(estimate(handle, profile, dtype=dtype, runtime=runtime))
        except WorkbenchError as e:
            out.append(_NoEstimate(profile.name, f"no estimate: {first_line(e)}"))
    return tuple(out)


_PROBE_START = r"""
import json, sys
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

def start():
    # Reset the peak-RSS watermark (VmHWM) so import-time peaks do not hide the model's own.
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return status("VmRSS")

runtime, path, threads, spec = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
arrays = [np.zeros(s, d) for s, d in spec]
"""
_PROBE_END = r"""
print(max(0, status("VmHWM") - before))
"""
_TFLITE_PROBE = r"""
before = start()
it = Interpreter(model_path=path, num_threads=threads); it.allocate_tensors()
for d in it.get_input_details():
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
for _ in range(3): it.invoke()
"""
MEMORY_PROBES: dict[str, str] = {
    "onnxruntime": r"""
import onnxruntime as ort
before = start()
o = ort.SessionOptions(); o.intra_op_num_threads = threads
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
names = [i.name for i in s.get_inputs()]
for _ in range(3): s.run(None, dict(zip(names, [a.astype(np.float32) if i.type == "tensor(float)" else a for a, i in zip(arrays, s.get_inputs())])))
""",
    "litert": "\nfrom ai_edge_litert.interpreter import Interpreter" + _TFLITE_PROBE,
    "tflite_runtime": "\nfrom tflite_runtime.interpreter import Interpreter" + _TFLITE_PROBE,
    "openvino": r"""
import openvino as ov
core = ov.Core()
before = start()
c = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                       "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
r = c.create_infer_request()
for _ in range(3): r.infer([a.astype(p.get_element_type().to_dtype()) for a, p in zip(arrays, c.inputs)])
""",
    "executorch": r"""
import torch
from executorch.extension.pybindings import portable_lib
from executorch.runtime import Runtime
portable_lib._unsafe_reset_threadpool(threads)
before = start()
m = Runtime.get().load_program(path).load_method("forward")
for _ in range(3): m.execute([torch.from_numpy(a) for a in arrays])
""",
    "torch": r"""
import torch
torch.set_num_threads(threads)
before = start()
m = torch.jit.load(path)
with torch.no_grad():
    for _ in range(3): m(*[torch.from_numpy(a) for a in arrays])
""",
}
"""Per runtime: the child-process code that loads the artefact at `path` and runs it three times (between the
shared start, which defines `start()`, `path`, `threads` and `arrays`, and the end, which prints the growth of
peak RSS since `before = start()`). A runtime without an entry has no memory figure."""


def peak_memory(runtime: str, path: Any, sample: Sequence[np.ndarray], threads: int | None) -> int | None:
    """Peak resident memory added by loading and running the artefact, measured in a fresh process.

    A child process keeps the measurement clean of whatever the notebook already holds: it imports the
    runtime, records its peak RSS, loads the model, runs it three times, and reports the growth (the code per
    runtime: `MEMORY_PROBES`; `None` for a runtime without one, or when the child fails).
    """
    from workbench.core.isolated import run_child

    probe = MEMORY_PROBES.get(runtime)
    if probe is None:
        return None
    spec = json.dumps([[list(a.shape), a.dtype.name] for a in sample])
    child = run_child(_PROBE_START + probe + _PROBE_END, runtime, str(path), str(threads or 1), spec, timeout=300,
                      env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        return int(child.stdout.strip().splitlines()[-1]) if child.status == "ok" else None
    except (ValueError, IndexError):
        return None

