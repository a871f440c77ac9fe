"""The one palette and the words on every axis: colours, marker symbols, axis labels with units, layout.

Every figure of `workbench.viz` colours bit-widths, structures, runtimes and devices from these tables, labels an
axis with `axis_label` (which says whether a column is measured or an estimate) and starts from `LAYOUT`.

Example:
    >>> color_of("bits", 8) == BITS_COLORS[8]
    True
    >>> short_label("latency_ms_p50")
    'median latency'
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Mapping, Sequence

import numpy as np

# ------------------------------------------------------------------------------------------- palette

BITS_COLORS: dict[int, str] = {32: "#4C78A8", 16: "#72B7B2", 8: "#54A24B", 4: "#F58518", 2: "#E45756"}
"""Weight bit-width → colour (32 = float, 16 = fp16). Other widths (mixed precision) use `OTHER_COLOR`."""
BITS_NAMES: dict[int, str] = {32: "32-bit float", 16: "16-bit float", 8: "8-bit", 4: "4-bit", 2: "2-bit"}
STRUCTURE_COLORS: dict[str, str] = {"none": "#79706E", "unstructured": "#B279A2", "channel": "#EECA3B",
                                    "2:4": "#FF9DA6"}
STRUCTURE_SYMBOLS: dict[str, str] = {"none": "circle", "unstructured": "diamond", "channel": "square",
                                     "2:4": "triangle-up"}
"""Pruning structure → marker symbol (``"none"``: not pruned). Hollow (``-open``) means simulated."""
STRUCTURE_NAMES: dict[str, str] = {"none": "not pruned", "unstructured": "unstructured", "channel": "channel",
                                   "2:4": "2:4"}
RUNTIME_COLORS: dict[str, str] = {"torch": "#D62728", "onnxruntime": "#1F77B4", "litert": "#FF7F0E",
                                  "openvino": "#6F4E9C", "executorch": "#17A398", "tflite_runtime": "#BCBD22"}
RUNTIME_NAMES: dict[str, str] = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "litert": "LiteRT",
                                 "openvino": "OpenVINO", "executorch": "ExecuTorch", "tflite_runtime": "tflite-runtime"}
"""Runtime → the name people know it by (figures, tables, sentences); figures list runtimes in this order."""
DEVICE_COLORS: dict[str, str] = {
    "host": "#1F77B4", "raspberry-pi-4": "#D62728", "raspberry-pi-5": "#9467BD", "jetson-nano": "#2CA02C",
    "jetson-orin-nano": "#17BECF", "coral-edge-tpu": "#8C564B", "snapdragon-8-gen-2": "#E377C2",
    "esp32-s3": "#7F7F7F", "stm32h7": "#BCBD22",
}
OTHER_COLOR = "#BAB0AC"
_EXTRA = ("#8C6D31", "#393B79", "#637939", "#843C39", "#7B4173", "#3182BD", "#E6550D", "#31A354", "#756BB1")
PALETTE: dict[str, Mapping[Any, str]] = {"bits": BITS_COLORS, "structure": STRUCTURE_COLORS,
                                         "runtime": RUNTIME_COLORS, "device": DEVICE_COLORS}
"""Column → {value: colour}; every figure colours by these."""
FIT_STATUS = ("not deployable", "does not fit", "misses budget", "meets budget")
FIT_COLORS = ("#D9D9D9", "#F4A6A6", "#FFE08A", "#8FD19E")


def color_of(column: str, value: Any) -> str:
    """The colour of `value` in `column` (``"bits"``, ``"structure"``, ``"runtime"``, ``"device"``).

    Values outside the palette get a stable colour derived from their text (the same in every figure).

    Example:
        >>> color_of("bits", 8) == BITS_COLORS[8]
        True
    """
    if column == "structure":
        value = structure_value(value)
    elif column == "bits":
        value = bits_value(value)
    known = PALETTE.get(column, {})
    if value in known:
        return known[value]
    if column == "bits" or value is None:
        return OTHER_COLOR
    return _EXTRA[zlib.crc32(str(value).encode()) % len(_EXTRA)]


def bits_value(v: Any) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if math.isfinite(f) and f == int(f) else v


def structure_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return "none"
    return str(v)


def group_name(column: str, value: Any) -> str:
    if column == "bits":
        return BITS_NAMES.get(value, f"{value}-bit")
    if column == "structure":
        return STRUCTURE_NAMES.get(value, str(value))
    if column == "runtime":
        return runtime_name(value)
    return str(value)


def runtime_name(runtime: Any) -> str:
    """The display name of a runtime (``"openvino"`` → ``"OpenVINO"``); unknown names are shown as given.

    Example:
        >>> runtime_name("onnxruntime"), runtime_name("my-runtime")
        ('ONNX Runtime', 'my-runtime')
    """
    return RUNTIME_NAMES.get(str(runtime), str(runtime))


# -------------------------------------------------------------------------------------------- labels

_LABELS = {
    "accuracy": "accuracy (measured)",
    "f1": "F1 score (measured)",
    "fidelity": "agreement with the original model (measured)",
    "perplexity": "perplexity, lower is better (measured)",
    "agreement": "next-token agreement with the original (measured)",
    "pass_rate": "instructions answered right (measured)",
    "tokens_per_s": "tokens per second, decode (measured)",
    "ttft_ms": "time to first token (measured, ms)",
    "kv_cache_bytes": "KV cache at 512 tokens (bytes)",
    "tokens_per_s_est": "tokens per second, decode (est.)",
    "energy_mj_per_token_est": "energy per token (est., mJ)",
    "latency_ms_p10": "latency, 10th percentile (measured, ms)",
    "latency_ms_p50": "latency, median (measured, ms)",
    "latency_ms_p90": "latency, 90th percentile (measured, ms)",
    "latency_ms_p99": "latency, 99th percentile (measured, ms)",
    "latency_ms_mean": "latency, mean (measured, ms)",
    "latency_ms_est": "latency (est., ms)",
    "energy_mj_est": "energy per inference (est., mJ)",
    "power_w_est": "power (est., W)",
    "power_w_at_rate_est": "power at the given rate (est., W)",
    "battery_h_est": "battery life (est., h)",
    "size_bytes": "file size (measured, bytes)",
    "size_deflated_bytes": "zipped file size (measured, bytes)",
    "size_coded_bytes": "Huffman-coded size (measured, bytes)",
    "size_entropy_bytes": "entropy bound of the coded size (computed, bytes)",
    "weight_bytes": "weights at their bit-width (computed, bytes)",
    "peak_mem_bytes": "peak memory (measured, bytes)",
    "params": "parameters (count)",
    "params_nonzero": "non-zero parameters (count)",
    "macs": "multiply-accumulates per inference (counted)",
    "bits": "weight bits",
    "bits_effective": "bits per weight (computed)",
    "prune": "fraction pruned",
}
SAMPLED_METRICS = frozenset({"accuracy", "f1", "fidelity", "perplexity", "agreement", "pass_rate", "cosine",
                             "frame_accuracy"})
"""The metrics the built-in tasks measure on a sample, each with a 95 % interval (``<metric>_low`` / ``_high``)."""
_MAXIMIZE = {"accuracy", "f1", "fidelity", "battery_h_est", "auc", "precision", "recall", "cosine", "prune"}
_MINIMIZE_PREFIXES = ("latency", "size", "energy", "power", "params", "macs", "weight_bytes", "peak_mem", "bits",
                      "perplexity", "ttft", "kv_cache")


def is_estimate(column: str) -> bool:
    """True for a column that is an estimate from a device profile (its name ends in ``_est``)."""
    return column.endswith("_est")


def axis_label(column: str, device: str | None = None) -> str:
    """Plain words with units, saying whether the figure is measured or estimated (and on which device).

    An interval column (``accuracy_low``) is named as the bound of its metric; it is drawn as an error bar, not
    offered as an axis of its own.

    Example:
        >>> axis_label("accuracy_low")
        'accuracy, lower end of the 95 % interval (measured)'

        >>> axis_label("latency_ms_est", "raspberry-pi-4")
        'latency (est., ms) on raspberry-pi-4'
        >>> axis_label("latency_ms_p50")
        'latency, median (measured, ms)'
    """
    text = _LABELS.get(column)
    bound = next((s for s in ("_low", "_high") if column.endswith(s)), None)
    if text is None and bound and column[: -len(bound)] in SAMPLED_METRICS:
        stem = axis_label(column[: -len(bound)]).split(" (")[0].split(", lower is better")[0]
        text = f"{stem}, {'lower' if bound == '_low' else 'upper'} end of the 95 % interval (measured)"
    if text is None:
        if column.startswith("baseline_"):
            text = f"{column[len('baseline_'):].replace('_', ' ')} of the original model (measured)"
        elif is_estimate(column):
            text = f"{column[:-4].replace('_', ' ')} (est.)"
        else:
            text = f"{column.replace('_', ' ')} (measured)"
    if is_estimate(column) and device:
        text += f" on {device}"
    return text


SHORT_AXIS = {"energy_mj_est": "energy (est., mJ)", "power_w_est": "power (est., W)",
               "battery_h_est": "battery life (est., h)", "latency_ms_est": "latency (est., ms)"}
_SHORT = {"latency_ms_p10": "10th-percentile latency", "latency_ms_p50": "median latency", "latency_ms_p90": "90th-percentile latency",
          "latency_ms_p99": "99th-percentile latency", "latency_ms_mean": "mean latency",
          "latency_ms_est": "estimated latency", "energy_mj_est": "estimated energy per inference",
          "power_w_est": "estimated power", "battery_h_est": "estimated battery life"}


def short_label(column: str) -> str:
    """A few plain words for titles: 'median latency', 'file size', 'accuracy'."""
    return _SHORT.get(column) or axis_label(column).split(" (")[0]


def maximized(column: str) -> bool:
    """Whether larger is better for `column` by default (metrics: yes; latency, size, energy, ...: no)."""
    if column in _MAXIMIZE or column.startswith("baseline_"):
        return True
    return not column.startswith(_MINIMIZE_PREFIXES)


def figure_title(text: str, notes: Sequence[str]) -> dict[str, Any]:
    """A left-aligned title with the notes (what was left out, what the marks mean) as its subtitle."""
    return {"text": text, "subtitle": {"text": " · ".join(notes)}, "x": 0.0, "xanchor": "left"}


def axis_type(values: np.ndarray) -> str:
    """``"log"`` when every finite value is positive and they span more than a factor of 30, else ``"linear"``."""
    v = values[np.isfinite(values) & (values > 0)]
    return "log" if len(v) and len(v) == np.isfinite(values).sum() and v.max() / v.min() > 30 else "linear"


# White background without `template="plotly_white"`: validating a named template costs ~7 ms per figure, the
# default template is applied unvalidated.
LAYOUT: dict[str, Any] = {"plot_bgcolor": "white", "margin": {"t": 80, "l": 70, "r": 30, "b": 60},
                          "hovermode": "closest", "legend": {"title": {"text": ""}}}
"""The layout every figure starts from."""
GRID: dict[str, str] = {"gridcolor": "#E8E8E8", "zerolinecolor": "#CCCCCC", "linecolor": "#CCCCCC"}
"""The light grid on every axis."""
