"""`TradeoffExplorer`: the decision first — a plain-words card for the best variant — then the sweep's Pareto
chart with the best variant ringed, click-for-details and export; axes and filters fold under "Advanced".

Every control is a plain ipywidget whose ``.value`` a test (or a notebook) can set; each change re-filters the
frame and updates the one `FigureWidget` in place (`workbench.viz.update_pareto`, a single ``batch_update``), so
the chart never flickers or redraws from scratch.

The best variant follows `workbench.best`'s rule: realised variants only (unless "include simulated variants" is
ticked); with no device it ranks by this machine's measured median latency, with a device by that device's
estimate (``latency_ms_est``) among the variants that fit it. The card (`workbench.sweeps.decision.decide`) and
the ringed point are that same row.
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
NO_DEVICE = "(this machine, measured)"
"""The device dropdown's first option (value None): the card and the best use this machine's measurements."""
ADVANCED = "Advanced: axes and filters"
BROKEN_POINTS = 0.10
"""A variant more than this far below the original (fraction-valued metrics: 10 points) — and below the bar — is
"broken": listed under the chart instead of squeezing the decision region into a flat line."""
BAR_MARGIN = 0.02


def runtime_views(runtimes: list[str]) -> list[tuple[str, str]]:
    """The explorer's runtime facet: every runtime in one chart, one panel per runtime, or one runtime alone.

    Example:
        >>> runtime_views(["onnxruntime", "openvino"])[1:]
        [('one panel per runtime', 'facet'), ('only ONNX Runtime', 'onnxruntime'), ('only OpenVINO', 'openvino')]
    """
    return [("all runtimes, one chart", "all"), ("one panel per runtime", "facet"),
            *[(f"only {runtime_name(r)}", r) for r in runtimes]]


def decision_region(values: np.ndarray, *, baseline: float | None, bar: float | None,
                    lows: np.ndarray | None = None, highs: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, tuple[float, float] | None, float | None]:
    """Which points of a higher-is-better, fraction-valued metric to plot, and the axis range that opens on them.

    A value below ``min(baseline - BROKEN_POINTS, bar - BAR_MARGIN)`` is broken (left out); the range runs from
    just below the lowest kept value (or the bar) to just above the highest (or the original). Returns
    ``(kept mask, (low, high) or None, cut or None)``; None when the metric is not a fraction in [0, 1].

    Example:
        >>> keep, rng, cut = decision_region(np.array([0.91, 0.88, 0.12]), baseline=0.92, bar=0.90)
        >>> keep.tolist(), [round(v, 3) for v in rng], round(cut, 2)
        ([True, True, False], [0.87, 0.93], 0.82)
    """
    v = np.asarray(values, float)
    finite = v[np.isfinite(v)]
    if not len(finite) or finite.min() < 0 or finite.max() > 1.0:
        return np.ones(len(v), bool), None, None
    top = float(baseline) if baseline is not None and np.isfinite(baseline) else float(finite.max())
    cut = top - BROKEN_POINTS
    if bar is not None and np.isfinite(bar):
        cut = min(cut, float(bar) - BAR_MARGIN)
    keep = ~(v < cut)  # NaN stays (the figure drops it and says so)
    kept = v[keep & np.isfinite(v)]
    lo_parts = [kept, np.asarray(lows, float)[keep] if lows is not None else np.array([])]
    hi_parts = [kept, np.asarray(highs, float)[keep] if highs is not None else np.array([]), [top]]
    if bar is not None and np.isfinite(bar):
        lo_parts.append([float(bar)])
    lo_all = np.concatenate([np.asarray(p, float) for p in lo_parts])
    hi_all = np.concatenate([np.asarray(p, float) for p in hi_parts])
    lo, hi = float(np.nanmin(lo_all)), float(np.nanmax(hi_all))
    pad = max(0.01, 0.08 * (hi - lo))
    return keep, (max(0.0, lo - pad), min(1.0 + pad / 2, hi + pad)), cut


class TradeoffExplorer(Panel):
    """Explore a sweep: the decision card, then two metrics against each other, filtered, the best variant ringed.

    Args:
        data: a results frame, a `ResultStore`, or a results file (``.sqlite``, ``.csv``, ``.parquet``).
        x, y: initial axes (default: median latency against the task metric).
        color: initial colouring (``"bits"``, ``"structure"``, ``"runtime"`` or None).
        device: the device to start with (default None: this machine, measured).
        task: the task the results come from, for export (default: the zoo task named in the rows).
        out_dir: where Export writes artefacts (default: `workbench.ui.data.export_dir()`).
        sign_with: an Ed25519 private key file for signing exports (default: a key pair generated in
            ``<out_dir>/keys`` on first use).

    Attributes:
        card: the decision card (`ipywidgets.HTML`, `workbench.sweeps.decision.Decision.html`), at the top.
        device: None (``"(this machine, measured)"``) or the device whose estimates the best is ranked by.
        rate_hz, battery_mah: inferences per second and battery capacity for the card's duty cycle (shown with
            a device).
        min_accuracy: the accuracy bar (on the task metric) the best variant must reach.
        advanced: the `Accordion` ("Advanced: axes and filters", closed) holding x, y, color, view, bits,
            structure, runtime, prune, include_simulated and show_broken.
        x, y, color: axis and colour dropdowns.
        bits, structure, runtime: filters (`SelectMultiple`; ``.value`` is a tuple of the kept values).
        view: the runtime facet (`runtime_views`): ``"all"`` (one chart; colour by runtime to tell them apart),
            ``"facet"`` (one panel per runtime, each with its own front and best, in `facets`) or one runtime.
        prune: `FloatRangeSlider` of the kept prune ratios.
        include_simulated: also consider variants whose compression the runtime only simulates (off).
        show_broken: also plot the broken variants (far below the original; listed in `broken` otherwise).
        figure: the `go.FigureWidget`; facets: the one-panel-per-runtime `go.FigureWidget` (shown instead of
            `figure` for view ``"facet"``). best: the best variant's row — variant *and* runtime — (or None);
            best_per_runtime: ``{runtime: row}``. decision: the card's `Decision` (or None). summary: how the
            best was chosen. broken: the note listing the variants not plotted.
        details: the clicked variant's figures. export: the `ExportBox`. updates: how many updates ran.

    Example:
        >>> ex = TradeoffExplorer(df)  # or workbench.ui.demo_results(): a stored or cached sweep
        >>> ex.y.value = "size_bytes"; ex.bits.value = (8,)
        >>> ex.figure.layout.yaxis.title.text
        'file size (measured, bytes)'
    """

    def __init__(self, data: Any, *, x: str | None = None, y: str | None = None, color: str | None = "bits",
                 device: str | None = None, task: Any = None, out_dir: str | Path | None = None,
                 sign_with: str | Path | None = None) -> None:
        import plotly.graph_objects as go

        from workbench import viz
        from workbench.viz.words import device_words

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
        # -- the first row: device (+ duty cycle) and the bar
        devices = [str(d) for d in present(good, "device")]
        if device is not None and device not in devices:
            raise WorkbenchError(f"TradeoffExplorer: no estimates for device {device!r}; have "
                                 f"{', '.join(devices) or 'none'}.")
        self.device = widgets.Dropdown(options=[(NO_DEVICE, None), *[(device_words(d), d) for d in devices]],
                                       value=device, description="device", layout=wide)
        self.device.observe(self._show_no_device, names="value")
        self._show_no_device()
        self.rate_hz = widgets.BoundedFloatText(value=5.0, min=0.001, max=100_000.0, step=1.0,
                                                description="rate (Hz)", continuous_update=False,
                                                layout=widgets.Layout(width="170px"))
        self.battery_mah = widgets.BoundedIntText(value=2000, min=1, max=10_000_000, step=100,
                                                  description="battery (mAh)", continuous_update=False,
                                                  layout=widgets.Layout(width="210px"),
                                                  style={"description_width": "initial"})
        base = pd.to_numeric(good.get(f"baseline_{self.metric}", pd.Series(dtype=float)), errors="coerce").max()
        self._baseline = float(base) if pd.notna(base) else None
        lo = float(pd.to_numeric(good[self.metric], errors="coerce").min()) if self.metric in good else 0.0
        bar = round(max(0.0, float(base) - 0.02), 3) if pd.notna(base) else 0.0
        self.min_accuracy = widgets.FloatSlider(value=bar, min=round(min(lo, bar), 2) if np.isfinite(lo) else 0.0,
                                                max=1.0, step=0.005, readout_format=".3f", continuous_update=False,
                                                description=f"min {self.metric}", layout=wide,
                                                style={"description_width": "initial"})
        # -- advanced: axes and filters
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
        self.include_simulated = widgets.Checkbox(value=False, description="include simulated variants",
                                                  indent=False, layout=widgets.Layout(width="240px"))
        self.show_broken = widgets.Checkbox(value=False, description="show broken variants", indent=False,
                                            layout=widgets.Layout(width="200px"))
        # -- outputs
        self.card = widgets.HTML(value="")
        self.summary = widgets.HTML(value="")
        self.broken = widgets.HTML(value="")
        self.details = widgets.HTML(value=note_html("Click a point to see the variant's figures.", "#BAB0AC"))
        self.export = ExportBox(task=task, out_dir=out_dir, sign_with=sign_with)
        self.best: pd.Series | None = None
        self.best_per_runtime: dict[str, pd.Series] = {}
        self.decision: Any = None
        self.selected: pd.Series | None = None
        self.shown = good
        self._good = good
        self._card_key: Any = None
        self._broken_key: Any = None
        self._columns = _filter_columns(good, self.metric)  # computed once: each change only compares arrays
        self.updates = 0
        self.figure = go.FigureWidget(layout={"height": 480})
        self.facets = go.FigureWidget(layout={"height": 480})  # one panel per runtime, shown for view "facet"
        self._boxes = (widgets.Box([self.figure]), widgets.Box([self.facets], layout=widgets.Layout(display="none")))
        row = widgets.Layout(flex_flow="row wrap")
        self._duty = widgets.HBox([self.rate_hz, self.battery_mah], layout=widgets.Layout(display="none"))
        first = widgets.HBox([self.device, self._duty, self.min_accuracy], layout=row)
        self.advanced = widgets.Accordion(children=[widgets.VBox([
            widgets.HBox([self.x, self.y, self.color, self.view], layout=row),
            widgets.HBox([self.bits, self.structure, self.runtime], layout=row),
            widgets.HBox([self.prune, self.include_simulated, self.show_broken], layout=row),
        ])], selected_index=None)
        self.advanced.set_title(0, ADVANCED)
        super().__init__([self.card, first, self.advanced, self.summary, *self._boxes, self.broken, self.details,
                          self.export])
        self.add_class("wb-explorer")
        for name in ("x", "y", "color", "bits", "structure", "runtime", "prune", "device", "min_accuracy", "figure",
                     "summary", "details", "view", "facets", "card", "rate_hz", "battery_mah", "advanced",
                     "include_simulated", "show_broken", "broken"):
            getattr(self, name).add_class("wb-" + name.replace("_", "-"))  # stable hooks for browser tests
        for w in (self.x, self.y, self.color, self.bits, self.structure, self.runtime, self.prune, self.device,
                  self.min_accuracy, self.view, self.rate_hz, self.battery_mah, self.include_simulated,
                  self.show_broken):
            w.observe(self.guard(self._changed), names="value")
        self.guard(self.update)()

    # ------------------------------------------------------------------------------------------ data

    def _show_no_device(self, change: Any = None) -> None:
        """Keep "(this machine, measured)" selected for value None (a Dropdown shows None as no selection)."""
        if self.device.value is None and self.device.index is None:
            self.device.index = 0

    def filtered(self) -> pd.DataFrame:
        """The rows the controls keep (errors dropped; the chosen device's rows, or one row per variant and
        runtime — its measurements — with no device)."""
        c = self._columns
        keep = np.isin(c["bits"], list(self.bits.value)) & np.isin(c["structure"], list(self.structure.value))
        keep &= np.isin(c["runtime"], list(self.runtime.value))
        if self.view.value not in ("all", "facet"):  # "only <runtime>"
            keep &= c["runtime"] == self.view.value
        lo, hi = self.prune.value
        keep &= (c["prune"] >= lo - 1e-9) & (c["prune"] <= hi + 1e-9)
        keep &= c["device"] == self.device.value if self.device.value is not None else c["measured"]
        return self._good[keep]

    def objective(self) -> str:
        """The column the best is ranked by: this machine's median latency, or the device's estimate."""
        return "latency_ms_est" if self.device.value is not None else "latency_ms_p50"

    def _rule(self) -> dict[str, Any]:
        """`workbench.best`'s keywords for the controls' rule."""
        rule: dict[str, Any] = {"min_accuracy": self.min_accuracy.value, "metric": self.metric,
                                "objective": self.objective(), "realized_only": not self.include_simulated.value}
        if self.device.value is not None:
            rule["device"] = self.device.value
        return rule

    def _decide(self, d: pd.DataFrame) -> None:
        """The decision card, the best row (the card's), the best per runtime and the summary for the shown rows;
        recomputed only when one of their inputs changes (not for an axis or colour change)."""
        from workbench.sweeps.decision import decide_or_none

        dev = self.device.value
        duty = (self.rate_hz.value, self.battery_mah.value) if dev is not None else (None, None)
        key = (d.index.to_numpy().tobytes(), dev, self.min_accuracy.value, duty, self.include_simulated.value)
        if key == self._card_key:
            return
        self._card_key = key
        self.best_per_runtime = {}
        self.decision = decide_or_none(d, device=dev, min_accuracy=self.min_accuracy.value, metric=self.metric,
                                       rate_hz=duty[0], battery_mah=duty[1],
                                       realized_only=not self.include_simulated.value)
        self.card.value = self.decision.html() + self._provenance()
        self.best = self.decision.row
        self.summary.value = self._summary(d)

    def _provenance(self) -> str:
        """Where shipped results were measured: "this machine" in the card is the machine that built them."""
        if self.data.attrs.get("source") != "shipped":
            return ""
        return ("<div class='wb-provenance' style='color:#666;font-size:.85em'>"
                + html.escape(str(self.data.attrs.get("note", "Precomputed results measured on another machine.")))
                + "</div>")

    def _summary(self, d: pd.DataFrame) -> str:
        """How the best was chosen, in one sentence (and the best per runtime when several are shown)."""
        from workbench.viz.words import device_words, latency_words, value_words, variant_words

        row, dev, obj = self.best, self.device.value, self.objective()
        simulated = int(self._columns["simulated"][self._good.index.get_indexer(d.index)].sum())
        left_out = "" if not simulated or self.include_simulated.value else (
            f"; {simulated} simulated variant{'s' if simulated != 1 else ''} left out (the compression is not "
            "executed: the file that runs is float)")
        bar = f"{self.metric} ≥ {value_words(self.min_accuracy.value, self.metric)}"
        if row is None:
            return note_html(f"No best variant: {html.escape(self.decision.text)} Lower the {self.metric} bar, "
                             f"widen the filters or include simulated variants (Advanced){left_out}.", "#F58518")
        where = f"on {device_words(dev)} (estimated)" if dev else "on this machine (measured)"
        pool = f"the {len(d)} shown variants" + (f" that fit {device_words(dev)}" if dev else "")
        text = (f"<b>Best: {html.escape(variant_words(row))}</b> ({html.escape(str(row['variant']))}) on "
                f"{html.escape(runtime_name(row.get('runtime')))} — {self.metric} "
                f"{html.escape(value_words(row.get(self.metric), self.metric))}, "
                f"{html.escape(latency_words(row.get(obj)))} per inference {where}: the fastest of {pool} with "
                f"{html.escape(bar)}{left_out} (ringed).")
        if "runtime" in d and d["runtime"].nunique() > 1:
            text += "<br>" + self._per_runtime(d, obj)
        return note_html(text, "#2CA02C")

    def _per_runtime(self, rows: pd.DataFrame, obj: str) -> str:
        """The best variant on each runtime shown (`workbench.best` with ``runtime=``), in one line."""
        import workbench
        from workbench.viz.words import latency_words

        self.best_per_runtime = {}
        parts = []
        for rt in facet_values(rows):
            try:
                r = workbench.best(rows, runtime=rt, **self._rule())
            except WorkbenchError as e:
                why = "only simulated variants pass" if "simulated" in str(e) else "none passes"
                parts.append(f"{html.escape(runtime_name(rt))}: {why}")
                continue
            self.best_per_runtime[rt] = r
            parts.append(f"{html.escape(runtime_name(rt))}: {html.escape(str(r['variant']))} "
                         f"{html.escape(latency_words(r.get(obj)))}")
        return "Best per runtime — " + "; ".join(parts) + "."

    # --------------------------------------------------------------------------------------- updates

    def _changed(self, change: Any = None) -> None:
        self.update()

    def update(self) -> None:
        """Re-filter, choose the best, and update the card and the chart in place (called by every control)."""
        d = self.filtered()
        self.shown = d
        self.updates += 1
        self._duty.layout.display = "none" if self.device.value is None else None
        if d.empty:
            self.best, self.decision, self._card_key, self.best_per_runtime = None, None, None, {}
            self.summary.value = note_html("No variant matches the filters; widen them.", "#F58518")
            self.card.value = note_html("No variant matches the filters; widen them (Advanced).", "#F58518")
            self.broken.value, self._broken_key = "", None
            for fig in (self.figure, self.facets):
                with fig.batch_update():
                    for t in fig.data:
                        t.x, t.y = [], []
                    fig.layout.title.text = "No variant matches the filters"
            return
        self._decide(d)
        plot, axis, rng = self._region(d)
        highlight = None if self.best is None else self.best.get("key", self.best.name)
        facet = self.view.value == "facet"
        self._boxes[0].layout.display, self._boxes[1].layout.display = ("none", None) if facet else (None, "none")
        shown = self.facets if facet else self.figure
        with shown.batch_update():  # the traces and the axis range reach the browser in one message
            if facet:
                from workbench.viz.facets import pareto_facets

                rings = [r.get("key", r.name) for r in self.best_per_runtime.values()] or highlight
                pareto_facets(plot, x=self.x.value, y=self.y.value, color=self.color.value,
                              device=self.device.value, panels=self.runtimes, highlight=rings, fig=self.facets)
            else:
                from workbench import viz

                viz.update_pareto(self.figure, plot, x=self.x.value, y=self.y.value, color=self.color.value,
                                  device=self.device.value, highlight=highlight)
            if axis is not None:
                (shown.update_yaxes if axis == "y" else shown.update_xaxes)(range=list(rng) if rng else None)
        for trace in shown.data:
            if trace.customdata is not None:  # variant points carry their row keys (legend and ring traces do not)
                trace.on_click(self.guard(self._clicked))

    def _region(self, d: pd.DataFrame) -> tuple[pd.DataFrame, str | None, tuple[float, float] | None]:
        """The rows to plot (broken variants left out unless `show_broken`), the metric's axis and its range;
        fills `broken` with the variants left out."""
        from workbench.viz.words import variant_words

        axis = "y" if self.y.value == self.metric else "x" if self.x.value == self.metric else None
        if axis is None:
            self.broken.value, self._broken_key = "", None
            return d, None, None
        values = self._columns["value"][self._good.index.get_indexer(d.index)]
        low = f"{self.metric}_low" if f"{self.metric}_low" in d else None
        high = f"{self.metric}_high" if f"{self.metric}_high" in d else None
        keep, rng, cut = decision_region(
            values, baseline=self._baseline, bar=self.min_accuracy.value,
            lows=pd.to_numeric(d[low], errors="coerce").to_numpy(float) if low else None,
            highs=pd.to_numeric(d[high], errors="coerce").to_numpy(float) if high else None)
        out = d[~keep]
        if out.empty or cut is None:
            self.broken.value, self._broken_key = "", None
            return d, axis, rng
        key = (out.index.to_numpy().tobytes(), cut, self.show_broken.value)
        if key != self._broken_key:  # the note is words per row: only when the broken rows change
            self._broken_key = key
            names = sorted({f"{variant_words(r)} ({fmt(r.get(self.metric) * 100, '.0f')} %)"
                            for _, r in out.iterrows()})
            n = len(out.drop_duplicates(subset=[c for c in ("variant", "runtime") if c in out]))
            what = f"{n} variant{'s' if n != 1 else ''} below {cut * 100:.0f} % {html.escape(self.metric)}"
            listed = html.escape("; ".join(names[:8]) + (f"; and {len(names) - 8} more" if len(names) > 8 else ""))
            self.broken.value = note_html(
                f"Showing {what}: {listed}." if self.show_broken.value else
                f"{what} not shown: {listed}. Tick “show broken variants” under Advanced to plot them.", "#BAB0AC")
        return (d, axis, None) if self.show_broken.value else (d[keep], axis, rng)

    def _clicked(self, trace: Any, points: Any, state: Any = None) -> None:
        if not points.point_inds:
            return  # plotly calls every trace's handler; only the clicked one has points
        key = trace.customdata[points.point_inds[0]]
        self.select(key)

    def select(self, key: str) -> pd.Series:
        """Show the details of the row with this `key` (what clicking its point does) and offer its export."""
        row = row_by_key(self.data, key)
        self.selected = row
        self.details.value = details_html(row, self.metric, device=self.device.value is not None)
        dev = self.device.value
        self.export.set_row(row, self.data, device=dev, metric=self.metric, min_accuracy=self.min_accuracy.value,
                            rate_hz=self.rate_hz.value if dev else None,
                            battery_mah=self.battery_mah.value if dev else None)
        return row


def _filter_columns(good: pd.DataFrame, metric: str) -> dict[str, np.ndarray]:
    """The arrays `TradeoffExplorer.filtered` compares, computed once per frame."""
    n = len(good)
    runtime = good["runtime"].astype(str) if "runtime" in good else pd.Series("onnxruntime", index=good.index)
    device = good["device"] if "device" in good else pd.Series(None, index=good.index)
    # with no device: one row per variant x runtime (the measurements repeat on every device's row), the
    # device-less row where the sweep has one
    ident = pd.DataFrame({c: good[c].astype(str).to_numpy() for c in ("task", "variant") if c in good})
    ident["runtime"] = runtime.to_numpy()
    order = np.argsort(device.notna().to_numpy(), kind="stable")
    measured = np.zeros(n, bool)
    measured[order[~ident.iloc[order].duplicated().to_numpy()]] = True
    realized = good["realized"] if "realized" in good else pd.Series(True, index=good.index)
    return {
        "bits": bits_of(good).to_numpy(), "structure": structure_of(good).to_numpy(dtype=object),
        "runtime": runtime.to_numpy(dtype=object),
        "prune": pd.to_numeric(good["prune"], errors="coerce").fillna(0.0).to_numpy(float) if "prune" in good
        else np.zeros(n),
        "device": device.to_numpy(dtype=object), "measured": measured,
        "simulated": ~realized.map(lambda v: isinstance(v, (bool, np.bool_, int, float)) and v == v  # as best()
                                   and bool(v)).to_numpy(bool),
        "value": pd.to_numeric(good[metric], errors="coerce").to_numpy(float) if metric in good
        else np.full(n, np.nan),
    }


DETAILS = (
    ("runtime", "runtime", None), ("realization", "runs as", None), ("prune", "fraction pruned", ".0%"),
    ("structure", "pruning structure", None), ("bits", "weight bits", ".0f"), ("recover", "recovery steps", ".0f"),
    ("fidelity", "agreement with the original", ".4f"),
    ("latency_ms_p50", "latency, median (measured, ms)", ".4g"), ("latency_ms_p90", "latency, p90 (measured, ms)",
                                                                   ".4g"),
    ("size_bytes", "file size (measured)", "size"), ("size_deflated_bytes", "zipped (measured)", "size"),
    ("size_coded_bytes", "Huffman-coded, Deep Compression (measured)", "size"),
    ("size_entropy_bytes", "entropy bound of the coded size", "size"),
    ("params_nonzero", "non-zero parameters", ",.0f"), ("macs", "multiply-adds per inference", ",.0f"),
    ("peak_mem_bytes", "peak memory (measured)", "size"),
    ("energy_mj", "energy per inference (measured on this host's RAPL counters, mJ)", ".4g"),
    ("energy_note", "energy measurement", None),
)
DEVICE_DETAILS = (
    ("latency_ms_est", "latency (est., ms)", ".4g"), ("energy_mj_est", "energy per inference (est., mJ)", ".4g"),
    ("power_w_est", "power while busy (est., W)", ".3g"), ("battery_h_est", "battery life (est., h)", ".3g"),
    ("fits", "fits in memory", None), ("reason", "why not", None),
)


def _cell(row: pd.Series, col: str, spec: str | None) -> str:
    from workbench.viz.words import size_words

    v = row.get(col)
    if col == "runtime":
        return html.escape(runtime_name(v))
    if spec == "size":
        return html.escape(size_words(float(v)))
    return fmt(v, spec) if spec else fmt(v)


def details_html(row: pd.Series, metric: str = "accuracy", *, device: bool = True) -> str:
    """One variant's configs, measured figures and (with `device`) device estimates as an HTML table, in words:
    the variant's plain name, the metric with its interval and how it compares with the original."""
    from workbench.viz.words import metric_words, noise_words, variant_words

    value = row.get(metric)
    text = "–"
    if value is not None and not _nan(value):
        text = html.escape(metric_words(row, metric))
        base = row.get(f"baseline_{metric}")
        if base is not None and not _nan(base):
            text += f" — {html.escape(noise_words(row, metric)[1])}"
    rows = [(f"{metric} (measured)", text)]
    rows += [(label, _cell(row, col, spec)) for col, label, spec in DETAILS
             if col in row and row.get(col) is not None and not _nan(row.get(col))]
    if device and row.get("device") is not None and not _nan(row.get("device")):
        est = [(label, fmt(row.get(col), spec) if spec else fmt(row.get(col)))
               for col, label, spec in DEVICE_DETAILS if col in row and not _nan(row.get(col))
               and row.get(col) != ""]
        rows += [(f"on {row.get('device')}", "")] + est
    if row.get("error") is not None and not _nan(row.get("error")):
        rows.append(("error", html.escape(str(row.get("error")))))
    title = f"Variant: {variant_words(row)} ({row.get('variant')})"
    return "<div class='wb-variant'>" + table_html(rows, title) + "</div>"


def _nan(v: Any) -> bool:
    return isinstance(v, float) and np.isnan(v)
