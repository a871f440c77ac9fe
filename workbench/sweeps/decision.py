"""The decision card: which variant to ship, in one paragraph a stakeholder can read and trust.

`decide` picks the variant with `workbench.best` (realised variants only, unless asked; with a device, ranked
by that device's estimates) under a quality bar (by default: within 2 points of the original's accuracy, or 5 %
of its perplexity), and says what it gains in plain words: how much smaller and faster than the original, on
which machine and whether that figure is measured or estimated, the quality with its 95 % interval and whether
the difference is within noise, energy per inference and battery life at a duty cycle. Every figure ends with
"(measured)" or "(estimated)"; the `assumptions` line names the device profile and the estimate model.

Example:
    >>> card = decide(df, device="raspberry-pi-4", min_accuracy=0.97)
    >>> card.headline
    'Recommended on Raspberry Pi 4 (estimated): Not pruned, 8-bit (ONNX Runtime)'
    >>> print(card.text)  # doctest: +NORMALIZE_WHITESPACE
    Not pruned, 8-bit: 2.9× smaller (204 KB), 1.7× faster on Raspberry Pi 4: 0.25 ms per inference
    (estimated); accuracy 100.0 % vs 100.0 % — the same as the original; 0.78 mJ per inference (estimated).
    >>> decide(df).source, decide(df, device="raspberry-pi-4").source
    ('measured', 'estimated')
"""

from __future__ import annotations

import html as _html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.hardware.duty import DEFAULT_VOLTAGE, DutyCycle
from workbench.sweeps import words as w

DEFAULT_POINTS = 0.02
"""The default bar for a rate (accuracy, F1, ...): at most 2 points below the original."""
DEFAULT_RELATIVE = 0.05
"""The default bar for perplexity (and other non-rate metrics): at most 5 % worse than the original."""
SOURCES = ("measured", "estimated")
_STYLE = ("border-left:4px solid {color};background:#f7f9fc;padding:.6rem .9rem;margin:.6rem 0;"
          "font-family:system-ui,sans-serif;line-height:1.4")


@dataclass(frozen=True, eq=False)
class Decision:
    """A recommendation in plain words (or, with `row` None, why there is none).

    Attributes:
        row: the chosen results row (None: nothing to recommend; `reason` says why).
        baseline: the original's row on the same runtime (and device), or None when the results lack it.
        device: the device profile the figures are estimated for (None: measured on this machine).
        source: ``"measured"`` (no device) or ``"estimated"`` (a device's estimates).
        headline: one line: ``"Recommended on Raspberry Pi 4 (estimated): Half the channels, 8-bit (ONNX
            Runtime)"``.
        text: the paragraph of the card; each figure ends with "(measured)" or "(estimated)".
        assumptions: ``"Assumptions: device profile raspberry-pi-4 (data/devices/raspberry-pi-4.yaml), ..."``.
        metric: the quality column the bar applies to.
        bar: the quality bar, in words (``"accuracy at least 98.0 % (2 points below the original's 100.0 %)"``).
        duty: average power and battery life at the rate asked for (None without a device or a rate).
        reason: why nothing is recommended ("" when `row` is set).
    """

    row: pd.Series | None = field(repr=False)
    baseline: pd.Series | None = field(repr=False)
    device: str | None
    source: str
    headline: str
    text: str
    assumptions: str
    metric: str | None = None
    bar: str = ""
    duty: DutyCycle | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"Decision: source must be one of {SOURCES}, got {self.source!r}")

    @property
    def ok(self) -> bool:
        """Whether the card recommends a variant."""
        return self.row is not None

    @classmethod
    def none(cls, reason: str, *, device: str | None = None, metric: str | None = None, bar: str = "",
             assumptions: str = "") -> "Decision":
        """A card that recommends nothing and says why (`reason`, in plain words).

        Example:
            >>> card = Decision.none("no variant that runs for real reaches accuracy at least 99 %")
            >>> card.ok, card.headline
            (False, 'No recommendation on this machine (measured)')
        """
        where = _where(device)
        text = reason.strip().splitlines()[0] if reason.strip() else "nothing meets the bar"
        text = text.removeprefix("decide: ").removeprefix("best: ")
        text = text[0].upper() + text[1:]
        return cls(None, None, device, "estimated" if device else "measured", f"No recommendation {where}",
                   text if text.endswith(".") else text + ".", assumptions, metric, bar, None, reason)

    def plain(self) -> str:
        """The card as plain text: headline, paragraph and assumptions, one per line (what the CLI prints)."""
        return "\n".join(t for t in (self.headline, self.text, self.assumptions) if t)

    def html(self) -> str:
        """The card as an HTML fragment, ``<div class="wb-decision">…</div>`` (every text escaped).

        Example:
            >>> decide(df).html().startswith('<div class="wb-decision')
            True
        """
        kind = "none" if not self.ok else self.source
        color = {"measured": "#1F77B4", "estimated": "#8a5a00", "none": "#999999"}[kind]
        parts = [f'<div class="wb-decision wb-decision-{kind}" style="{_STYLE.format(color=color)}">',
                 f'<div class="wb-decision-headline" style="font-weight:600">{_html.escape(self.headline)}</div>',
                 f'<p class="wb-decision-text" style="margin:.3rem 0">{_html.escape(self.text)}</p>']
        if self.assumptions:
            parts.append(f'<p class="wb-decision-assumptions" style="margin:.3rem 0;color:#555;font-size:.85em">'
                         f"{_html.escape(self.assumptions)}</p>")
        return "".join(parts) + "</div>"


def _where(device: str | None) -> str:
    return f"on {w.device_words(device)} (estimated)" if device else "on this machine (measured)"


def _num(row: pd.Series | None, col: str) -> float:
    if row is None or col not in row.index:
        return math.nan
    v = pd.to_numeric(pd.Series([row[col]]), errors="coerce").iloc[0]
    return float(v) if pd.notna(v) else math.nan


def _positive(name: str, v: Any) -> None:
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0):
        raise WorkbenchError(f"decide: {name} must be a positive number or None, got {v!r}.")


def _is_lm(rows: pd.DataFrame | pd.Series) -> bool:
    col = rows.get("tokens_per_s") if rows is not None else None
    return col is not None and bool(pd.Series(col).notna().any())


def _originals(df: pd.DataFrame, device: str | None, runtime: str | None = None) -> pd.DataFrame:
    from workbench.sweeps.frame import error_mask

    rows = df[(df["variant"] == "baseline") & ~error_mask(df)] if "variant" in df else df.iloc[0:0]
    if device is not None and "device" in rows:
        rows = rows[rows["device"] == device]
    if runtime is not None and "runtime" in rows:
        rows = rows[rows["runtime"] == runtime]
    return rows


def default_bar(df: pd.DataFrame, metric: str) -> tuple[float, str]:
    """The quality bar when none is given: within 2 points of the original's `metric` for a rate, within 5 % for
    any other metric (perplexity: at most 5 % higher). The original is the best baseline row across runtimes;
    a frame without one uses the best value in the results.

    Returns:
        ``(threshold, words)``.

    Example:
        >>> default_bar(df, "accuracy")
        (0.98, "accuracy at least 98.0 % (2 points below the original's 100.0 %)")
    """
    from workbench.sweeps.frame import LOWER_IS_BETTER, ok_rows

    lower = metric in LOWER_IS_BETTER
    orig = pd.to_numeric(_originals(df, None).get(metric, pd.Series(dtype=float)), errors="coerce").dropna()
    whose = "the original's"
    if orig.empty:
        orig = pd.to_numeric(ok_rows(df).get(metric, pd.Series(dtype=float)), errors="coerce").dropna()
        whose = "the best in the results,"
    if orig.empty:
        raise WorkbenchError(f"decide: no row has a value for {metric!r}, so there is no quality bar to set")
    ref = float(orig.min() if lower else orig.max())
    name = w.metric_name(metric)
    if lower:
        bar = ref * (1 + DEFAULT_RELATIVE)
        return bar, f"{name} at most {w.value_words(bar, metric)} ({DEFAULT_RELATIVE:.0%} above {whose} " \
                    f"{w.value_words(ref, metric)})"
    if w.is_rate(metric):
        bar = round(ref - DEFAULT_POINTS, 10)
        return bar, (f"{name} at least {w.value_words(bar, metric)} ({DEFAULT_POINTS * 100:g} points below "
                     f"{whose} {w.value_words(ref, metric)})")
    bar = ref - abs(ref) * DEFAULT_RELATIVE
    return bar, f"{name} at least {w.value_words(bar, metric)} ({DEFAULT_RELATIVE:.0%} below {whose} " \
                f"{w.value_words(ref, metric)})"


def _profile_path(prof: Any) -> str:
    from workbench.core.paths import data_dir

    path = getattr(prof, "path", None)
    if path is None:
        return "built in"
    try:
        return str(Path(path).resolve().relative_to(data_dir().resolve().parent))
    except ValueError:
        return str(path)


def _assumptions(device: str | None, row: pd.Series | None, lm: bool, bar: str, realized_only: bool,
                 duty: DutyCycle | None) -> str:
    parts = []
    if device is not None:
        from workbench.hardware import device as get_device

        prof = get_device(device)
        model = ("the LM decode estimate (workbench.hardware.lm_estimate)" if lm
                 else "a per-layer roofline estimate (workbench.hardware.roofline)")
        parts.append(f"device profile {prof.name} ({_profile_path(prof)}), {model} of latency and energy, not a "
                     f"measurement on the device")
        if duty is not None:
            parts.append(f"idle power {duty.idle_w:g} W between inferences")
            if duty.battery_mah is not None:
                parts.append(f"{duty.voltage:g} V battery")
    else:
        runtime = w.runtime_words(row.get("runtime")) if row is not None else ""
        threads = _num(row, "threads")
        parts.append("latency measured on this machine" + (f" with {runtime}" if runtime else "")
                     + (f", {threads:g} thread{'s' if threads != 1 else ''}" if threads == threads else "")
                     + (", per decoded token" if lm else ", batch 1"))
    if bar:
        parts.append(f"bar: {bar}")
    parts.append("variants that run for real only (simulated compression excluded)" if realized_only
                 else "simulated variants included")
    return "Assumptions: " + "; ".join(parts) + "."


def _compare(ratio: float, more: str, less: str, same: str) -> str:
    if not ratio == ratio:
        return ""
    if ratio >= 1.05:
        return f"{w.factor_words(ratio)} {more}"
    if ratio <= 1 / 1.05:
        return f"{w.factor_words(1 / ratio)} {less}"
    return same


def _card(row: pd.Series, base: pd.Series | None, device: str | None, metric: str, lm: bool,
          duty: DutyCycle | None, rate_hz: float | None) -> str:
    name = w.variant_words(row)
    is_original = base is not None and row.get("variant") == base.get("variant")
    where, src = (f"on {w.device_words(device)}", "estimated") if device else ("on this machine", "measured")
    figures = []
    size = _num(row, "size_bytes")
    if size == size:
        ratio = _num(base, "size_bytes") / size if not is_original else math.nan
        vs = _compare(ratio, "smaller", "larger", "the same size")
        figures.append(f"{vs} ({w.size_words(size)})" if vs else w.size_words(size))
    unit = "token" if lm else "inference"
    if lm:
        speed_col = "tokens_per_s_est" if device else "tokens_per_s"
        speed = _num(row, speed_col)
        amount = f"{speed:.3g} tokens/s" if speed == speed else ""
        ratio = speed / _num(base, speed_col) if not is_original else math.nan
        vs = _compare(ratio, "faster decode", "slower decode", "decodes as fast as the original")
    else:
        lat = _num(row, "latency_ms_est" if device else "latency_ms_p50")
        amount = f"{w.latency_words(lat)} per inference" if lat == lat else ""
        ratio = _num(base, "latency_ms_est" if device else "latency_ms_p50") / lat if not is_original else math.nan
        vs = _compare(ratio, "faster", "slower", "as fast as the original")
        low, high = _num(row, "latency_ms_p10"), _num(row, "latency_ms_p90")
        if vs and not device and low <= _num(base, "latency_ms_p50") <= high:  # NaN compares False
            vs = "as fast as the original within the timing spread"
    if amount and not vs and base is not None and not is_original and device:
        amount += ", where the original does not run"
    if amount:
        figures.append(f"{vs} {where}: {amount} ({src})" if vs else f"{amount} {where} ({src})")
    head = f"{name}: " + ", ".join(figures) if figures else name
    if is_original:
        head = f"{name}: keep the original; no compressed variant that meets the bar is faster {where} ({src})"
        own = [w.size_words(size)] if size == size else []
        own += [f"{amount} ({src})"] if amount else []
        head += f"; {', '.join(own)}" if own else ""
    sentences = [head]
    quality = f"{w.metric_name(metric)} {w.metric_words(row, metric)}"
    if base is not None and not is_original:
        quality += f" vs {w.value_words(base.get(metric), metric)}"
        _, noise = w.noise_words(row, metric)
        if noise:
            quality += f" — {noise}"
    sentences.append(quality)
    energy = _num(row, "energy_mj_est")
    if device and energy == energy:
        sentences.append(f"{w.energy_words(energy)} per {unit} (estimated)")
    if duty is not None and rate_hz is not None:
        per_s = f"{rate_hz:g} {'tokens' if lm else 'inferences'}/s"
        if not duty.feasible:
            sentences.append(f"cannot keep up with {per_s}: one {unit} takes {w.latency_words(duty.latency_ms)} "
                             f"(estimated)")
        elif duty.battery_mah is not None and duty.battery_h == duty.battery_h:
            sentences.append(f"{w.hours_words(duty.battery_h)} on a {duty.battery_mah:,.0f} mAh battery at {per_s}, "
                             f"{w.power_words(duty.average_power_w)} on average (estimated)")
        elif duty.average_power_w == duty.average_power_w:
            sentences.append(f"{w.power_words(duty.average_power_w)} on average at {per_s} (estimated)")
    return "; ".join(sentences) + "."


def _plain_failure(message: str, bar: str, device: str | None, realized_only: bool) -> str:
    """best's message in plain words (its detail lines follow on the next lines)."""
    where = _where(device)
    if "simulated" in message and realized_only:
        head = (f"no variant that runs for real meets {bar or 'the bar'} {where}; only simulated variants do "
                "(their compression has no kernel on the runtime); include them with realized_only=False")
    elif "no results for device" in message:
        head = (f"the results hold no estimates for {w.device_words(device)}; sweep with "
                f"devices=[{device!r}] to get them")
    elif "no results on runtime" in message:
        head = message.removeprefix("best: ").splitlines()[0]
    else:
        first = message.splitlines()[0]
        memory = f"fits the memory of {w.device_words(device)} (estimated)"
        if "all constraints together" in first and device:
            head = f"no variant both meets {bar or 'the bar'} and {memory}"
        elif re.search(r"meets [^:;]*\bfits\b", first) and not re.search(r"meets [^:;]*(accuracy|metric)", first):
            head = f"no variant {memory}"
        else:
            head = f"no variant meets {bar or 'the constraints'} {where}"
    return head + "\n" + message


def _off_runtime(df: pd.DataFrame, device: Any, runtime: str | None) -> str:
    """Why nothing can be recommended for `device` when none of the swept runtimes runs on it (a microcontroller
    swept on ONNX Runtime only), in plain words; empty when some row is deployable there (or it is unknown)."""
    if device is None or "device" not in df or "deployable" not in df:
        return ""
    rows = df[df["device"] == device]
    if runtime is not None and "runtime" in rows:
        rows = rows[rows["runtime"] == runtime]
    deployable = rows["deployable"].astype("boolean").fillna(False).astype(bool)
    if rows.empty or deployable.any():
        return ""
    reasons = rows.get("reason", pd.Series("", index=rows.index)).fillna("").astype(str)
    if not reasons.str.contains("does not run").all():
        return ""
    swept = ", ".join(w.runtime_words(r) for r in pd.unique(rows["runtime"])) if "runtime" in rows else "these"
    return (f"{w.device_words(device)} does not run {swept}, the runtime(s) this sweep measured "
            f"({reasons.iloc[0].split(': ', 1)[-1].rstrip('.')}); sweep with a runtime it runs "
            "(e.g. runtimes=['litert']) for an estimate.")


def decide(
    df: pd.DataFrame,
    *,
    device: Any = None,
    runtime: str | None = None,
    min_accuracy: float | None = None,
    max_metric: float | None = None,
    metric: str | None = None,
    rate_hz: float | None = None,
    battery_mah: float | None = None,
    realized_only: bool = True,
    voltage: float = DEFAULT_VOLTAGE,
) -> Decision:
    """The variant to ship, and why, in plain words (see the module docstring).

    Args:
        df: sweep results (`workbench.sweep`, a store's frame).
        device: a device profile name (or `DeviceProfile`) the sweep estimated for: rank by its estimates and say
            "(estimated)"; None ranks by latency measured on this machine and says "(measured)".
        runtime: only this runtime (None: the best variant and runtime).
        min_accuracy: the lowest acceptable `metric` (higher-is-better metrics).
        max_metric: the highest acceptable perplexity (lower-is-better metrics).
        metric: the quality column (default `workbench.sweeps.frame.primary_metric`).
        rate_hz: inferences (tokens, for a language model) per second, for average power and battery life.
        battery_mah: battery capacity, for battery life at `rate_hz`.
        realized_only: recommend only variants that run for real (`workbench.best`).
        voltage: battery voltage.

    Raises:
        WorkbenchError: nothing passes (the first line says why in plain words, `best`'s detail follows), no
            quality metric, bad arguments. `decide_or_none` returns `Decision.none` instead.
    """
    from workbench.hardware.duty import duty_cycle
    from workbench.sweeps.analysis import best
    from workbench.sweeps.frame import LOWER_IS_BETTER, primary_metric, with_baseline

    _positive("rate_hz", rate_hz)
    _positive("battery_mah", battery_mah)
    if df is None or df.empty:
        raise WorkbenchError("decide: the results are empty; run a sweep first")
    metric = metric or primary_metric(df)
    if metric is None:
        raise WorkbenchError("decide: the results hold no quality metric (accuracy, perplexity, ...)")
    if f"baseline_{metric}" not in df:
        df = with_baseline(df)
    device = getattr(device, "name", device)
    lower = metric in LOWER_IS_BETTER
    if min_accuracy is None and max_metric is None:
        threshold, bar = default_bar(df, metric)
        bars = {"max_metric": threshold} if lower else {"min_accuracy": threshold}
    else:
        given = max_metric if lower else min_accuracy
        bar = (f"{w.metric_name(metric)} {'at most' if lower else 'at least'} {w.value_words(given, metric)}"
               if given is not None else "")
        bars = {"min_accuracy": min_accuracy, "max_metric": max_metric}
    off = _off_runtime(df, device, runtime)
    if off:
        raise WorkbenchError(off)
    try:
        row = best(df, device=device, runtime=runtime, metric=metric, realized_only=realized_only, **bars)
    except WorkbenchError as e:
        raise WorkbenchError(_plain_failure(str(e), bar, device, realized_only)) from None
    bases = _originals(df, device, row.get("runtime"))
    if "task" in bases and "task" in row.index:
        bases = bases[bases["task"] == row["task"]]
    base = bases.iloc[0] if len(bases) else None
    lm = _is_lm(df)
    duty = None
    if device is not None and rate_hz is not None:
        duty = duty_cycle(_num(row, "energy_mj_est"), _num(row, "latency_ms_est"), device, rate_hz, battery_mah,
                          voltage)
    where = _where(device)
    headline = f"Recommended {where}: {w.variant_words(row)}" + (
        f" ({w.runtime_words(row.get('runtime'))})" if row.get("runtime") is not None else "")
    return Decision(row, base, device, "estimated" if device else "measured", headline,
                    _card(row, base, device, metric, lm, duty, rate_hz),
                    _assumptions(device, row, lm, bar, realized_only, duty), metric, bar, duty)


def decide_or_none(df: pd.DataFrame, **kwargs: Any) -> Decision:
    """`decide`, but a card that says why (`Decision.none`) instead of an error when nothing can be recommended:
    what a dashboard panel or a report shows.

    Example:
        >>> card = decide_or_none(df, device="raspberry-pi-4", min_accuracy=1.01)
        >>> card.ok, card.text
        (False, 'No variant meets accuracy at least 101.0 % on Raspberry Pi 4 (estimated).')
    """
    try:
        return decide(df, **kwargs)
    except WorkbenchError as e:
        device = getattr(kwargs.get("device"), "name", kwargs.get("device"))
        return Decision.none(str(e), device=device, metric=kwargs.get("metric"))


def decisions(df: pd.DataFrame, **kwargs: Any) -> list[Decision]:
    """One card measured on this machine, then one per device the results estimate for (`decide_or_none`).

    Example:
        >>> [(c.device, c.source) for c in decisions(df)]
        [(None, 'measured'), ('raspberry-pi-4', 'estimated')]
    """
    devices = sorted(str(d) for d in df["device"].dropna().unique()) if "device" in df else []
    return [decide_or_none(df, **kwargs, device=d) for d in [None, *devices]]


__all__ = ["DEFAULT_POINTS", "DEFAULT_RELATIVE", "Decision", "decide", "decide_or_none", "decisions",
           "default_bar"]
