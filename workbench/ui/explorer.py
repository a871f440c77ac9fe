"""`TradeoffExplorer`: the sweep's Pareto chart with axis, colour and filter controls, the best variant ringed,
click-for-details and export.

Every control is a plain ipywidget whose ``.value`` a test (or a notebook) can set; each change re-filters the
frame and updates the one `FigureWidget` in place (`workbench.viz.update_pareto`, a single ``batch_update``), so
the chart never flickers or redraws from scratch.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.ui.base import (
    Panel,
    axis_columns,
    axis_options,
    bits_of,
    fmt,
    load_results,
    note_html,
    ok_rows,
    present,
    primary_metric,
    row_by_key,
    structure_of,
    table_html,
)
from workbench.ui.export_box import ExportBox
from workbench.viz.facets import facet_values
from workbench.viz.style import runtime_name

COLOR_BY = (("weight bits", "bits"), ("pruning structure", "structure"), ("runtime", "runtime"), ("none", None))


def runtime_views(runtimes: list[str]) -> list[tuple[str, str]]:
    """The explorer's runtime facet: every runtime in one chart, one panel per runtime, or one runtime alone.

    Example:
        >>> runtime_views(["onnxruntime", "openvino"])[1:]
        [('one panel per runtime', 'facet'), ('only ONNX Runtime', 'onnxruntime'), ('only OpenVINO', 'openvino')]
    """
    return [("all runtimes, one chart", "all"), ("one panel per runtime", "facet"),
            *[(f"only {runtime_name(r)}", r) for r in runtimes]]

DETAILS = (
    ("runtime", "runtime", None), ("prune", "fraction pruned", ".0%"), ("structure", "structure", None),
    ("bits", "weight bits", ".0f"), ("recover", "recovery steps", ".0f"), ("realization", "runtime executes", None),
    ("fidelity", "agreement with the original", ".4f"),
    ("latency_ms_p50", "latency, median (measured)", ".4g"), ("latency_ms_p90", "latency, p90 (measured)", ".4g"),
    ("size_bytes", "file size (bytes)", ",.0f"), ("size_deflated_bytes", "zipped (bytes)", ",.0f"),
    ("params_nonzero", "non-zero parameters", ",.0f"), ("macs", "MACs per inference", ",.0f"),
    ("peak_mem_bytes", "peak memory (bytes)", ",.0f"),
)
DEVICE_DETAILS = (
    ("latency_ms_est", "latency (est., ms)", ".4g"), ("energy_mj_est", "energy per inference (est., mJ)", ".4g"),
    ("power_w_est", "power (est., W)", ".3g"), ("battery_h_est", "battery life (est., h)", ".3g"),
    ("fits", "fits in memory", None), ("reason", "why not", None),
)


class TradeoffExplorer(Panel):
    """Explore a sweep: two metrics against each other, filtered, with the best variant ringed.

    Args:
        data: a results frame, a `ResultStore`, or a results file (``.sqlite``, ``.csv``, ``.parquet``).
        x, y: initial axes (default: median latency against the task metric).
        color: initial colouring (``"bits"``, ``"structure"``, ``"runtime"`` or None).
        task: the task the results come from, for export (default: the zoo task named in the rows).
        out_dir: where Export writes artefacts (default: `workbench.ui.data.export_dir()`).
        sign_with: an Ed25519 private key file for signing exports (default: a key pair generated in
            ``<out_dir>/keys`` on first use).

    Attributes:
        x, y, color: axis and colour dropdowns.
        bits, structure, runtime: filters (`SelectMultiple`; ``.value`` is a tuple of the kept values).
        view: the runtime facet (`runtime_views`): ``"all"`` (one chart; colour by runtime to tell them apart),
            ``"facet"`` (one panel per runtime, each with its own front and best, in `facets`) or one runtime.
        prune: `FloatRangeSlider` of the kept prune ratios.
        device: the device whose estimates (``*_est`` axes, fit) count.
        min_accuracy: the accuracy bar (on the task metric) the best variant must reach.
        figure: the `go.FigureWidget`; facets: the one-panel-per-runtime `go.FigureWidget` (shown instead of
            `figure` for view ``"facet"``). best: the best variant's row — variant *and* runtime — (or None);
            best_per_runtime: ``{runtime: row}``. summary: their description.
        details: the clicked variant's figures. export: the `ExportBox`.

    Example:
        >>> ex = TradeoffExplorer(df)  # or workbench.ui.demo_results(): a stored or cached sweep
        >>> ex.y.value = "size_bytes"; ex.bits.value = (8,)
        >>> ex.figure.layout.yaxis.title.text
        'file size (measured, bytes)'
    """

    def __init__(self, data: Any, *, x: str | None = None, y: str | None = None, color: str | None = "bits",
                 task: Any = None, out_dir: str | Path | None = None, sign_with: str | Path | None = None) -> None:
        import plotly.graph_objects as go

        from workbench import viz

        self.data = load_results(data)
        good = ok_rows(self.data)
        if good.empty:
            raise WorkbenchError(f"all {len(self.data)} result rows have an error (see the 'error' column); "
                                 "nothing to explore.")
        self.metric = primary_metric(self.data) or "accuracy"
        has_device = "device" in good and good["device"].notna().any()
        cols = [c for c in axis_columns(good) if has_device or not c.endswith("_est")]
        if not cols:
            raise WorkbenchError("the results have no numeric columns to plot.")
        x = x or ("latency_ms_p50" if "latency_ms_p50" in cols else cols[min(1, len(cols) - 1)])
        y = y or (self.metric if self.metric in cols else cols[0])
        for name, value in (("x", x), ("y", y)):
            if value not in cols:
                raise WorkbenchError(f"TradeoffExplorer: {name}={value!r} is not a plottable column; have "
                                     f"{', '.join(cols)}.")
        wide = widgets.Layout(width="330px")
        self.x = widgets.Dropdown(options=axis_options(cols), value=x, description="x", layout=wide)
        self.y = widgets.Dropdown(options=axis_options(cols), value=y, description="y", layout=wide)
        self.color = widgets.Dropdown(options=COLOR_BY, value=color, description="colour",
                                      layout=widgets.Layout(width="240px"))
        bits = sorted({int(b) for b in bits_of(good)}, reverse=True)
        self.bits = widgets.SelectMultiple(options=[(viz.BITS_NAMES.get(b, f"{b}-bit"), b) for b in bits],
                                           value=tuple(bits), description="bits", rows=min(5, len(bits)),
                                           layout=widgets.Layout(width="220px"))
        structures = [s for s in ("none", "unstructured", "channel", "2:4") if s in set(structure_of(good))]
        self.structure = widgets.SelectMultiple(
            options=[(viz.STRUCTURE_NAMES.get(s, s), s) for s in structures], value=tuple(structures),
            description="pruning", rows=min(4, len(structures)), layout=widgets.Layout(width="220px"))
        runtimes = [str(r) for r in present(good, "runtime")] or ["onnxruntime"]
        self.runtime = widgets.SelectMultiple(options=[(runtime_name(r), r) for r in runtimes],
                                              value=tuple(runtimes), description="runtime",
                                              rows=min(3, len(runtimes)), layout=widgets.Layout(width="220px"))
        self.runtimes = facet_values(pd.DataFrame({"runtime": runtimes}))  # in the palette's order
        self.view = widgets.Dropdown(options=runtime_views(self.runtimes), value="all", description="show",
                                     layout=widgets.Layout(width="300px"))
        top = float(pd.to_numeric(good.get("prune", pd.Series([0.0])), errors="coerce").fillna(0).max())
        self.prune = widgets.FloatRangeSlider(value=(0.0, top), min=0.0, max=max(top, 0.05), step=0.05,
                                              description="pruned", readout_format=".0%", continuous_update=False,
                                              layout=widgets.Layout(width="330px"))
        devices = [str(d) for d in present(good, "device")]
        self.device = widgets.Dropdown(options=devices or [("(no device estimates)", None)],
                                       value=devices[0] if devices else None, description="device", layout=wide)
        base = pd.to_numeric(good.get(f"baseline_{self.metric}", pd.Series(dtype=float)), errors="coerce").max()
        lo = float(pd.to_numeric(good[self.metric], errors="coerce").min()) if self.metric in good else 0.0
        bar = round(max(0.0, float(base) - 0.02), 3) if pd.notna(base) else 0.0
        self.min_accuracy = widgets.FloatSlider(value=bar, min=round(min(lo, bar), 2) if np.isfinite(lo) else 0.0,
                                                max=1.0, step=0.005, readout_format=".3f", continuous_update=False,
                                                description=f"min {self.metric}", layout=wide,
                                                style={"description_width": "initial"})
        self.summary = widgets.HTML(value="")
        self.details = widgets.HTML(value=note_html("Click a point to see the variant's figures.", "#BAB0AC"))
        self.export = ExportBox(task=task, out_dir=out_dir, sign_with=sign_with)
        self.best: pd.Series | None = None
        self.best_per_runtime: dict[str, pd.Series] = {}
        self.selected: pd.Series | None = None
        self.shown = good
        self._good = good
        self._columns = {  # filter columns computed once: every control change only compares arrays
            "bits": bits_of(good).to_numpy(), "structure": structure_of(good).to_numpy(dtype=object),
            "runtime": (good["runtime"].astype(str) if "runtime" in good else
                        pd.Series("onnxruntime", index=good.index)).to_numpy(dtype=object),
            "prune": pd.to_numeric(good["prune"], errors="coerce").fillna(0.0).to_numpy(float) if "prune" in good
            else np.zeros(len(good)),
            "device": (good["device"] if "device" in good else pd.Series(None, index=good.index)).to_numpy(
                dtype=object),
        }
        self.updates = 0
        self.figure = go.FigureWidget(layout={"height": 480})
        self.facets = go.FigureWidget(layout={"height": 480})  # one panel per runtime, shown for view "facet"
        self._boxes = (widgets.Box([self.figure]), widgets.Box([self.facets], layout=widgets.Layout(display="none")))
        controls = widgets.VBox([
            widgets.HBox([self.x, self.y, self.color, self.view], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.bits, self.structure, self.runtime], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.prune, self.device, self.min_accuracy], layout=widgets.Layout(flex_flow="row wrap")),
        ])
        super().__init__([controls, self.summary, *self._boxes, self.details, self.export])
        self.add_class("wb-explorer")
        for name in ("x", "y", "color", "bits", "structure", "runtime", "prune", "device", "min_accuracy", "figure",
                     "summary", "details", "view", "facets"):
            getattr(self, name).add_class("wb-" + name.replace("_", "-"))  # stable hooks for browser tests
        for w in (self.x, self.y, self.color, self.bits, self.structure, self.runtime, self.prune, self.device,
                  self.min_accuracy, self.view):
            w.observe(self.guard(self._changed), names="value")
        self.guard(self.update)()

    # ------------------------------------------------------------------------------------------ data

    def filtered(self) -> pd.DataFrame:
        """The rows the controls keep (errors dropped; one device when the frame has several)."""
        c = self._columns
        keep = np.isin(c["bits"], list(self.bits.value)) & np.isin(c["structure"], list(self.structure.value))
        keep &= np.isin(c["runtime"], list(self.runtime.value))
        if self.view.value not in ("all", "facet"):  # "only <runtime>"
            keep &= c["runtime"] == self.view.value
        lo, hi = self.prune.value
        keep &= (c["prune"] >= lo - 1e-9) & (c["prune"] <= hi + 1e-9)
        if self.device.value is not None:
            keep &= c["device"] == self.device.value
        return self._good[keep]

    def _objective(self) -> str:
        from workbench.viz import maximized

        for c in (self.x.value, self.y.value):
            if not maximized(c):
                return c
        return "latency_ms_est" if self.device.value is not None else "latency_ms_p50"

    def _best(self, d: pd.DataFrame) -> tuple[pd.Series | None, str]:
        """The best row under the bar (lowest value on the chart's cost axis), and a sentence about it.

        With a device, only variants that fit it count. The objective is the chart's own column (measured
        latency stays measured), so the ringed point is the lowest on the axis the user is looking at.
        """
        import workbench
        from workbench.viz import axis_label

        if d.empty or self.metric not in d:
            return None, ""
        obj = self._objective()
        rows, where = d, ""
        if self.device.value is not None and "fits" in d:
            rows = d[d["fits"].map(lambda v: bool(v) if isinstance(v, (bool, np.bool_)) else v == 1)]
            where = f" that fit {html.escape(str(self.device.value))}"
        try:
            if rows.empty:
                raise WorkbenchError(f"none of the shown variants fits {self.device.value}")
            row = workbench.best(rows, min_accuracy=self.min_accuracy.value, metric=self.metric, objective=obj)
        except WorkbenchError as e:
            first = str(e).split("\n")[0].replace("best: ", "").rstrip(":")
            return None, note_html(f"No best variant: {html.escape(first)}. Lower the {self.metric} bar or widen "
                                   "the filters.", "#F58518")
        text = (f"<b>Best: {html.escape(str(row['variant']))}</b> on {html.escape(runtime_name(row.get('runtime')))} — "
                f"{self.metric} {fmt(row.get(self.metric))}, {html.escape(axis_label(obj, self.device.value))} "
                f"{fmt(row.get(obj))}: the lowest among the {len(d)} shown variants{where} with {self.metric} ≥ "
                f"{self.min_accuracy.value:.3f} (ringed).")
        if "runtime" in d and d["runtime"].nunique() > 1:
            text += "<br>" + self._per_runtime(rows, obj)
        return row, note_html(text, "#2CA02C")

    def _per_runtime(self, rows: pd.DataFrame, obj: str) -> str:
        """The best variant on each runtime shown (`workbench.best` with ``runtime=``), in one line."""
        import workbench

        self.best_per_runtime = {}
        parts = []
        for rt in facet_values(rows):
            try:
                r = workbench.best(rows, runtime=rt, min_accuracy=self.min_accuracy.value, metric=self.metric,
                                   objective=obj)
            except WorkbenchError:
                parts.append(f"{html.escape(runtime_name(rt))}: none passes")
                continue
            self.best_per_runtime[rt] = r
            parts.append(f"{html.escape(runtime_name(rt))}: {html.escape(str(r['variant']))} {fmt(r.get(obj))}")
        return "Best per runtime — " + "; ".join(parts) + "."

    # --------------------------------------------------------------------------------------- updates

    def _changed(self, change: Any = None) -> None:
        self.update()

    def update(self) -> None:
        """Re-filter and update the chart in place (called by every control)."""
        from workbench import viz

        d = self.filtered()
        self.shown = d
        self.updates += 1
        if d.empty:
            self.best = None
            self.summary.value = note_html("No variant matches the filters; widen them.", "#F58518")
            for fig in (self.figure, self.facets):
                with fig.batch_update():
                    for t in fig.data:
                        t.x, t.y = [], []
                    fig.layout.title.text = "No variant matches the filters"
            return
        self.best_per_runtime = {}
        self.best, self.summary.value = self._best(d)
        highlight = None if self.best is None else self.best.get("key", self.best.name)
        facet = self.view.value == "facet"
        self._boxes[0].layout.display, self._boxes[1].layout.display = ("none", None) if facet else (None, "none")
        if facet:
            from workbench.viz.facets import pareto_facets

            rings = [r.get("key", r.name) for r in self.best_per_runtime.values()] or highlight
            pareto_facets(d, x=self.x.value, y=self.y.value, color=self.color.value, device=self.device.value,
                          panels=self.runtimes, highlight=rings, fig=self.facets)
            shown = self.facets
        else:
            viz.update_pareto(self.figure, d, x=self.x.value, y=self.y.value, color=self.color.value,
                              device=self.device.value, highlight=highlight)
            shown = self.figure
        for trace in shown.data:
            if trace.customdata is not None:  # variant points carry their row keys (legend and ring traces do not)
                trace.on_click(self.guard(self._clicked))

    def _clicked(self, trace: Any, points: Any, state: Any = None) -> None:
        if not points.point_inds:
            return  # plotly calls every trace's handler; only the clicked one has points
        key = trace.customdata[points.point_inds[0]]
        self.select(key)

    def select(self, key: str) -> pd.Series:
        """Show the details of the row with this `key` (what clicking its point does) and offer its export."""
        row = row_by_key(self.data, key)
        self.selected = row
        self.details.value = details_html(row, self.metric)
        self.export.set_row(row)
        return row


def details_html(row: pd.Series, metric: str = "accuracy") -> str:
    """One variant's configs, measured figures and device estimates as an HTML table."""
    base = row.get(f"baseline_{metric}")
    value = row.get(metric)
    delta = ""
    if value is not None and base is not None and pd.notna(value) and pd.notna(base):
        delta = f" ({float(value) - float(base):+.4f} against the original {float(base):.4f})"
    rows = [(metric + " (measured)", fmt(value) + delta)]
    rows += [(label, fmt(row.get(col), spec) if spec else fmt(row.get(col)))
             for col, label, spec in DETAILS if col in row and row.get(col) is not None and not _nan(row.get(col))]
    if row.get("device") is not None and not _nan(row.get("device")):
        est = [(label, fmt(row.get(col), spec) if spec else fmt(row.get(col)))
               for col, label, spec in DEVICE_DETAILS if col in row and not _nan(row.get(col))
               and row.get(col) != ""]
        rows += [(f"on {row.get('device')}", "")] + est
    if row.get("error") is not None and not _nan(row.get("error")):
        rows.append(("error", html.escape(str(row.get("error")))))
    return ("<div class='wb-variant'>" + table_html(rows, f"Variant: {row.get('variant')}") + "</div>")


def _nan(v: Any) -> bool:
    return isinstance(v, float) and np.isnan(v)
