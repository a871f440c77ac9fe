"""Device profiles: what a target can compute, move, hold and draw, every figure with its source.

Profiles are YAML files (schema in ``data/devices/README.md``): the bundled ones in ``data/devices/``, plus any
folder listed in ``$WORKBENCH_DEVICES`` (``os.pathsep``-separated) or passed as ``extra_dirs`` — drop a file
there to add a board. A file is validated when it is read; an invalid one raises a `WorkbenchError` naming the
file and the field. The ``host`` profile describes this machine: its peak comes from ``/proc/cpuinfo`` and its
efficiencies from `workbench.calibrate_host`, which writes ``<cache>/host_profile.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError

DTYPES = ("fp32", "fp16", "int8", "int4")
"""Execution dtypes a profile may list (an op is one multiply or one add; a MAC is two ops)."""
DEVICE_KINDS = ("cpu", "gpu", "npu", "tpu", "mcu")
LAYER_KINDS = ("conv", "conv1d", "depthwise", "linear", "attention", "unaligned", "norm", "elementwise")
RUNTIME_ALIASES: dict[str, tuple[str, ...]] = {
    "torch": ("pytorch", "torch"),
    "onnxruntime": ("onnxruntime", "onnxruntime-qnn"),
    # LiteRT's flatbuffer is what TFLite Micro (microcontrollers) and the Edge TPU delegate run
    "litert": ("litert", "tflite", "tflite-micro", "tflite-edgetpu"),
    "tflite_runtime": ("tflite",),
    "openvino": ("openvino",),
    "executorch": ("executorch",),
}
"""The workbench runtime -> the names in a profile's ``runtimes`` list that mean a device runs it."""
OVERHEAD_KINDS = LAYER_KINDS + ("embedding", "norm", "elementwise", "other")
"""Layer kinds that `kind_efficiency` may set (see `workbench.core.layers.KINDS`)."""

# Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm at 0.9 V.
# Per op = (add + multiply) / 2, since a MAC is one of each (2 ops). int4: multiply energy ~ width^2 (0.2/4),
# add ~ width (0.03/2) — an extrapolation, not a Horowitz figure.
HOROWITZ_45NM_PJ_PER_OP = {"fp32": (0.9 + 3.7) / 2, "fp16": (0.4 + 1.1) / 2, "int8": (0.03 + 0.2) / 2,
                           "int4": (0.015 + 0.05) / 2}
HOROWITZ_DRAM_PJ_PER_BYTE = (1.3e3 + 2.6e3) / 2 / 8     # 64-bit DRAM access 1.3–2.6 nJ, midpoint, per byte
HOROWITZ_SRAM_PJ_PER_BYTE_45NM = 100.0 / 8              # 1 MB SRAM/cache, 64-bit access 100 pJ, per byte
HOROWITZ = "Horowitz, 'Computing's energy problem', ISSCC 2014 (45 nm, 0.9 V)"

_REQUIRED = ("name", "display_name", "kind", "process_nm", "peak_ops", "efficiency", "memory_bandwidth_bytes_s",
             "ram_bytes", "storage_bytes", "power", "layer_overhead_s", "dtypes", "runtimes", "sources")
_OPTIONAL = ("energy", "cache_bytes", "cache_bandwidth_bytes_s", "llc_bytes", "llc_bandwidth_bytes_s",
             "storage_bandwidth_bytes_s", "weights_in_storage", "memory_type", "inference_overhead_s",
             "kind_overhead_s", "tile_rows", "channel_alignment", "serial_fraction", "kind_efficiency", "threads",
             "compute_units", "dvfs", "notes")
# Every number in a file needs a source: these keys (or their parent) must appear under `sources`.
_SOURCED_SCALARS = ("process_nm", "memory_bandwidth_bytes_s", "ram_bytes", "storage_bytes", "layer_overhead_s",
                    "cache_bytes", "cache_bandwidth_bytes_s", "llc_bytes", "llc_bandwidth_bytes_s",
                    "storage_bandwidth_bytes_s", "inference_overhead_s",
                    "tile_rows", "channel_alignment", "serial_fraction", "dtypes", "dvfs")


@dataclass(frozen=True)
class OperatingPoint:
    """One DVFS operating point: clock frequency (MHz) and supply voltage (V)."""

    freq_mhz: float
    volt: float


@dataclass(frozen=True)
class DeviceProfile:
    """One target device. Units: ops/s, bytes, bytes/s, W, pJ, s.

    Attributes:
        name: short id used by code (``"raspberry-pi-4"``); the file stem.
        display_name: human name with the key specs.
        kind: ``cpu``, ``gpu``, ``npu``, ``tpu`` or ``mcu``.
        process_nm: silicon process node (scales the default energy per op).
        peak_ops: peak ops/s per dtype (one op = one multiply or one add; a MAC is 2 ops).
        efficiency: typical achieved fraction of peak: ``{"compute": c, "memory": m}``.
        memory_bandwidth_bytes_s: main-memory bandwidth (theoretical).
        ram_bytes: memory for weights + activations (activations only when `weights_in_storage`).
        storage_bytes: storage for the model file (flash / SD / eMMC).
        idle_w / active_w: board power when idle and when busy.
        energy_pj_per_op: energy per op per dtype; energy_pj_per_byte / energy_pj_per_byte_cache: per byte moved.
        layer_overhead_s: fixed cost per layer kernel (convolution, matmul, norm, ...).
        kind_overhead_s: optional fixed cost per kernel for some kinds (e.g. ``elementwise``), overriding
            `layer_overhead_s` for them.
        inference_overhead_s: fixed cost per inference (invoke, transfers).
        dtypes / runtimes: what it can execute and with which runtimes (`runs` maps the workbench's runtime names
            onto this list, `RUNTIME_ALIASES`).
        cache_bytes / cache_bandwidth_bytes_s: optional cache level (data that fits is served at that bandwidth).
        llc_bytes / llc_bandwidth_bytes_s: optional last-level cache between the cache and main memory.
        storage_bandwidth_bytes_s: read bandwidth of the weights when `weights_in_storage` (MCU execute-in-place).
        weights_in_storage: weights stay in flash (MCUs): RAM must hold the activations only.
        kind_efficiency: optional fraction of peak per layer kind (overrides `efficiency["compute"]`).
        serial_fraction: optional share s of the shorter of a layer's compute and memory time that does not overlap
            the longer: time = max(c, m) + s·min(c, m) (0, the pure roofline, by default).
        tile_rows: optional GEMM tile height R: a layer whose GEMM has M rows (output positions x batch) gets
            M / (M + R) of its efficiency, modelling under-filled register tiles / systolic arrays (0: off).
        channel_alignment: optional channel block size a (SIMD lanes, NPU array width). A 2-D convolution whose
            channel counts are not multiples of a is of kind ``unaligned``: it runs at
            ``kind_efficiency["unaligned"]`` when the profile gives one, else at its own kind's efficiency x the
            padded fraction C / (ceil(C / a) x a).
        threads: cores the peak assumes (host profile).
        dvfs: optional DVFS operating points, ascending in frequency; the highest is the clock the peak figures
            assume (used by `workbench.plan.scheduling`).
        leakage_w: optional static (leakage) power the computing core adds above `idle_w` at the top DVFS point
            (part of ``active_w - idle_w``); `workbench.hardware.duty` scales it with the voltage. None: unknown.
        sleep_mode: the deep-sleep / power-gated state (``"Standby"``, ``"deep sleep"``), ``"none"`` where the
            board has none (idle is the floor), None where the profile does not say.
        sleep_w / wake_ms / wake_mj: that state's power, the time to wake from it and the energy one wake-up
            costs; None where unknown (estimates then say so instead of sleeping).
        sources: figure key (dotted) -> citation.
        path: the file it came from.
    """

    name: str
    display_name: str
    kind: str
    process_nm: float
    peak_ops: dict[str, float]
    efficiency: dict[str, float]
    memory_bandwidth_bytes_s: float
    ram_bytes: int
    storage_bytes: int
    idle_w: float
    active_w: float
    energy_pj_per_op: dict[str, float]
    energy_pj_per_byte: float
    energy_pj_per_byte_cache: float
    layer_overhead_s: float
    dtypes: tuple[str, ...]
    runtimes: tuple[str, ...]
    sources: dict[str, str]
    inference_overhead_s: float = 0.0
    kind_overhead_s: dict[str, float] = field(default_factory=dict)
    tile_rows: float = 0.0
    serial_fraction: float = 0.0
    channel_alignment: int | None = None
    cache_bytes: int | None = None
    cache_bandwidth_bytes_s: float | None = None
    llc_bytes: int | None = None
    llc_bandwidth_bytes_s: float | None = None
    storage_bandwidth_bytes_s: float | None = None
    weights_in_storage: bool = False
    memory_type: str = "dram"
    kind_efficiency: dict[str, float] = field(default_factory=dict)
    threads: int | None = None
    compute_units: dict[str, str] = field(default_factory=dict)
    dvfs: tuple[OperatingPoint, ...] = ()
    leakage_w: float | None = None
    sleep_mode: str | None = None
    sleep_w: float | None = None
    wake_ms: float | None = None
    wake_mj: float | None = None
    notes: str = ""
    path: Path | None = field(default=None, compare=False)

    def supports(self, dtype: str) -> bool:
        """Whether the device executes `dtype` (it is listed and has a peak)."""
        return dtype in self.dtypes and dtype in self.peak_ops

    def runs(self, runtime: str) -> bool:
        """Whether the device runs the workbench runtime `runtime` (its ``runtimes`` list names it or an alias,
        `RUNTIME_ALIASES`: ``litert`` on a TFLite Micro board, ``torch`` where PyTorch is listed).

        Example:
            >>> from workbench.hardware import device
            >>> device("raspberry-pi-5").runs("executorch"), device("stm32h7").runs("openvino")
            (True, False)
        """
        return any(r in self.runtimes for r in RUNTIME_ALIASES.get(runtime, (runtime,)))

    def runtime_gap(self, runtime: str | None) -> str:
        """Why `runtime` cannot deploy to this device, in words ("" when it can, or when no runtime is named)."""
        if runtime is None or self.runs(runtime):
            return ""
        return f"{self.name} does not run {runtime}: its runtimes are {', '.join(self.runtimes)}."

    def overhead(self, kind: str) -> float:
        """Fixed cost per kernel of a layer kind (`kind_overhead_s`, else `layer_overhead_s`)."""
        return float(self.kind_overhead_s.get(kind, self.layer_overhead_s))

    def compute_efficiency(self, kind: str) -> float:
        """Achieved fraction of peak for a layer kind (`kind_efficiency`, else `efficiency["compute"]`)."""
        return float(self.kind_efficiency.get(kind, self.efficiency["compute"]))

    def source(self, key: str) -> str | None:
        """The citation for a figure (dotted key), falling back to its parent key."""
        while key:
            if key in self.sources:
                return self.sources[key]
            key = key.rpartition(".")[0]
        return None

    def to_dict(self) -> dict[str, Any]:
        """The profile in the YAML schema (energy filled in), e.g. to save a modified copy."""
        return {
            "name": self.name, "display_name": self.display_name, "kind": self.kind, "process_nm": self.process_nm,
            "peak_ops": dict(self.peak_ops), "efficiency": dict(self.efficiency),
            "memory_bandwidth_bytes_s": self.memory_bandwidth_bytes_s, "ram_bytes": self.ram_bytes,
            "storage_bytes": self.storage_bytes, "power": self._power_dict(),
            "energy": {"per_op_pj": dict(self.energy_pj_per_op), "per_byte_pj": self.energy_pj_per_byte,
                       "per_byte_cache_pj": self.energy_pj_per_byte_cache},
            "layer_overhead_s": self.layer_overhead_s, "inference_overhead_s": self.inference_overhead_s,
            **({"kind_overhead_s": dict(self.kind_overhead_s)} if self.kind_overhead_s else {}),
            **({"tile_rows": self.tile_rows} if self.tile_rows else {}),
            **({"serial_fraction": self.serial_fraction} if self.serial_fraction else {}),
            **({"channel_alignment": self.channel_alignment} if self.channel_alignment else {}),
            **({"cache_bytes": self.cache_bytes} if self.cache_bytes else {}),
            **({"cache_bandwidth_bytes_s": self.cache_bandwidth_bytes_s} if self.cache_bandwidth_bytes_s else {}),
            **({"llc_bytes": self.llc_bytes, "llc_bandwidth_bytes_s": self.llc_bandwidth_bytes_s}
               if self.llc_bytes else {}),
            **({"storage_bandwidth_bytes_s": self.storage_bandwidth_bytes_s}
               if self.storage_bandwidth_bytes_s else {}),
            "weights_in_storage": self.weights_in_storage, "memory_type": self.memory_type,
            **({"kind_efficiency": dict(self.kind_efficiency)} if self.kind_efficiency else {}),
            **({"threads": self.threads} if self.threads else {}),
            **({"compute_units": dict(self.compute_units)} if self.compute_units else {}),
            **({"dvfs": [{"freq_mhz": p.freq_mhz, "volt": p.volt} for p in self.dvfs]} if self.dvfs else {}),
            "dtypes": list(self.dtypes), "runtimes": list(self.runtimes), "sources": dict(self.sources),
            **({"notes": self.notes} if self.notes else {}),
        }


    def _power_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"idle_w": self.idle_w, "active_w": self.active_w}
        if self.leakage_w is not None:
            out["leakage_w"] = self.leakage_w
        if self.sleep_mode == "none":
            out["sleep"] = "none"
        elif self.sleep_mode is not None:
            out["sleep"] = {"mode": self.sleep_mode, **{k: v for k, v in (("power_w", self.sleep_w),
                            ("wake_ms", self.wake_ms), ("wake_mj", self.wake_mj)) if v is not None}}
        return out

    @property
    def can_sleep(self) -> bool:
        """Whether the profile gives a sleep state with every figure a duty-cycle estimate needs."""
        return self.sleep_mode not in (None, "none") and None not in (self.sleep_w, self.wake_ms, self.wake_mj)


def off_runtime(estimate: Any, profile: DeviceProfile, runtime: str | None) -> Any:
    """`estimate` (an `Estimate` or `LMEstimate`) as not deployable when `profile` does not run `runtime`: every
    ``*_est`` figure NaN, `deployable` and `fits` False, the reason said first. Unchanged when it runs there."""
    import dataclasses

    gap = profile.runtime_gap(runtime)
    if not gap:
        return estimate
    nan = {f.name: math.nan for f in dataclasses.fields(estimate) if f.name.endswith("_est")}
    reason = gap + (f" {estimate.reason}" if estimate.reason else "")
    return dataclasses.replace(estimate, **nan, fits=False, deployable=False, reason=reason)


# --------------------------------------------------------------------------------------------- parsing


class _Checker:
    """Validation helpers that name the file and the field in every message."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, msg: str) -> None:
        raise WorkbenchError(f"{self.where}: field '{key}' {msg}")

    def positive(self, key: str, v: Any, *, integer: bool = False, upper: float | None = None) -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        if not ok or (upper is not None and v > upper):
            rng = f"in (0, {upper}]" if upper is not None else "a positive number"
            self.fail(key, f"must be {rng}, got {v!r}")
        return int(v) if integer else float(v)

    def non_negative(self, key: str, v: Any) -> float:
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0):
            self.fail(key, f"must be a number >= 0, got {v!r}")
        return float(v)

    def mapping(self, key: str, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict) or not v:
            self.fail(key, f"must be a non-empty mapping, got {v!r}")
        return v

    def text(self, key: str, v: Any) -> str:
        if not isinstance(v, str) or not v.strip():
            self.fail(key, f"must be a non-empty string, got {v!r}")
        return v.strip()

    def dtype_keys(self, key: str, d: dict[str, Any]) -> None:
        for k in d:
            if k not in DTYPES:
                self.fail(f"{key}.{k}", f"is an unknown dtype {k!r}; allowed: {', '.join(DTYPES)}")


def parse_profile(data: Any, *, where: str, name: str | None = None, path: Path | None = None) -> DeviceProfile:
    """Validate one profile (already-loaded YAML) and build a `DeviceProfile`.

    Raises:
        WorkbenchError: ``"<where>: field '<key>' ..."`` for the first problem found.
    """
    c = _Checker(where)
    if not isinstance(data, dict):
        raise WorkbenchError(f"{where}: a device profile must be a YAML mapping of fields, got {type(data).__name__}.")
    for key in _REQUIRED:
        if key not in data:
            c.fail(key, "is missing (required fields: " + ", ".join(_REQUIRED) + ")")
    for key in data:
        if key not in _REQUIRED and key not in _OPTIONAL:
            c.fail(key, "is not a profile field (allowed: " + ", ".join(_REQUIRED + _OPTIONAL) + ")")
    pname = c.text("name", data["name"])
    if name is not None and pname != name:
        c.fail("name", f"is {pname!r} but the file is named {name}.yaml; make them the same")
    kind = c.text("kind", data["kind"])
    if kind not in DEVICE_KINDS:
        c.fail("kind", f"is {kind!r}; allowed: {', '.join(DEVICE_KINDS)}")
    dtypes = data["dtypes"]
    if not isinstance(dtypes, list) or not dtypes:
        c.fail("dtypes", f"must be a non-empty list of dtypes, got {dtypes!r}")
    for d in dtypes:
        if d not in DTYPES:
            c.fail("dtypes", f"has an unknown dtype {d!r}; allowed: {', '.join(DTYPES)}")
    peak = c.mapping("peak_ops", data["peak_ops"])
    c.dtype_keys("peak_ops", peak)
    peak = {k: c.positive(f"peak_ops.{k}", v) for k, v in peak.items()}
    for d in dtypes:
        if d not in peak:
            c.fail("peak_ops", f"has no entry for {d!r}, which 'dtypes' lists")
    eff = c.mapping("efficiency", data["efficiency"])
    for k in ("compute", "memory"):
        if k not in eff:
            c.fail(f"efficiency.{k}", "is missing")
    for k in eff:
        if k not in ("compute", "memory"):
            c.fail(f"efficiency.{k}", "is not an efficiency (allowed: compute, memory)")
    eff = {k: c.positive(f"efficiency.{k}", v, upper=1.0) for k, v in eff.items()}
    kind_eff = data.get("kind_efficiency") or {}
    if not isinstance(kind_eff, dict):
        c.fail("kind_efficiency", f"must be a mapping of layer kind to efficiency, got {kind_eff!r}")
    for k, v in kind_eff.items():
        if k not in LAYER_KINDS:
            c.fail(f"kind_efficiency.{k}", f"is not a layer kind (allowed: {', '.join(LAYER_KINDS)})")
        c.positive(f"kind_efficiency.{k}", v, upper=1.0)
    kind_over = data.get("kind_overhead_s") or {}
    if not isinstance(kind_over, dict):
        c.fail("kind_overhead_s", f"must be a mapping of layer kind to seconds, got {kind_over!r}")
    for k, v in kind_over.items():
        if k not in OVERHEAD_KINDS:
            c.fail(f"kind_overhead_s.{k}", f"is not a layer kind (allowed: {', '.join(OVERHEAD_KINDS)})")
        c.non_negative(f"kind_overhead_s.{k}", v)
    power = c.mapping("power", data["power"])
    for k in ("idle_w", "active_w"):
        if k not in power:
            c.fail(f"power.{k}", "is missing")
    idle = c.non_negative("power.idle_w", power["idle_w"])
    active = c.positive("power.active_w", power["active_w"])
    if active < idle:
        c.fail("power.active_w", f"({active} W) is below power.idle_w ({idle} W)")
    sleep = _sleep(c, power, idle, active)
    runtimes = data["runtimes"]
    if not isinstance(runtimes, list) or not runtimes or not all(isinstance(r, str) and r for r in runtimes):
        c.fail("runtimes", f"must be a non-empty list of runtime names, got {runtimes!r}")
    memory_type = data.get("memory_type", "dram")
    if memory_type not in ("dram", "sram"):
        c.fail("memory_type", f"is {memory_type!r}; allowed: dram, sram")
    process = c.positive("process_nm", data["process_nm"])
    energy = _energy(c, data.get("energy"), process, memory_type)
    sources = c.mapping("sources", data["sources"])
    for k, v in sources.items():
        text = c.text(f"sources.{k}", v)
        if text.lower().rstrip(":. ") in ("estimate", "assumption", "derived", "tbd", "todo", "?"):
            c.fail(f"sources.{k}", f"says only {text!r}: give the citation, or the rationale after 'estimate: '")
    _check_sources(c, data, sources)
    weights_in_storage = data.get("weights_in_storage", False)
    if not isinstance(weights_in_storage, bool):
        c.fail("weights_in_storage", f"must be true or false, got {weights_in_storage!r}")
    opt = {k: c.positive(k, data[k]) for k in ("cache_bandwidth_bytes_s", "storage_bandwidth_bytes_s",
                                               "llc_bandwidth_bytes_s") if data.get(k) is not None}
    for size, bw in (("cache_bytes", "cache_bandwidth_bytes_s"), ("llc_bytes", "llc_bandwidth_bytes_s")):
        if (data.get(size) is None) != (data.get(bw) is None):
            c.fail(bw if data.get(size) is not None else size,
                   f"must be given together with {size if data.get(size) is None else bw}")
    threads = data.get("threads")
    if threads is not None:
        c.positive("threads", threads, integer=True)
    units = data.get("compute_units") or {}
    if not isinstance(units, dict):
        c.fail("compute_units", f"must map dtypes to a description, got {units!r}")
    c.dtype_keys("compute_units", units)
    return DeviceProfile(
        name=pname,
        display_name=c.text("display_name", data["display_name"]),
        kind=kind,
        process_nm=process,
        peak_ops=peak,
        efficiency=eff,
        memory_bandwidth_bytes_s=c.positive("memory_bandwidth_bytes_s", data["memory_bandwidth_bytes_s"]),
        ram_bytes=c.positive("ram_bytes", data["ram_bytes"], integer=True),
        storage_bytes=c.positive("storage_bytes", data["storage_bytes"], integer=True),
        idle_w=idle,
        active_w=active,
        energy_pj_per_op=energy["per_op_pj"],
        energy_pj_per_byte=energy["per_byte_pj"],
        energy_pj_per_byte_cache=energy["per_byte_cache_pj"],
        layer_overhead_s=c.non_negative("layer_overhead_s", data["layer_overhead_s"]),
        inference_overhead_s=c.non_negative("inference_overhead_s", data.get("inference_overhead_s", 0.0)),
        kind_overhead_s={k: float(v) for k, v in kind_over.items()},
        tile_rows=c.non_negative("tile_rows", data.get("tile_rows", 0.0)),
        serial_fraction=_fraction(c, data.get("serial_fraction", 0.0)),
        channel_alignment=(c.positive("channel_alignment", data["channel_alignment"], integer=True)
                           if data.get("channel_alignment") is not None else None),
        dtypes=tuple(dtypes),
        runtimes=tuple(runtimes),
        sources={**_derived_sources(data, process), **{str(k): str(v) for k, v in sources.items()}},
        cache_bytes=c.positive("cache_bytes", data["cache_bytes"], integer=True) if data.get("cache_bytes") else None,
        cache_bandwidth_bytes_s=opt.get("cache_bandwidth_bytes_s"),
        llc_bytes=c.positive("llc_bytes", data["llc_bytes"], integer=True) if data.get("llc_bytes") else None,
        llc_bandwidth_bytes_s=opt.get("llc_bandwidth_bytes_s"),
        storage_bandwidth_bytes_s=opt.get("storage_bandwidth_bytes_s"),
        weights_in_storage=weights_in_storage,
        memory_type=memory_type,
        kind_efficiency={k: float(v) for k, v in kind_eff.items()},
        threads=int(threads) if threads is not None else None,
        compute_units={k: str(v) for k, v in units.items()},
        dvfs=_dvfs(c, data.get("dvfs")),
        **sleep,
        notes=str(data.get("notes", "")).strip(),
        path=path,
    )


_POWER_KEYS = ("idle_w", "active_w", "leakage_w", "sleep")
_SLEEP_KEYS = ("mode", "power_w", "wake_ms", "wake_mj")


def _sleep(c: _Checker, power: dict[str, Any], idle: float, active: float) -> dict[str, Any]:
    """Optional ``power.leakage_w`` and ``power.sleep`` (``none``, or ``{mode, power_w, wake_ms, wake_mj}`` with
    any figure left out where it is unknown): leakage within the busy power, sleep power at most idle power."""
    for k in power:
        if k not in _POWER_KEYS:
            c.fail(f"power.{k}", f"is not a power figure (allowed: {', '.join(_POWER_KEYS)})")
    out: dict[str, Any] = {}
    if power.get("leakage_w") is not None:
        leak = c.non_negative("power.leakage_w", power["leakage_w"])
        if leak > active - idle + 1e-12:
            c.fail("power.leakage_w", f"({leak} W) exceeds power.active_w - power.idle_w ({active - idle:g} W): "
                                      "leakage is part of the power computing adds above idle")
        out["leakage_w"] = leak
    sleep = power.get("sleep")
    if sleep is None:
        return out
    if isinstance(sleep, str) and sleep.strip().lower() == "none":
        return {**out, "sleep_mode": "none"}
    if not isinstance(sleep, dict) or "mode" not in sleep:
        c.fail("power.sleep", f"must be 'none' (no deep sleep: idle is the floor) or a mapping with mode and any of "
                              f"power_w, wake_ms, wake_mj, got {sleep!r}")
    for k in sleep:
        if k not in _SLEEP_KEYS:
            c.fail(f"power.sleep.{k}", f"is not a sleep figure (allowed: {', '.join(_SLEEP_KEYS)})")
    out["sleep_mode"] = c.text("power.sleep.mode", sleep["mode"])
    for k, attr in (("power_w", "sleep_w"), ("wake_ms", "wake_ms"), ("wake_mj", "wake_mj")):
        if sleep.get(k) is not None:
            out[attr] = c.non_negative(f"power.sleep.{k}", sleep[k])
    if out.get("sleep_w", 0.0) > idle:
        c.fail("power.sleep.power_w", f"({out['sleep_w']} W) is above power.idle_w ({idle} W): a sleep state "
                                      "draws at most the idle power")
    return out


def _dvfs(c: _Checker, points: Any) -> tuple[OperatingPoint, ...]:
    """Optional DVFS table: a list of ``{freq_mhz, volt}``; frequencies distinct, voltage non-decreasing with them."""
    if points is None:
        return ()
    if not isinstance(points, list) or not points:
        c.fail("dvfs", f"must be a non-empty list of {{freq_mhz, volt}} operating points, got {points!r}")
    out = []
    for i, p in enumerate(points):
        if not isinstance(p, dict) or set(p) != {"freq_mhz", "volt"}:
            c.fail(f"dvfs[{i}]", f"must be a mapping with exactly freq_mhz and volt, got {p!r}")
        out.append(OperatingPoint(c.positive(f"dvfs[{i}].freq_mhz", p["freq_mhz"]),
                                  c.positive(f"dvfs[{i}].volt", p["volt"], upper=5.0)))
    out.sort(key=lambda p: p.freq_mhz)
    for a, b in zip(out, out[1:]):
        if a.freq_mhz == b.freq_mhz:
            c.fail("dvfs", f"lists {a.freq_mhz:g} MHz twice")
        if b.volt < a.volt:
            c.fail("dvfs", f"has {b.freq_mhz:g} MHz at {b.volt:g} V, below {a.volt:g} V at {a.freq_mhz:g} MHz; "
                           "a higher clock never needs a lower voltage")
    return tuple(out)


def _fraction(c: _Checker, v: Any) -> float:
    v = c.non_negative("serial_fraction", v)
    if v > 1:
        c.fail("serial_fraction", f"must be in [0, 1], got {v!r}")
    return v


def _energy(c: _Checker, energy: Any, process_nm: float, memory_type: str) -> dict[str, Any]:
    """Energy figures: the file's, else Horowitz 45 nm scaled linearly by process_nm / 45 (logic and SRAM).

    DRAM energy per byte is not scaled (it is dominated by the interface and the DRAM array, not the SoC node).
    """
    scale = process_nm / 45.0
    sram = HOROWITZ_SRAM_PJ_PER_BYTE_45NM * scale
    out = {
        "per_op_pj": {d: e * scale for d, e in HOROWITZ_45NM_PJ_PER_OP.items()},
        "per_byte_pj": HOROWITZ_DRAM_PJ_PER_BYTE if memory_type == "dram" else sram,
        "per_byte_cache_pj": sram,
    }
    if energy is None:
        return out
    energy = c.mapping("energy", energy)
    for k in energy:
        if k not in ("per_op_pj", "per_byte_pj", "per_byte_cache_pj"):
            c.fail(f"energy.{k}", "is not an energy figure (allowed: per_op_pj, per_byte_pj, per_byte_cache_pj)")
    if "per_op_pj" in energy:
        ops = c.mapping("energy.per_op_pj", energy["per_op_pj"])
        c.dtype_keys("energy.per_op_pj", ops)
        out["per_op_pj"] = {**out["per_op_pj"], **{k: c.positive(f"energy.per_op_pj.{k}", v) for k, v in ops.items()}}
    for k in ("per_byte_pj", "per_byte_cache_pj"):
        if k in energy:
            out[k] = c.positive(f"energy.{k}", energy[k])
    return out


def _derived_sources(data: dict[str, Any], process_nm: float) -> dict[str, str]:
    """Citations for the energy figures the loader derives when a file does not give them."""
    given = data.get("energy") or {}
    scale = f"x (process_nm / 45) = x {process_nm / 45:.3g}"
    out = {}
    if "per_op_pj" not in given:
        out["energy.per_op_pj"] = (f"derived: {HOROWITZ}, per op = (add + mult) / 2 {scale}; int4 extrapolated "
                                   "from int8 (mult ~ width^2, add ~ width)")
    if "per_byte_pj" not in given:
        out["energy.per_byte_pj"] = (
            f"derived: {HOROWITZ}, 64-bit DRAM access 1.3-2.6 nJ (midpoint) / 8 bytes, not scaled by node"
            if data.get("memory_type", "dram") == "dram"
            else f"derived: {HOROWITZ}, 1 MB SRAM 64-bit access 100 pJ / 8 bytes {scale}")
    if "per_byte_cache_pj" not in given:
        out["energy.per_byte_cache_pj"] = f"derived: {HOROWITZ}, 1 MB SRAM 64-bit access 100 pJ / 8 bytes {scale}"
    return out


def _check_sources(c: _Checker, data: dict[str, Any], sources: dict[str, Any]) -> None:
    def has(key: str) -> bool:
        while key:
            if key in sources:
                return True
            key = key.rpartition(".")[0]
        return False

    needed = [k for k in _SOURCED_SCALARS if data.get(k) is not None]
    needed += [f"peak_ops.{k}" for k in data["peak_ops"]]
    needed += [f"efficiency.{k}" for k in data["efficiency"]]
    needed += [f"power.{k}" for k in data["power"]]
    sleep = data["power"].get("sleep")
    if isinstance(sleep, dict):
        needed += [f"power.sleep.{k}" for k in sleep if k != "mode"]
    needed += [f"kind_efficiency.{k}" for k in (data.get("kind_efficiency") or {})]
    needed += [f"kind_overhead_s.{k}" for k in (data.get("kind_overhead_s") or {})]
    energy = data.get("energy") or {}
    needed += [f"energy.{k}" for k in energy]
    for key in needed:
        if not has(key):
            c.fail(f"sources.{key}", f"is missing: every figure needs a source (datasheet, vendor page, paper, or "
                                     f"'estimate: <rationale>'); add `{key}: ...` under `sources`")


# --------------------------------------------------------------------------------------------- loading


def read_yaml(path: Path) -> Any:
    import yaml

    try:
        with path.open(encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise WorkbenchError(f"{path.name}: not valid YAML ({str(e).splitlines()[0]}).") from e
    except OSError as e:
        raise WorkbenchError(f"{path}: cannot read the device profile ({e.strerror}).") from e


