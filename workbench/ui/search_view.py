"""What `SweepPanel` shows while a search runs: each finished trial as a point, the current front, and one line of
plain words ("Trial 7 of 20: q8 (stored) — best feasible so far: channel-0.50+q8, accuracy 87.0 %, 0.05 ms").

The points are the trials `workbench.search` reports to its ``on_trial`` callback (`trial_points`), or, for a
search that was already finished in the store, the rows of its frame (`frame_points`).

Example:
    >>> log = [{"trial": 0, "variant": "baseline", "feasible": True, "cached": False, "error": None,
    ...         "row": {"accuracy": 0.99, "latency_ms_p50": 0.068}},
    ...        {"trial": 1, "variant": "q8", "feasible": True, "cached": True, "error": None,
    ...         "row": {"accuracy": 0.98, "latency_ms_p50": 0.05}}]
    >>> p = trial_points(log, "latency_ms_p50", "accuracy")
    >>> trial_words(p, total=20, x="latency_ms_p50", metric="accuracy")
    'Trial 2 of 20: q8 (stored) — best feasible so far: baseline, accuracy 99.0 %, 0.068 ms'
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

COLUMNS = ("trial", "variant", "x", "y", "feasible", "cached", "error")
FEASIBLE_COLOR = "#4C78A8"
INFEASIBLE_COLOR = "#BAB0AC"
FRONT_COLOR = "#D62728"


def trial_points(log: Iterable[Mapping[str, Any]], x: str, metric: str) -> pd.DataFrame:
    """One row per finished trial (``on_trial`` dicts, in the order they came): `COLUMNS`, x and y read from
    each trial's results row."""
    rows = []
    for t in log:
        row = t.get("row") or {}
        rows.append({"trial": int(t["trial"]), "variant": str(t.get("variant")), "x": row.get(x),
                     "y": row.get(metric), "feasible": bool(t.get("feasible")), "cached": bool(t.get("cached")),
                     "error": t.get("error") or None})
    return _numeric(pd.DataFrame(rows, columns=list(COLUMNS)))


def frame_points(df: pd.DataFrame, x: str, metric: str) -> pd.DataFrame:
    """The trials of a finished search's frame (one per variant, on the device it judged), as `trial_points`."""
    from workbench.sweeps.frame import error_mask
    from workbench.viz.search import objective_rows

    rows = objective_rows(df).sort_values("trial", kind="stable")
    errors = error_mask(rows)
    out = pd.DataFrame({"trial": rows["trial"].astype(int), "variant": rows["variant"].astype(str),
                        "x": rows[x] if x in rows else np.nan, "y": rows[metric] if metric in rows else np.nan,
                        "feasible": rows["feasible"].astype(bool) if "feasible" in rows else ~errors,
                        "cached": False, "error": rows["error"].where(errors, None) if "error" in rows else None})
    return _numeric(out.reset_index(drop=True))


def _numeric(p: pd.DataFrame) -> pd.DataFrame:
    p["x"] = pd.to_numeric(p["x"], errors="coerce").astype(float)
    p["y"] = pd.to_numeric(p["y"], errors="coerce").astype(float)
    return p


def lower_is_better(metric: str) -> bool:
    from workbench.sweeps.frame import LOWER_IS_BETTER

    return metric in LOWER_IS_BETTER


def plottable(p: pd.DataFrame) -> pd.Series:
    return np.isfinite(p["x"]) & np.isfinite(p["y"]) & p["error"].isna()


def front_of(p: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The feasible trials no other feasible trial beats on both axes (x smaller, the metric better), by x."""
    from workbench.viz.tradeoffs import pareto_mask

    ok = p[plottable(p) & p["feasible"]].drop_duplicates("variant")
    if ok.empty:
        return ok
    mask = pareto_mask(ok[["x", "y"]].to_numpy(float), [False, not lower_is_better(metric)])
    return ok[mask].sort_values("x")


def best_of(p: pd.DataFrame, metric: str) -> pd.Series | None:
    """The feasible trial with the best metric (ties: the smaller x), or None."""
    ok = p[plottable(p) & p["feasible"]]
    if ok.empty:
        return None
    ok = ok.sort_values(["y", "x"], ascending=[lower_is_better(metric), True], kind="stable")
    return ok.iloc[0]


def cost_words(value: Any, column: str) -> str:
    """The chart's x value in the unit a person reads it in: ``"0.05 ms"``, ``"94 KB"``, ``"0.40 mJ"``."""
    from workbench.ui.base import fmt
    from workbench.viz.words import energy_words, latency_words, size_words

    if column.startswith("latency"):
        return latency_words(value)
    if column.endswith("bytes"):
        return size_words(value)
    if column.startswith("energy"):
        return energy_words(value)
    if column == "macs":
        return f"{fmt(value, ',.0f')} multiply-accumulates"
    return fmt(value)


def best_words(p: pd.DataFrame, *, x: str, metric: str, so_far: bool = True) -> str:
    """``"best feasible so far: q8, accuracy 98.0 %, 0.05 ms"`` (or that none meets the constraints yet)."""
    from workbench.viz.words import metric_name, value_words

    best = best_of(p, metric)
    if best is None:
        return "no variant meets the constraints" + (" yet" if so_far else "")
    return (f"best feasible{' so far' if so_far else ''}: {best['variant']}, {metric_name(metric)} "
            f"{value_words(best['y'], metric)}, {cost_words(best['x'], x)}")


def trial_words(p: pd.DataFrame, *, total: int, x: str, metric: str) -> str:
    """The status line after the last trial of `p`: its number of `total`, its variant (``(stored)``: read
    from the results store, not measured again; failed or missing the constraints), and the best so far."""
    last = p.iloc[-1]
    count = min(total, max(len(p), int(last["trial"]) + 1))
    failed = bool(pd.notna(last["error"]))
    notes = [n for n, on in (("stored", last["cached"]), ("failed", failed),
                             ("misses the constraints", not failed and not last["feasible"])) if on]
    head = f"Trial {count} of {total}: {last['variant']}" + (f" ({', '.join(notes)})" if notes else "")
    return f"{head} — {best_words(p, x=x, metric=metric)}"


def done_words(df: pd.DataFrame, p: pd.DataFrame, log: list[Mapping[str, Any]], *, x: str, metric: str) -> str:
    """The status line once a search returned: trials, how many were measured or read from the store, the best."""
    trials = int(df.attrs.get("trials", len(p)))
    stored = sum(bool(t.get("cached")) for t in log)
    ran = len(log) - stored
    if not log:
        how = "all read from the store: this search had finished before"
    else:
        how = f"{ran} measured, {stored} read from the store" + (
            f", {trials - len(log)} from an earlier run" if trials > len(log) else "")
    variants = df["variant"].nunique() if "variant" in df else 0
    return (f"Done: {trials} trials ({how}), {variants} different variants — "
            + best_words(p, x=x, metric=metric, so_far=False))


def search_figure(p: pd.DataFrame, *, x: str, metric: str, device: str | None = None, fig: Any = None) -> Any:
    """The trials so far: feasible ones filled, those that miss a constraint hollow and grey, and the current
    front (feasible trials nothing beats on both axes) as a line with markers. Updates `fig` in place."""
    import plotly.graph_objects as go

    from workbench.viz import axis_label
    from workbench.viz.style import figure_title
    from workbench.viz.update import figure_from

    shown = p[plottable(p)]
    hover = [html.escape(f"trial {int(r.trial) + 1}: {r.variant}{' (stored)' if r.cached else ''}")
             + f"<br>{html.escape(metric)}: {r.y:.4g}<br>{html.escape(cost_words(r.x, x))}"
             + ("" if r.feasible else "<br>misses the constraints") for r in shown.itertuples()]
    hover = np.array(hover, dtype=object)
    good = shown["feasible"].to_numpy(bool)
    front = front_of(p, metric)
    common = {"mode": "markers", "hovertemplate": "%{hovertext}<extra></extra>"}
    traces = [
        go.Scatter(x=shown["x"][good], y=shown["y"][good], name="meets the constraints", hovertext=hover[good],
                   marker={"size": 10, "color": FEASIBLE_COLOR, "symbol": "circle"}, **common),
        go.Scatter(x=shown["x"][~good], y=shown["y"][~good], name="misses a constraint", hovertext=hover[~good],
                   marker={"size": 10, "color": INFEASIBLE_COLOR, "symbol": "circle-open",
                           "line": {"width": 2, "color": INFEASIBLE_COLOR}}, **common),
        go.Scatter(x=front["x"], y=front["y"], mode="lines+markers", name="current front", hoverinfo="skip",
                   line={"shape": "hv", "color": FRONT_COLOR, "width": 2},
                   marker={"size": 13, "symbol": "circle-open", "color": FRONT_COLOR, "line": {"width": 2}}),
    ]
    n = int(p["trial"].nunique()) if len(p) else 0
    notes = [f"{n} trial{'s' if n != 1 else ''} so far", "red line: the best trade-offs found so far",
             "hollow grey: misses a constraint"]
    layout = {"title": figure_title(f"Search: {metric} against {axis_label(x, device).split(' (')[0]}", notes),
              "xaxis": {"title": {"text": axis_label(x, device)}},
              "yaxis": {"title": {"text": axis_label(metric, device)}}, "showlegend": True}
    return figure_from(traces, layout, fig)


__all__ = ["best_of", "best_words", "cost_words", "done_words", "frame_points", "front_of", "search_figure",
           "trial_points", "trial_words"]
