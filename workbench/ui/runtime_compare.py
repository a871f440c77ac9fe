"""`RuntimeCompare`: pick a variant, see it on every runtime — measured latency with its spread and file size per
runtime (what each really executed on the bar), a sentence for people who read no charts ("Fastest here:
OpenVINO, 0.04 ms; ONNX Runtime within noise"), the figures as a table, and device fit per runtime.

The figure is `workbench.viz.runtimes.runtime_compare`, updated in place on every change; the words and the noise
rule are `workbench.viz.runtimes.runtime_summary` and `within_noise`.
"""

from __future__ import annotations

import html
import math
from typing import Any, Sequence

import ipywidgets as widgets
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.ui.base import Panel, fmt, load_results, note_html, present, primary_metric


class RuntimeCompare(Panel):
    """One variant on every runtime: which is fastest, which are within noise, which could not run it.

    Args:
        data: a results frame (with several runtimes: ``grid(runtimes=[...])``), a `ResultStore` or a results
            file. Error rows are kept: a runtime that could not run a variant is shown as such.
        variant: the variant to start with (default: ``baseline``, else the first).
        runtimes: the runtimes to list (default: every runtime in the results).

    Attributes:
        variant: the variant dropdown. figure: the `go.FigureWidget` (latency and size bars per runtime).
        summary: the sentence. table: per runtime, the measured figures and what ran. fit: device fit per
        runtime (estimates; empty without device rows). shown: the current `runtime_table`.

    Example:
        >>> panel = RuntimeCompare(df, variant="q8")
        >>> panel.figure.data[0].y, panel.summary.value.count("Fastest here: ONNX Runtime")
        (('ONNX Runtime',), 1)
    """

    def __init__(self, data: Any, *, variant: str | None = None, runtimes: Sequence[str] | None = None) -> None:
        import plotly.graph_objects as go

        self.data = load_results(data)
        if "runtime" not in self.data:
            raise WorkbenchError("RuntimeCompare needs a 'runtime' column: sweep with grid(runtimes=[...]) or "
                                 "workbench.results_frame(task, variants, runtimes=[...]).")
        self.metric = primary_metric(self.data)
        self.runtimes = list(runtimes) if runtimes is not None else [str(r) for r in present(self.data, "runtime")]
        variants = [str(v) for v in present(self.data, "variant")]
        if variant is not None and variant not in variants:
            raise WorkbenchError(f"RuntimeCompare: no variant {variant!r}; have {', '.join(variants)}.")
        start = variant or ("baseline" if "baseline" in variants else variants[0])
        self.variant = widgets.Dropdown(options=variants, value=start, description="variant",
                                        layout=widgets.Layout(width="360px"))
        self.summary = widgets.HTML(value="")
        self.table = widgets.HTML(value="")
        self.fit = widgets.HTML(value="")
        self.figure = go.FigureWidget(layout={"height": 320})
        self.shown: pd.DataFrame | None = None
        self.updates = 0
        # each variant's rows, split once: a change then only looks at a handful of rows
        self._rows = {str(v): g for v, g in self.data.groupby(self.data["variant"].astype(str), sort=False)}
        super().__init__([self.variant, self.summary, self.figure, self.table, self.fit])
        self.add_class("wb-runtimes")
        for name in ("variant", "summary", "figure", "table", "fit"):
            getattr(self, name).add_class(f"wb-runtimes-{name}")  # stable hooks for browser tests
        self.variant.observe(self.guard(lambda _c: self.update()), names="value")
        self.guard(self.update)()

    def update(self) -> None:
        """Redraw the figure, the sentence and the tables for the chosen variant (the figure in place)."""
        from workbench.viz.runtimes import runtime_compare, runtime_fit, runtime_summary, runtime_table

        self.updates += 1
        rows = self._rows[self.variant.value]
        t = runtime_table(rows, self.variant.value, runtimes=self.runtimes)
        self.shown = t
        runtime_compare(rows, self.variant.value, table=t, fig=self.figure)
        ran = int((t["status"] == "ok").sum())
        colour = "#2CA02C" if ran else "#F58518"
        extra = "" if len(t) > 1 else (" Only one runtime in these results: sweep with grid(runtimes=[...]) to "
                                       "compare runtimes.")
        self.summary.value = note_html(html.escape(runtime_summary(t) + extra), colour)
        self.table.value = runtime_table_html(t, self.metric)
        self.fit.value = fit_html(runtime_fit(rows, self.variant.value, runtimes=self.runtimes))


def _ms(v: Any) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(f) else f"{f:.3g} ms"


def runtime_table_html(t: pd.DataFrame, metric: str | None = None) -> str:
    """The runtime table as HTML: per runtime the measured median and spread, against the fastest, the file
    size, what the runtime executed, the metric, and the verdict (or the error)."""
    spread = "IQR" if t.attrs.get("spread", "iqr") == "iqr" else "p90 − median"
    head = ["runtime", "median latency (measured)", f"spread ({spread})", "against the fastest", "file size",
            "runs as", *([f"{metric} (measured)"] if metric and metric in t else []), "verdict"]
    cells = []
    for _, r in t.iterrows():
        ok = r["status"] == "ok"
        ratio = f"{float(r['ratio']):.2f}×" if ok and pd.notna(r["ratio"]) else "–"
        size = f"{float(r['size_bytes']) / 1e3:,.0f} kB" if ok and pd.notna(r["size_bytes"]) else "–"
        runs = html.escape(str(r["realization"] or "–")) if ok else "–"
        verdict = html.escape(str(r["verdict"]))
        if r["status"] == "error":
            verdict += f"<br><span style='color:#999;font-size:11px'>{html.escape(str(r['error'])[:160])}</span>"
        style = "color:#2CA02C;font-weight:600" if ok and (r["fastest"] or r["within_noise"]) else ""
        cells.append([html.escape(str(r["name"])), _ms(r["latency_ms_p50"]) if ok else "–",
                      _ms(r["spread_ms"]) if ok else "–", ratio, size, runs,
                      *([fmt(r[metric])] if metric and metric in t else []), f"<span style='{style}'>{verdict}</span>"])
    return _table(head, cells, "wb-runtime-table")


def fit_html(fit: pd.DataFrame) -> str:
    """Device fit per runtime (`workbench.viz.runtimes.runtime_fit`) as a coloured HTML table; a note when the
    results have no device estimates."""
    if fit.empty:
        return note_html("No device estimates in these results: sweep with devices=[...] to see which devices each "
                         "runtime's build fits.", "#BAB0AC")
    colours = (("fits", "#E3F4E7"), ("does not fit", "#FBE3E3"), ("not deployable", "#EEEEEE"),
               ("could not run", "#EEEEEE"))
    cells = []
    for dev, row in fit.iterrows():
        line = [html.escape(str(dev))]
        for v in row:
            bg = next((c for k, c in colours if str(v).startswith(k)), "")
            line.append(f"<span style='background:{bg};padding:1px 4px'>{html.escape(str(v))}</span>")
        cells.append(line)
    title = ("<div style='font-weight:600;margin:8px 0 4px'>Device fit per runtime (estimates from the device "
             "profiles)</div>")
    return title + _table(["device", *map(str, fit.columns)], cells, "wb-runtime-fit")


def _table(head: list[str], cells: list[list[str]], css: str) -> str:
    th = "".join(f"<th style='text-align:left;padding:2px 10px'>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 10px'>{c}</td>" for c in row) + "</tr>"
                   for row in cells)
    return (f"<div class='{css}' style='font-family:sans-serif;font-size:13px'><table><tr>{th}</tr>{body}"
            "</table></div>")


__all__ = ["RuntimeCompare", "fit_html", "runtime_table_html"]
