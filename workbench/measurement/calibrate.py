"""Calibrate the ``host`` profile: measure real latency here and fit the roofline's free parameters.

The fit is least squares on log(estimated / measured) over structurally different variants (the zoo models plus
width-scaled CNNs, 1-D CNNs, MLPs, an unrolled LSTM cell and small transformers built from plain torch modules,
`workbench.measurement.calibration_variants`), with a weak prior (weight 0.02 per log-unit) that keeps a parameter the variants
cannot identify near a neutral value. Fitted (18 numbers): the compute efficiency per layer kind (conv, conv1d,
depthwise, linear, attention, norm, element-wise, and ``unaligned``: 2-D convolutions whose channel counts are not
a multiple of the SIMD block, which ONNX Runtime's blocked NCHWc kernels cannot take and which run 2.5-4x slower
here), the memory efficiency, the cache and last-level-cache bandwidths, the GEMM tile height (`tile_rows`), the
share of memory time that does not overlap compute (`serial_fraction`), the overhead per layer kernel, per
element-wise kernel, per 1-D convolution, per unaligned convolution and per inference. Measured directly:
main-memory bandwidth (a 128 MB copy, beyond any cache). Peak ops come from ``/proc/cpuinfo``; when a fitted
efficiency exceeds 1 (the CPU turbo-clocks above the nominal clock) the peak is raised instead, so efficiencies
stay fractions of peak.

Latency is timed with ``clock="cpu"`` by default: the CPU time of the calling thread per inference, which at
one thread is the latency an otherwise idle core would see. On a shared machine, wall-clock time also measures
the neighbours (MiniLM took 14 ms of CPU but 30-40 ms of wall time here while other jobs ran); the wall-clock
median (`workbench.measurement.latency.time_runner`) is reported beside it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.hardware.catalog import device
from workbench.hardware.host import host_calibration_path, host_key, host_peak
from workbench.hardware.profile import DeviceProfile
from workbench.hardware.roofline import (
    LEVELS,
    dtype_plan,
    estimate,
    gemm_rows,
    layer_costs,
    model_layers,
    tile_occupancy,
)
from workbench.measurement.calibration_variants import calibration_variants

_FIT_KINDS = ("conv", "conv1d", "depthwise", "linear", "attention", "unaligned", "norm", "elementwise")
# Neutral prior (log-space) for parameters the calibration set cannot pin down, and bounds.
_OVERHEAD_KINDS = ("elementwise", "conv1d", "unaligned")  # kinds that get their own fitted overhead per kernel
_PRIOR = {"eff": 0.5, "eff_memory": 0.5, "layer_overhead_s": 2e-6, "kind_overhead_s": 1e-6,
          "inference_overhead_s": 1e-5, "cache_bw": 5e10, "llc_bw": 4e10, "tile_rows": 4.0,
          "serial_fraction": 0.1}
_PRIOR_WEIGHT = 0.02


# ------------------------------------------------------------------------------------------- timing


def _cpu_ms(run: Any, inputs: list[np.ndarray], seconds: float) -> float:
    """Median CPU time of the calling thread per call (ms)."""
    for _ in range(3):
        run(*inputs)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 5 or (time.perf_counter() - start < seconds and len(times) < 2000):
        t0 = time.thread_time_ns()
        run(*inputs)
        times.append((time.thread_time_ns() - t0) / 1e6)
    return float(np.median(times))


def measure_latencies(
    handles: dict[str, ModelHandle],
    *,
    runtime: str = "onnxruntime",
    threads: int = 1,
    rounds: int = 5,
    seconds: float = 0.2,
    clock: str = "cpu",
    stat: str = "min",
) -> pd.DataFrame:
    """Batch-1 latency of each handle, measured in interleaved rounds.

    Each round takes the median of many calls; `stat` then combines the rounds: ``"min"`` (default) keeps the
    quietest round, as `timeit` does, since on a shared machine noise only ever adds time; ``"median"`` keeps the
    typical one.

    Returns:
        DataFrame with `variant`, `wall_ms` (from `time_runner` p50s), `cpu_ms` (CPU time of the calling thread;
        NaN unless ``clock="cpu"``), `measured_ms` (the one `clock` names) and `spread` (range of the rounds
        over their median).
    """
    from workbench.measurement.latency import time_runner
    from workbench.runtimes import runtime as make_runner

    if clock not in ("cpu", "wall"):
        raise WorkbenchError(f"clock must be 'cpu' or 'wall', got {clock!r}.")
    if stat not in ("min", "median"):
        raise WorkbenchError(f"stat must be 'min' or 'median', got {stat!r}.")
    if clock == "cpu" and threads != 1:
        raise WorkbenchError("clock='cpu' times the calling thread, which is the latency only at threads=1; "
                             "use clock='wall' for more threads.")
    runs = {k: make_runner(h, runtime, threads=threads) for k, h in handles.items()}
    ins = {k: [a[:1] for a in h.example_inputs] for k, h in handles.items()}
    wall: dict[str, list[float]] = {k: [] for k in handles}
    cpu: dict[str, list[float]] = {k: [] for k in handles}
    for _ in range(rounds):
        for k in handles:
            wall[k].append(time_runner(runs[k], ins[k], warmup=3, min_reps=5, min_seconds=seconds / 2).p50)
            if clock == "cpu":
                cpu[k].append(_cpu_ms(runs[k], ins[k], seconds / 2))
    agg = np.min if stat == "min" else np.median
    rows = []
    for k in handles:
        w = float(agg(wall[k]))
        c = float(agg(cpu[k])) if cpu[k] else float("nan")
        rows.append({"variant": k, "wall_ms": w, "cpu_ms": c, "measured_ms": c if clock == "cpu" else w,
                     "spread": float(np.ptp(cpu[k] or wall[k]) / np.median(cpu[k] or wall[k]))})
    return pd.DataFrame(rows)


def memory_bandwidth(nbytes: int = 128 << 20, repeats: int = 3) -> float:
    """Main-memory bandwidth of a large copy (bytes read + written per second, best of `repeats`)."""
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


# ---------------------------------------------------------------------------------------------- fit


class _Arrays:
    """A variant's per-row quantities that do not change while the fit moves the profile's free parameters."""

    def __init__(self, handle: ModelHandle, prof: DeviceProfile) -> None:
        handle, table = model_layers(handle)
        dts, bits = dtype_plan(handle, table, prof, None)
        c = layer_costs(table, prof, dts, bits, 1)
        live = ~c["folded"].to_numpy()
        self.peak = np.array([prof.peak_ops.get(d, min(prof.peak_ops.values())) for d in c["dtype"]])[live]
        self.kind = np.array([_FIT_KINDS.index(k) if k in _FIT_KINDS else _FIT_KINDS.index("elementwise")
                              for k in c["kind"]])[live]
        self.over = np.array([1 + _OVERHEAD_KINDS.index(k) if k in _OVERHEAD_KINDS else 0
                              for k in c["kind"]])[live]
        self.ops = c["ops"].to_numpy(float)[live]
        self.rows = gemm_rows(table, 1)[live]
        self.calls = c["calls"].to_numpy(float)[live]
        self.w_level = LEVELS.index(c["weights_from"].iloc[0]) if len(c) else 2
        self.a_level = np.array([LEVELS.index(v) for v in c["activations_from"]])[live]
        self.w_read = c["weight_read_bytes"].to_numpy(float)[live]
        self.a_bytes = c["activation_bytes"].to_numpy(float)[live]

    def latency(self, eff: np.ndarray, em: float, main_bw: float, cache_bw_eff: float, llc_bw_eff: float,
                t_layer: float, t_kind: np.ndarray, t_inf: float, tile_rows: float, serial: float) -> float:
        occupancy = tile_occupancy(self.rows, tile_rows)
        compute = np.where(self.ops > 0, self.ops / (self.peak * eff[self.kind] * occupancy), 0.0)
        bw = np.array([cache_bw_eff, llc_bw_eff, main_bw * em, main_bw * em])
        mem = self.w_read / bw[self.w_level] + self.a_bytes / bw[self.a_level]
        per_call = np.concatenate([[t_layer], t_kind])[self.over]
        return t_inf + float(np.sum(np.maximum(compute, mem) + serial * np.minimum(compute, mem)
                                    + self.calls * per_call))


def _fit(arrays: dict[str, _Arrays], measured_s: dict[str, float], main_bw: float) -> dict[str, float]:
    from scipy.optimize import least_squares

    names = list(arrays)
    nk, no = len(_FIT_KINDS), len(_OVERHEAD_KINDS)
    x0 = np.log([_PRIOR["eff"]] * nk + [_PRIOR["eff_memory"], _PRIOR["cache_bw"], _PRIOR["llc_bw"],
                                        _PRIOR["layer_overhead_s"], _PRIOR["inference_overhead_s"], _PRIOR["tile_rows"],
                                        _PRIOR["serial_fraction"]]
                + [_PRIOR["kind_overhead_s"]] * no)
    lo = np.log([1e-3] * (nk + 1) + [1e8, 1e8, 1e-9, 1e-9, 1e-2, 1e-4] + [1e-9] * no)
    hi = np.log([8.0] * (nk + 1) + [1e13, 1e13, 1e-2, 1e-1, 1e3, 1.0] + [1e-2] * no)

    def split(x: np.ndarray) -> tuple:
        e = np.exp(x)
        return e[:nk], *e[nk:nk + 7], e[nk + 7:]

    def resid(x: np.ndarray) -> np.ndarray:
        eff, em, cbw, lbw, t_layer, t_inf, tile, serial, t_kind = split(x)
        r = [math.log(arrays[k].latency(eff, em, main_bw, cbw, lbw, t_layer, t_kind, t_inf, tile, serial)
                      / measured_s[k]) for k in names]
        return np.concatenate([r, _PRIOR_WEIGHT * (x - x0)])

    sol = least_squares(resid, x0, bounds=(lo, hi))
    eff, em, cbw, lbw, t_layer, t_inf, tile, serial, t_kind = split(sol.x)
    return {**{f"eff_{k}": float(v) for k, v in zip(_FIT_KINDS, eff)}, "eff_memory": float(em),
            "cache_bw_eff": float(cbw), "llc_bw_eff": float(lbw), "layer_overhead_s": float(t_layer),
            "inference_overhead_s": float(t_inf), "tile_rows": float(tile), "serial_fraction": float(serial),
            "kind_overhead_s": {k: float(v) for k, v in zip(_OVERHEAD_KINDS, t_kind)}}


def calibrate_host(
    tasks: Sequence[str] = ("digits-cnn", "silero-vad"),
    runtime: str = "onnxruntime",
    threads: int = 1,
    *,
    variants: dict[str, ModelHandle] | Sequence[str] | None = None,
    rounds: int = 5,
    seconds: float = 0.2,
    clock: str = "cpu",
    save: bool = True,
) -> tuple[DeviceProfile, pd.DataFrame]:
    """Measure batch-1 latency on this machine and fit the ``host`` profile to it.

    Args:
        tasks: zoo tasks whose models join the calibration set.
        runtime: runtime to time (``"onnxruntime"``, ``"litert"`` or ``"torch"``).
        threads: intra-op threads (the peak is per core x threads).
        variants: extra handles by name, or names of `calibration_variants` (e.g. ``["cnn-w0.5", "mlp-small"]``);
            default: all of `calibration_variants` (width-scaled CNNs, MLPs, transformers, 1-D CNNs, an LSTM).
        rounds, seconds: interleaved timing rounds and seconds per variant per round.
        clock: ``"cpu"`` (calling-thread CPU time; robust on a shared machine, threads=1 only) or ``"wall"``.
        save: write the fitted profile to ``<cache>/host_profile.yaml`` (used by ``device("host")`` afterwards).

    Returns:
        The fitted host profile and a DataFrame with `variant`, `measured_ms`, `wall_ms`, `cpu_ms`,
        `estimated_ms` and `error` (estimated / measured - 1).

    Example:
        >>> prof, df = workbench.calibrate_host(tasks=("digits-cnn",), variants=["cnn-w0.5", "mlp-small"],
        ...                                     rounds=1, seconds=0.05, save=False)
        >>> prof.name, sorted(df.variant)
        ('host', ['cnn-w0.5', 'digits-cnn', 'mlp-small'])
    """
    if not isinstance(threads, int) or threads < 1:
        raise WorkbenchError(f"threads must be a positive integer, got {threads!r}.")
    handles = calibration_variants(tasks, synthetic=False)
    if variants is None:
        variants = calibration_variants((), synthetic=True)
    elif not isinstance(variants, dict):
        variants = calibration_variants((), names=list(variants))
    handles.update(variants)
    times = measure_latencies(handles, runtime=runtime, threads=threads, rounds=rounds, seconds=seconds, clock=clock)
    prof = fit_host(handles, dict(zip(times["variant"], times["measured_ms"])), threads=threads, runtime=runtime,
                    clock=clock, save=save)
    times["estimated_ms"] = [estimate(h, prof).latency_ms_est for h in handles.values()]
    times["error"] = times["estimated_ms"] / times["measured_ms"] - 1
    return prof, times


def fit_host(
    handles: dict[str, ModelHandle],
    measured_ms: dict[str, float],
    *,
    threads: int = 1,
    runtime: str = "onnxruntime",
    clock: str = "cpu",
    main_bw: float | None = None,
    save: bool = False,
) -> DeviceProfile:
    """Fit the host profile to latencies already measured (ms per variant); `calibrate_host` measures first.

    Measuring every variant in the same interleaved rounds and fitting on a subset is how
    ``benchmarks/estimator_accuracy.py`` keeps calibration and evaluation under the same machine conditions.
    """
    if len(handles) < 3:
        raise WorkbenchError("Fitting the host profile needs at least 3 variants.")
    missing = [k for k in handles if k not in measured_ms]
    if missing:
        raise WorkbenchError(f"No measured latency for {', '.join(missing)}.")
    main_bw = main_bw or memory_bandwidth()
    base = _uncalibrated_host(threads, main_bw)
    arrays = {k: _Arrays(h, base) for k, h in handles.items()}
    measured = {k: float(measured_ms[k]) / 1e3 for k in handles}
    p = _fit(arrays, measured, main_bw)
    effs = {k: p[f"eff_{k}"] for k in _FIT_KINDS}
    # the peak follows the MAC kinds; norm / element-wise ops are nominal counts, so their figure is only clipped
    scale = max(1.0, *(v for k, v in effs.items() if k not in ("norm", "elementwise")))
    em = p["eff_memory"]
    mem_bw = main_bw * max(1.0, em)
    em = min(1.0, em)
    profile = {
        "efficiency": {"compute": effs["conv"] / scale, "memory": em},
        "kind_efficiency": {k: min(1.0, v / scale) for k, v in effs.items()},
        "layer_overhead_s": p["layer_overhead_s"],
        "kind_overhead_s": p["kind_overhead_s"],
        "tile_rows": p["tile_rows"],
        "serial_fraction": p["serial_fraction"],
        "inference_overhead_s": p["inference_overhead_s"],
        "memory_bandwidth_bytes_s": mem_bw,
        "cache_bandwidth_bytes_s": p["cache_bw_eff"] / em,
        "llc_bandwidth_bytes_s": p["llc_bw_eff"] / em,
    }
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    record = {
        "machine": host_key(), "threads": threads, "runtime": runtime, "clock": clock, "calibrated_at": stamp,
        "peak_scale": scale, "profile": profile,
        "source": (f"fitted by workbench.calibrate_host(runtime={runtime!r}, threads={threads}, "
                   f"clock={clock!r}) on {stamp} from {len(handles)} variants; main memory bandwidth from a "
                   f"128 MB copy ({main_bw / 1e9:.1f} GB/s)"),
        "variants": {k: round(float(v) * 1e3, 6) for k, v in measured.items()},
    }
    if save:
        _write(record)
        return device("host")
    return _apply(base, record)


def _uncalibrated_host(threads: int, main_bw: float) -> DeviceProfile:
    """The host profile with this machine's facts and no calibration (the starting point of a fit)."""
    prof = device("host")
    peak, formula = host_peak(threads=threads)
    cache = prof.cache_bytes // (prof.threads or 1) * threads if prof.cache_bytes else None
    return dataclasses.replace(prof, peak_ops=peak, threads=threads, memory_bandwidth_bytes_s=main_bw,
                               cache_bytes=cache, kind_efficiency={})


def _apply(base: DeviceProfile, record: dict[str, Any]) -> DeviceProfile:
    prof = dict(record["profile"])
    peak = {k: v * record["peak_scale"] for k, v in base.peak_ops.items()}
    return dataclasses.replace(base, peak_ops=peak, **prof)


def _write(record: dict[str, Any]) -> None:
    import os

    import yaml

    path = host_calibration_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text("# Written by workbench.calibrate_host(); delete it to go back to the defaults.\n"
                   + yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
