"""`DevicePanel`: compare devices for one variant (latency, energy, power, and — at a rate and a battery — average
power and battery life), and see which variants fit which device under a budget.

Every figure here is an *estimate* from a device profile (`workbench.hardware`), and says so; the metric is
measured on this machine. Average power and battery life come from `workbench.hardware.duty.duty_cycle`: one
inference every 1/rate seconds, the profile's idle power in between. The figures are drawn by `workbench.viz.device_compare` and `workbench.viz.device_fit_table`.
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
        rate_hz, battery_mah: inferences per second and battery capacity of the duty cycle (default 5 Hz,
            2,000 mAh).
        figure: bars per device for latency, energy, power while busy, average power at the rate and battery
            life (estimates; hatched = does not fit).
        table: the same figures with fit and the reason a device cannot run it (or keep up with the rate).
        latency_budget, min_accuracy: the budget of the fit grid; fit_figure: variants x devices, coloured by
            not deployable / does not fit / misses budget / meets budget.

    Example:
        >>> panel = DevicePanel(df, variant="channel-0.50+q8")
        >>> panel.devices.value = ("raspberry-pi-4",)
        >>> [t.x for t in panel.figure.data][0]
        ('raspberry-pi-4',)
        >>> panel.rate_hz.value = 10; panel.figure.data[-1].name
        'battery life (est., h)'
    """

    def __init__(self, data: Any, *, variant: str | None = None, rate_hz: float = 5.0,
                 battery_mah: float = 2000) -> None:
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
        self.rate_hz = widgets.BoundedFloatText(value=rate_hz, min=0.001, max=100_000.0, step=1.0,
                                                description="rate (Hz)", continuous_update=False,
                                                layout=widgets.Layout(width="170px"))
        self.battery_mah = widgets.BoundedIntText(value=int(battery_mah), min=1, max=10_000_000, step=100,
                                                  description="battery (mAh)", continuous_update=False,
                                                  layout=widgets.Layout(width="210px"),
                                                  style={"description_width": "initial"})
        self.table = widgets.HTML(value="")
        self.figure = go.FigureWidget(layout={"height": 360})
        self.fit_figure = go.FigureWidget(layout={"height": 420})
        self._profiles: dict[str, Any] = {}
        top = widgets.HBox([self.variant, self.runtime, self.devices, widgets.VBox([self.rate_hz, self.battery_mah])],
                           layout=widgets.Layout(flex_flow="row wrap"))
        budget = widgets.HBox([self.latency_budget, self.min_accuracy], layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([top, self.figure, self.table, widgets.HTML("<h3 style='font-family:sans-serif'>Which "
                                                                        "variants fit which device</h3>"),
                          budget, self.fit_figure])
        self.add_class("wb-devices")
        for name, css in (("variant", "variant"), ("runtime", "runtime"), ("devices", "list"), ("figure", "figure"),
                          ("table", "table"), ("latency_budget", "budget"), ("min_accuracy", "min-accuracy"),
                          ("fit_figure", "fit"), ("rate_hz", "rate"), ("battery_mah", "battery")):
            getattr(self, name).add_class(f"wb-devices-{css}")  # stable hooks for browser tests
        for w in (self.variant, self.runtime, self.devices, self.rate_hz, self.battery_mah):
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
        return self._at_rate(r.drop_duplicates(subset=["device"]))

    def _at_rate(self, d: pd.DataFrame) -> pd.DataFrame:
        """`d` with average power (``power_w_at_rate_est``) and battery life (``battery_h_est``) at the rate and
        battery of the controls, and whether each device keeps up (``keeps_up``)."""
        from workbench.hardware.catalog import device
        from workbench.hardware.duty import duty_cycle

        power, hours, keeps = [], [], []
        for _, r in d.iterrows():
            name = str(r["device"])
            if name not in self._profiles:
                self._profiles[name] = device(name)  # read once: the catalog parses every profile on each call
            dc = duty_cycle(r.get("energy_mj_est"), r.get("latency_ms_est"), self._profiles[name],
                            float(self.rate_hz.value), float(self.battery_mah.value))
            power.append(dc.average_power_w)
            hours.append(dc.battery_h)
            keeps.append(dc.feasible)
        return d.assign(power_w_at_rate_est=power, battery_h_est=hours, keeps_up=keeps)

    def update_compare(self) -> None:
        """Redraw the per-device bars and table for the chosen variant (in place)."""
        d = self.compared()
        if d.empty:
            raise WorkbenchError(f"no estimates for {self.variant.value} on {self.runtime.value} for the chosen "
                                 "devices; pick another variant, runtime or more devices.")
        from workbench.viz import device_compare

        rate, mah = self.rate_hz.value, self.battery_mah.value
        device_compare(d, self.variant.value, fig=self.figure, titles={
            "power_w_at_rate_est": f"average power at {rate:g} Hz (est., W)",
            "battery_h_est": f"battery life, {mah:,.0f} mAh at {rate:g} Hz (est., h)"})
        self.table.value = compare_table(d, self.metric, rate_hz=rate, battery_mah=mah)

    def update_fit(self) -> None:
        """Redraw the variants x devices fit grid for the budget (in place)."""
        from workbench import viz

        viz.device_fit_table(self.data, latency_ms=self.latency_budget.value, min_metric=self.min_accuracy.value,
                             metric=self.metric, runtime=self.runtime.value, fig=self.fit_figure)


def compare_table(d: pd.DataFrame, metric: str, *, rate_hz: float | None = None,
                  battery_mah: float | None = None) -> str:
    """The chosen variant on each device: the estimates (average power and battery life at `rate_hz` and
    `battery_mah` where `d` has them), fit, and why not."""
    from workbench.viz.words import device_words, hours_words, metric_words, power_words

    at = f" at {rate_hz:g} Hz" if rate_hz else ""
    titles = {"power_w_at_rate_est": f"average power{at} (est.)",
              "battery_h_est": f"battery life{f', {battery_mah:,.0f} mAh' if battery_mah else ''}{at} (est.)"}
    shown = [(c, titles.get(c, label)) for c, label in ESTIMATES]
    head = ["device", *[label for _, label in shown], "fits", "deployable", "why not"]
    cells = []
    for _, r in d.iterrows():
        why = str(r.get("reason") or "") if "reason" in r else ""
        if r.get("keeps_up") is False or r.get("keeps_up") is np.False_:
            why = "; ".join(x for x in (why, f"cannot keep up with {rate_hz:g} inferences/s (one takes "
                                             f"{fmt(r.get('latency_ms_est'), '.3g')} ms)") if x)
        values = []
        for c, _ in shown:
            v = r.get(c)
            missing = v is None or (isinstance(v, float) and np.isnan(v))
            values.append("–" if missing else html.escape(hours_words(v)) if c == "battery_h_est" else
                          html.escape(power_words(v)) if c == "power_w_at_rate_est" else fmt(v, ".4g"))
        cells.append([f"{html.escape(device_words(r['device']))} ({html.escape(str(r['device']))})", *values,
                      fmt(r.get("fits")), fmt(r.get("deployable")), html.escape(why)])
    th = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{c}</td>" for c in row) + "</tr>"
                   for row in cells)
    value = html.escape(metric_words(d.iloc[0], metric)) if metric in d else "–"
    note = (f"<div style='color:#555'>Average power and battery life: one inference every {1 / rate_hz:.3g} s, the "
            "profile's idle power in between (estimates, <code>workbench.hardware.duty</code>).</div>"
            if rate_hz else "")
    return (f"<div class='wb-device-table' style='font-family:sans-serif;font-size:13px'>{metric} (measured on this "
            f"machine): {value}<table><tr>{th}</tr>{body}</table>{note}</div>")
