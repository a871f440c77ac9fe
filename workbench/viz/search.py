"""How a search progressed: the hypervolume its variants dominate after each trial.

`search_history` reads a `workbench.search` frame (its ``trial`` and ``feasible`` columns, ``attrs["objectives"]``)
into `workbench.searches.hypervolume_history`, on the rows of the device the search judged; `hypervolume_chart`
draws that history as a step line that rises when a trial finds a better trade-off and stays flat otherwise.

Example:
    >>> h = pd.DataFrame({"trial": [0, 1, 3], "evaluations": [1, 2, 3], "hypervolume": [0.09, 0.17, 0.52]})
    >>> fig = hypervolume_chart(h, trials=[0, 1, 2, 3])
    >>> fig.data[0].x, fig.data[0].y
    ((1, 2, 3, 4), (0.09, 0.17, 0.17, 0.52))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd

from workbench.viz.style import PALETTE, figure_title
from workbench.viz.update import figure_from

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

HYPERVOLUME_TITLE = "Hypervolume over trials"
HYPERVOLUME_MEANING = "the share of the trade-off space the variants found so far dominate; higher is better"
"""One phrase for a chart title; the report says it at more length."""


def objective_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a search judged its objectives on: those of ``attrs["device"]`` (the device-free rows without
    one), as `workbench.search` marks its front."""
    if "device" not in df:
        return df
    device = df.attrs.get("device")
    return df[df["device"] == device] if device is not None else df[df["device"].isna()]


def search_history(df: pd.DataFrame) -> pd.DataFrame:
    """`hypervolume_history` of a `workbench.search` frame on its own objectives and device: one row per trial
    that first asked for a variant (``trial``, ``evaluations``, ``hypervolume``); empty when no row has a value
    for every objective.

    Example:
        >>> d = pd.DataFrame({"trial": [0, 1, 2], "accuracy": [0.5, 0.9, 0.8], "size_bytes": [10, 100, 50],
        ...                   "feasible": True})
        >>> d.attrs["objectives"] = {"accuracy": "max", "size_bytes": "min"}
        >>> search_history(d)["hypervolume"].round(3).tolist()
        [0.091, 0.174, 0.518]
    """
    from workbench.core.errors import WorkbenchError
    from workbench.searches import hypervolume_history

    objectives = df.attrs.get("objectives")
    if not objectives or "trial" not in df:
        raise WorkbenchError("search_history takes the frame workbench.search returns (a 'trial' column and "
                             "attrs['objectives'])")
    rows = objective_rows(df)
    values = rows[[c for c in objectives if c in rows]].apply(pd.to_numeric, errors="coerce")
    if len(values.columns) < len(objectives) or not values.notna().all(axis=1).any():
        return pd.DataFrame({"trial": pd.Series(dtype=int), "evaluations": pd.Series(dtype=int),
                             "hypervolume": pd.Series(dtype=float)})
    return hypervolume_history(rows, objectives)


def per_trial(history: pd.DataFrame, trials: Iterable[int]) -> pd.DataFrame:
    """`history` on every trial number in `trials`: a trial that found no new variant keeps the hypervolume
    before it (0 before the first)."""
    numbers = sorted({int(t) for t in trials} | {int(t) for t in history["trial"]})
    h = history.assign(trial=history["trial"].astype(int)).set_index("trial")
    out = h.reindex(numbers).ffill().fillna({"hypervolume": 0.0, "evaluations": 0})
    return out.rename_axis("trial").reset_index()


def hypervolume_chart(history: pd.DataFrame, *, trials: Iterable[int] | None = None, title: str | None = None,
                      fig: Any = None) -> "go.Figure":
    """The hypervolume reached after each trial (`search_history` or `hypervolume_history` rows), 0..1.

    Args:
        history: rows with ``trial`` and ``hypervolume`` (and ``evaluations``: variants seen so far).
        trials: every trial number to draw a point at (a trial that repeated a variant adds no volume); default:
            the history's own trials, those that first asked for a variant.
        title: the figure title (default: what hypervolume means, in one phrase).
        fig: a `go.FigureWidget` to update in place.

    Returns:
        The figure (or `fig`, updated), one trace ``"hypervolume"``; x is the trial's number counted from 1.
    """
    import plotly.graph_objects as go

    h = per_trial(history, trials) if trials is not None else history.sort_values("trial")
    x = [int(t) + 1 for t in h["trial"]]
    seen = h["evaluations"].astype(int).tolist() if "evaluations" in h else [None] * len(h)
    hover = [f"after trial {t}: {v:.3f}" + (f" ({n} variant{'s' if n != 1 else ''} so far)" if n is not None
                                             else "") for t, v, n in zip(x, h["hypervolume"], seen)]
    trace = go.Scatter(x=x, y=[float(v) for v in h["hypervolume"]], mode="lines+markers", name="hypervolume",
                       line={"shape": "hv", "color": PALETTE["bits"][32], "width": 2}, marker={"size": 6},
                       hovertext=hover, hovertemplate="%{hovertext}<extra></extra>", showlegend=False)
    notes = [] if len(h) else ["no trial has a value for every objective yet"]
    layout = {"title": figure_title(title or f"{HYPERVOLUME_TITLE}: {HYPERVOLUME_MEANING}", notes),
              "xaxis": {"title": {"text": "trial (in the order the search ran them)"}, "dtick": 1 if len(h) <= 20
                        else None},
              "yaxis": {"title": {"text": "hypervolume (0 to 1)"}, "range": [0, 1.02]}, "height": 300}
    return figure_from([trace], layout, fig)


__all__ = ["HYPERVOLUME_MEANING", "HYPERVOLUME_TITLE", "hypervolume_chart", "objective_rows", "per_trial",
           "search_history"]
