"""Plotly figures of sweep results: each a function of a results DataFrame, returning a `go.Figure`.

The frame is the sweep contract: one row per variant x runtime x device with config columns (`prune`,
`structure`, `bits`, `recover`), measured columns (the task metric, `latency_ms_p50`, `size_bytes`, ...) and
estimate columns (`*_est`, per device). Every figure follows the same rules:

* **One palette.** `BITS_COLORS`, `STRUCTURE_SYMBOLS`, `STRUCTURE_COLORS`, `RUNTIME_COLORS` and `DEVICE_COLORS`
  give every bit-width, structure, runtime and device the same colour (or marker) in every figure.
* **Estimates say so.** An axis of an estimate reads "latency (est., ms) on raspberry-pi-4"; a measured one
  "latency, median (measured, ms)" (`axis_label`). Hollow markers are variants whose compression is simulated
  (not executed by the runtime), so their latency is the float model's.
* **Nothing is dropped silently.** Rows with `error` set are left out and counted in the subtitle; an empty
  frame, or a missing column, raises a `WorkbenchError` that says what to do.
* **Updates in place.** Every function takes ``fig=``: given a `go.FigureWidget` already on screen, it updates that
  widget's traces in one `batch_update()` instead of drawing a new one (`update_pareto` for the trade-off chart).

Example:
    >>> from workbench import viz, zoo
    >>> task = zoo.load("digits-cnn")
    >>> df = viz.results_frame(task, [task.model, workbench.compress(task.model, Prune(0.5, structure="channel"))])
    >>> fig = viz.pareto_scatter(df, x="latency_ms_p50", y="accuracy")
    >>> fig.layout.xaxis.title.text
    'latency, median (measured, ms)'
"""

from __future__ import annotations

import hashlib
import math
import zlib
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

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
                                  "tflite_runtime": "#BCBD22"}
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
        value = _structure_value(value)
    elif column == "bits":
        value = _bits_value(value)
    known = PALETTE.get(column, {})
    if value in known:
        return known[value]
    if column == "bits" or value is None:
        return OTHER_COLOR
    return _EXTRA[zlib.crc32(str(value).encode()) % len(_EXTRA)]


def _bits_value(v: Any) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if math.isfinite(f) and f == int(f) else v


def _structure_value(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return "none"
    return str(v)


def _group_name(column: str, value: Any) -> str:
    if column == "bits":
        return BITS_NAMES.get(value, f"{value}-bit")
    if column == "structure":
        return STRUCTURE_NAMES.get(value, str(value))
    return str(value)


# -------------------------------------------------------------------------------------------- labels

_LABELS = {
    "accuracy": "accuracy (measured)",
    "f1": "F1 score (measured)",
    "fidelity": "agreement with the original model (measured)",
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
    "weight_bytes": "weights at their bit-width (computed, bytes)",
    "peak_mem_bytes": "peak memory (measured, bytes)",
    "params": "parameters (count)",
    "params_nonzero": "non-zero parameters (count)",
    "macs": "multiply-accumulates per inference (counted)",
    "bits": "weight bits",
    "bits_effective": "bits per weight (computed)",
    "prune": "fraction pruned",
}
_MAXIMIZE = {"accuracy", "f1", "fidelity", "battery_h_est", "auc", "precision", "recall", "cosine", "prune"}
_MINIMIZE_PREFIXES = ("latency", "size", "energy", "power", "params", "macs", "weight_bytes", "peak_mem", "bits")


def is_estimate(column: str) -> bool:
    """True for a column that is an estimate from a device profile (its name ends in ``_est``)."""
    return column.endswith("_est")


def axis_label(column: str, device: str | None = None) -> str:
    """Plain words with units, saying whether the figure is measured or estimated (and on which device).

    Example:
        >>> axis_label("latency_ms_est", "raspberry-pi-4")
        'latency (est., ms) on raspberry-pi-4'
        >>> axis_label("latency_ms_p50")
        'latency, median (measured, ms)'
    """
    text = _LABELS.get(column)
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


_SHORT_AXIS = {"energy_mj_est": "energy (est., mJ)", "power_w_est": "power (est., W)",
               "battery_h_est": "battery life (est., h)", "latency_ms_est": "latency (est., ms)"}
_SHORT = {"latency_ms_p50": "median latency", "latency_ms_p90": "90th-percentile latency",
          "latency_ms_p99": "99th-percentile latency", "latency_ms_mean": "mean latency",
          "latency_ms_est": "estimated latency", "energy_mj_est": "estimated energy per inference",
          "power_w_est": "estimated power", "battery_h_est": "estimated battery life"}


def _short(column: str) -> str:
    """A few plain words for titles: 'median latency', 'file size', 'accuracy'."""
    return _SHORT.get(column) or axis_label(column).split(" (")[0]


def maximized(column: str) -> bool:
    """Whether larger is better for `column` by default (metrics: yes; latency, size, energy, ...: no)."""
    if column in _MAXIMIZE or column.startswith("baseline_"):
        return True
    return not column.startswith(_MINIMIZE_PREFIXES)


# ---------------------------------------------------------------------------------------------- pareto


def _pareto_mask(values: np.ndarray, maximize: Sequence[bool]) -> np.ndarray:
    """True for the rows no other row dominates (senses per column); the one implementation lives in
    `workbench.sweeps.analysis.pareto_mask`."""
    from workbench.sweeps.analysis import pareto_mask

    return pareto_mask(np.where(np.asarray(maximize, bool), values, -np.asarray(values, float)))


def pareto_front(df: pd.DataFrame, x: str, y: str, *, maximize: Iterable[str] | None = None,
                 minimize: Iterable[str] | None = None) -> pd.Series:
    """Boolean Series: the rows on the Pareto front of `x` and `y` (senses inferred unless given).

    Example:
        >>> df[pareto_front(df, "latency_ms_p50", "accuracy")]
    """
    senses = _senses([x, y], maximize, minimize)
    values = df[[x, y]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    return pd.Series(_pareto_mask(values, senses), index=df.index, name="pareto")


def _senses(cols: Sequence[str], maximize: Iterable[str] | None, minimize: Iterable[str] | None) -> list[bool]:
    up, down = set(maximize or ()), set(minimize or ())
    both = up & down
    if both:
        raise WorkbenchError(f"{sorted(both)} are in both maximize and minimize; pick one for each column.")
    return [True if c in up else False if c in down else maximized(c) for c in cols]


# ------------------------------------------------------------------------------------------ frame prep


class _Prepared:
    """A cleaned frame plus what was left out of it (for the subtitle)."""

    def __init__(self, df: pd.DataFrame, notes: list[str], device: str | None, runtime: str | None):
        self.df, self.notes, self.device, self.runtime = df, notes, device, runtime


def _is_error(df: pd.DataFrame) -> pd.Series:
    if "error" not in df or pd.api.types.is_numeric_dtype(df["error"]):  # numeric: a relative error, not a failure
        return pd.Series(False, index=df.index)
    e = df["error"]
    return e.notna() & (e.astype(str).str.strip() != "") & (e.astype(str) != "None")


def _prepare(
    df: Any,
    needed: Sequence[str],
    *,
    device: str | None = None,
    runtime: str | None = None,
    one_runtime: bool = False,
    numeric: Sequence[str] = (),
    what: str = "figure",
    every_device: bool = False,
) -> _Prepared:
    """Validate, drop error rows, pick a device (for estimates) and runtime, de-duplicate device copies.

    With `every_device`, all device rows stay (figures with one panel or column per device)."""
    if not isinstance(df, pd.DataFrame):
        raise WorkbenchError(f"{what}: expected a results DataFrame (a sweep's or viz.results_frame's), got "
                             f"{type(df).__name__}.")
    if df.empty:
        raise WorkbenchError(f"{what}: the results frame is empty. Run a sweep or viz.results_frame(task, variants) "
                             "first.")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        have = ", ".join(c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]))
        raise WorkbenchError(f"{what}: the frame has no column {', '.join(map(repr, missing))}. Numeric columns it "
                             f"has: {have or 'none'}.")
    notes: list[str] = []
    bad = _is_error(df)
    n_total = len(df)
    if bad.any():
        df = df[~bad]
        notes.append(f"{int(bad.sum())} of {n_total} rows with errors not shown")
        if df.empty:
            raise WorkbenchError(f"{what}: all {n_total} rows have an error (see the `error` column); nothing to plot.")
    df, runtime = _pick(df, "runtime", runtime, one_runtime, notes, what)
    wants_device = any(is_estimate(c) or c in ("fits", "deployable") for c in needed) and not every_device
    df, device = _pick(df, "device", device, wants_device, notes, what)
    if not wants_device and not every_device and device is None and "device" in df and df["device"].nunique(dropna=False) > 1:
        keys = [c for c in ("variant", "runtime", "task") if c in df]
        df = df.drop_duplicates(subset=keys or None)  # measured figures are repeated per device row
    if numeric:
        values = df[list(numeric)].apply(pd.to_numeric, errors="coerce")
        lost = ~np.isfinite(values.to_numpy(float)).all(axis=1)
        if lost.any():
            cols = ", ".join(numeric)
            notes.append(f"{int(lost.sum())} rows without {cols} not shown")
            df = df[~lost]
        if df.empty:
            raise WorkbenchError(f"{what}: no row has a value for {', '.join(numeric)}"
                                 + (f" on {device}" if device else "") + ".")
    return _Prepared(df, notes, device, runtime)


def _pick(df: pd.DataFrame, column: str, value: str | None, required: bool, notes: list[str],
          what: str) -> tuple[pd.DataFrame, str | None]:
    """Filter to `value` of `column`; when one is `required` and none given, take the first and say so."""
    if column not in df:
        if value is not None:
            raise WorkbenchError(f"{what}: {column}={value!r} given but the frame has no {column!r} column.")
        return df, None
    present = [v for v in pd.unique(df[column]) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if value is not None:
        if value not in present:
            raise WorkbenchError(f"{what}: no rows with {column}={value!r}; the frame has {present}.")
        return df[df[column] == value], value
    if required and present:
        if len(present) > 1:
            chosen = "onnxruntime" if column == "runtime" and "onnxruntime" in present else present[0]
            notes.append(f"{column} {chosen} (of {len(present)}: pass {column}= for another)")
            return df[df[column] == chosen], chosen
        return df[df[column] == present[0]], present[0]
    if required and not present:
        raise WorkbenchError(f"{what}: needs {column} rows (estimates come per device): measure with devices=[...].")
    return df, None


def _keys(df: pd.DataFrame) -> np.ndarray:
    return (df["key"] if "key" in df else pd.Series(df.index, index=df.index)).astype(str).to_numpy()


def _text(values: pd.Series) -> pd.Series:
    """Strings for display, "–" for missing (pandas 3's ``astype(str)`` keeps missing values missing)."""
    return values.map(lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))


def _fmt(values: pd.Series, spec: str = ".4g") -> pd.Series:
    num = pd.to_numeric(values, errors="coerce")
    out = num.map(lambda v: "–" if pd.isna(v) else format(v, spec))
    return out.where(num.notna(), _text(values))


_HOVER = (("runtime", "runtime", None), ("device", "device", None), ("prune", "pruned", ".0%"),
          ("structure", "structure", None), ("bits", "weight bits", "d"), ("recover", "recovery steps", None),
          ("accuracy", "accuracy", ".4f"), ("fidelity", "agreement with original", ".4f"),
          ("latency_ms_p50", "latency median (measured, ms)", ".4g"),
          ("latency_ms_est", "latency (est., ms)", ".4g"), ("energy_mj_est", "energy (est., mJ)", ".4g"),
          ("size_bytes", "file size (bytes)", ",.0f"), ("size_deflated_bytes", "zipped (bytes)", ",.0f"),
          ("macs", "MACs", ",.0f"), ("realization", "runtime executes", None))


def _hovertext(df: pd.DataFrame, extra: Sequence[str] = ()) -> np.ndarray:
    """One HTML hover string per row: the variant's configs and figures (vectorised by column)."""
    name = _text(df["variant"]) if "variant" in df else pd.Series(df.index.astype(str), index=df.index)
    text = "<b>" + name + "</b>"
    shown = {c for c, _, _ in _HOVER}
    items = list(_HOVER) + [(c, axis_label(c), ".4g") for c in extra if c not in shown]
    for col, words, spec in items:
        if col not in df or df[col].isna().all():
            continue
        vals = df[col]
        if spec == "d":
            vals = _fmt(vals, ".0f")
        elif spec:
            vals = _fmt(vals, spec)
        else:
            vals = _text(vals).str.slice(0, 80)
        text = text + f"<br>{words}: " + vals
    return text.to_numpy()


def _title(text: str, notes: Sequence[str]) -> dict[str, Any]:
    return {"text": text, "subtitle": {"text": " · ".join(notes)}, "x": 0.0, "xanchor": "left"}


def _log_axis(values: np.ndarray) -> str:
    v = values[np.isfinite(values) & (values > 0)]
    return "log" if len(v) and len(v) == np.isfinite(values).sum() and v.max() / v.min() > 30 else "linear"


# White background without `template="plotly_white"`: validating a named template costs ~7 ms per figure, the
# default template is applied unvalidated.
_LAYOUT = {"plot_bgcolor": "white", "margin": {"t": 80, "l": 70, "r": 30, "b": 60}, "hovermode": "closest",
           "legend": {"title": {"text": ""}}}


def into(fig: Any, new: "go.Figure") -> "go.Figure":
    """Return `new`, or copy it into the existing (widget) `fig` in one batch update and return `fig`."""
    if fig is None:
        return new
    layout = new.layout.to_plotly_json()
    layout.pop("template", None)
    for key in ("annotations", "shapes"):
        layout.setdefault(key, [])
    same = [(t.type, t.name) for t in fig.data] == [(t.type, t.name) for t in new.data]
    if same:
        with fig.batch_update():
            for old, trace in zip(fig.data, new.data):
                props = trace.to_plotly_json()
                props.pop("type", None)
                props.pop("uid", None)
                old.update(props, overwrite=True)
            fig.update_layout(layout, overwrite=True)
        return fig
    fig.data = ()
    with fig.batch_update():
        fig.add_traces(list(new.data))
        fig.update_layout(layout, overwrite=True)
    return fig


_GRID = {"gridcolor": "#E8E8E8", "zerolinecolor": "#CCCCCC", "linecolor": "#CCCCCC"}


def _finish(new: "go.Figure", fig: Any) -> "go.Figure":
    """Light grid on every axis, then return `new` or copy it into the widget `fig`."""
    new.update_xaxes(**_GRID)
    new.update_yaxes(**_GRID)
    return into(fig, new)


def _figure(traces: list, layout: dict[str, Any], fig: Any) -> "go.Figure":
    import plotly.graph_objects as go

    return _finish(go.Figure(data=traces, layout={**_LAYOUT, **layout}), fig)


# ------------------------------------------------------------------------------------------ groups


def _group_values(df: pd.DataFrame, column: str) -> pd.Series:
    if column == "structure":
        s = df["structure"].map(_structure_value)
        if "prune" in df:
            s = s.where(pd.to_numeric(df["prune"], errors="coerce").fillna(0) > 0, "none")
        return s
    if column == "bits":
        return df["bits"].map(_bits_value)
    return df[column]


def _groups(df: pd.DataFrame, column: str | None) -> list[tuple[Any, str, str, np.ndarray]]:
    """(value, legend name, colour, row mask) per group: every palette value (stable traces for updates),
    then the other values present."""
    if column is None:
        return [(None, "variants", BITS_COLORS[32], np.ones(len(df), bool))]
    values = _group_values(df, column)
    known = list(PALETTE.get(column, {}))
    present = [v for v in pd.unique(values) if v not in known]
    out = []
    for v in known + sorted(present, key=str):
        out.append((v, _group_name(column, v), color_of(column, v), (values == v).to_numpy()))
    return out


def _symbols(df: pd.DataFrame) -> np.ndarray:
    """Marker symbol per row: the structure's, hollow when the runtime does not execute the compression."""
    base = (_group_values(df, "structure").map(STRUCTURE_SYMBOLS).fillna("circle") if "structure" in df
            else pd.Series("circle", index=df.index))
    if "realized" in df:
        simulated = df["realized"].map(lambda r: r is False or r == 0 and not pd.isna(r)).astype(bool)
        base = base.where(~simulated, base + "-open")
    return base.to_numpy()


def _legend(groups: list[tuple[Any, str, str, np.ndarray]], column: str | None, d: pd.DataFrame,
            symbols: np.ndarray) -> list["go.Scatter"]:
    """Legend-only traces (``meta="legend"``, one `None` point each): a filled circle per colour group, a grey
    marker per pruning structure present, and one for hollow (simulated) markers. Data traces stay out of the
    legend, because plotly draws a legend item with the symbol of the trace's first point. The set of traces is
    fixed for a colour column (absent entries are hidden), so `update_pareto` can update in place."""
    import plotly.graph_objects as go

    def item(name: str, colour: str, symbol: str, shown: bool, group: str) -> "go.Scatter":
        return go.Scatter(x=[None], y=[None], mode="markers", name=name, legendgroup=group, meta="legend",
                          showlegend=shown, hoverinfo="skip",
                          marker={"color": colour, "symbol": symbol, "size": 10, "line": {"color": colour,
                                                                                           "width": 1.5}})

    out = [item(name, colour, STRUCTURE_SYMBOLS.get(value, "circle") if column == "structure" else "circle",
                bool(mask.any()), name) for value, name, colour, mask in groups]
    if column != "structure" and "structure" in d:
        present = set(_group_values(d, "structure"))
        out += [item(STRUCTURE_NAMES[k] + ("" if k == "none" else " pruning"), "#888888", sym, k in present,
                     f"symbol:{k}") for k, sym in STRUCTURE_SYMBOLS.items()]
    simulated = any(str(x).endswith("-open") for x in symbols)
    out.append(item("hollow: simulated", "#888888", "circle-open", simulated, "symbol:simulated"))
    return out


# ------------------------------------------------------------------------------------- pareto scatter


def pareto_scatter(
    df: pd.DataFrame,
    x: str = "latency_ms_p50",
    y: str = "accuracy",
    *,
    color: str | None = "bits",
    maximize: Iterable[str] | None = None,
    minimize: Iterable[str] | None = None,
    device: str | None = None,
    runtime: str | None = None,
    highlight: Any = None,
    title: str | None = None,
    fig: Any = None,
) -> "go.Figure":
    """Two metrics against each other, one point per variant (and runtime), with the Pareto front drawn.

    Colour is `color` (bit-width by default, from the shared palette), the marker symbol the pruning structure,
    and a hollow marker a variant whose compression the runtime only simulates. The Pareto front (the variants
    nothing beats on both axes) is a step line. Hovering a point shows its configs and figures; each point's
    `customdata` is its row `key` (for click handlers).

    Args:
        df: results frame.
        x, y: columns to plot (e.g. ``"size_bytes"``, ``"latency_ms_est"``, ``"energy_mj_est"``).
        color: column to colour by: ``"bits"``, ``"structure"``, ``"runtime"``, ``"device"``, a numeric column
            (continuous scale) or None.
        maximize, minimize: which of x / y is better larger / smaller (default: metrics larger, costs smaller).
        device: the device of estimate columns (default: the frame's first, named in the axis title).
        runtime: only this runtime's rows (default: all, each its own point).
        highlight: a row `key` (or index label when there is no `key` column) to ring, e.g. the chosen variant.
        title: figure title (default: "<y> against <x>").
        fig: a `go.FigureWidget` to update in place instead of returning a new figure.

    Returns:
        The figure (or `fig`, updated). Traces: ``"Pareto front"``, one per colour group, ``"highlighted"``, then
        legend-only traces (``meta="legend"``, no data).

    Example:
        >>> fig = pareto_scatter(df, x="size_bytes", y="accuracy", highlight=df.key.iloc[0])
        >>> [t.name for t in fig.data][:2]
        ['Pareto front', '32-bit float']
    """
    import plotly.graph_objects as go

    needed = [x, y] + ([color] if color else [])
    p = _prepare(df, needed, device=device, runtime=runtime, numeric=[x, y], what="pareto_scatter")
    d = p.df
    xs = pd.to_numeric(d[x], errors="coerce").to_numpy(float)
    ys = pd.to_numeric(d[y], errors="coerce").to_numpy(float)
    senses = _senses([x, y], maximize, minimize)
    front = _pareto_mask(np.column_stack([xs, ys]), senses)
    order = np.lexsort((ys[front] * (1 if senses[1] else -1), xs[front]))
    fx, fy = xs[front][order], ys[front][order]
    keys = _keys(d)
    hover = _hovertext(d, extra=[x, y])
    symbols = _symbols(d)
    traces = [go.Scatter(x=fx, y=fy, mode="lines", name="Pareto front", hoverinfo="skip",
                         line={"shape": "vh" if senses[0] else "hv", "color": "#555555", "width": 1.5,
                               "dash": "dot"})]
    numeric_color = bool(color) and color not in PALETTE and pd.api.types.is_numeric_dtype(d[color])
    if numeric_color:
        groups = []
        traces.append(go.Scatter(
            x=xs, y=ys, mode="markers", name="variants", customdata=keys, hovertext=hover,
            hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
            marker={"color": pd.to_numeric(d[color], errors="coerce").to_numpy(float), "colorscale": "Viridis",
                    "symbol": symbols, "size": 10, "colorbar": {"title": {"text": axis_label(color, p.device)}}}))
    else:
        groups = _groups(d, color)
        for _, name, colour, mask in groups:
            traces.append(go.Scatter(
                x=xs[mask], y=ys[mask], mode="markers", name=name, customdata=keys[mask], hovertext=hover[mask],
                hovertemplate="%{hovertext}<extra></extra>", showlegend=False, legendgroup=name,
                marker={"color": colour, "symbol": symbols[mask], "size": 10,
                        "line": {"width": 1.5, "color": colour}}))
    hx, hy = _highlight(df, d, highlight, xs, ys)
    traces.append(go.Scatter(x=hx, y=hy, mode="markers", name="highlighted", hoverinfo="skip",
                             marker={"size": 22, "symbol": "circle-open", "color": "#111111",
                                     "line": {"width": 2.5}}, showlegend=bool(len(hx))))
    traces += _legend(groups, None if numeric_color else color, d, symbols)
    notes = ["dotted line: Pareto front (nothing beats these on both axes)"]
    if any(str(s).endswith("-open") for s in symbols):
        notes.append("hollow: compression simulated, not executed by the runtime")
    layout = {
        "title": _title(title or f"{_short(y).capitalize()} against {_short(x)}", notes + p.notes),
        "xaxis": {"title": {"text": axis_label(x, p.device)}, "type": _log_axis(xs)},
        "yaxis": {"title": {"text": axis_label(y, p.device)}, "type": _log_axis(ys)},
    }
    return _figure(traces, layout, fig)


def _highlight(original: pd.DataFrame, shown: pd.DataFrame, key: Any, xs: np.ndarray,
               ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if key is None:
        return np.array([]), np.array([])
    if "key" in original:
        rows = original[original["key"].astype(str) == str(key)]
    else:
        rows = original.loc[[key]] if key in original.index else original.iloc[0:0]
    if rows.empty:
        raise WorkbenchError(f"highlight={key!r} is not a row key of the frame (its `key` column).")
    match = np.ones(len(shown), bool)
    for col in ("variant", "runtime", "task"):
        if col in shown and col in rows:
            match &= (shown[col].astype(str) == str(rows[col].iloc[0])).to_numpy()
    return xs[match], ys[match]


def update_pareto(fig_widget: Any, df: pd.DataFrame, **kwargs: Any) -> Any:
    """Update a `go.FigureWidget` made by `pareto_scatter` in place (one `batch_update`, no redraw flicker).

    Takes the same keyword arguments as `pareto_scatter`. Traces are replaced only when the set of colour
    groups changes (e.g. colouring by another column); otherwise their data are updated.

    Example:
        >>> w = go.FigureWidget(pareto_scatter(df))
        >>> update_pareto(w, df[df.bits == 8], y="fidelity") is w
        True
    """
    return pareto_scatter(df, fig=fig_widget, **kwargs)


# ---------------------------------------------------------------------------------------------- heatmap


def heatmap(
    df: pd.DataFrame,
    metric: str = "accuracy",
    *,
    structure: str | None = None,
    runtime: str | None = None,
    device: str | None = None,
    agg: str | None = None,
    fig: Any = None,
) -> "go.Figure":
    """A metric over prune ratio (columns) x weight bits (rows), one panel per pruning structure.

    Unpruned variants (ratio 0) appear in every structure's panel. Where several variants share a cell (e.g.
    with and without recovery), the best is shown (`agg` ``"max"`` for metrics, ``"min"`` for costs). Bright is
    better in every panel (the scale is reversed for costs).

    Args:
        df: results frame.
        metric: the column to show.
        structure: one structure only (``"unstructured"``, ``"channel"``, ``"2:4"``).
        runtime: the runtime (default ``onnxruntime`` or the first, named in the subtitle).
        device: the device for an estimate column.
        agg: ``"max"``, ``"min"``, ``"mean"`` or ``"median"`` for cells with several variants.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> fig = heatmap(df, "latency_ms_p50", structure="channel")
        >>> fig.data[0].z.shape == (df.bits.nunique(), df.prune.nunique())
        True
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    p = _prepare(df, ["prune", "bits", metric], device=device, runtime=runtime, one_runtime=True,
                 numeric=[metric], what="heatmap")
    d = p.df
    up = maximized(metric)
    agg = agg or ("max" if up else "min")
    if agg not in ("max", "min", "mean", "median"):
        raise WorkbenchError(f"heatmap: agg must be 'max', 'min', 'mean' or 'median', got {agg!r}.")
    prune = pd.to_numeric(d["prune"], errors="coerce").fillna(0.0)
    struct = _group_values(d, "structure") if "structure" in d else pd.Series("none", index=d.index)
    names = [s for s in pd.unique(struct) if s != "none"] or ["none"]
    if structure is not None:
        if structure not in names:
            raise WorkbenchError(f"heatmap: no variants pruned with structure {structure!r}; the frame has {names}.")
        names = [structure]
    names = sorted(names, key=lambda s: list(STRUCTURE_SYMBOLS).index(s) if s in STRUCTURE_SYMBOLS else 99)
    fig_new = make_subplots(rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.04,
                            subplot_titles=[f"{STRUCTURE_NAMES.get(s, s)} pruning" if s != "none" else "no pruning"
                                            for s in names])
    values = pd.to_numeric(d[metric], errors="coerce")
    lo, hi = float(values.min()), float(values.max())
    shared = 0
    for i, s in enumerate(names, start=1):
        rows = (struct == s) | (prune == 0)
        table = heatmap_table(d[rows.to_numpy()], metric, agg=agg)
        shared += int(table.attrs["shared_cells"])
        fig_new.add_trace(go.Heatmap(
            z=table.to_numpy(float), x=[f"{c:.0%}" for c in table.columns], y=[BITS_NAMES.get(b, f"{b}-bit")
                                                                              for b in table.index],
            coloraxis="coloraxis", texttemplate="%{z:.4g}", name=s, xgap=2, ygap=2,
            hovertemplate=f"pruned %{{x}}, %{{y}}<br>{_short(metric)}: %{{z:.4g}}<extra>{s}</extra>"),
            row=1, col=i)
        fig_new.update_xaxes(title_text="fraction pruned", type="category", row=1, col=i)
    fig_new.update_yaxes(title_text="weight bits", type="category", autorange="reversed", row=1, col=1)
    notes = list(p.notes)
    if shared:
        notes.insert(0, f"cells with several variants show the {agg}")
    if p.runtime and not any(n.startswith("runtime") for n in notes):
        notes.append(f"on {p.runtime}")
    fig_new.update_layout(
        **{**_LAYOUT, "margin": {**_LAYOUT["margin"], "t": 110}}, title=_title(f"{_short(metric).capitalize()} by pruning and bit-width", notes),
        coloraxis={"colorscale": "Viridis", "reversescale": not up, "cmin": lo, "cmax": hi,
                   "colorbar": {"title": {"text": axis_label(metric, p.device)}}})
    return _finish(fig_new, fig)


def heatmap_table(df: pd.DataFrame, metric: str, *, agg: str = "max") -> pd.DataFrame:
    """The pivot behind a heatmap panel: weight bits (rows, widest first) x prune ratio (columns).

    Example:
        >>> heatmap_table(df[df.structure.isin(["channel", None])], "accuracy")
    """
    prune = pd.to_numeric(df["prune"], errors="coerce").fillna(0.0)
    bits = df["bits"].map(_bits_value)
    values = pd.to_numeric(df[metric], errors="coerce")
    frame = pd.DataFrame({"bits": bits.to_numpy(), "prune": prune.to_numpy(), "v": values.to_numpy()})
    table = frame.pivot_table(index="bits", columns="prune", values="v", aggfunc=agg)
    table = table.sort_index(ascending=False).sort_index(axis=1)
    table.attrs["shared_cells"] = int((frame.groupby(["bits", "prune"]).size() > 1).sum())
    return table


# ------------------------------------------------------------------------------------------ sensitivity


def sensitivity_bars(sens: pd.DataFrame, *, top: int | None = None, fig: Any = None) -> "go.Figure":
    """Bars of the metric's drop when one layer at a time is quantised or pruned (`workbench.sensitivity`).

    One bar per layer and level; quantisation levels use the bit-width colours of every other figure. Tall bars
    are the layers to keep at higher precision (or out of pruning).

    Args:
        sens: the frame `workbench.sensitivity(task, kind, levels)` returns.
        top: only the `top` layers with the largest drop.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> sensitivity_bars(workbench.sensitivity(task, "quantize", [4, 2]), top=10)
    """
    import plotly.graph_objects as go

    p = _prepare(sens, ["layer", "level", "drop"], numeric=["drop"], what="sensitivity_bars")
    d = p.df
    kind = str(d["kind"].iloc[0]) if "kind" in d else "quantize"
    metric = str(d["metric"].iloc[0]) if "metric" in d else "metric"
    layers = list(pd.unique(d["layer"]))
    if top is not None:
        worst = d.groupby("layer", sort=False)["drop"].max().sort_values(ascending=False)
        keep = set(worst.index[: int(top)])
        layers = [n for n in layers if n in keep]
        d = d[d["layer"].isin(keep)]
    levels = sorted(pd.unique(d["level"]), reverse=kind == "quantize")
    shades = _shades(len(levels))
    traces = []
    for i, level in enumerate(levels):
        rows = d[d["level"] == level].set_index("layer").reindex(layers)
        if kind == "quantize":
            name, colour = BITS_NAMES.get(int(level), f"{int(level)}-bit"), color_of("bits", level)
        else:
            name, colour = f"{float(level):.0%} of weights pruned", shades[i]
        extra = "" if "value" not in rows else (
            "<br>" + metric + ": " + _fmt(rows["value"], ".4f") + (
                " (type " + rows["type"].astype(str) + ", " + _fmt(rows["params"], ",.0f") + " weights)"
                if "type" in rows and "params" in rows else ""))
        traces.append(go.Bar(x=layers, y=rows["drop"].to_numpy(float), name=name, marker={"color": colour},
                             hovertext=("<b>" + pd.Series(layers, index=rows.index) + "</b>" + extra).to_numpy(),
                             hovertemplate="%{hovertext}<br>drop: %{y:.4f}<extra>" + name + "</extra>"))
    verb = "quantised" if kind == "quantize" else "pruned"
    notes = list(p.notes)
    if "baseline" in d:
        notes.insert(0, f"{metric} of the unmodified model: {float(d['baseline'].iloc[0]):.4f}")
    layout = {"title": _title(f"Drop in {metric} when one layer at a time is {verb}", notes), "barmode": "group",
              "xaxis": {"title": {"text": "layer (in model order)"}, "type": "category"},
              "yaxis": {"title": {"text": f"drop in {metric} (measured; higher is worse)"}}}
    return _figure(traces, layout, fig)


def _shades(n: int) -> list[str]:
    import plotly.colors as pc

    if n <= 1:
        return ["#7B4173"]
    return pc.sample_colorscale("Purples", [0.35 + 0.6 * i / (n - 1) for i in range(n)])


# -------------------------------------------------------------------------------------------- latency


def latency_distribution(
    data: pd.DataFrame | Mapping[str, Sequence[float]],
    *,
    column: str = "latency_ms_p50",
    by: str = "runtime",
    kind: str = "box",
    fig: Any = None,
) -> "go.Figure":
    """Latency per runtime: a box (or violin) per runtime.

    Given a results frame, each box holds the variants' `column` (one point per variant, hover names it).
    Given ``{runtime: [ms, ms, ...]}`` — raw per-call timings — each box holds the calls of one runtime
    (`workbench.measurement.latency.time_runner` keeps only quantiles, so raw samples come from your own timing loop).

    Args:
        data: results frame, or a mapping from runtime name to latency samples in milliseconds.
        column: the latency column (frame only), e.g. ``"latency_ms_p90"`` or ``"latency_ms_est"``.
        by: the column to split by (frame only): ``"runtime"`` or ``"device"``.
        kind: ``"box"`` or ``"violin"``.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> latency_distribution(df)                         # one box per runtime over the variants
        >>> latency_distribution({"onnxruntime": [0.06, 0.07, 0.06], "litert": [0.09, 0.1, 0.08]})
    """
    import plotly.graph_objects as go

    if kind not in ("box", "violin"):
        raise WorkbenchError(f"latency_distribution: kind must be 'box' or 'violin', got {kind!r}.")
    make = go.Box if kind == "box" else go.Violin
    points = {"boxpoints": "all", "jitter": 0.4, "pointpos": 0} if kind == "box" else {"points": "all",
                                                                                          "box": {"visible": True}}
    traces, notes = [], []
    if isinstance(data, Mapping):
        if not data:
            raise WorkbenchError("latency_distribution: no timings given (an empty mapping).")
        for name, samples in data.items():
            arr = np.asarray(samples, float)
            if arr.ndim != 1 or not len(arr) or not np.isfinite(arr).all():
                raise WorkbenchError(f"latency_distribution: timings of {name!r} must be a non-empty 1-D sequence "
                                     "of finite milliseconds.")
            traces.append(make(y=arr, name=str(name), marker={"color": color_of("runtime", name)},
                               line={"color": color_of("runtime", name)}, **points))
        title, ylabel, dev = "Latency of repeated calls, per runtime", "latency per call (measured, ms)", None
    else:
        p = _prepare(data, [column, by], numeric=[column], what="latency_distribution")
        d, dev = p.df, p.device
        notes = p.notes
        values = pd.to_numeric(d[column], errors="coerce").to_numpy(float)
        hover = _hovertext(d)
        for name in pd.unique(d[by]):
            mask = (d[by] == name).to_numpy()
            colour = color_of(by, name)
            traces.append(make(y=values[mask], name=str(name), hovertext=hover[mask], marker={"color": colour},
                               line={"color": colour}, hoveron="points",
                               hovertemplate="%{hovertext}<extra></extra>", **points))
        title = f"{_short(column).capitalize()} of each variant, per {by}"
        ylabel = axis_label(column, dev)
    values = np.concatenate([np.asarray(t.y, float) for t in traces])
    layout = {"title": _title(title, notes), "showlegend": False,
              "xaxis": {"title": {"text": by}}, "yaxis": {"title": {"text": ylabel}, "type": _log_axis(values)}}
    return _figure(traces, layout, fig)


# ------------------------------------------------------------------------------------------ device fit


def fit_status(
    df: pd.DataFrame,
    *,
    latency_ms: float | None = None,
    energy_mj: float | None = None,
    power_w: float | None = None,
    min_metric: float | None = None,
    metric: str = "accuracy",
    runtime: str | None = None,
) -> pd.DataFrame:
    """Per variant and device: deployable, fits in memory, meets the budgets (all estimates but the metric).

    Returns one row per variant x device with `variant`, `device`, `status` (one of `FIT_STATUS`), `code`
    (its index: 0 not deployable … 3 meets budget), `why` (what failed), `latency_ms_est`, `energy_mj_est`,
    `power_w_est` and the metric.

    Example:
        >>> fit_status(df, latency_ms=5, min_metric=0.95)[["variant", "device", "status"]]
    """
    needed = ["variant", "device", "latency_ms_est"]
    p = _prepare(df, needed, runtime=runtime, one_runtime="runtime" in df, what="fit_status", every_device=True)
    d = p.df[p.df["device"].notna()].drop_duplicates(subset=["variant", "device"])
    if d.empty:
        raise WorkbenchError("fit_status: no device rows; measure with devices=[...] to get estimates.")
    for name, v in (("latency_ms", latency_ms), ("energy_mj", energy_mj), ("power_w", power_w),
                    ("min_metric", min_metric)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise WorkbenchError(f"fit_status: {name} must be a number or None, got {v!r}.")
    if min_metric is not None and metric not in d:
        raise WorkbenchError(f"fit_status: min_metric needs a {metric!r} column; pass metric=<one of the columns>.")
    lat = pd.to_numeric(d["latency_ms_est"], errors="coerce")
    deployable = (d["deployable"].fillna(False).astype(bool) if "deployable" in d else lat.notna()) & lat.notna()
    fits = d["fits"].fillna(False).astype(bool) if "fits" in d else pd.Series(True, index=d.index)
    why = pd.Series("", index=d.index, dtype=object)
    misses = pd.Series(False, index=d.index)
    checks = [("latency_ms_est", latency_ms, "latency {v:.3g} ms > {b:g} ms", False),
              ("energy_mj_est", energy_mj, "energy {v:.3g} mJ > {b:g} mJ", False),
              ("power_w_est", power_w, "power {v:.3g} W > {b:g} W", False),
              (metric, min_metric, metric + " {v:.4g} < {b:g}", True)]
    for col, budget, text, at_least in checks:
        if budget is None or col not in d:
            continue
        vals = pd.to_numeric(d[col], errors="coerce")
        bad = (vals < budget) if at_least else (vals > budget)
        bad &= vals.notna()
        misses |= bad
        msg = vals.map(lambda v, t=text, b=budget: t.format(v=v, b=b) if pd.notna(v) else "")
        why = why.where(~bad, why + np.where(why == "", "", "; ") + msg)
    reason = d["reason"].fillna("").astype(str) if "reason" in d else pd.Series("", index=d.index)
    code = np.select([~deployable, ~fits, misses], [0, 1, 2], default=3)
    why = why.where(code == 2, reason.where(code < 2, ""))
    out = pd.DataFrame({"variant": d["variant"].to_numpy(), "device": d["device"].to_numpy(), "code": code,
                        "status": [FIT_STATUS[c] for c in code], "why": why.to_numpy()})
    for col in ("latency_ms_est", "energy_mj_est", "power_w_est", metric, "key"):
        if col in d:
            out[col] = d[col].to_numpy()
    out.attrs["notes"] = p.notes
    return out


def device_fit_table(
    df: pd.DataFrame,
    *,
    latency_ms: float | None = None,
    energy_mj: float | None = None,
    power_w: float | None = None,
    min_metric: float | None = None,
    metric: str = "accuracy",
    runtime: str | None = None,
    fig: Any = None,
) -> "go.Figure":
    """A grid of variants (rows) x devices (columns): grey not deployable, red does not fit, yellow misses a
    budget, green meets every budget; each cell shows the estimated latency, hover says why.

    Args:
        df: results frame with device rows (``measure(..., devices=[...])``).
        latency_ms, energy_mj, power_w: budgets on the estimates (None: no budget).
        min_metric: the accuracy bar (on `metric`, measured).
        metric: the metric column of the bar.
        runtime: the runtime whose measured metric counts (default ``onnxruntime`` or the first).
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> device_fit_table(df, latency_ms=5, min_metric=0.95)
    """
    import plotly.graph_objects as go

    st = fit_status(df, latency_ms=latency_ms, energy_mj=energy_mj, power_w=power_w, min_metric=min_metric,
                    metric=metric, runtime=runtime)
    variants = list(pd.unique(st["variant"]))
    devs = list(pd.unique(st["device"]))
    grid = st.pivot(index="variant", columns="device", values="code").reindex(index=variants, columns=devs)
    lat = st.pivot(index="variant", columns="device", values="latency_ms_est").reindex(index=variants, columns=devs)
    why = st.pivot(index="variant", columns="device", values="why").reindex(index=variants, columns=devs)
    status = grid.apply(lambda c: c.map(lambda v: FIT_STATUS[int(v)] if pd.notna(v) else "no row"))
    text = lat.apply(lambda c: c.map(lambda v: f"{v:.3g} ms" if pd.notna(v) else "–"))
    n = len(FIT_STATUS)
    scale = [[edge, FIT_COLORS[i]] for i in range(n) for edge in (i / n, (i + 1) / n)]
    trace = go.Heatmap(
        z=grid.to_numpy(float), x=devs, y=variants, text=text.to_numpy(), texttemplate="%{text}",
        customdata=np.dstack([status.to_numpy(), why.fillna("").to_numpy()]), zmin=-0.5, zmax=n - 0.5,
        colorscale=scale, xgap=2, ygap=2,
        colorbar={"tickvals": list(range(n)), "ticktext": list(FIT_STATUS), "title": {"text": ""}},
        hovertemplate="<b>%{y}</b> on %{x}<br>%{customdata[0]}<br>%{customdata[1]}"
                      "<br>latency (est.): %{text}<extra></extra>")
    budget = [f"latency ≤ {latency_ms:g} ms (est.)" if latency_ms is not None else "",
              f"energy ≤ {energy_mj:g} mJ (est.)" if energy_mj is not None else "",
              f"power ≤ {power_w:g} W (est.)" if power_w is not None else "",
              f"{metric} ≥ {min_metric:g} (measured)" if min_metric is not None else ""]
    budget = [b for b in budget if b]
    notes = (["budget: " + ", ".join(budget)] if budget else ["no budget: green = deployable and fits"])
    notes += st.attrs.get("notes", [])
    layout = {"title": _title("Which variants run on which device (estimates)", notes),
              "xaxis": {"title": {"text": "device (cells: latency, est.)"}, "type": "category", "tickangle": -30},
              "yaxis": {"title": {"text": "variant"}, "autorange": "reversed", "type": "category"},
              "margin": {"t": 80, "l": 200, "r": 30, "b": 110}}
    return _figure([trace], layout, fig)


# -------------------------------------------------------------------------------- energy vs accuracy


def energy_vs_accuracy(
    df: pd.DataFrame,
    *,
    metric: str = "accuracy",
    energy: str = "energy_mj_est",
    devices: Sequence[str] | None = None,
    runtime: str | None = None,
    cols: int = 3,
    fig: Any = None,
) -> "go.Figure":
    """Estimated energy per inference against the measured metric, one panel per device, Pareto front in each.

    Colours are bit-widths and markers structures, as everywhere; variants a device cannot run (no estimate)
    are left out and counted in the subtitle.

    Args:
        df: results frame with device rows.
        metric: the measured metric (y).
        energy: the estimate (x): ``"energy_mj_est"``, ``"power_w_est"`` or ``"battery_h_est"``.
        devices: devices to show (default: all in the frame).
        runtime: the runtime whose measured metric counts (default ``onnxruntime`` or the first).
        cols: panels per row.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> energy_vs_accuracy(df, devices=["raspberry-pi-4", "jetson-orin-nano"])
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    p = _prepare_all_devices(df, metric, energy, runtime)
    d = p.df
    names = [n for n in p.attrs_order if n in set(d["device"])]
    if devices is not None:
        unknown = [n for n in devices if n not in names]
        if unknown:
            raise WorkbenchError(f"energy_vs_accuracy: no estimates for {unknown}; the frame has {names}.")
        names = list(devices)
    ncols = max(1, min(int(cols), len(names)))
    nrows = math.ceil(len(names) / ncols)
    new = make_subplots(rows=nrows, cols=ncols, shared_yaxes=True, subplot_titles=names,
                        horizontal_spacing=0.05, vertical_spacing=0.32 / max(nrows, 1))
    senses = [maximized(energy), maximized(metric)]
    for i, name in enumerate(names):
        r, c = i // ncols + 1, i % ncols + 1
        sub = d[d["device"] == name]
        xs = pd.to_numeric(sub[energy], errors="coerce").to_numpy(float)
        ys = pd.to_numeric(sub[metric], errors="coerce").to_numpy(float)
        front = _pareto_mask(np.column_stack([xs, ys]), senses)
        order = np.argsort(xs[front], kind="stable")
        new.add_trace(go.Scatter(x=xs[front][order], y=ys[front][order], mode="lines", name="Pareto front",
                                 line={"shape": "vh" if senses[0] else "hv", "color": "#555555", "dash": "dot",
                                       "width": 1.5}, hoverinfo="skip", legendgroup="front",
                                 showlegend=i == 0), row=r, col=c)
        hover = _hovertext(sub, extra=[energy])
        symbols = _symbols(sub)
        keys = _keys(sub)
        for _, gname, colour, mask in _groups(sub, "bits" if "bits" in sub else None):
            if not mask.any():
                continue
            new.add_trace(go.Scatter(
                x=xs[mask], y=ys[mask], mode="markers", name=gname, legendgroup=gname,
                showlegend=False, customdata=keys[mask], hovertext=hover[mask],
                hovertemplate="%{hovertext}<extra></extra>",
                marker={"color": colour, "symbol": symbols[mask], "size": 9, "line": {"width": 1.5,
                                                                                       "color": colour}}),
                row=r, col=c)
        title = axis_label(energy, name) if len(names) == 1 else f"{_SHORT_AXIS.get(energy, _short(energy))} on {name}"
        new.update_xaxes(title_text=title, title_font_size=11, type=_log_axis(xs), row=r, col=c)
    colour = "bits" if "bits" in d else None
    for t in _legend(_groups(d, colour), colour, d, _symbols(d)):
        new.add_trace(t, row=1, col=1)
    new.update_yaxes(title_text=axis_label(metric), col=1)
    new.update_layout(**{**_LAYOUT, "margin": {**_LAYOUT["margin"], "t": 110}}, height=max(400, 330 * nrows),
                      title=_title(f"{_short(metric).capitalize()} against {_short(energy)}, per device",
                                   ["dotted line: Pareto front per device"] + p.notes))
    return _finish(new, fig)


def _prepare_all_devices(df: pd.DataFrame, metric: str, energy: str, runtime: str | None) -> _Prepared:
    """Like `_prepare`, but keeps every device (one panel each) instead of picking one."""
    p = _prepare(df, [metric, "device", "variant"], runtime=runtime, one_runtime="runtime" in df,
                 what="energy_vs_accuracy", every_device=True)
    if energy not in df:
        raise WorkbenchError(f"energy_vs_accuracy: the frame has no {energy!r} column; measure with devices=[...].")
    d = p.df[p.df["device"].notna()]
    if d.empty:
        raise WorkbenchError("energy_vs_accuracy: no device rows; measure with devices=[...] to get estimates.")
    vals = pd.to_numeric(d[energy], errors="coerce")
    lost = vals.isna() | pd.to_numeric(d[metric], errors="coerce").isna()
    if lost.all():
        raise WorkbenchError(f"energy_vs_accuracy: no variant has an {energy} estimate (none is deployable).")
    notes = list(p.notes)
    if lost.any():
        notes.append(f"{int(lost.sum())} variant × device pairs without an estimate (not deployable) not shown")
    out = _Prepared(d[~lost], notes, None, p.runtime)
    out.attrs_order = list(pd.unique(d["device"]))  # panels in the frame's device order
    return out


# ------------------------------------------------------------------------------------------------ size


def size_breakdown(df: pd.DataFrame, *, runtime: str | None = None, fig: Any = None) -> "go.Figure":
    """File size and zipped (deflate) size per variant, bars coloured by bit-width; diamonds mark the weights at
    their bit-width (computed), which is what a runtime that packs the bits would store.

    Unstructured sparsity shows here as a zipped bar much shorter than its file bar: the zeros compress, the
    file does not shrink.

    Args:
        df: results frame.
        runtime: whose artefact to show (default ``onnxruntime`` or the first, named in the subtitle).
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> size_breakdown(df, runtime="litert")
    """
    import plotly.graph_objects as go

    p = _prepare(df, ["variant", "size_bytes", "size_deflated_bytes"], runtime=runtime, one_runtime=True,
                 numeric=["size_bytes"], what="size_breakdown")
    d = p.df.drop_duplicates(subset=["variant"]).sort_values("size_bytes", ascending=False, kind="stable")
    names = d["variant"].astype(str).to_numpy()
    colours = [color_of("bits", b) for b in d["bits"]] if "bits" in d else [OTHER_COLOR] * len(d)
    hover = _hovertext(d)
    traces = [
        go.Bar(x=names, y=pd.to_numeric(d["size_bytes"]).to_numpy(float), name="file (measured)",
               marker={"color": colours}, hovertext=hover, hovertemplate="%{hovertext}<extra>file</extra>"),
        go.Bar(x=names, y=pd.to_numeric(d["size_deflated_bytes"], errors="coerce").to_numpy(float),
               name="zipped, deflate (measured)", hovertext=hover,
               marker={"color": colours, "pattern": {"shape": "/", "fgcolor": "#FFFFFF"}, "opacity": 0.75},
               hovertemplate="%{hovertext}<extra>zipped</extra>"),
    ]
    if "weight_bytes" in d:
        traces.append(go.Scatter(x=names, y=pd.to_numeric(d["weight_bytes"], errors="coerce").to_numpy(float),
                                 mode="markers", name="weights at their bit-width (computed)",
                                 marker={"symbol": "diamond", "size": 11, "color": "#222222"},
                                 hovertemplate="weights: %{y:,.0f} bytes<extra></extra>"))
    notes = ["bar colour: weight bits", "hatched: zipped"] + p.notes
    if p.runtime and not any(n.startswith("runtime") for n in notes):
        notes.append(f"{p.runtime} artefacts")
    layout = {"title": _title("Size of each variant: file and zipped", notes), "barmode": "group",
              "xaxis": {"title": {"text": "variant"}, "type": "category"},
              "yaxis": {"title": {"text": "size (bytes)"}}}
    return _figure(traces, layout, fig)


# ----------------------------------------------------------------------------------- estimate vs measured


def estimate_vs_measured(
    df: pd.DataFrame,
    *,
    device: str = "host",
    measured: str | None = None,
    estimated: str | None = None,
    fig: Any = None,
) -> "go.Figure":
    """Estimated against measured latency on this machine, log-log, with the line where they agree.

    Takes the table `workbench.calibrate_host` returns (`measured_ms`, `estimated_ms`), or a results frame with
    `latency_ms_p50` and the `host` device's `latency_ms_est`.

    Example:
        >>> prof, table = workbench.calibrate_host(rounds=1, seconds=0.05, save=False)
        >>> estimate_vs_measured(table)
    """
    import plotly.graph_objects as go

    if isinstance(df, pd.DataFrame) and {"measured_ms", "estimated_ms"} <= set(df.columns):
        measured, estimated = measured or "measured_ms", estimated or "estimated_ms"
        p = _prepare(df, [measured, estimated], numeric=[measured, estimated], what="estimate_vs_measured")
    else:
        if device != "host":
            raise WorkbenchError(f"estimate_vs_measured: the frame's latency was measured on this machine, so it can "
                                 f"only check the 'host' profile's estimates, not {device!r}.")
        measured, estimated = measured or "latency_ms_p50", estimated or "latency_ms_est"
        p = _prepare(df, [measured, estimated], device=device, numeric=[measured, estimated],
                     what="estimate_vs_measured")
    d = p.df
    m = pd.to_numeric(d[measured]).to_numpy(float)
    e = pd.to_numeric(d[estimated]).to_numpy(float)
    names = d["variant"].astype(str).to_numpy() if "variant" in d else d.index.astype(str).to_numpy()
    lo, hi = float(min(m.min(), e.min())) * 0.8, float(max(m.max(), e.max())) * 1.25
    err = np.abs(e / m - 1)
    traces = [
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="estimate = measured", hoverinfo="skip",
                   line={"color": "#555555", "dash": "dot"}),
        go.Scatter(x=m, y=e, mode="markers+text", name="variants", text=names, textposition="top center",
                   textfont={"size": 9}, marker={"size": 9, "color": color_of("device", device)},
                   customdata=np.round(100 * (e / m - 1), 1),
                   hovertemplate="<b>%{text}</b><br>measured %{x:.4g} ms<br>estimated %{y:.4g} ms"
                                 "<br>error %{customdata:+.1f}%<extra></extra>"),
    ]
    notes = [f"median error {100 * float(np.median(err)):.0f}%, worst {100 * float(err.max()):.0f}% "
             f"(|est. / measured − 1|)"] + p.notes
    dev = p.device or device
    layout = {"title": _title(f"Estimated against measured latency on {dev}", notes), "showlegend": False,
              "xaxis": {"title": {"text": "latency (measured, ms)"}, "type": "log"},
              "yaxis": {"title": {"text": f"latency (est., ms) on {dev}"}, "type": "log"}}
    return _figure(traces, layout, fig)


# ------------------------------------------------------------------------------ a frame without a sweep


def config_columns(handle: Any) -> dict[str, Any]:
    """The sweep contract's config columns from a variant's lineage: `prune`, `structure`, `bits`, `recover`.

    `bits` is 32 for float, 16 for fp16, else the `Quantize` bit-width (the widest layer's for mixed precision;
    `bits_effective` in a measurement gives the average). `recover` is the number of `Recover` steps.

    Example:
        >>> config_columns(workbench.compress(task.model, Prune(0.5, structure="channel"), Quantize(8)))
        {'prune': 0.5, 'structure': 'channel', 'bits': 8, 'recover': None}
    """
    out: dict[str, Any] = {"prune": 0.0, "structure": None, "bits": 32, "recover": None}
    for cfg in getattr(handle, "lineage", ()):
        kind = getattr(cfg, "kind", "")
        if kind == "prune":
            out["prune"], out["structure"] = float(cfg.ratio), str(cfg.structure)
        elif kind == "quantize":
            out["bits"] = 16 if getattr(cfg, "dtype", None) == "fp16" else int(cfg.bits)
        elif kind == "recover":
            out["recover"] = (out["recover"] or 0) + int(cfg.steps)
    return out


def results_frame(
    task: Any,
    variants: Sequence[Any],
    *,
    runtimes: Sequence[str] = ("onnxruntime",),
    devices: Sequence[str] = (),
    threads: int | None = 1,
    limit: int | None = None,
    memory: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Measure a few variants and return them in the sweep's results-frame layout (no store, no caching).

    For notebooks and tests that want the figures without running a sweep: every variant is measured with
    `workbench.measure` on every runtime, with estimates for `devices`, and the config columns (`prune`,
    `structure`, `bits`, `recover`), `key` and ``baseline_<metric>`` are added.

    Args:
        task: the task (its model is the baseline).
        variants: handles, e.g. ``[task.model, workbench.compress(task.model, Prune(0.5))]``.
        runtimes: runtimes to measure on.
        devices: device profiles to estimate for (one row per device).
        threads: intra-op threads.
        limit: evaluate on the first `limit` samples only.
        memory: also measure peak memory (a child process per variant, ~1 s each).
        progress: a progress bar.

    Example:
        >>> df = results_frame(task, [task.model], devices=["raspberry-pi-4"], limit=300)
        >>> df[["variant", "runtime", "device", "accuracy", "latency_ms_p50", "latency_ms_est"]]
    """
    from tqdm.auto import tqdm

    from workbench.measurement import measure, to_frame
    from workbench.runtimes import runtime as make_runtime

    if not variants:
        raise WorkbenchError("results_frame: no variants given; pass e.g. [task.model].")
    base = task.evaluate(make_runtime(task.model, "torch"), limit=limit)
    frames = []
    bar = tqdm(total=len(variants) * len(runtimes), desc="measure", disable=not progress, leave=False)
    for handle in variants:
        configs = config_columns(handle)
        for rt in runtimes:
            m = measure(handle, task, runtime=rt, threads=threads, devices=devices, memory=memory, limit=limit)
            frame = to_frame([m])
            for col, value in configs.items():
                frame[col] = [value] * len(frame)
            fp = getattr(handle, "fingerprint", "")
            frame["key"] = [hashlib.sha256(f"{task.name}|{fp}|{rt}|{dev}".encode()).hexdigest()[:16]
                            for dev in frame["device"]]
            frames.append(frame)
            bar.update()
    bar.close()
    df = pd.concat(frames, ignore_index=True)
    for name, value in base.items():
        df[f"baseline_{name}"] = value
    first = ["key", "task", "variant", "prune", "structure", "bits", "recover", "runtime", "device"]
    return df[first + [c for c in df.columns if c not in first]]
