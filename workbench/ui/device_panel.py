"""`DevicePanel`: compare devices for one variant (latency, energy, power, battery life, fit), and see which
variants fit which device under a budget.

Every figure here is an *estimate* from a device profile (`workbench.devices`), and says so; the metric is
measured on this machine.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.ui.base import Panel, fmt, into, load_results, metric_columns, ok_rows, present

ESTIMATES = (("latency_ms_est", "latency (est., ms)"), ("energy_mj_est", "energy per inference (est., mJ)"),
             ("power_w_est", "power (est., W)"), ("battery_h_est", "battery life (est., h)"))


class DevicePanel(Panel):
    """Compare devices for one variant, and every variant's fit on every device under a budget.

    Args:
        data: a results frame with device rows (a sweep with ``devices=[...]``), a `ResultStore` or a results file.
        variant: the variant to start with (default: the first, usually ``baseline``).

    Attributes:
        variant, runtime: which row's estimates to compare (dropdowns).
        devices: the devices shown (`SelectMultiple`).
        figure: bars per device for latency, energy, power and battery life (estimates; hatched = does not fit).
        table: the same figures with fit and the reason a device cannot run it.
        latency_budget, min_accuracy: the budget of the fit grid; fit_figure: variants x devices, coloured by
            not deployable / does not fit / misses budget / meets budget.

    Example:
        >>> panel = DevicePanel(df, variant="channel-0.50+q8")
        >>> panel.devices.value = ("raspberry-pi-4", "esp32-s3")
        >>> [t.x for t in panel.figure.data][0]
        ('raspberry-pi-4', 'esp32-s3')
    """

    def __init__(self, data: Any, *, variant: str | None = None) -> None:
        import plotly.graph_objects as go

        self.data = load_results(data)
        good = ok_rows(self.data)
        if "device" not in good or good["device"].isna().all():
            raise WorkbenchError("DevicePanel needs device estimates: sweep with devices=[...] (e.g. "
                                 "workbench.grid(..., devices=['raspberry-pi-4', 'esp32-s3'])).")
        self.rows = good[good["device"].notna()]
        self.metric = (metric_columns(self.data) or ["accuracy"])[0]
        variants = [str(v) for v in present(self.rows, "variant")]
        if variant is not None and variant not in variants:
            raise WorkbenchError(f"DevicePanel: no variant {variant!r} with device estimates; have "
                                 f"{', '.join(variants)}.")
        runtimes = [str(r) for r in present(self.rows, "runtime")] or [None]
        devices = [str(d) for d in present(self.rows, "device")]
        self.variant = widgets.Dropdown(options=variants, value=variant or variants[0], description="variant",
                                        layout=widgets.Layout(width="320px"))
        self.runtime = widgets.Dropdown(options=runtimes, value="onnxruntime" if "onnxruntime" in runtimes else
                                        runtimes[0], description="runtime", layout=widgets.Layout(width="240px"))
        self.devices = widgets.SelectMultiple(options=devices, value=tuple(devices), description="devices",
                                              rows=min(6, len(devices)), layout=widgets.Layout(width="320px"))
        lat = pd.to_numeric(self.rows["latency_ms_est"], errors="coerce")
        mid = float(np.nanmedian(lat)) if lat.notna().any() else 10.0
        self.latency_budget = widgets.FloatLogSlider(value=float(f"{mid:.2g}"), base=10, min=-3, max=4, step=0.05,
                                                     description="latency ≤ (ms)", readout_format=".3g",
                                                     continuous_update=False, layout=widgets.Layout(width="380px"),
                                                     style={"description_width": "initial"})
        base = pd.to_numeric(good.get(f"baseline_{self.metric}", pd.Series(dtype=float)), errors="coerce").max()
        self.min_accuracy = widgets.FloatSlider(value=round(max(0.0, float(base) - 0.02), 3) if pd.notna(base)
                                                else 0.0, min=0.0, max=1.0, step=0.005, readout_format=".3f",
                                                description=f"{self.metric} ≥", continuous_update=False,
                                                layout=widgets.Layout(width="380px"),
                                                style={"description_width": "initial"})
        self.table = widgets.HTML(value="")
        self.figure = go.FigureWidget(layout={"height": 360})
        self.fit_figure = go.FigureWidget(layout={"height": 420})
        top = widgets.HBox([self.variant, self.runtime, self.devices], layout=widgets.Layout(flex_flow="row wrap"))
        budget = widgets.HBox([self.latency_budget, self.min_accuracy], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([top, self.figure, self.table, widgets.HTML("<h3 style='font-family:sans-serif'>Which "
                                                                        "variants fit which device</h3>"),
                          budget, self.fit_figure])
        self.add_class("wb-devices")
        for name, css in (("variant", "variant"), ("runtime", "runtime"), ("devices", "list"), ("figure", "figure"),
                          ("table", "table"), ("latency_budget", "budget"), ("min_accuracy", "min-accuracy"),
                          ("fit_figure", "fit")):
            getattr(self, name).add_class(f"wb-devices-{css}")  # stable hooks for browser tests
        for w in (self.variant, self.runtime, self.devices):
            w.observe(self.guard(lambda _c: self.update_compare()), names="value")
        for w in (self.latency_budget, self.min_accuracy, self.runtime):
            w.observe(self.guard(lambda _c: self.update_fit()), names="value")
        self.guard(self.update_compare)()
        self.guard(self.update_fit)()

    def compared(self) -> pd.DataFrame:
        """The selected variant's rows, one per shown device."""
        r = self.rows[(self.rows["variant"].astype(str) == self.variant.value)
                      & self.rows["device"].astype(str).isin(self.devices.value)]
        if "runtime" in r and self.runtime.value is not None:
            r = r[r["runtime"].astype(str) == self.runtime.value]
        return r.drop_duplicates(subset=["device"])

    def update_compare(self) -> None:
        """Redraw the per-device bars and table for the chosen variant (in place)."""
        d = self.compared()
        if d.empty:
            raise WorkbenchError(f"no estimates for {self.variant.value} on {self.runtime.value} for the chosen "
                                 "devices; pick another variant, runtime or more devices.")
        into(self.figure, compare_figure(d, self.variant.value))
        self.table.value = compare_table(d, self.metric)

    def update_fit(self) -> None:
        """Redraw the variants x devices fit grid for the budget (in place)."""
        from workbench import viz

        viz.device_fit_table(self.data, latency_ms=self.latency_budget.value, min_metric=self.min_accuracy.value,
                             metric=self.metric, runtime=self.runtime.value, fig=self.fit_figure)


def compare_figure(d: pd.DataFrame, variant: str) -> Any:
    """Bars per device for each estimate column that has values; hatched bars: the variant does not fit."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from workbench.viz import color_of

    cols = [(c, label) for c, label in ESTIMATES if c in d and pd.to_numeric(d[c], errors="coerce").notna().any()]
    if not cols:
        raise WorkbenchError(f"{variant}: no device has an estimate (none can run it); see the table's reasons.")
    names = d["device"].astype(str).tolist()
    fits = d["fits"].map(lambda v: bool(v) if v is not None and not (isinstance(v, float) and np.isnan(v))
                         else False).tolist() if "fits" in d else [True] * len(d)
    fig = make_subplots(rows=1, cols=len(cols), subplot_titles=[label for _, label in cols],
                        horizontal_spacing=0.08)
    for i, (c, label) in enumerate(cols, start=1):
        values = pd.to_numeric(d[c], errors="coerce").to_numpy(float)
        fig.add_trace(go.Bar(
            x=names, y=values, name=label, showlegend=False,
            marker={"color": [color_of("device", n) for n in names],
                    "pattern": {"shape": ["" if f else "x" for f in fits], "fgcolor": "#FFFFFF"}},
            text=[fmt(v, ".3g") for v in values], textposition="outside", cliponaxis=False,
            hovertemplate="<b>%{x}</b><br>" + label + ": %{y:.4g}<extra></extra>"), row=1, col=i)
        positive = values[np.isfinite(values) & (values > 0)]
        if len(positive) and positive.max() / positive.min() > 30:
            fig.update_yaxes(type="log", dtick=1, row=1, col=i)  # powers of ten only: no minor-digit labels
    fig.update_xaxes(type="category", tickangle=-30)
    fig.update_layout(plot_bgcolor="white", height=360, margin={"t": 90, "l": 50, "r": 20, "b": 90},
                      title={"text": f"{variant} on each device (estimates from the device profiles)",
                             "subtitle": {"text": "hatched: does not fit the device's memory"}, "x": 0.0})
    return fig


def compare_table(d: pd.DataFrame, metric: str) -> str:
    """The chosen variant on each device: the estimates, fit, and why not."""
    head = ["device", *[label for _, label in ESTIMATES], "fits", "deployable", "why not"]
    cells = []
    for _, r in d.iterrows():
        why = r.get("reason") if "reason" in r else ""
        cells.append([html.escape(str(r["device"])), *[fmt(r.get(c), ".4g") for c, _ in ESTIMATES],
                      fmt(r.get("fits")), fmt(r.get("deployable")), html.escape(str(why or ""))])
    th = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{c}</td>" for c in row) + "</tr>"
                   for row in cells)
    value = fmt(d[metric].iloc[0]) if metric in d else "–"
    return (f"<div class='wb-device-table' style='font-family:sans-serif;font-size:13px'>{metric} (measured on this "
            f"machine): {value}<table><tr>{th}</tr>{body}</table></div>")
