"""Race to idle against DVFS: average power against the inference rate, one line per strategy, crossings marked.

The frame is `workbench.hardware.duty.power_vs_rate`'s: one row per rate x strategy (``race-to-idle``, ``dvfs``,
``best``), every figure an estimate from the device profile (its title says which, and the formula is in the
hover text).

Example:
    >>> from workbench.hardware.duty import power_vs_rate
    >>> fig = power_strategy_figure(power_vs_rate(17.0, None, "stm32h7", [0.5, 1, 2, 5, 10]))
    >>> [t.name for t in fig.data], fig.layout.xaxis.type
    (['race-to-idle', 'dvfs', 'best (any clock x idle or sleep)'], 'log')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

STRATEGY_STYLE = {"race-to-idle": ("#d62728", "solid", "race-to-idle"), "dvfs": ("#1f77b4", "solid", "dvfs"),
                  "best": ("#7f7f7f", "dot", "best (any clock x idle or sleep)")}
"""Colour, dash and legend name of each strategy."""


def power_strategy_figure(df: pd.DataFrame, *, fig: "go.Figure | None" = None) -> "go.Figure":
    """Average power (est.) against rate for race-to-idle, DVFS and the best option; a dashed line at each rate
    where the winner between race-to-idle and DVFS changes.

    Args:
        df: a `power_vs_rate` frame (``rate_hz``, ``strategy``, ``average_power_w``, ``freq_mhz``, ``gap_state``,
            ``estimate``; ``attrs["crossings_hz"]``, ``attrs["device"]``).
        fig: a figure to draw into (its traces are replaced).

    Raises:
        WorkbenchError: an empty frame or one without those columns.
    """
    import plotly.graph_objects as go

    need = {"rate_hz", "strategy", "average_power_w", "freq_mhz", "gap_state", "estimate"}
    if df.empty or not need <= set(df.columns):
        raise WorkbenchError("power_strategy_figure needs a workbench.hardware.duty.power_vs_rate frame (columns "
                             f"{', '.join(sorted(need))}); got columns {list(df.columns)}.")
    device = df.attrs.get("device", "")
    fig = fig if fig is not None else go.Figure()
    fig.data = ()
    fig.layout.shapes, fig.layout.annotations = (), ()
    for name, (color, dash, label) in STRATEGY_STYLE.items():
        part = df[df.strategy == name]
        text = [f"{'one clock' if pd.isna(f) else f'{f:g} MHz'}, then {g}" for f, g in zip(part.freq_mhz,
                                                                                              part.gap_state)]
        fig.add_trace(go.Scatter(x=part.rate_hz, y=part.average_power_w * 1e3, name=label, mode="lines+markers",
                                 line={"color": color, "dash": dash}, text=text,
                                 hovertemplate="%{x:.3g} Hz: %{y:.4g} mW (est.)<br>%{text}<extra>" + label
                                               + "</extra>"))
    for r in df.attrs.get("crossings_hz", []):
        fig.add_vline(x=r, line={"dash": "dash", "color": "#444"},
                      annotation_text=f"crossing {r:.3g} Hz", annotation_position="top left")
    fig.update_layout(
        title=f"Race to idle or DVFS on {device}: average power (estimate from the {device} profile)",
        xaxis={"title": "inference rate (Hz)", "type": "log"},
        yaxis={"title": f"average power (est., mW) on {device}", "type": "log"},
        legend={"title": "strategy"}, template="plotly_white")
    fig.add_annotation(text=df.estimate.iloc[0].split(": ", 1)[-1][:160] + "...", xref="paper", yref="paper",
                       x=0, y=-0.22, showarrow=False, font={"size": 9}, align="left")
    return fig


__all__ = ["STRATEGY_STYLE", "power_strategy_figure"]
