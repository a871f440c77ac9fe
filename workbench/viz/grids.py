"""A metric over a grid of configurations: the prune ratio x bit-width heatmap, its pivot table, and the
per-layer sensitivity bars.

Example:
    >>> heatmap_table(df[df.structure.isin(["channel"]) | (df.prune == 0)], "accuracy").shape
    (2, 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.viz.frames import format_values, prepare
from workbench.viz.markers import group_values
from workbench.viz.style import (
    BITS_NAMES,
    LAYOUT,
    STRUCTURE_NAMES,
    STRUCTURE_SYMBOLS,
    axis_label,
    bits_value,
    color_of,
    figure_title,
    maximized,
    short_label,
)
from workbench.viz.update import figure_from, finish

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


def heatmap(
    df: pd.DataFrame,
    metric: str = "accuracy",
    *,
    structure: str | None = None,
    runtime: str | None = None,
    device: str | None = None,
    agg: str | None = None,
    fig: Any = None,
) -> "go.Figure":
    """A metric over prune ratio (columns) x weight bits (rows), one panel per pruning structure.

    Unpruned variants (ratio 0) appear in every structure's panel. Where several variants share a cell (e.g.
    with and without recovery), the best is shown (`agg` ``"max"`` for metrics, ``"min"`` for costs). Bright is
    better in every panel (the scale is reversed for costs).

    Args:
        df: results frame.
        metric: the column to show.
        structure: one structure only (``"unstructured"``, ``"channel"``, ``"2:4"``).
        runtime: the runtime (default ``onnxruntime`` or the first, named in the subtitle).
        device: the device for an estimate column.
        agg: ``"max"``, ``"min"``, ``"mean"`` or ``"median"`` for cells with several variants.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> fig = heatmap(df, "latency_ms_p50", structure="channel")
        >>> fig.data[0].z.shape == (df.bits.nunique(), df.prune.nunique())
        True
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    p = prepare(df, ["prune", "bits", metric], device=device, runtime=runtime, one_runtime=True,
                 numeric=[metric], what="heatmap")
    d = p.df
    up = maximized(metric)
    agg = agg or ("max" if up else "min")
    if agg not in ("max", "min", "mean", "median"):
        raise WorkbenchError(f"heatmap: agg must be 'max', 'min', 'mean' or 'median', got {agg!r}.")
    prune = pd.to_numeric(d["prune"], errors="coerce").fillna(0.0)
    struct = group_values(d, "structure") if "structure" in d else pd.Series("none", index=d.index)
    names = [s for s in pd.unique(struct) if s != "none"] or ["none"]
    if structure is not None:
        if structure not in names:
            raise WorkbenchError(f"heatmap: no variants pruned with structure {structure!r}; the frame has {names}.")
        names = [structure]
    names = sorted(names, key=lambda s: list(STRUCTURE_SYMBOLS).index(s) if s in STRUCTURE_SYMBOLS else 99)
    fig_new = make_subplots(rows=1, cols=len(names), shared_yaxes=True, horizontal_spacing=0.04,
                            subplot_titles=[f"{STRUCTURE_NAMES.get(s, s)} pruning" if s != "none" else "no pruning"
                                            for s in names])
    values = pd.to_numeric(d[metric], errors="coerce")
    lo, hi = float(values.min()), float(values.max())
    shared = 0
    for i, s in enumerate(names, start=1):
        rows = (struct == s) | (prune == 0)
        table = heatmap_table(d[rows.to_numpy()], metric, agg=agg)
        shared += int(table.attrs["shared_cells"])
        fig_new.add_trace(go.Heatmap(
            z=table.to_numpy(float), x=[f"{c:.0%}" for c in table.columns], y=[BITS_NAMES.get(b, f"{b}-bit")
                                                                              for b in table.index],
            coloraxis="coloraxis", texttemplate="%{z:.4g}", name=s, xgap=2, ygap=2,
            hovertemplate=f"pruned %{{x}}, %{{y}}<br>{short_label(metric)}: %{{z:.4g}}<extra>{s}</extra>"),
            row=1, col=i)
        fig_new.update_xaxes(title_text="fraction pruned", type="category", row=1, col=i)
    fig_new.update_yaxes(title_text="weight bits", type="category", autorange="reversed", row=1, col=1)
    notes = list(p.notes)
    if shared:
        notes.insert(0, f"cells with several variants show the {agg}")
    if p.runtime and not any(n.startswith("runtime") for n in notes):
        notes.append(f"on {p.runtime}")
    fig_new.update_layout(
        **{**LAYOUT, "margin": {**LAYOUT["margin"], "t": 110}}, title=figure_title(f"{short_label(metric).capitalize()} by pruning and bit-width", notes),
        coloraxis={"colorscale": "Viridis", "reversescale": not up, "cmin": lo, "cmax": hi,
                   "colorbar": {"title": {"text": axis_label(metric, p.device)}}})
    return finish(fig_new, fig)


def heatmap_table(df: pd.DataFrame, metric: str, *, agg: str = "max") -> pd.DataFrame:
    """The pivot behind a heatmap panel: weight bits (rows, widest first) x prune ratio (columns).

    Example:
        >>> heatmap_table(df[df.structure.isin(["channel"]) | (df.prune == 0)], "accuracy").to_numpy().tolist()
        [[1.0, 0.15625], [1.0, 0.15625]]
    """
    prune = pd.to_numeric(df["prune"], errors="coerce").fillna(0.0)
    bits = df["bits"].map(bits_value)
    values = pd.to_numeric(df[metric], errors="coerce")
    frame = pd.DataFrame({"bits": bits.to_numpy(), "prune": prune.to_numpy(), "v": values.to_numpy()})
    table = frame.pivot_table(index="bits", columns="prune", values="v", aggfunc=agg)
    table = table.sort_index(ascending=False).sort_index(axis=1)
    table.attrs["shared_cells"] = int((frame.groupby(["bits", "prune"]).size() > 1).sum())
    return table


# ------------------------------------------------------------------------------------------ sensitivity


def sensitivity_bars(sens: pd.DataFrame, *, top: int | None = None, fig: Any = None) -> "go.Figure":
    """Bars of the metric's drop when one layer at a time is quantised or pruned (`workbench.sensitivity`).

    One bar per layer and level; quantisation levels use the bit-width colours of every other figure. Tall bars
    are the layers to keep at higher precision (or out of pruning).

    Args:
        sens: the frame `workbench.sensitivity(task, kind, levels)` returns.
        top: only the `top` layers with the largest drop.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> sens = pd.DataFrame({"layer": ["conv1", "conv1"], "level": [4, 2], "drop": [0.01, 0.2],
        ...                      "kind": "quantize"})         # as workbench.sensitivity(task, "quantize", [4, 2])
        >>> [t.name for t in sensitivity_bars(sens, top=10).data]
        ['4-bit', '2-bit']
    """
    import plotly.graph_objects as go

    p = prepare(sens, ["layer", "level", "drop"], numeric=["drop"], what="sensitivity_bars")
    d = p.df
    kind = str(d["kind"].iloc[0]) if "kind" in d else "quantize"
    metric = str(d["metric"].iloc[0]) if "metric" in d else "metric"
    layers = list(pd.unique(d["layer"]))
    if top is not None:
        worst = d.groupby("layer", sort=False)["drop"].max().sort_values(ascending=False)
        keep = set(worst.index[: int(top)])
        layers = [n for n in layers if n in keep]
        d = d[d["layer"].isin(keep)]
    levels = sorted(pd.unique(d["level"]), reverse=kind == "quantize")
    shades = _shades(len(levels))
    traces = []
    for i, level in enumerate(levels):
        rows = d[d["level"] == level].set_index("layer").reindex(layers)
        if kind == "quantize":
            name, colour = BITS_NAMES.get(int(level), f"{int(level)}-bit"), color_of("bits", level)
        else:
            name, colour = f"{float(level):.0%} of weights pruned", shades[i]
        extra = "" if "value" not in rows else (
            "<br>" + metric + ": " + format_values(rows["value"], ".4f") + (
                " (type " + rows["type"].astype(str) + ", " + format_values(rows["params"], ",.0f") + " weights)"
                if "type" in rows and "params" in rows else ""))
        traces.append(go.Bar(x=layers, y=rows["drop"].to_numpy(float), name=name, marker={"color": colour},
                             hovertext=("<b>" + pd.Series(layers, index=rows.index) + "</b>" + extra).to_numpy(),
                             hovertemplate="%{hovertext}<br>drop: %{y:.4f}<extra>" + name + "</extra>"))
    verb = "quantised" if kind == "quantize" else "pruned"
    notes = list(p.notes)
    if "baseline" in d:
        notes.insert(0, f"{metric} of the unmodified model: {float(d['baseline'].iloc[0]):.4f}")
    layout = {"title": figure_title(f"Drop in {metric} when one layer at a time is {verb}", notes), "barmode": "group",
              "xaxis": {"title": {"text": "layer (in model order)"}, "type": "category"},
              "yaxis": {"title": {"text": f"drop in {metric} (measured; higher is worse)"}}}
    return figure_from(traces, layout, fig)


def _shades(n: int) -> list[str]:
    import plotly.colors as pc

    if n <= 1:
        return ["#7B4173"]
    return pc.sample_colorscale("Purples", [0.35 + 0.6 * i / (n - 1) for i in range(n)])


__all__ = ["heatmap", "heatmap_table", "sensitivity_bars"]
