"""The same variant on every runtime: measured latency (median with its spread) and file size per runtime, what
each runtime really executed, which runtimes could not run it, and which are within measurement noise.

*Within noise* is one rule everywhere (`within_noise`): each runtime's median lies inside the other's whisker,
drawn at median ± half the interquartile range of its timed calls (``latency_ms_iqr``): the medians are closer
than half the smaller IQR. One very noisy runtime therefore never counts as "within noise" of a fast steady one.
A frame without IQR uses the distance from the median to the 90th percentile instead, and says so.

Example:
    >>> t = runtime_table(df, "q8")
    >>> t[["runtime", "precision", "verdict"]].values.tolist()
    [['onnxruntime', 'int8 QDQ', 'fastest']]
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.viz.style import RUNTIME_NAMES, color_of, figure_title, runtime_name
from workbench.viz.update import figure_from

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

NOISE_RULE = "within noise: each median inside the other's whisker (± half the IQR of the timed calls)"
TABLE_COLUMNS = ("runtime", "name", "status", "latency_ms_p50", "spread_ms", "latency_ms_p90", "size_bytes",
                 "realization", "realized", "precision", "error", "ratio", "fastest", "within_noise", "verdict")


def _number(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


def _text(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def within_noise(p50_a: float, spread_a: float, p50_b: float, spread_b: float) -> bool:
    """Whether two median latencies are within measurement noise of each other: each median lies inside the
    other's whisker ``p50 ± spread/2`` (spread: the IQR of the timed calls), i.e. the distance between them is at
    most half the smaller spread.

    Example:
        >>> within_noise(0.083, 0.006, 0.081, 0.011), within_noise(0.083, 0.006, 0.127, 0.015)
        (True, False)
        >>> within_noise(0.08, 0.006, 1.7, 4.4)   # a very noisy runtime is not "within noise" of a steady one
        False
    """
    values = [_number(v) for v in (p50_a, spread_a, p50_b, spread_b)]
    if any(math.isnan(v) for v in values):
        return False
    a, sa, b, sb = values
    return abs(a - b) <= max(min(sa, sb), 0.0) / 2 + 1e-12


def precision_label(realization: Any, realized: Any = None) -> str:
    """A short label of what a runtime executed: the realisation note up to its first detail, plus
    ``(simulated)`` when the compression was not executed (`realized` False).

    Example:
        >>> precision_label("int8 QDQ (static, calibrated)", True), precision_label("fp32; sparsity simulated", False)
        ('int8 QDQ', 'fp32 (simulated)')
    """
    text = _text(realization).split(";")[0].split(" (")[0].strip() or "–"
    return f"{text} (simulated)" if simulated(realized) else text


def simulated(realized: Any) -> bool:
    """Whether a row's ``realized`` says the compression was only simulated (False or 0; missing is not)."""
    if realized is None or isinstance(realized, str):
        return False
    try:
        return not pd.isna(realized) and not bool(realized)
    except (TypeError, ValueError):
        return False


def _order(runtimes: Sequence[str]) -> list[str]:
    known = [r for r in RUNTIME_NAMES if r in runtimes]
    return known + [r for r in dict.fromkeys(runtimes) if r not in RUNTIME_NAMES]


def runtime_table(df: pd.DataFrame, variant: str, *, runtimes: Sequence[str] | None = None,
                  task: str | None = None) -> pd.DataFrame:
    """One row per runtime for `variant`: its measured latency and spread, size, what ran, and a verdict.

    Args:
        df: a results frame (a sweep's, `workbench.results_frame`'s or `measure` rows); error rows count.
        variant: the variant's label (the ``variant`` column).
        runtimes: runtimes to list (default: every runtime in the frame); one the variant has no row on is
            ``not measured``.
        task: the task, when the frame holds several.

    Returns:
        Columns `TABLE_COLUMNS` plus the frame's metric columns: ``status`` is ``ok``, ``error`` or ``not
        measured``; ``spread_ms`` the IQR (else p90 − median); ``ratio`` the median over the fastest's;
        ``within_noise`` whether it is within noise of the fastest (`within_noise`); ``verdict`` in words.
        Runtimes in the order of `RUNTIME_NAMES`. ``attrs["spread"]`` is ``"iqr"`` or ``"p90"``.

    Example:
        >>> runtime_table(df, "baseline")[["name", "status", "precision"]].values.tolist()
        [['ONNX Runtime', 'ok', 'fp32']]
    """
    from workbench.sweeps.frame import error_mask, metric_columns

    if not isinstance(df, pd.DataFrame) or "variant" not in df or "runtime" not in df:
        raise WorkbenchError("runtime_table: expected a results frame with 'variant' and 'runtime' columns (a "
                             "sweep's or workbench.results_frame's).")
    rows = df[df["variant"].astype(str) == str(variant)].reset_index(drop=True)
    if rows.empty:
        have = ", ".join(map(str, pd.unique(df["variant"])))
        raise WorkbenchError(f"runtime_table: no rows for variant {variant!r}; the frame has: {have}.")
    if "task" in rows:
        tasks = [t for t in pd.unique(rows["task"]) if _text(t)]
        if task is not None:
            rows = rows[rows["task"] == task]
            if rows.empty:
                raise WorkbenchError(f"runtime_table: no rows for {variant!r} on task {task!r}; have {tasks}.")
        elif len(tasks) > 1:
            raise WorkbenchError(f"runtime_table: {variant!r} was measured on several tasks ({tasks}); pass task=.")
    listed = [str(r) for r in runtimes] if runtimes is not None else \
        [str(r) for r in pd.unique(df["runtime"]) if _text(r)]
    metrics = [m for m in metric_columns(df) if m in rows]
    has_iqr = "latency_ms_iqr" in rows and pd.to_numeric(rows["latency_ms_iqr"], errors="coerce").notna().any()
    first: dict[str, dict[str, Any]] = {}  # per runtime: its first good row (measured figures repeat per device)
    failed: dict[str, str] = {}
    for is_bad, r in zip(error_mask(rows).to_numpy(), rows.to_dict("records")):
        rt = str(r["runtime"])
        if is_bad:
            failed.setdefault(rt, _text(r.get("error")))
        else:
            first.setdefault(rt, r)
    out = []
    for rt in _order(listed):
        base: dict[str, Any] = {**dict.fromkeys(TABLE_COLUMNS), "runtime": rt, "name": runtime_name(rt),
                                "fastest": False, "within_noise": False, "ratio": math.nan}
        r = first.get(rt)
        if r is None:
            status = "error" if rt in failed else "not measured"
            out.append({**base, "status": status, "error": failed.get(rt, ""),
                        "verdict": "could not run it" if rt in failed else "not measured"})
            continue
        p50, p90 = _number(r.get("latency_ms_p50")), _number(r.get("latency_ms_p90"))
        spread = _number(r.get("latency_ms_iqr")) if has_iqr else (p90 - p50 if math.isfinite(p90 - p50) else 0.0)
        out.append({**base, "status": "ok", "latency_ms_p50": p50, "spread_ms": spread, "latency_ms_p90": p90,
                    "size_bytes": _number(r.get("size_bytes")), "realization": _text(r.get("realization")),
                    "realized": r.get("realized"), "precision": precision_label(r.get("realization"),
                                                                                r.get("realized")),
                    "error": "", **{m: _number(r.get(m)) for m in metrics}})
    timed = [o for o in out if o["status"] == "ok" and math.isfinite(o["latency_ms_p50"])]
    if timed:
        f = min(timed, key=lambda o: o["latency_ms_p50"])
        f["fastest"] = True
        for o in timed:
            o["ratio"] = o["latency_ms_p50"] / f["latency_ms_p50"] if f["latency_ms_p50"] > 0 else math.nan
            o["within_noise"] = o is not f and within_noise(f["latency_ms_p50"], f["spread_ms"], o["latency_ms_p50"],
                                                            o["spread_ms"])
            o["verdict"] = ("fastest" if o is f else "within noise of the fastest" if o["within_noise"]
                            else f"{o['ratio']:.2g}× the fastest's time")
    t = pd.DataFrame(out, columns=[*TABLE_COLUMNS, *metrics])
    t.attrs["spread"] = "iqr" if has_iqr else "p90"
    t.attrs["variant"] = str(variant)
    return t


def _ms(v: float) -> str:
    return f"{v:.2g} ms" if v < 0.1 else f"{v:.3g} ms"


def runtime_summary(table: pd.DataFrame) -> str:
    """The table in plain words, for people who read no charts.

    Example:
        >>> rows = pd.DataFrame({"variant": "v", "runtime": ["openvino", "onnxruntime", "torch", "executorch"],
        ...                      "latency_ms_p50": [0.04, 0.042, 0.5, None], "latency_ms_iqr": [0.006, 0.005, 0.05, None],
        ...                      "error": [None, None, None, "WorkbenchError: boom"]})
        >>> runtime_summary(runtime_table(rows, "v"))
        'Fastest here: OpenVINO, 0.04 ms; ONNX Runtime within noise (0.042 ms). PyTorch: 12× slower (0.5 ms). ExecuTorch could not run it.'
    """
    if table.empty:
        return "No runtime measured this variant."
    ok = table[table["fastest"].astype(bool)]
    parts = []
    if not ok.empty:
        f = ok.iloc[0]
        near = table[table["within_noise"].astype(bool)]
        head = f"Fastest here: {f['name']}, {_ms(float(f['latency_ms_p50']))}"
        if not near.empty:
            names = ", ".join(f"{r['name']}" for _, r in near.iterrows())
            vals = ", ".join(_ms(float(r["latency_ms_p50"])) for _, r in near.iterrows())
            head += f"; {names} within noise ({vals})"
        parts.append(head + ".")
        slower = table[(table["status"] == "ok") & ~table["fastest"].astype(bool) & ~table["within_noise"].astype(bool)
                       & pd.to_numeric(table["ratio"], errors="coerce").notna()]
        if not slower.empty:
            parts.append(" ".join(f"{r['name']}: {float(r['ratio']):.2g}× slower ({_ms(float(r['latency_ms_p50']))})."
                                  for _, r in slower.iterrows()))
    failed = table[table["status"] == "error"]
    if not failed.empty:
        parts.append(f"{' and '.join(failed['name'])} could not run it.")
    missing = table[table["status"] == "not measured"]
    if not missing.empty:
        parts.append(f"Not measured on {', '.join(missing['name'])}.")
    return " ".join(parts) or "No runtime measured this variant."


def runtime_compare(df: pd.DataFrame, variant: str, *, runtimes: Sequence[str] | None = None,
                    task: str | None = None, table: pd.DataFrame | None = None, fig: Any = None) -> "go.Figure":
    """The same variant on every runtime: median latency with its spread, and file size, one bar per runtime.

    Each bar is labelled with what that runtime really executed (``int8 QDQ``, ``fp32 (simulated)``, ...); a
    hatched bar is a compression the runtime only simulated (it ran the float model). Runtimes that could not
    run the variant stay on the chart, marked ✗ with their error on hover. The latency panel says which
    runtime is fastest and which are within measurement noise of it (`within_noise`).

    Args:
        df: a results frame (error rows are shown as such).
        variant: the variant's label.
        runtimes: runtimes to show (default: every runtime in the frame).
        task: the task, when the frame holds several.
        table: its `runtime_table`, when the caller has it already (the figure then draws that).
        fig: a `go.FigureWidget` to update in place.

    Returns:
        The figure: traces ``"latency"`` and ``"size"`` (bars, ``x`` = runtime names), then ``"could not run"``
        markers on each panel.

    Example:
        >>> fig = runtime_compare(df, "q8")
        >>> fig.data[0].y, fig.data[0].text
        (('ONNX Runtime',), ('int8 QDQ',))
    """
    import plotly.graph_objects as go

    t = table if table is not None else runtime_table(df, variant, runtimes=runtimes, task=task)
    names = t["name"].tolist()
    ok = t[t["status"] == "ok"]
    failed = t[t["status"] != "ok"]
    colours = [color_of("runtime", r) for r in ok["runtime"]]
    hatch = ["/" if simulated(r) else "" for r in ok["realized"]]
    p50 = ok["latency_ms_p50"].to_numpy(float)
    spread = ok["spread_ms"].to_numpy(float) / 2
    size = pd.to_numeric(ok["size_bytes"], errors="coerce").to_numpy(float)
    words = "IQR" if t.attrs["spread"] == "iqr" else "p90 − median"
    hover = [f"<b>{r['name']}</b><br>median {r['latency_ms_p50']:.4g} ms ({words} {r['spread_ms']:.2g} ms, "
             f"p90 {r['latency_ms_p90']:.4g} ms)<br>runs: {r['realization'] or '–'}<br>{r['verdict']}"
             for _, r in ok.iterrows()]
    sizes = [f"{v / 1e3:,.0f} kB" if math.isfinite(v) else "–" for v in size]
    marker = {"color": colours, "pattern": {"shape": hatch, "fgcolor": "#FFFFFF"}}
    traces = [
        go.Bar(x=p50, y=ok["name"].tolist(), orientation="h", name="latency", xaxis="x", yaxis="y",
               marker=marker, text=ok["precision"].tolist(), textposition="inside", insidetextanchor="start",
               error_x={"type": "data", "array": spread, "color": "#333333", "thickness": 1.5, "width": 5},
               hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", showlegend=False),
        go.Bar(x=size, y=ok["name"].tolist(), orientation="h", name="size", xaxis="x2", yaxis="y2",
               marker=marker, text=[f"{p} · {s}" for p, s in zip(ok["precision"], sizes)], textposition="inside",
               insidetextanchor="start", hovertext=[f"<b>{n}</b><br>file size {s}<br>runs: {r or '–'}"
                                                    for n, s, r in zip(ok["name"], sizes, ok["realization"])],
               hovertemplate="%{hovertext}<extra></extra>", showlegend=False),
    ]
    top = float(np.nanmax(p50 + spread)) if len(p50) else 1.0
    positive = p50[np.isfinite(p50) & (p50 > 0)]
    log = bool(len(positive)) and positive.max() / positive.min() > 20  # else the fast runtimes' bars vanish
    if log:
        low = float(np.nanmin(np.where(p50 - spread > 0, p50 - spread, p50))) * 0.6
        xrange = [math.log10(low), math.log10(top) + 0.55]
    else:
        low, xrange = 0.0, [0, top * 1.45]
    notes = [NOISE_RULE if t.attrs["spread"] == "iqr" else NOISE_RULE.replace("half the IQR of the timed calls",
                                                                               "half of p90 − median")]
    if any(hatch):
        notes.append("hatched: compression simulated, the runtime ran the float model")
    if log:
        notes.append("latency on a log scale")

    def at(v: float) -> float:  # plotly places annotations on a log axis by the log of the value
        return math.log10(v) if log else v

    why = [f"<b>{r['name']}</b><br>{r['verdict']}<br>{r['error'][:200]}" for _, r in failed.iterrows()]
    label = failed["verdict"].map(lambda v: "✗ could not run" if v == "could not run it" else "not measured")
    for axis, name in (("", "could not run"), ("2", "could not run (size)")):
        start = low if log and not axis else 0.0
        traces.append(go.Scatter(x=[start] * len(failed), y=failed["name"].tolist(), mode="markers+text", name=name, xaxis=f"x{axis}", yaxis=f"y{axis}", text=label.tolist(),
                                 textposition="middle right", marker={"symbol": "x", "color": "#999999", "size": 9},
                                 hovertext=why, hovertemplate="%{hovertext}<extra></extra>", showlegend=False,
                                 cliponaxis=False))
    annotations = [{"x": at(float(r["latency_ms_p50"] + r["spread_ms"] / 2)), "y": r["name"], "xref": "x",
                    "yref": "y", "text": _verdict_short(r), "showarrow": False, "xanchor": "left", "xshift": 6,
                    "font": {"size": 11, "color": "#2CA02C" if r["fastest"] or r["within_noise"] else "#555555"}}
                   for _, r in ok.iterrows()]
    annotations += [{"text": text, "x": x, "xref": "paper", "y": 1.0, "yref": "paper", "showarrow": False,
                     "xanchor": "left", "yanchor": "bottom", "font": {"size": 13}}
                    for text, x in (("median latency (measured), whiskers ± half the " + words, 0.0),
                                    ("file size (measured)", 0.62))]
    cats = {"type": "category", "categoryorder": "array", "categoryarray": names, "autorange": "reversed"}
    layout = {
        "title": figure_title(f"{variant} on every runtime (measured on this machine)", notes),
        "xaxis": {"domain": [0.0, 0.52], "range": xrange, "type": "log" if log else "linear",
                  **({"dtick": 1} if log else {}), "title": {"text": "ms" + (" (log scale)" if log else "")}},
        "yaxis": {**cats, "anchor": "x"},
        "xaxis2": {"domain": [0.62, 1.0], "title": {"text": "bytes"}, "rangemode": "tozero"},
        "yaxis2": {**cats, "anchor": "x2", "showticklabels": False},
        "annotations": annotations, "bargap": 0.35, "height": max(260, 90 + 48 * len(names)),
        "margin": {"t": 100, "l": 110, "r": 20, "b": 50},
    }
    return figure_from(traces, layout, fig)


def _verdict_short(r: pd.Series) -> str:
    v = _ms(float(r["latency_ms_p50"]))
    if r["fastest"]:
        return f"{v} · fastest"
    if r["within_noise"]:
        return f"{v} · within noise"
    return f"{v} · {float(r['ratio']):.2g}×"


def runtime_fit(df: pd.DataFrame, variant: str, *, runtimes: Sequence[str] | None = None) -> pd.DataFrame:
    """Device fit per runtime for `variant`: one row per device, one column per runtime (display names), each
    cell ``fits · 3.1 ms (est.)``, ``does not fit``, ``not deployable`` (with the reason) or ``–``.

    Empty when the frame has no device estimates.

    Example:
        >>> runtime_fit(df, "q8").loc["raspberry-pi-4", "ONNX Runtime"]
        'fits · 0.25 ms (est.)'
    """
    from workbench.sweeps.frame import error_mask

    rows = df[df["variant"].astype(str) == str(variant)] if "variant" in df else df.iloc[0:0]
    if "device" not in rows or rows["device"].isna().all():
        return pd.DataFrame()
    listed = [str(r) for r in runtimes] if runtimes is not None else \
        [str(r) for r in pd.unique(df["runtime"]) if _text(r)]
    order = _order(listed)
    rows = rows[rows["device"].notna()]
    devices = [str(d) for d in pd.unique(rows["device"])]
    out = pd.DataFrame("–", index=pd.Index(devices, name="device"), columns=[runtime_name(r) for r in order])
    bad = error_mask(rows).to_numpy()
    for failed, r in zip(bad, rows.to_dict("records")):
        rt = str(r.get("runtime"))
        if rt in order:
            out.loc[str(r["device"]), runtime_name(rt)] = "could not run" if failed else _fit_cell(r)
    return out


def _fit_cell(r: dict[str, Any]) -> str:
    deployable, fits, lat = r.get("deployable"), r.get("fits"), _number(r.get("latency_ms_est"))
    if deployable is False or (deployable is not None and not pd.isna(deployable) and not bool(deployable)) \
            or (deployable is None and math.isnan(lat)):
        reason = _text(r.get("reason"))
        return "not deployable" + (f": {reason}" if reason else "")
    if fits is not None and not pd.isna(fits) and not bool(fits):
        reason = _text(r.get("reason"))
        return "does not fit" + (f": {reason}" if reason else "")
    return f"fits · {lat:.2g} ms (est.)" if math.isfinite(lat) else "fits"


__all__ = ["NOISE_RULE", "precision_label", "runtime_compare", "runtime_fit", "runtime_summary", "runtime_table",
           "simulated", "within_noise"]
