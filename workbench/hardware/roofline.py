"""Target-device estimates from a device profile and a stated model (a per-layer roofline).

    latency  = t_inference + Σ_rows [ max(C, M) + s·min(C, M) + calls·t_layer[kind] ]
    C        = ops / (peak[dtype] · eff[kind] · M_rows / (M_rows + tile_rows))      compute time
    M        = weight bytes / bandwidth(level) + activation bytes / bandwidth(level)   memory time (x eff_memory)
    energy   = Σ_rows [ ops·e_op[dtype] + bytes·e_byte ] + (P_active − P_idle)·latency      (above idle)
    power(r) = P_idle + energy·r          battery = Wh / power

ops = 2·MACs, plus a nominal few ops per element for normalisations and element-wise kernels. bytes = weights +
input + output activations of the row (an embedding reads only the rows it gathers). Bytes that fit the profile's
cache or last-level cache move at that level's bandwidth (activations per row; weights when the whole model's
weights fit); an MCU that executes from flash reads its weights at the flash bandwidth. s (`serial_fraction`),
`tile_rows`, per-kind efficiencies and overheads are optional profile refinements (0 / absent: the plain roofline
of the design notes). The rows are `profile_layers(handle, functional=True)`: weight layers, attention matmuls and
element-wise glue kernels; BatchNorm is folded into the previous layer (zero cost), as every converter does. A
variant whose dtype the device cannot execute is marked not deployable and gets no numbers.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import LayerQuant, quant_cache_key, quant_record
from workbench.hardware.catalog import device as _device
from workbench.hardware.catalog import devices as _devices
from workbench.hardware.profile import DTYPES, DeviceProfile, off_runtime

FORMULA = (
    "latency = t_inference + Σ_layers[max(2·MACs/(peak[dtype]·eff_kind), bytes/(bandwidth·eff_mem)) "
    "+ calls·t_layer]; bytes = weights + input + output activations (at the bandwidth of the memory level they "
    "fit); "
    "energy = Σ(ops·e_op[dtype] + bytes·e_byte) + (P_active − P_idle)·latency; power(r) = P_idle + energy·r; "
    "battery_h = Wh / power"
)
_ACT_BYTES = {"fp32": 4, "fp16": 2, "int8": 1, "int4": 1}
_WEIGHT_BITS = {"fp32": 32, "fp16": 16, "int8": 8, "int4": 4}
_ALIASES = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bf16": "fp16",
            "bfloat16": "fp16", "uint8": "int8", "qint8": "int8", "uint4": "int4"}
_COMPUTE_KINDS = ("conv", "conv1d", "depthwise", "linear", "attention", "unaligned")
_TABLES: "weakref.WeakKeyDictionary[ModelHandle, tuple]" = weakref.WeakKeyDictionary()  # layer tables per handle


@dataclass(frozen=True)
class Estimate:
    """What a device profile predicts for one model. Every number is an estimate (hence `_est`).

    Attributes:
        device: profile name.
        dtype: executed dtype (``"mixed(int8+fp32)"`` when layers differ).
        latency_ms_est: time for one call of `batch` samples (NaN when not deployable).
        energy_mj_est: energy one inference adds above idle (per sample).
        power_w_est: average power while running inferences back to back.
        power_w_at_rate_est: average power at `rate_hz` inferences per second (NaN without a rate, or when the
            rate exceeds what the device can sustain).
        battery_h_est: hours on `battery_wh` at `rate_hz` (back to back without a rate; NaN without a battery).
        fits: weights + peak activations fit RAM and the weights fit storage (MCU: weights in flash,
            activations in SRAM).
        deployable: the device executes every dtype the variant needs.
        reason: why it is not deployable / does not fit ("" when it is and does).
        formula: the model used.
        weight_bytes / peak_activation_bytes: what the fit check compared.
        layers: the per-layer table (costs in seconds, joules and bytes).
    """

    device: str
    dtype: str
    latency_ms_est: float
    energy_mj_est: float
    power_w_est: float
    power_w_at_rate_est: float
    battery_h_est: float
    fits: bool
    deployable: bool
    reason: str
    formula: str
    weight_bytes: int
    peak_activation_bytes: int
    batch: int = 1
    rate_hz: float | None = None
    battery_wh: float | None = None
    layers: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)

    def to_row(self, *, wide: bool = False) -> dict[str, Any]:
        """A flat record. ``wide=True`` puts the device in every column name: ``latency_ms_est[jetson-nano]``."""
        row = {
            "device": self.device, "dtype_est": self.dtype, "latency_ms_est": self.latency_ms_est,
            "energy_mj_est": self.energy_mj_est, "power_w_est": self.power_w_est,
            "power_w_at_rate_est": self.power_w_at_rate_est, "battery_h_est": self.battery_h_est,
            "fits": self.fits, "deployable": self.deployable, "reason": self.reason, "formula": self.formula,
        }
        if not wide:
            return row
        return {f"{k}[{self.device}]": v for k, v in row.items() if k not in ("device", "formula")}


# ------------------------------------------------------------------------------------------- dtypes


def _norm_dtype(d: Any) -> str:
    d = _ALIASES.get(str(d).lower(), str(d).lower())
    if d not in DTYPES:
        raise WorkbenchError(f"Unknown dtype {d!r}; choose one of {', '.join(DTYPES)}.")
    return d


def _spec_plan(spec: LayerQuant, prof: DeviceProfile, default: str) -> tuple[str, float]:
    """(executed dtype, weight storage bits) for one entry of the variant's quantisation record."""
    if spec.dtype:
        d = _norm_dtype(spec.dtype)
        return d, _WEIGHT_BITS[d]
    bits = float(spec.bits if spec.bits is not None else 32)
    if spec.act_bits == 8 and bits <= 8:
        return ("int4" if bits <= 4 and prof.supports("int4") else "int8"), bits
    return default, bits  # weight-only quantisation: weights stored at `bits`, dequantised to float to compute


def dtype_plan(handle: ModelHandle, table: pd.DataFrame, prof: DeviceProfile, dtype: str | None) -> tuple[list, list]:
    """Per row: executed dtype and weight storage bits."""
    if dtype is not None:
        d = _norm_dtype(dtype)
        return [d] * len(table), [_WEIGHT_BITS[d]] * len(table)
    base = _norm_dtype(handle.meta.get("dtype", "fp32")) if isinstance(handle.meta, dict) else "fp32"
    quant = quant_record(handle)
    specs = quant.by_leaf()
    default = _spec_plan(quant.whole_model, prof, base) if quant.whole_model is not None else (base, None)
    dts, bits = [], []
    for name, wbits in zip(table["layer"], table["weight_bits"]):
        d, b = _spec_plan(specs[name], prof, base) if name in specs else default
        dts.append(d)
        bits.append(b if b is not None else (wbits if wbits else _WEIGHT_BITS[d]))
    return dts, bits


# ------------------------------------------------------------------------------------------- roofline


def model_layers(handle: Any) -> tuple[ModelHandle, pd.DataFrame]:
    from workbench.core.layers import profile_layers

    if not isinstance(handle, ModelHandle):
        inner = getattr(handle, "model", None)
        if not isinstance(inner, ModelHandle):
            raise WorkbenchError(f"estimate() takes a ModelHandle or a Task, got {type(handle).__name__}.")
        handle = inner
    if handle.framework != "torch":
        raise WorkbenchError(
            f"{handle.name}: estimates are computed from the PyTorch model's layers; this is a {handle.framework} "
            "model. Estimate the torch variant it was exported from."
        )
    key = (handle.fingerprint, quant_cache_key(handle))
    cached = _TABLES.get(handle)
    if cached is None or cached[0] != key:
        cached = (key, profile_layers(handle, functional=True))
        _TABLES[handle] = cached
    return handle, cached[1]


def layer_table(handle: Any, device: str | DeviceProfile, *, dtype: str | None = None, batch: int = 1) -> pd.DataFrame:
    """The per-layer cost table behind `estimate` (one row per layer / glue kernel; seconds, joules, bytes)."""
    handle, table = model_layers(handle)
    prof = _device(device)
    dts, bits = dtype_plan(handle, table, prof, dtype)
    return layer_costs(table, prof, dts, bits, batch)


def layer_costs(table: pd.DataFrame, prof: DeviceProfile, dts: list[str], bits: list[float], batch: int) -> pd.DataFrame:
    t = table[["layer", "type", "kind", "calls", "params", "macs"]].copy()
    t["dtype"] = dts
    t["weight_bits"] = bits
    folded = t["type"].str.startswith("BatchNorm").to_numpy()
    act = np.array([_ACT_BYTES[d] for d in dts], float)
    store_bytes = table["params"].to_numpy(float) * np.asarray(bits, float) / 8
    is_emb = (t["kind"] == "embedding").to_numpy()
    w_read = np.where(is_emb, table["output_elems"].to_numpy(float) * act * batch, store_bytes)
    a_bytes = (table["input_elems"].to_numpy(float) + table["output_elems"].to_numpy(float)) * act * batch
    ops = 2.0 * table["macs"].to_numpy(float) * batch + _element_ops(table) * batch
    w_read[folded], a_bytes[folded], ops[folded] = 0, 0, 0
    w_level, a_level = _levels(prof, store_bytes[~folded].sum(), a_bytes)
    bw = _bandwidths(prof)
    t_mem = w_read / bw[w_level] + a_bytes / bw[a_level]
    rows = gemm_rows(table, batch)
    occupancy = tile_occupancy(rows, prof.tile_rows)
    kinds, pad = _kinds(table, prof)
    t["kind"] = kinds
    fallback = min(prof.peak_ops.values())  # glue kernels of a dtype the device lacks run in what it has
    macs = table["macs"].to_numpy()
    peak = np.array([prof.peak_ops.get(d, np.nan if m > 0 else fallback) * _efficiency(prof, k, base)
                     for d, k, base, m in zip(dts, kinds, table["kind"], macs)])
    peak = peak * occupancy * pad
    with np.errstate(invalid="ignore", divide="ignore"):
        t_compute = np.where(ops > 0, ops / peak, 0.0)
    t["ops"], t["weight_read_bytes"], t["activation_bytes"] = ops, w_read, a_bytes
    t["compute_s"], t["memory_s"] = t_compute, t_mem
    t["bound"] = np.where(ops == 0, "memory", np.where(t_compute >= t_mem, "compute", "memory"))
    per_call = np.array([prof.overhead(k) for k in t["kind"]])
    t["overhead_s"] = np.where(folded, 0.0, t["calls"].to_numpy(float) * per_call)
    t["time_s"] = (np.maximum(t_compute, t_mem) + prof.serial_fraction * np.minimum(t_compute, t_mem)
                   + t["overhead_s"])
    e_op = np.array([prof.energy_pj_per_op.get(d, np.nan) for d in dts])
    on_chip = a_bytes * (a_level <= 1) + (w_read if w_level <= 1 else 0.0)
    t["energy_j"] = (ops * e_op + (w_read + a_bytes - on_chip) * prof.energy_pj_per_byte
                     + on_chip * prof.energy_pj_per_byte_cache) * 1e-12
    t["weights_from"] = LEVELS[w_level]
    t["activations_from"] = [LEVELS[i] for i in a_level]
    t["folded"] = folded
    return t


# Nominal arithmetic per element of layers without MACs (normalisations, element-wise glue kernels): a
# transcendental (erf, exp, tanh) costs ~10 ops in a vectorised approximation, a normalisation ~8 (mean, variance,
# scale, shift), plain arithmetic 1. Only their order of magnitude matters: `kind_efficiency` absorbs the rest.
_NORM_OPS_PER_ELEMENT = 8.0
_ELEMENT_OPS = {"gelu": 10, "sigmoid": 10, "tanh": 10, "exp": 10, "erf": 10, "log": 10, "softmax": 10,
                "_softmax": 10, "log_softmax": 10, "_log_softmax": 10, "silu": 10, "mish": 10, "pow": 2, "sqrt": 2,
                "rsqrt": 2, "linalg_vector_norm": 2}


def _element_ops(table: pd.DataFrame) -> np.ndarray:
    """Nominal ops of rows that do no MACs: normalisations and element-wise kernels (per sample)."""
    kind, typ = table["kind"].to_numpy(), table["type"].to_numpy()
    out_elems = table["output_elems"].to_numpy(float)
    per = np.array([_NORM_OPS_PER_ELEMENT if k == "norm" and not str(t).startswith("BatchNorm")
                    else float(_ELEMENT_OPS.get(str(t), 1)) if k == "elementwise" else 0.0
                    for k, t in zip(kind, typ)])
    return per * np.maximum(out_elems, table["input_elems"].to_numpy(float) * (kind == "elementwise"))


LEVELS = ("cache", "llc", "memory", "storage")
"""Where a layer's bytes come from: the profile's cache, its last-level cache, main memory, flash (MCU XIP)."""


def _levels(prof: DeviceProfile, weight_total: float, act_bytes: np.ndarray) -> tuple[int, np.ndarray]:
    """Memory level of the weights (by the model's total weight bytes: they stay resident between inferences
    when they fit) and of each layer's activations (by the layer's own input + output bytes)."""
    def level(nbytes: Any) -> Any:
        out = np.full(np.shape(nbytes), 2)
        if prof.llc_bytes:
            out = np.where(np.asarray(nbytes) <= prof.llc_bytes, 1, out)
        if prof.cache_bytes:
            out = np.where(np.asarray(nbytes) <= prof.cache_bytes, 0, out)
        return out

    if prof.weights_in_storage and prof.storage_bandwidth_bytes_s:
        w = 3
    else:
        w = int(level(weight_total))
    return w, level(act_bytes).astype(int)


def _bandwidths(prof: DeviceProfile) -> np.ndarray:
    """Achieved bandwidth per level (index: `LEVELS`); a missing level falls back to main memory."""
    main = prof.memory_bandwidth_bytes_s
    return prof.efficiency["memory"] * np.array([
        prof.cache_bandwidth_bytes_s or main, prof.llc_bandwidth_bytes_s or main, main,
        prof.storage_bandwidth_bytes_s or main])


def gemm_rows(table: pd.DataFrame, batch: int) -> np.ndarray:
    """Rows of the GEMM a layer amounts to: output positions x batch (output elements / output channels)."""
    out_ch = np.array([float(s[0]) if isinstance(s, tuple) and s else np.nan for s in table["weight_shape"]])
    rows = table["output_elems"].to_numpy(float) * batch / out_ch
    return np.where(np.isfinite(rows) & (table["macs"].to_numpy() > 0), rows, np.inf)


def _alignment(table: pd.DataFrame, prof: DeviceProfile) -> np.ndarray:
    """Per row: 1 for an aligned layer, else the padded fraction of a 2-D convolution whose channel counts are
    not multiples of the profile's `channel_alignment` (those rows become kind ``unaligned``)."""
    a = prof.channel_alignment
    out = np.ones(len(table))
    if not a:
        return out
    for i, (kind, shape) in enumerate(zip(table["kind"], table["weight_shape"])):
        if kind not in ("conv", "depthwise") or not isinstance(shape, tuple) or len(shape) < 4:
            continue
        c_out, c_in = shape[0], (shape[0] if kind == "depthwise" else shape[1])
        bad = [c for c in (c_out, c_in) if c >= a and c % a] + ([c_out] if c_out < a else [])
        if bad:
            out[i] = float(np.prod([c / (math.ceil(c / a) * a) for c in bad]))
    return out


def _efficiency(prof: DeviceProfile, kind: str, base_kind: str) -> float:
    """Compute efficiency of a row; an ``unaligned`` row without its own figure uses its base kind's."""
    if kind == "unaligned" and "unaligned" not in prof.kind_efficiency:
        return prof.compute_efficiency(base_kind)
    return prof.compute_efficiency(kind)


def _kinds(table: pd.DataFrame, prof: DeviceProfile) -> tuple[np.ndarray, np.ndarray]:
    """(kind per row with unaligned convolutions relabelled, efficiency factor from channel padding)."""
    pad = _alignment(table, prof)
    kinds = np.where(pad < 1, "unaligned", table["kind"].to_numpy(object))
    if "unaligned" in prof.kind_efficiency:
        pad = np.ones(len(table))  # the calibrated efficiency already says how slow those layers are
    return kinds, pad


def tile_occupancy(rows: np.ndarray, tile_rows: float) -> np.ndarray:
    """M / (M + R): the filled share of a GEMM tile R rows high (1 for non-GEMM rows or R = 0)."""
    if not tile_rows:
        return np.ones(len(rows))
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(rows), 1.0, rows / (rows + tile_rows))


def estimate(
    handle: Any,
    device: str | DeviceProfile,
    *,
    dtype: str | None = None,
    batch: int = 1,
    rate_hz: float | None = None,
    battery_wh: float | None = None,
    runtime: str | None = None,
) -> Estimate:
    """Estimate latency, energy, power, battery life and fit of a model on a device.

    Args:
        handle: a torch `ModelHandle` (or a `Task`), original or compressed.
        device: a profile name (see `workbench.hardware.devices()`) or a `DeviceProfile`.
        dtype: execute every layer in this dtype (``fp32``, ``fp16``, ``int8``, ``int4``). Default: what the
            handle's compression recorded (its `QuantRecord`: a layer with ``bits`` and 8-bit activations runs
            in int8 (int4 where the device has it), ``bits`` alone is weight-only (float compute, b-bit weights),
            ``dtype="fp16"`` runs fp16), else fp32.
        batch: samples per call.
        rate_hz: inferences per second for `power_w_at_rate_est` and `battery_h_est`.
        battery_wh: battery capacity for `battery_h_est`.
        runtime: the runtime the model would deploy with (``"openvino"``, ``"litert"``, ...): a device whose
            profile does not list it (`DeviceProfile.runs`) gets a not-deployable estimate that says so.

    Returns:
        An `Estimate`; `Estimate.to_row()` gives the columns.

    Example:
        >>> task = workbench.zoo.load("digits-cnn")
        >>> e = workbench.estimate(task.model, "coral-edge-tpu")
        >>> e.deployable, e.reason.split(":")[0]
        (False, 'coral-edge-tpu cannot execute fp32')
    """
    if not isinstance(batch, int) or batch < 1:
        raise WorkbenchError(f"batch must be a positive integer, got {batch!r}.")
    for label, v in (("rate_hz", rate_hz), ("battery_wh", battery_wh)):
        if v is not None and not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
            raise WorkbenchError(f"{label} must be a positive number or None, got {v!r}.")
    handle, table = model_layers(handle)
    prof = _device(device)
    return off_runtime(_estimate(handle, table, prof, dtype, batch, rate_hz, battery_wh), prof, runtime)


def _estimate(handle: Any, table: pd.DataFrame, prof: DeviceProfile, dtype: str | None, batch: int,
              rate_hz: float | None, battery_wh: float | None) -> Estimate:
    dts, bits = dtype_plan(handle, table, prof, dtype)
    costs = layer_costs(table, prof, dts, bits, batch)
    compute_rows = costs[costs["kind"].isin(_COMPUTE_KINDS) & (costs["macs"] > 0)]
    used = sorted(set(compute_rows["dtype"]) or set(dts[:1]), key=DTYPES.index)
    dtype_label = used[0] if len(used) == 1 else "mixed(" + "+".join(used) + ")"
    missing = [d for d in used if not prof.supports(d)]
    store_bytes = int(math.ceil((costs["params"] * costs["weight_bits"] / 8)[~costs["folded"]].sum()))
    act = np.array([_ACT_BYTES[d] for d in dts], float)
    peak_act = int(((table["input_elems"] + table["output_elems"]).to_numpy(float) * act * batch).max()) if len(
        table) else 0
    fits, fit_reason = _fits(prof, store_bytes, peak_act)
    nan = float("nan")
    if missing:
        reason = (f"{prof.name} cannot execute {', '.join(missing)}: it runs {', '.join(prof.dtypes)}. "
                  f"Quantise to {prof.dtypes[0] if len(prof.dtypes) == 1 else 'one of them'} first.")
        weight_only = [e for e in quant_record(handle).entries() if e.bits is not None and not e.act_bits]
        if weight_only and dtype is None:
            reason += (" (Its weights are quantised but its activations are float, so it computes in float; "
                       "quantise activations too, e.g. Quantize(8, activations=8).)")
        if not fits:
            reason += " " + fit_reason
        return Estimate(prof.name, dtype_label, nan, nan, nan, nan, nan, fits, False, reason, FORMULA, store_bytes,
                        peak_act, batch, rate_hz, battery_wh, costs)
    latency = prof.inference_overhead_s + float(costs["time_s"].sum())
    energy = (float(costs["energy_j"].sum()) + (prof.active_w - prof.idle_w) * latency) / batch
    per_inference = latency / batch
    power = prof.idle_w + energy / per_inference
    reason = "" if fits else fit_reason
    power_rate = nan
    if rate_hz is not None:
        if rate_hz * per_inference > 1:
            reason = (reason + " " if reason else "") + (
                f"{rate_hz:g} inferences/s exceeds the estimated throughput ({1 / per_inference:.3g}/s).")
        else:
            power_rate = prof.idle_w + energy * rate_hz
    battery = nan
    if battery_wh is not None:
        p = power_rate if rate_hz is not None else power
        battery = battery_wh / p if p == p and p > 0 else nan
    return Estimate(prof.name, dtype_label, latency * 1e3, energy * 1e3, power, power_rate, battery, fits, True,
                    reason, FORMULA, store_bytes, peak_act, batch, rate_hz, battery_wh, costs)


def _fits(prof: DeviceProfile, weights: int, peak_act: int) -> tuple[bool, str]:
    mb = lambda b: f"{b / 1e6:.3g} MB"
    if prof.weights_in_storage:
        problems = []
        if weights > prof.storage_bytes:
            problems.append(f"weights ({mb(weights)}) exceed the {mb(prof.storage_bytes)} flash")
        if peak_act > prof.ram_bytes:
            problems.append(f"peak activations ({mb(peak_act)}) exceed the {mb(prof.ram_bytes)} SRAM")
        return not problems, ("Does not fit: " + "; ".join(problems) + ".") if problems else ""
    problems = []
    if weights + peak_act > prof.ram_bytes:
        problems.append(f"weights + peak activations ({mb(weights + peak_act)}) exceed the {mb(prof.ram_bytes)} RAM")
    if weights > prof.storage_bytes:
        problems.append(f"weights ({mb(weights)}) exceed the {mb(prof.storage_bytes)} storage")
    return not problems, ("Does not fit: " + "; ".join(problems) + ".") if problems else ""


def estimates(
    handle: Any,
    devices: Iterable[str | DeviceProfile] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """`estimate` on several devices (default: all profiles), one row each (`Estimate.to_row`).

    Example:
        >>> df = estimates(task.model, ["raspberry-pi-4", "jetson-orin-nano"])
        >>> list(df.device)
        ['raspberry-pi-4', 'jetson-orin-nano']
    """
    names = list(devices) if devices is not None else list(_devices().values())
    return pd.DataFrame([estimate(handle, d, **kwargs).to_row() for d in names])
