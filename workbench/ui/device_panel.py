"""`DevicePanel`: compare devices for one variant (latency, energy, power, battery life, fit), and see which
variants fit which device under a budget.

Every figure here is an *estimate* from a device profile (`workbench.hardware`), and says so; the metric is
measured on this machine. The figures are drawn by `workbench.viz.device_compare` and `workbench.viz.device_fit_table`.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.ui.base import Panel, fmt, load_results, ok_rows, present, primary_metric
from workbench.viz.devices import DEVICE_ESTIMATES

ESTIMATES = DEVICE_ESTIMATES  # the columns the figure draws and the table lists


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
        >>> panel.devices.value = ("raspberry-pi-4",)
        >>> [t.x for t in panel.figure.data][0]
        ('raspberry-pi-4',)
    """

    def __init__(self, data: Any, *, variant: str | None = None) -> None:
        import plotly.graph_objects as go

        self.data = load_results(data)
        good = ok_rows(self.data)
        if "device" not in good or good["device"].isna().all():
            raise WorkbenchError("DevicePanel needs device estimates: sweep with devices=[...] (e.g. "
                                 "workbench.grid(..., devices=['raspberry-pi-4', 'esp32-s3'])).")
        self.rows = good[good["device"].notna()]
        self.metric = primary_metric(self.data) or "accuracy"
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
        from workbench.viz import device_compare

        device_compare(d, self.variant.value, fig=self.figure)
        self.table.value = compare_table(d, self.metric)

    def update_fit(self) -> None:
        """Redraw the variants x devices fit grid for the budget (in place)."""
        from workbench import viz

        viz.device_fit_table(self.data, latency_ms=self.latency_budget.value, min_metric=self.min_accuracy.value,
                             metric=self.metric, runtime=self.runtime.value, fig=self.fit_figure)


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
