"""A self-contained HTML report of sweep results: figures, Pareto table, device fit and the configs; for the
frame of a `workbench.search`, also what it searched for and its hypervolume over trials.

The page embeds plotly.js once (about 4.5 MB) so it opens offline, from a file, on any machine. Measured
figures and device estimates are labelled as such, as everywhere else in the workbench.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.errors import WorkbenchError

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0} th,td{border:1px solid #ddd;padding:.25rem .5rem;
text-align:right} th{background:#f5f5f5} td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.9rem} .est{color:#8a5a00} code{background:#f5f5f5;padding:0 .2rem}
"""


def _num(v: Any, col: str) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if col.endswith("bytes") or col in ("macs", "params", "params_nonzero"):
        return f"{int(v):,}"
    if col.startswith("latency"):
        return f"{float(v):.4f}"
    if isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(str(v))


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_num(v, c)}</td>" for c, v in zip(df.columns, row)) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _front_table(front: pd.DataFrame, rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The Pareto table for people: each variant also in words, the metric with its 95 % interval as one text
    ("91.2 % (90.0–92.3)") and the original's value beside it."""
    from workbench.sweeps.words import metric_words, value_words, variant_words

    show = front.copy()
    configs = rows.drop_duplicates("variant").set_index("variant") if "variant" in rows else None
    if "variant" in show and configs is not None:
        show.insert(1, "what it is", [variant_words(configs.loc[v]) if v in configs.index else str(v)
                                      for v in show["variant"]])
    if metric in show:
        pair = [c for c in (f"{metric}_low", f"{metric}_high") if c in show]
        show[metric] = [metric_words(r, metric) for _, r in show.iterrows()]
        show = show.drop(columns=pair).rename(columns={metric: f"{metric} (95 % interval)"} if pair else {})
    if f"baseline_{metric}" in show:
        show[f"baseline_{metric}"] = [value_words(v, metric) for v in show[f"baseline_{metric}"]]
        show = show.rename(columns={f"baseline_{metric}": "original"})
    return show


HYPERVOLUME_WORDS = ("Hypervolume is the share of the objective space the variants found so far dominate; it rises "
                     "as the search finds better trade-offs and flattens when it stops finding them.")


def objective_words(objectives: dict[str, str]) -> str:
    """``{"accuracy": "max", "latency_ms_p50": "min"}`` → ``"higher accuracy, lower median latency"``."""
    from workbench.viz.style import short_label

    return ", ".join(f"{'higher' if d == 'max' else 'lower'} {short_label(c).split(',')[0]}"
                     for c, d in objectives.items())


def constraint_words(constraints: dict[str, Any], metric: str) -> str:
    """A search's constraints in words (`workbench.search`'s keys), ``"none"`` without any.

    Example:
        >>> constraint_words({"min_accuracy": 0.9, "device": "raspberry-pi-4"}, "accuracy")
        'accuracy at least 90.0 %; judged on Raspberry Pi 4, with its estimates; fits its memory'
    """
    from workbench.sweeps.words import (
        device_words,
        energy_words,
        latency_words,
        metric_name,
        runtime_words,
        size_words,
        value_words,
    )

    c = dict(constraints)
    device = c.get("device")
    out = []
    if c.get("min_accuracy") is not None:
        out.append(f"{metric_name(metric)} at least {value_words(c['min_accuracy'], metric)}")
    if c.get("max_metric") is not None:
        out.append(f"{metric_name(metric)} at most {value_words(c['max_metric'], metric)}")
    for key, what, words in (("max_latency_ms", "estimated latency" if device else "median latency", latency_words),
                             ("max_energy_mj", "estimated energy per inference", energy_words),
                             ("max_size_bytes", "file size", size_words),
                             ("max_memory_bytes", "peak memory", size_words)):
        if c.get(key) is not None:
            out.append(f"{what} at most {words(c[key])}")
    if device is not None:
        out.append(f"judged on {device_words(device)}, with its estimates")
        if c.get("must_fit", True):
            out.append("fits its memory")
    if c.get("runtime") is not None:
        out.append(f"runs on {runtime_words(c['runtime'])}")
    if c.get("realized_only"):
        out.append("compression executed by the runtime, not simulated")
    return "; ".join(out) or "none"


def _search_section(df: pd.DataFrame, metric: str, plot: Any) -> str:
    """The "Search" section of a `workbench.search` frame: trials, objectives, constraints, hypervolume."""
    from workbench.viz import hypervolume_chart
    from workbench.viz.search import objective_rows, search_history

    a = df.attrs
    last = int(pd.to_numeric(df["trial"], errors="coerce").max()) + 1 if len(df) else 0
    trials = int(a.get("trials", last))
    variants = df["variant"].nunique() if "variant" in df else len(df)
    text = (f"These variants were picked by a search, not by trying every combination: {trials} trials "
            f"found {variants} different variants")
    if a.get("study"):
        text += f" (Optuna study <code>{html.escape(str(a['study']))}</code>)"
    text += "."
    if a.get("evaluated") is not None:
        measured = int(a["evaluated"])
        text += (f" {measured} of them were measured by this search; the other {max(0, trials - measured)} trials "
                 "were read from the results store (measured earlier, or a variant tried again).")
    rows = objective_rows(df)
    feasible = int(rows.loc[rows["feasible"].astype(bool), "variant"].nunique()) if "feasible" in rows else variants
    parts = [f"<h2>Search</h2><p class='note'>{text}</p>",
             f"<p>Objectives: {html.escape(objective_words(a['objectives']))}. Constraints: "
             f"{html.escape(constraint_words(a.get('constraints') or {}, metric))}. {feasible} of {variants} "
             "variants meet them.</p>"]
    history = search_history(df)
    parts.append(f"<h3>Hypervolume over trials</h3><p class='note'>{html.escape(HYPERVOLUME_WORDS)}")
    if len(history):
        hv = history["hypervolume"].to_numpy(float)
        gain = history["trial"].iloc[int((hv >= hv[-1] - 1e-12).argmax())]
        parts.append(f" Here it reached {hv[-1]:.2f}; the last gain came at trial {int(gain) + 1} of "
                     f"{max(trials, last)}.</p>" if hv[-1] > 0 else " No variant met the constraints, so it "
                     "stayed at 0.</p>")
        parts.append(plot(hypervolume_chart(history, trials=range(max(trials, last)))))
    else:
        parts.append(" No trial has a value for every objective, so there is none to chart.</p>")
    return "".join(parts)


def write_report(results: pd.DataFrame | Any, out: str | Path = "report.html", *, title: str | None = None,
                 rate_hz: float | None = None, battery_mah: float | None = None) -> Path:
    """Write the HTML report of a sweep (a results DataFrame, a `ResultStore`, or a store path).

    Sections: the decision card at the top (`workbench.sweeps.decision`: one measured on this machine, one per
    device the results estimate for, with battery life when `rate_hz` and `battery_mah` are given), Pareto front
    (figure and table, each metric with its 95 % interval and its difference to the original), metric heatmap
    over prune ratio × bits, size (raw vs deflated), device fit and energy (estimates, with the device profile
    and formula), failed variants, and the configs and library versions that produced the figures. The frame of
    a `workbench.search` (a ``trial`` column and ``attrs["objectives"]``) also gets a "Search" section: its
    trials, objectives and constraints in words, and its hypervolume over trials.

    Example:
        >>> write_report(df, "report.html")    # or a store: write_report("results.sqlite", "report.html")
        PosixPath('report.html')
    """
    from workbench import viz
    from workbench.core.paths import atomic_write
    from workbench.sweeps.analysis import pareto_table
    from workbench.sweeps.decision import decisions
    from workbench.sweeps.frame import error_mask, primary_metric
    from workbench.sweeps.store import ResultStore

    if isinstance(results, (str, Path)):
        if not Path(results).is_file():
            raise WorkbenchError(f"{results}: no such results store")
        with ResultStore(results) as st:
            results = st.to_frame()
    elif isinstance(results, ResultStore):
        results = results.to_frame()
    df = results
    if df is None or df.empty:
        raise WorkbenchError("the report needs at least one result row; run a sweep first")
    metric = primary_metric(df)
    if metric is None:
        raise WorkbenchError("the results hold no task metric column (e.g. accuracy)")
    tasks = sorted(map(str, df["task"].dropna().unique())) if "task" in df else []
    title = title or f"Edge Workbench sweep report: {', '.join(tasks) or 'results'}"
    failed_mask = error_mask(df)
    ok, failed = df[~failed_mask], df[failed_mask]

    figs: list[tuple[str, Any, str]] = []
    per_variant = ok.drop_duplicates(["task", "variant", "runtime"]) if "device" in ok else ok
    if not per_variant.empty:
        figs.append(("Pareto front: accuracy vs measured latency", viz.pareto_scatter(
            per_variant, x="latency_ms_p50", y=metric), "Measured on this machine, batch 1. The line joins "
            "the variants nothing else beats on both axes."))
        figs.append(("Pareto front: accuracy vs file size", viz.pareto_scatter(
            per_variant, x="size_bytes", y=metric), "File the runtime loads (bytes, measured)."))
        if per_variant["prune"].nunique() > 1 or per_variant["bits"].nunique() > 1:
            figs.append((f"{metric} over prune ratio × bits", viz.heatmap(per_variant, metric), ""))
        figs.append(("Size: raw vs deflated", viz.size_breakdown(per_variant),
                     "Deflated size shows what unstructured sparsity saves in storage and download."))
    has_devices = "device" in ok and ok["device"].notna().any()
    if has_devices:
        figs.append(("Energy per inference vs accuracy, per device (estimates)", viz.energy_vs_accuracy(ok),
                     "Estimates from each device profile (roofline latency and energy model; see the formula "
                     "column in the data)."))
        figs.append(("Device fit (estimates)", viz.device_fit_table(ok), ""))

    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='note'>Written {time.strftime('%Y-%m-%d %H:%M:%S')} from {len(df)} result rows "
             f"({len(per_variant)} variant × runtime measurements). Columns ending in <code>_est</code> are "
             "<span class='est'>estimates</span> from a device profile; everything else was measured on "
             "the named runtime.</p>"]
    for task in tasks or [None]:
        rows = df if task is None else df[df["task"] == task]
        cards = decisions(rows, metric=metric, rate_hz=rate_hz, battery_mah=battery_mah)
        parts.append(f"<h2>Recommendation{f' for {html.escape(task)}' if task else ''}</h2>"
                     + "".join(c.html() for c in cards))
    for task in tasks or [None]:
        rows = ok if task is None else ok[ok["task"] == task]
        if rows.empty:
            continue
        front = pareto_table(rows, maximize=[metric])
        parts.append(f"<h2>Pareto-optimal variants{f' of {html.escape(task)}' if task else ''}</h2>")
        parts.append(f"<p class='note'>{metric} up; file size and measured p50 latency down; one front per "
                     "runtime.</p>" + _table(_front_table(front, rows, metric)))
    first = [True]

    def plot(fig: Any) -> str:  # plotly.js goes inline once, with the first figure of the page
        out = fig.to_html(full_html=False, include_plotlyjs="inline" if first[0] else False,
                          config={"displaylogo": False})
        first[0] = False
        return out

    if "trial" in df and df.attrs.get("objectives"):
        parts.append(_search_section(df, metric, plot))
    for name, fig, note in figs:
        parts.append(f"<h2>{html.escape(name)}</h2>" + (f"<p class='note'>{html.escape(note)}</p>" if note else ""))
        parts.append(plot(fig))
    if has_devices:
        cols = [c for c in ["device", "variant", "runtime", "latency_ms_est", "energy_mj_est", "energy_mj",
                            "power_w_est", "fits", "reason"] if c in ok and (c != "energy_mj" or ok[c].notna().any())]
        parts.append("<h2>Device estimates</h2><p class='note est'>Estimates, not measurements: "
                     + html.escape(str(ok["formula"].dropna().iloc[0]) if "formula" in ok and ok["formula"].notna().any()
                                   else "see workbench.hardware.roofline") + "</p>")
        parts.append(_table(ok[cols].sort_values(["device", "energy_mj_est"])))
        if "energy_note" in ok and ok["energy_note"].fillna("").str.len().any():
            note = ok["energy_note"].fillna("").loc[lambda s: s.str.len() > 0].iloc[0]
            parts.append(f"<p class='note'>Energy measured on this host (column energy_mj): {html.escape(note)}.</p>")
    if len(failed):
        cols = [c for c in ["variant", "runtime", "device", "error"] if c in failed]
        parts.append("<h2>Failed variants</h2>" + _table(failed.drop_duplicates(["variant", "runtime"])[cols]))
    parts.append("<h2>Configs and versions</h2>")
    cfg_cols = [c for c in ["variant", "prune", "structure", "bits", "recover", "lineage", "realization", "threads",
                            "batch"] if c in df]
    parts.append(_table(df.drop_duplicates(["variant"])[cfg_cols]))
    if "versions" in df and df["versions"].notna().any():
        versions = json.loads(df["versions"].dropna().iloc[0])
        parts.append("<p class='note'>" + ", ".join(f"{html.escape(k)} {html.escape(v)}"
                                                    for k, v in sorted(versions.items())) + "</p>")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")
    return atomic_write(Path(out), lambda tmp: tmp.write_text(page, encoding="utf-8"))


__all__ = ["write_report"]
