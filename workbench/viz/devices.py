"""Devices: which variant fits which device under a budget, energy against the metric per device, estimated
against measured latency, and one variant's estimates across devices. Every device figure is an estimate from a
device profile (`workbench.hardware`) and says so.

Example:
    >>> fit_status(df, latency_ms=0.2)["status"].tolist()
    ['misses budget', 'misses budget', 'misses budget', 'misses budget', 'meets budget', 'meets budget']
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.viz.frames import Prepared, format_values, hovertext, prepare, row_keys
from workbench.viz.markers import legend_traces, marker_groups, marker_symbols
from workbench.viz.style import (
    FIT_COLORS,
    FIT_STATUS,
    LAYOUT,
    SHORT_AXIS,
    axis_label,
    axis_type,
    color_of,
    figure_title,
    maximized,
    short_label,
)
from workbench.viz.tradeoffs import pareto_mask
from workbench.viz.update import figure_from, finish, into

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


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
        >>> st = fit_status(df, latency_ms=0.2, min_metric=0.95)
        >>> st.loc[st.variant == "q8", "why"].item()
        'latency 0.251 ms > 0.2 ms'
    """
    needed = ["variant", "device", "latency_ms_est"]
    p = prepare(df, needed, runtime=runtime, one_runtime="runtime" in df, what="fit_status", every_device=True)
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
    from workbench.sweeps.analysis import missed_reasons, within_budget  # the one budget filter

    _, budgets = within_budget(d, max_latency_ms=latency_ms, max_energy_mj=energy_mj, max_power_w=power_w,
                               min_metric=min_metric, metric=metric, latency_col="latency_ms_est")
    misses = pd.Series(False, index=d.index)
    for b in budgets:
        misses |= b.missed()
    why = missed_reasons(budgets, d.index)
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
        >>> fig = device_fit_table(df, latency_ms=0.2, min_metric=0.95)
        >>> list(fig.data[0].x), fig.layout.title.subtitle.text
        (['raspberry-pi-4'], 'budget: latency ≤ 0.2 ms (est.), accuracy ≥ 0.95 (measured)')
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
    layout = {"title": figure_title("Which variants run on which device (estimates)", notes),
              "xaxis": {"title": {"text": "device (cells: latency, est.)"}, "type": "category", "tickangle": -30},
              "yaxis": {"title": {"text": "variant"}, "autorange": "reversed", "type": "category"},
              "margin": {"t": 80, "l": 200, "r": 30, "b": 110}}
    return figure_from([trace], layout, fig)


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
        >>> fig = energy_vs_accuracy(df, devices=["raspberry-pi-4"])
        >>> [a.text for a in fig.layout.annotations]
        ['raspberry-pi-4']
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
        front = pareto_mask(np.column_stack([xs, ys]), senses)
        order = np.argsort(xs[front], kind="stable")
        new.add_trace(go.Scatter(x=xs[front][order], y=ys[front][order], mode="lines", name="Pareto front",
                                 line={"shape": "vh" if senses[0] else "hv", "color": "#555555", "dash": "dot",
                                       "width": 1.5}, hoverinfo="skip", legendgroup="front",
                                 showlegend=i == 0), row=r, col=c)
        hover = hovertext(sub, extra=[energy])
        symbols = marker_symbols(sub)
        keys = row_keys(sub)
        for _, gname, colour, mask in marker_groups(sub, "bits" if "bits" in sub else None):
            if not mask.any():
                continue
            new.add_trace(go.Scatter(
                x=xs[mask], y=ys[mask], mode="markers", name=gname, legendgroup=gname,
                showlegend=False, customdata=keys[mask], hovertext=hover[mask],
                hovertemplate="%{hovertext}<extra></extra>",
                marker={"color": colour, "symbol": symbols[mask], "size": 9, "line": {"width": 1.5,
                                                                                       "color": colour}}),
                row=r, col=c)
        title = axis_label(energy, name) if len(names) == 1 else f"{SHORT_AXIS.get(energy, short_label(energy))} on {name}"
        new.update_xaxes(title_text=title, title_font_size=11, type=axis_type(xs), row=r, col=c)
    colour = "bits" if "bits" in d else None
    for t in legend_traces(marker_groups(d, colour), colour, d, marker_symbols(d)):
        new.add_trace(t, row=1, col=1)
    new.update_yaxes(title_text=axis_label(metric), col=1)
    new.update_layout(**{**LAYOUT, "margin": {**LAYOUT["margin"], "t": 110}}, height=max(400, 330 * nrows),
                      title=figure_title(f"{short_label(metric).capitalize()} against {short_label(energy)}, per device",
                                   ["dotted line: Pareto front per device"] + p.notes))
    return finish(new, fig)


def _prepare_all_devices(df: pd.DataFrame, metric: str, energy: str, runtime: str | None) -> Prepared:
    """Like `_prepare`, but keeps every device (one panel each) instead of picking one."""
    p = prepare(df, [metric, "device", "variant"], runtime=runtime, one_runtime="runtime" in df,
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
    out = Prepared(d[~lost], notes, None, p.runtime)
    out.attrs_order = list(pd.unique(d["device"]))  # panels in the frame's device order
    return out


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
        >>> table = pd.DataFrame({"variant": ["a", "b"], "measured_ms": [0.1, 1.0], "estimated_ms": [0.12, 0.9]})
        >>> estimate_vs_measured(table).layout.title.subtitle.text
        'median error 15%, worst 20% (|est. / measured − 1|)'
    """
    import plotly.graph_objects as go

    if isinstance(df, pd.DataFrame) and {"measured_ms", "estimated_ms"} <= set(df.columns):
        measured, estimated = measured or "measured_ms", estimated or "estimated_ms"
        p = prepare(df, [measured, estimated], numeric=[measured, estimated], what="estimate_vs_measured")
    else:
        if device != "host":
            raise WorkbenchError(f"estimate_vs_measured: the frame's latency was measured on this machine, so it can "
                                 f"only check the 'host' profile's estimates, not {device!r}.")
        measured, estimated = measured or "latency_ms_p50", estimated or "latency_ms_est"
        p = prepare(df, [measured, estimated], device=device, numeric=[measured, estimated],
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
    layout = {"title": figure_title(f"Estimated against measured latency on {dev}", notes), "showlegend": False,
              "xaxis": {"title": {"text": "latency (measured, ms)"}, "type": "log"},
              "yaxis": {"title": {"text": f"latency (est., ms) on {dev}"}, "type": "log"}}
    return figure_from(traces, layout, fig)


# ------------------------------------------------------------------------------ one variant, every device

DEVICE_ESTIMATES: tuple[tuple[str, str], ...] = (
    ("latency_ms_est", "latency (est., ms)"), ("energy_mj_est", "energy per inference (est., mJ)"),
    ("power_w_est", "power while busy (est., W)"), ("power_w_at_rate_est", "average power at the rate (est., W)"),
    ("battery_h_est", "battery life (est., h)"))
"""The estimate columns `device_compare` draws (column, words with units), in panel order: each panel appears
when the rows have values for it (average power and battery life need a rate and a battery,
`workbench.hardware.duty.duty_cycle`)."""


def device_compare(d: pd.DataFrame, variant: str, *, fig: Any = None,
                   titles: dict[str, str] | None = None) -> "go.Figure":
    """One variant on each device: bars per device for each estimate column that has values; hatched bars: the
    variant does not fit the device's memory.

    Args:
        d: the variant's rows, one per device (``device``, the `DEVICE_ESTIMATES` columns, ``fits``).
        variant: its name (for the title).
        fig: a `go.FigureWidget` to update in place.
        titles: panel titles that replace `DEVICE_ESTIMATES`' words, by column (e.g. the rate and battery of the
            average-power and battery-life panels).

    Example:
        >>> fig = device_compare(df[df.variant == "q8"], "q8")
        >>> [t.name for t in fig.data]
        ['latency (est., ms)', 'energy per inference (est., mJ)', 'power while busy (est., W)']
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    cols = [(c, label) for c, label in DEVICE_ESTIMATES
            if c in d and pd.to_numeric(d[c], errors="coerce").notna().any()]
    if not cols:
        raise WorkbenchError(f"{variant}: no device has an estimate (none can run it); see the table's reasons.")
    names = d["device"].astype(str).tolist()
    fits = d["fits"].map(lambda v: bool(v) if v is not None and not (isinstance(v, float) and np.isnan(v))
                         else False).tolist() if "fits" in d else [True] * len(d)
    new = make_subplots(rows=1, cols=len(cols), subplot_titles=[(titles or {}).get(c, t) for c, t in cols],
                        horizontal_spacing=0.08 if len(cols) < 5 else 0.06)
    for i, (c, label) in enumerate(cols, start=1):
        values = pd.to_numeric(d[c], errors="coerce").to_numpy(float)
        new.add_trace(go.Bar(
            x=names, y=values, name=label, showlegend=False,
            marker={"color": [color_of("device", n) for n in names],
                    "pattern": {"shape": ["" if f else "x" for f in fits], "fgcolor": "#FFFFFF"}},
            text=format_values(pd.Series(values), ".3g").tolist(), textposition="outside", cliponaxis=False,
            hovertemplate="<b>%{x}</b><br>" + label + ": %{y:.4g}<extra></extra>"), row=1, col=i)
        positive = values[np.isfinite(values) & (values > 0)]
        if len(positive) and positive.max() / positive.min() > 30:
            new.update_yaxes(type="log", dtick=1, row=1, col=i)  # powers of ten only: no minor-digit labels
    new.update_xaxes(type="category", tickangle=-30)
    new.update_layout(plot_bgcolor="white", height=360, margin={"t": 90, "l": 50, "r": 20, "b": 90},
                      title={"text": f"{variant} on each device (estimates from the device profiles)",
                             "subtitle": {"text": "hatched: does not fit the device's memory"}, "x": 0.0})
    return into(fig, new)


__all__ = ["DEVICE_ESTIMATES", "device_compare", "device_fit_table", "energy_vs_accuracy", "estimate_vs_measured",
           "fit_status"]
