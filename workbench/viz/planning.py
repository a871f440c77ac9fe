"""The figures of the deployment planners (`workbench.plan`): LLM memory, a multi-model schedule, a fleet plan and
over-the-air update sizes. Each takes the planner's table (and what the table does not hold) and returns a new
`go.Figure`; the planners call these and return ``(table, figure)``.

Example:
    >>> from workbench import plan
    >>> df, _ = plan.update_size(b"old weights " * 50, {"v2": b"new weights " * 50})
    >>> [t.name for t in update_size_figure(df, ["full", "deflated"]).data]
    ['full file', 'deflated']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Collection, Sequence

import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

GB = 1e9
UPDATE_NAMES = {"full": "full file", "deflated": "deflated", "delta": "bsdiff delta",
                "delta_deflated": "delta + deflate"}
"""The legend name of each update method of `update_size_figure`."""
UPDATE_COLORS = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c")
TIMELINE_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def llm_memory_figure(df: pd.DataFrame, hardware: Sequence[Sequence[Any]], *, usable: float,
                      gpus: Collection[str] = ()) -> "go.Figure":
    """Memory per bit-width (weights, KV cache, activations stacked) and a map of how many of each device it takes.

    Args:
        df: the `workbench.plan.llm_memory` table (``bits``, ``weight_gb``, ``kv_cache_gb``, ``activation_gb``,
            ``n_<device>`` per device (None: does not fit) and optionally ``fit_<device>``, the hover text). A
            device that cannot hold the model reads "does not fit" (red) instead of a count.
        hardware: per device, a sequence starting with its name and its memory in bytes, in map order.
        usable: the fraction of a device's memory the model may use.
        gpus: the devices that get a dotted "usable" line on the memory bars.

    Example:
        >>> from workbench import plan
        >>> df, fig = plan.llm_memory(**plan.PRESETS["Llama-2-7B"], bits=(16, 4), devices=[])
        >>> fig = llm_memory_figure(df, [("gpu-24gb", 24e9)], usable=0.9, gpus=["gpu-24gb"])
        >>> [t.name for t in fig.data][:3], fig.layout.title.text
        (['weights', 'KV cache', 'activations'], 'LLM memory plan')
    """
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = [f"{b}-bit" for b in df["bits"]]
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.14,
                        subplot_titles=("Memory per bit-width (GB)", "Devices needed"))
    for col, name, color in (("weight_gb", "weights", "#1f77b4"), ("kv_cache_gb", "KV cache", "#ff7f0e"),
                             ("activation_gb", "activations", "#2ca02c")):
        fig.add_trace(go.Bar(name=name, x=labels, y=df[col], marker_color=color,
                             hovertemplate="%{x}: %{y:.3g} GB<extra>" + name + "</extra>"), row=1, col=1)
    for name, mem, *_ in hardware:
        if name in gpus:
            fig.add_hline(y=mem * usable / GB, line_dash="dot", line_color="grey", row=1, col=1,
                          annotation_text=f"{name} usable", annotation_position="top left")
    names = [hw[0] for hw in hardware]
    counts = np.array([pd.to_numeric(df[f"n_{n}"], errors="coerce").astype("float64").to_numpy() for n in names],
                      dtype=float).reshape(len(names), len(df))
    fits = [[str(df[f"fit_{n}"].iloc[i]) if f"fit_{n}" in df else "" for i in range(len(df))] for n in names]
    z = np.log10(counts)
    zmax = max(2.0, float(np.nanmax(z)) if np.isfinite(z).any() else 2.0)
    text = [[f"{int(c):,}" if np.isfinite(c) else "does not fit" for c in row] for row in counts]
    hover = [[f"{fit[0].upper()}{fit[1:]}" if fit else f"{t} needed" for fit, t in zip(frow, trow)]
             for frow, trow in zip(fits, text)]
    fig.add_trace(go.Heatmap(z=np.where(np.isfinite(z), z, zmax), x=labels, y=names, text=text,
                             texttemplate="%{text}", customdata=hover, colorscale="RdYlGn_r", zmin=0, zmax=zmax,
                             showscale=False, hovertemplate="%{y} at %{x}: %{customdata}<extra></extra>"),
                  row=1, col=2)
    fig.update_layout(barmode="stack", title="LLM memory plan", legend_orientation="h", legend_y=-0.15,
                      height=max(420, 40 * len(names) + 160))
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    return fig


def schedule_figure(df: pd.DataFrame, workloads: Sequence[str], segments: Sequence[tuple[int, float, float]], *,
                    pick: int, policy: str, device: str, window_ms: float) -> "go.Figure":
    """Utilisation and average power per operating point, and the timeline of the picked point.

    Args:
        df: the `workbench.plan.schedule` table (``freq_mhz``, ``utilisation``, ``feasible``, ``breaks``,
            ``ll_bound``, ``avg_power_w``, ``chosen``; ``attrs["infeasible"]`` when no point is feasible).
        workloads: the workload names, in the order `segments` index them.
        segments: ``(workload index, start ms, end ms)`` of each execution slice in the timeline.
        pick: the row (operating point) whose timeline is drawn.
        policy: the scheduling policy of the timeline (``"edf"``, ``"rm"``, ``"fp"``).
        device: the device name (for the title).
        window_ms: the length of the timeline drawn.

    Example:
        >>> from workbench.plan import Workload, schedule
        >>> df, fig = schedule([Workload("vad", rate_hz=31, latency_ms=3.4)], "stm32h7")
        >>> fig.layout.title.text
        '1 workloads on stm32h7: chosen 200 MHz'
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    labels = [("nominal" if pd.isna(f) else f"{f:g} MHz") for f in df["freq_mhz"]]
    fig = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]], vertical_spacing=0.16,
                        subplot_titles=("Utilisation per operating point", "Average power (W)",
                                        f"Timeline at {labels[pick]} ({policy.upper()}), first {window_ms:.4g} ms"))
    colors = ["#2ca02c" if ok else "#d62728" for ok in df["feasible"]]
    fig.add_trace(go.Bar(x=labels, y=df["utilisation"], marker_color=colors, name="utilisation",
                         text=[f"{u:.2f}" for u in df["utilisation"]], showlegend=False,
                         hovertext=df["breaks"].where(df["breaks"] != "", "feasible")), row=1, col=1)
    fig.add_hline(y=1.0, line_dash="dash", line_color="black", row=1, col=1)
    fig.add_hline(y=float(df["ll_bound"].iloc[0]), line_dash="dot", line_color="grey", row=1, col=1,
                  annotation_text="RM bound", annotation_position="bottom right")
    fig.add_trace(go.Scatter(x=labels, y=df["avg_power_w"], mode="lines+markers", showlegend=False,
                             marker=dict(size=[16 if c else 8 for c in df["chosen"]], color=colors)), row=1, col=2)
    for i, name in enumerate(workloads):
        seg = [(s, e) for j, s, e in segments if j == i]
        fig.add_trace(go.Bar(orientation="h", y=[name] * len(seg), x=[e - s for s, e in seg],
                             base=[s for s, _ in seg], name=name,
                             marker_color=TIMELINE_COLORS[i % len(TIMELINE_COLORS)],
                             hovertemplate="%{base:.3f} ms + %{x:.3f} ms<extra>" + name + "</extra>"),
                      row=2, col=1)
    fig.update_xaxes(title_text="time (ms)", range=[0, window_ms], row=2, col=1)
    verdict = (f"chosen {labels[pick]}" if df["chosen"].any()
               else f"infeasible at every point: {df.attrs.get('infeasible', '')}")
    fig.update_layout(title=f"{len(workloads)} workloads on {device}: {verdict}", barmode="overlay", height=640,
                      legend_orientation="h", legend_y=-0.12)
    return fig


def fleet_figure(plan: pd.DataFrame, metric: str) -> "go.Figure":
    """Energy per day per device class, idle and inference stacked; the bar text names the chosen variant.

    Args:
        plan: the `workbench.plan.fleet_plan` table (``device_class``, ``status``, ``variant``, ``reason``,
            ``idle_kwh_day``, ``inference_kwh_day``, the metric; ``attrs`` with the fleet totals).
        metric: the metric column shown beside each variant.

    Example:
        >>> plan = pd.DataFrame({"device_class": ["cams"], "status": ["ok"], "variant": ["q8"], "accuracy": [0.97],
        ...                      "reason": [""], "idle_kwh_day": [1.2], "inference_kwh_day": [0.3]})
        >>> plan.attrs["fleet_total_kwh_day"] = 1.5
        >>> fleet_figure(plan, "accuracy").layout.title.text
        'Fleet energy per day: 1.5 kWh'
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    served = plan["status"] == "ok"
    fig.add_trace(go.Bar(name="idle", x=plan["device_class"], y=plan["idle_kwh_day"].where(served, 0),
                         marker_color="#c7c7c7"))
    text = [f"{v}<br>{metric} {a:.3g}" if ok else "no acceptable variant"
            for v, a, ok in zip(plan["variant"], plan[metric], served)]
    fig.add_trace(go.Bar(name="inference", x=plan["device_class"], y=plan["inference_kwh_day"].fillna(0),
                         marker_color="#1f77b4", text=text, textposition="outside",
                         hovertext=plan["reason"].where(~served, plan["variant"].astype(str))))
    total = plan.attrs.get("fleet_total_kwh_day", float("nan"))
    unserved = plan.attrs.get("unserved", [])
    title = f"Fleet energy per day: {total:.4g} kWh"
    if unserved:
        title += f" (no acceptable variant for: {', '.join(unserved)})"
    fig.update_layout(barmode="stack", title=title, yaxis_title="kWh per day", legend_orientation="h")
    return fig


def update_size_figure(df: pd.DataFrame, methods: Sequence[str]) -> "go.Figure":
    """The kilobytes to ship per update, one bar per method.

    Args:
        df: the `workbench.plan.update_size` table (``update`` and a ``<method>_bytes`` column per method).
        methods: the methods to draw, in order (`workbench.plan.updates.METHODS`), coloured by `UPDATE_COLORS`.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for m, color in zip(methods, UPDATE_COLORS):
        name = UPDATE_NAMES.get(m, m)
        fig.add_trace(go.Bar(name=name, x=df["update"], y=df[f"{m}_bytes"] / 1e3, marker_color=color,
                             hovertemplate="%{x}: %{y:.4g} kB<extra>" + name + "</extra>"))
    fig.update_layout(barmode="group", title="Bytes to ship per update", yaxis_title="kB",
                      legend_orientation="h")
    return fig


__all__ = ["TIMELINE_COLORS", "UPDATE_COLORS", "UPDATE_NAMES", "fleet_figure", "llm_memory_figure", "schedule_figure", "update_size_figure"]
