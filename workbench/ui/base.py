"""What every panel shares: an error area that never loses an exception, results loading, column choices.

A widget callback that raises is, by default, lost: ipywidgets logs it to the browser console (or nowhere in
Voilà). Every panel here routes its callbacks through `Panel.guard`, which shows the error in the panel itself
(a `WorkbenchError` as its plain message, anything else with its traceback folded away) and keeps it in
`Panel.last_error` for tests.
"""

from __future__ import annotations

import html
import math
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable

import ipywidgets as widgets
import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.sweeps.frame import metric_columns as metric_columns  # the results-frame contract, one owner;
from workbench.sweeps.frame import ok_rows as ok_rows  # re-exported for the panels
from workbench.sweeps.frame import primary_metric as primary_metric

# Columns that make sense on an axis, in the order the menus list them (the task's metrics come first).
AXIS_ORDER = (
    "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_est", "energy_mj_est", "energy_mj",
    "power_w_est", "battery_h_est", "size_bytes", "size_deflated_bytes", "size_coded_bytes", "weight_bytes", "peak_mem_bytes", "params_nonzero",
    "params", "macs", "bits_effective", "fidelity",
)
NOT_AXES = {"threads", "batch", "reps", "seconds", "created", "latency_ms_iqr", "bits", "prune", "recover",
            "power_w_at_rate_est", "latency_ms_mean", "latency_ms_p10"}


class Panel(widgets.VBox):
    """A VBox with an error area; subclasses build their controls and call `guard` on every callback."""

    def __init__(self, children: Iterable[widgets.Widget] = (), **kwargs: Any) -> None:
        self.errors = widgets.HTML(value="", layout=widgets.Layout(width="100%"))
        self.last_error: BaseException | None = None
        super().__init__(children=[*children, self.errors], **kwargs)

    def guard(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a callback so an exception is shown in the panel (and kept in `last_error`), never lost."""

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            try:
                out = fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - the point is to show every error, whatever its type
                self.show_error(e)
                return None
            self.clear_error()
            return out

        wrapped.__name__ = getattr(fn, "__name__", "callback")
        wrapped.__doc__ = getattr(fn, "__doc__", None)
        return wrapped

    def show_error(self, error: BaseException) -> None:
        """Show `error` in the panel's error area."""
        self.last_error = error
        self.errors.value = error_html(error)

    def clear_error(self) -> None:
        self.last_error = None
        if self.errors.value:
            self.errors.value = ""

    def figures(self) -> list[Any]:
        """The plotly `FigureWidget`s inside this panel (at any depth)."""
        from plotly.basewidget import BaseFigureWidget

        out, todo = [], list(self.children)
        while todo:
            w = todo.pop(0)
            if isinstance(w, BaseFigureWidget):
                out.append(w)
            todo.extend(getattr(w, "children", ()))
        return out

    def sync_figures(self) -> None:
        """Copy each figure's current traces and layout into the state a new view starts from.

        A `FigureWidget` sends later changes to its views as messages; a view created afterwards (Voilà fetches
        widget state only once the notebook has run) starts from the widget's *initial* state, unless that state
        is refreshed here. plotly does the same in `FigureWidget._repr_mimebundle_`, which is not called for a
        figure displayed inside a box.
        """
        from copy import deepcopy

        for fig in self.figures():
            fig._widget_layout = deepcopy(fig._layout_obj._props)
            fig._widget_data = deepcopy(fig._data)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self.sync_figures()
        return super()._repr_mimebundle_(**kwargs)


def error_html(error: BaseException) -> str:
    """A red box: a `WorkbenchError` says what to do, so only its message; others get the traceback too."""
    message = html.escape(str(error) or type(error).__name__).replace("\n", "<br>")
    box = ("<div class='wb-error' style='border-left:4px solid #D62728;background:#FDECEA;padding:6px 10px;"
           "margin:4px 0;font-family:sans-serif;font-size:13px'>")
    if isinstance(error, WorkbenchError):
        return f"{box}<b>Error:</b> {message}</div>"
    tb = html.escape("".join(traceback.format_exception(type(error), error, error.__traceback__)))
    return (f"{box}<b>{type(error).__name__}:</b> {message}<details><summary>traceback</summary>"
            f"<pre style='font-size:11px;white-space:pre-wrap'>{tb}</pre></details></div>")


def note_html(text: str, colour: str = "#4C78A8") -> str:
    return (f"<div style='border-left:4px solid {colour};padding:4px 10px;margin:4px 0;font-family:sans-serif;"
            f"font-size:13px'>{text}</div>")


# ------------------------------------------------------------------------------------------- results


def load_results(data: Any) -> pd.DataFrame:
    """A results frame from a DataFrame, a `ResultStore`, or a path (``.sqlite``/``.db``, ``.csv``, ``.parquet``).

    Example:
        >>> df.to_csv("results.csv", index=False)
        >>> len(load_results("results.csv")), len(load_results(df))
        (6, 6)
    """
    from workbench.sweeps import ResultStore

    if isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, ResultStore):
        df = data.to_frame()
    elif isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise WorkbenchError(f"results file {path} does not exist; run a sweep first (workbench sweep ... "
                                 "--store FILE) or pass a DataFrame.")
        if path.suffix == ".csv":
            df = pd.read_csv(path)
        elif path.suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            with ResultStore(path) as store:
                df = store.to_frame()
    else:
        raise WorkbenchError(f"expected sweep results (a DataFrame, a ResultStore or a results file path), got "
                             f"{type(data).__name__}.")
    if df.empty:
        raise WorkbenchError("the results hold no rows; run a sweep first (workbench.sweep(task, grid)).")
    if "variant" not in df:
        raise WorkbenchError("these are not sweep results: there is no 'variant' column.")
    return df.reset_index(drop=True)


def axis_columns(df: pd.DataFrame) -> list[str]:
    """Numeric columns worth an axis: the task metrics, then latency, estimates, size, ... (with values).

    Intervals (``accuracy_low`` / ``accuracy_high``, the latency percentiles' ``latency_ms_p10``) are error bars
    of the figure they bound, never axes of their own."""
    from workbench.core.intervals import interval_of

    metrics = metric_columns(df)
    known = [c for c in AXIS_ORDER if c in df]
    columns = set(df.columns)
    rest = [c for c in df.columns if c not in NOT_AXES and c not in known and c not in metrics
            and not c.startswith("baseline_") and not interval_of(c, columns) and pd.api.types.is_numeric_dtype(df[c])
            and not pd.api.types.is_bool_dtype(df[c])]
    out = []
    for c in [*metrics, *known, *rest]:
        vals = pd.to_numeric(df[c], errors="coerce")
        if np.isfinite(vals.to_numpy(float)).any():
            out.append(c)
    return list(dict.fromkeys(out))


def axis_options(columns: Iterable[str]) -> list[tuple[str, str]]:
    """Dropdown options: (plain words with units, column)."""
    from workbench.viz import axis_label

    return [(axis_label(c), c) for c in columns]


def present(df: pd.DataFrame, column: str) -> list[Any]:
    """The distinct non-missing values of a column, in order of appearance."""
    if column not in df:
        return []
    return [v for v in pd.unique(df[column]) if not _missing(v)]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def structure_of(df: pd.DataFrame) -> pd.Series:
    """Pruning structure per row, ``"none"`` for unpruned variants (as the figures' legends)."""
    s = df["structure"].map(lambda v: "none" if _missing(v) or v == "" else str(v)) if "structure" in df else \
        pd.Series("none", index=df.index)
    if "prune" in df:
        s = s.where(pd.to_numeric(df["prune"], errors="coerce").fillna(0) > 0, "none")
    return s


def bits_of(df: pd.DataFrame) -> pd.Series:
    return pd.to_numeric(df["bits"], errors="coerce").fillna(32).astype(int)


def fmt(value: Any, spec: str = ".4g") -> str:
    """A number for a table cell; '–' for missing."""
    if _missing(value):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.number)):
        return format(value, spec)
    return html.escape(str(value))


def table_html(rows: Iterable[tuple[str, str]], title: str | None = None) -> str:
    """A two-column HTML table of (label, already-escaped value)."""
    body = "".join(f"<tr><td style='padding:2px 12px 2px 0;color:#555'>{html.escape(k)}</td>"
                   f"<td style='padding:2px 0'>{v}</td></tr>" for k, v in rows)
    head = f"<div style='font-weight:600;margin:4px 0'>{html.escape(title)}</div>" if title else ""
    return f"<div style='font-family:sans-serif;font-size:13px'>{head}<table>{body}</table></div>"


def into(widget: Any, new: Any) -> Any:
    """Copy figure `new` into the on-screen `widget` in one `batch_update` (traces updated in place when their
    types and names match, replaced otherwise); returns `widget`. The one implementation is `viz.into`."""
    from workbench.viz import into as into

    return into(widget, new)


def row_by_key(data: pd.DataFrame, key: Any) -> pd.Series:
    """The results row whose ``key`` is `key` (the frame's index label where it has no ``key`` column), as a
    click on its point hands it over; a `WorkbenchError` when there is none."""
    rows = data[data["key"].astype(str) == str(key)] if "key" in data else data.loc[[int(key)]]
    if rows.empty:
        raise WorkbenchError(f"no result row with key {key!r}.")
    return rows.iloc[0]
