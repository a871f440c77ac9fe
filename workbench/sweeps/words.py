"""Plain words for results: a variant's name a stakeholder reads, sizes, percentages, durations, metrics.

The decision card (`workbench.sweeps.decision`), the report, the CLI and the dashboards (through
`workbench.viz.words`, the same functions) describe a results row with these, never with the grid's labels:
``channel-0.50+r200+q8`` is "Half the channels, retrained, 8-bit". Sizes are decimal (1 KB = 1,000 bytes, as
storage and downloads count them). A sampled metric carries its 95 % interval where the frame has the
``<metric>_low`` / ``<metric>_high`` columns.

Example:
    >>> row = df.set_index("variant").loc["channel-0.50+q8"]
    >>> variant_words(row), size_words(row["size_bytes"]), metric_words(row, "accuracy")
    ('Half the channels, 8-bit', '94 KB', '15.6 %')
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import pandas as pd

RATE_METRICS = frozenset({"accuracy", "fidelity", "frame_accuracy", "f1", "pass_rate", "agreement", "precision",
                          "recall", "top1", "top5"})
"""Metrics that are shares of a sample (shown as percentages, with Wilson intervals); also any name ending in
``accuracy`` or ``_rate``."""
METRIC_NAMES = {"frame_accuracy": "frame accuracy", "pass_rate": "instructions answered", "f1": "F1"}
BITS_WORDS = {32: "32-bit float", 16: "16-bit float"}
DEVICE_NAMES = {
    "host": "this machine", "raspberry-pi-4": "Raspberry Pi 4", "raspberry-pi-5": "Raspberry Pi 5",
    "jetson-nano": "Jetson Nano", "jetson-orin-nano": "Jetson Orin Nano", "coral-edge-tpu": "Coral Edge TPU",
    "snapdragon-8-gen-2": "Snapdragon 8 Gen 2", "esp32-s3": "ESP32-S3", "stm32h7": "STM32H7",
}
"""Device profile → the short name a sentence uses (the profile's ``display_name`` carries the full specs)."""
RUNTIME_WORDS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "litert": "LiteRT", "openvino": "OpenVINO",
                 "executorch": "ExecuTorch", "tflite_runtime": "tflite-runtime"}
"""Runtime → the name people know it by (the same table as `workbench.viz.style.RUNTIME_NAMES`)."""
_FRACTIONS = ((1 / 2, "half"), (1 / 4, "a quarter"), (3 / 4, "three quarters"), (1 / 3, "a third"),
              (2 / 3, "two thirds"), (1 / 10, "a tenth"), (1 / 5, "a fifth"), (9 / 10, "nine tenths"))


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _number(v: Any) -> float:
    """`v` as a float (NaN when missing or not a number)."""
    if _missing(v) or isinstance(v, bool):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def fraction_words(f: float) -> str:
    """A share in words: ``0.5`` → ``"half"``, ``0.25`` → ``"a quarter"``, ``0.62`` → ``"62 %"``.

    Example:
        >>> fraction_words(0.75), fraction_words(0.6)
        ('three quarters', '60 %')
    """
    for value, text in _FRACTIONS:
        if abs(f - value) < 5e-3:
            return text
    return f"{f * 100:.0f} %"


def _share_of(f: float, what: str) -> str:
    """``"half the channels"``, ``"a quarter of the channels"``, ``"62 % of the channels"``."""
    share = fraction_words(f)
    return f"half the {what}" if share == "half" else f"{share} of the {what}"


def bits_words(bits: Any, group_size: Any = None, method: Any = None) -> str:
    """The weights' precision in words: ``"32-bit float"``, ``"16-bit float"``, ``"8-bit"``, ``"4-bit (groups of
    32, HQQ)"``.

    Example:
        >>> bits_words(8), bits_words(4, group_size=32, method="hqq")
        ('8-bit', '4-bit (groups of 32, HQQ)')
    """
    b = _number(bits)
    b = 32 if math.isnan(b) else int(b)
    text = BITS_WORDS.get(b, f"{b}-bit")
    extra = []
    g = _number(group_size)
    if not math.isnan(g) and g > 0:
        extra.append(f"groups of {int(g)}")
    if isinstance(method, str) and method and method != "rtn":
        extra.append(method.upper())
    return text + (f" ({', '.join(extra)})" if extra else "")


def variant_words(row: Mapping[str, Any] | pd.Series) -> str:
    """A results row's variant in plain words, from its config columns (``prune``, ``structure``, ``bits``,
    ``recover``; see `workbench.sweeps.frame.spec_of_row`).

    ``"Original (32-bit float)"``, ``"Half the channels, retrained, 8-bit"``, ``"A quarter of the weights zeroed,
    8-bit"``, ``"2:4 sparse, 16-bit float"``, ``"Not pruned, 8-bit"``, ``"Half the layers, 4-bit (groups of 32)"``.
    Channel and layer pruning name what is kept, unstructured pruning what is zeroed. A row without config
    columns keeps its ``variant`` label.

    Example:
        >>> [variant_words(r) for _, r in df.drop_duplicates("variant").iterrows()]  # doctest: +NORMALIZE_WHITESPACE
        ['Original (32-bit float)', 'Not pruned, 8-bit', 'Half the weights zeroed, 32-bit float',
         'Half the weights zeroed, 8-bit', 'Half the channels, 32-bit float', 'Half the channels, 8-bit']
    """
    from workbench.sweeps.frame import spec_of_row

    if not any(c in row for c in ("prune", "bits", "structure")):
        return str(row.get("variant", "variant"))
    spec = spec_of_row(row)
    precision = bits_words(spec.bits, spec.group_size, spec.method)
    if not spec.prune and not spec.recover and spec.bits == 32:
        return f"Original ({precision})"
    if not spec.prune:
        pruned = "not pruned"
    elif spec.structure == "2:4":
        pruned = "2:4 sparse"
    elif spec.structure == "unstructured":
        pruned = _share_of(spec.prune, "weights") + " zeroed"
    elif spec.structure in ("channel", "layer"):
        pruned = _share_of(1 - spec.prune, spec.structure + "s")
    else:
        pruned = f"{fraction_words(spec.prune)} pruned ({spec.structure})"
    parts = [pruned, *(["retrained"] if spec.recover else []), precision]
    text = ", ".join(parts)
    return text[0].upper() + text[1:]


def device_words(device: Any) -> str:
    """The short name of a device profile (a name or a `DeviceProfile`): ``"Raspberry Pi 4"``; ``"this
    machine"`` for ``host``. Profiles outside `DEVICE_NAMES` use their ``display_name`` up to the first
    parenthesis.

    Example:
        >>> device_words("raspberry-pi-4"), device_words("host")
        ('Raspberry Pi 4', 'this machine')
    """
    name = getattr(device, "name", device)
    if name in DEVICE_NAMES:
        return DEVICE_NAMES[name]
    display = getattr(device, "display_name", None)
    if display is None:
        from workbench.core.errors import WorkbenchError
        from workbench.hardware import device as get_device

        try:
            display = get_device(str(name)).display_name
        except WorkbenchError:
            return str(name)
    return display.split(" (")[0].strip() or str(name)


def runtime_words(runtime: Any) -> str:
    """The name people know a runtime by (``"onnxruntime"`` → ``"ONNX Runtime"``); unknown names as given.

    Example:
        >>> runtime_words("onnxruntime"), runtime_words("my-runtime")
        ('ONNX Runtime', 'my-runtime')
    """
    return RUNTIME_WORDS.get(str(runtime), str(runtime))


def size_words(n_bytes: Any) -> str:
    """A size in decimal units (1 KB = 1,000 bytes): ``"512 B"``, ``"412 KB"``, ``"1.3 MB"``, ``"2.1 GB"``.

    Example:
        >>> size_words(412_300), size_words(1_290_000), size_words(93_784)
        ('412 KB', '1.3 MB', '94 KB')
    """
    v = _number(n_bytes)
    if math.isnan(v):
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(v) >= scale * 0.9995:
            x = v / scale
            return f"{x:.1f} {unit}" if abs(x) < 9.95 else f"{x:,.0f} {unit}"
    return f"{v:.0f} B"


def percent_words(share: Any, digits: int = 1) -> str:
    """A share as a percentage: ``0.912`` → ``"91.2 %"``.

    Example:
        >>> percent_words(0.912), percent_words(1.0, digits=0)
        ('91.2 %', '100 %')
    """
    v = _number(share)
    return "–" if math.isnan(v) else f"{v * 100:.{digits}f} %"


def hours_words(hours: Any) -> str:
    """A duration in the unit a person would use: ``"40 min"``, ``"2.5 h"``, ``"31 h"``, ``"2.5 days"``,
    ``"12 days"``, ``"1.4 years"``.

    Example:
        >>> hours_words(31.2), hours_words(60), hours_words(0.5), hours_words(2.5)
        ('31 h', '2.5 days', '30 min', '2.5 h')
    """
    h = _number(hours)
    if math.isnan(h):
        return "–"
    if math.isinf(h):
        return "indefinitely"

    def num(x: float, unit: str) -> str:
        return f"{x:.1f} {unit}".replace(".0 ", " ") if x < 9.95 else f"{x:,.0f} {unit}"

    if h < 1:
        return f"{max(h * 60, 1):.0f} min"
    if h < 48:
        return num(h, "h")
    if h < 2 * 365 * 24:
        return num(h / 24, "days")
    return num(h / (365 * 24), "years")


def factor_words(ratio: Any) -> str:
    """A ratio as a factor: ``4.63`` → ``"4.6×"``, ``12.4`` → ``"12×"``.

    Example:
        >>> factor_words(4.63), factor_words(12.4)
        ('4.6×', '12×')
    """
    r = _number(ratio)
    if math.isnan(r):
        return "–"
    return f"{r:.1f}×" if r < 9.95 else f"{r:,.0f}×"


def energy_words(mj: Any) -> str:
    """Energy in mJ (µJ below 0.01 mJ, J from 1000 mJ): ``"1.2 mJ"``, ``"35 µJ"``, ``"0.40 mJ"``.

    Example:
        >>> energy_words(1.234), energy_words(0.4036), energy_words(0.0035)
        ('1.2 mJ', '0.40 mJ', '3.5 µJ')
    """
    v = _number(mj)
    if math.isnan(v):
        return "–"
    if v >= 1000:
        return f"{v / 1000:.2g} J"
    if v < 0.01:
        return f"{v * 1000:.2g} µJ"
    return f"{v:.2g} mJ" if v >= 1 else f"{v:.2f} mJ"


def power_words(w: Any) -> str:
    """Power in W (mW below 1 W): ``"2.34 W"``, ``"180 mW"``.

    Example:
        >>> power_words(2.3412), power_words(0.18)
        ('2.34 W', '180 mW')
    """
    v = _number(w)
    if math.isnan(v):
        return "–"
    return f"{v:.3g} W" if v >= 1 else f"{v * 1000:.3g} mW"


def latency_words(ms: Any) -> str:
    """A latency: ``"0.13 ms"``, ``"17 ms"``, ``"1.2 s"``.

    Example:
        >>> latency_words(0.12987), latency_words(17.2), latency_words(1234)
        ('0.13 ms', '17 ms', '1.2 s')
    """
    v = _number(ms)
    if math.isnan(v):
        return "–"
    return f"{v / 1000:.2g} s" if v >= 1000 else f"{v:.2g} ms"


def is_rate(metric: str) -> bool:
    """Whether `metric` is a share of a sample (accuracy, F1, pass rate, ...): shown as a percentage.

    Example:
        >>> is_rate("accuracy"), is_rate("frame_accuracy"), is_rate("perplexity")
        (True, True, False)
    """
    return metric in RATE_METRICS or metric.endswith("accuracy") or metric.endswith("_rate")


def metric_name(metric: str) -> str:
    """The metric's name in a sentence: ``"accuracy"``, ``"frame accuracy"``, ``"perplexity"``."""
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def value_words(value: Any, metric: str) -> str:
    """One value of `metric`: a percentage for a rate (``"91.2 %"``), else three significant figures (``"32.4"``).
    """
    v = _number(value)
    if math.isnan(v):
        return "–"
    return percent_words(v) if is_rate(metric) else f"{v:.3g}"


def metric_words(row: Mapping[str, Any] | pd.Series, metric: str) -> str:
    """A row's `metric` with its 95 % interval where the row has one: ``"91.2 % (90.0–92.3)"`` for a rate,
    ``"32.4 (31.8–33.1)"`` for perplexity; the value alone without ``<metric>_low`` / ``<metric>_high``.

    Example:
        >>> row = {"accuracy": 0.912, "accuracy_low": 0.9, "accuracy_high": 0.923}
        >>> metric_words(row, "accuracy"), metric_words({"perplexity": 32.41}, "perplexity")
        ('91.2 % (90.0–92.3)', '32.4')
    """
    text = value_words(row.get(metric), metric)
    low, high = _number(row.get(f"{metric}_low")), _number(row.get(f"{metric}_high"))
    if text == "–" or math.isnan(low) or math.isnan(high):
        return text
    if is_rate(metric):
        return f"{text} ({low * 100:.1f}–{high * 100:.1f})"
    return f"{text} ({low:.3g}–{high:.3g})"


def noise_words(row: Mapping[str, Any] | pd.Series, metric: str) -> tuple[bool | None, str]:
    """``(within_noise, words)``: whether the row's difference to the original (``baseline_<metric>``) lies in
    the noise of its 95 % interval (None without an interval), and that difference in words
    (`workbench.sweeps.noise`): ``"within noise of the original"``, ``"1.2 points below the original"``.

    Example:
        >>> noise_words({"accuracy": 0.90, "baseline_accuracy": 0.912}, "accuracy")
        (None, '1.2 points below the original')
    """
    from workbench.sweeps.noise import noise_text, within_noise

    return within_noise(row, metric), noise_text(row, metric)


__all__ = ["BITS_WORDS", "DEVICE_NAMES", "METRIC_NAMES", "RATE_METRICS", "RUNTIME_WORDS", "bits_words",
           "device_words", "energy_words", "factor_words", "fraction_words", "hours_words",
           "is_rate", "latency_words", "metric_name", "metric_words", "noise_words", "percent_words", "power_words",
           "runtime_words", "size_words", "value_words", "variant_words"]
