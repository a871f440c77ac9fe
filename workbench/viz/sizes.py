"""The size of each variant: file, zipped file, Huffman-coded (Deep Compression) and the weights at their bit-width."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.viz.frames import hovertext, prepare
from workbench.viz.style import OTHER_COLOR, color_of, figure_title
from workbench.viz.update import figure_from

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go


def size_breakdown(df: pd.DataFrame, *, runtime: str | None = None, fig: Any = None) -> "go.Figure":
    """File size, zipped (deflate) size and Huffman-coded size per variant, bars coloured by bit-width; diamonds
    mark the weights at their bit-width (computed), which is what a runtime that packs the bits would store.

    Unstructured sparsity shows here as a zipped bar much shorter than its file bar: the zeros compress, the
    file does not shrink. The Huffman-coded bar (``size_coded_bytes``, Deep Compression's last stage, measured
    by `workbench.measurement.coding`) is drawn where the frame has it (a store written before that column has
    none: the bar is left out), with a tick at its entropy bound (``size_entropy_bytes``).

    Args:
        df: results frame.
        runtime: whose artefact to show (default ``onnxruntime`` or the first, named in the subtitle).
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> [t.name for t in size_breakdown(df, runtime="onnxruntime").data]  # df: a store without coded sizes
        ['file (measured)', 'zipped, deflate (measured)', 'weights at their bit-width (computed)']
        >>> coded = df.assign(size_coded_bytes=df["size_deflated_bytes"] // 2, size_entropy_bytes=1000)
        >>> [t.name for t in size_breakdown(coded, runtime="onnxruntime").data][2:4]
        ['Huffman-coded (measured)', 'entropy bound (computed)']
    """
    import plotly.graph_objects as go

    p = prepare(df, ["variant", "size_bytes", "size_deflated_bytes"], runtime=runtime, one_runtime=True,
                 numeric=["size_bytes"], what="size_breakdown")
    d = p.df.drop_duplicates(subset=["variant"]).sort_values("size_bytes", ascending=False, kind="stable")
    names = d["variant"].astype(str).to_numpy()
    colours = [color_of("bits", b) for b in d["bits"]] if "bits" in d else [OTHER_COLOR] * len(d)
    hover = hovertext(d)
    traces = [
        go.Bar(x=names, y=pd.to_numeric(d["size_bytes"]).to_numpy(float), name="file (measured)",
               marker={"color": colours}, hovertext=hover, hovertemplate="%{hovertext}<extra>file</extra>"),
        go.Bar(x=names, y=pd.to_numeric(d["size_deflated_bytes"], errors="coerce").to_numpy(float),
               name="zipped, deflate (measured)", hovertext=hover,
               marker={"color": colours, "pattern": {"shape": "/", "fgcolor": "#FFFFFF"}, "opacity": 0.75},
               hovertemplate="%{hovertext}<extra>zipped</extra>"),
    ]
    coded = pd.to_numeric(d["size_coded_bytes"], errors="coerce") if "size_coded_bytes" in d else None
    has_coded = coded is not None and bool(coded.notna().any())
    if has_coded:
        traces.append(go.Bar(x=names, y=coded.to_numpy(float), name="Huffman-coded (measured)", hovertext=hover,
                             marker={"color": colours, "pattern": {"shape": "x", "fgcolor": "#FFFFFF"},
                                     "opacity": 0.55},
                             hovertemplate="%{hovertext}<extra>Huffman-coded</extra>"))
        if "size_entropy_bytes" in d:
            traces.append(go.Scatter(x=names, y=pd.to_numeric(d["size_entropy_bytes"], errors="coerce").to_numpy(float),
                                     mode="markers", name="entropy bound (computed)",
                                     marker={"symbol": "line-ew-open", "size": 16, "color": "#222222"},
                                     hovertemplate="entropy bound: %{y:,.0f} bytes<extra></extra>"))
    if "weight_bytes" in d:
        traces.append(go.Scatter(x=names, y=pd.to_numeric(d["weight_bytes"], errors="coerce").to_numpy(float),
                                 mode="markers", name="weights at their bit-width (computed)",
                                 marker={"symbol": "diamond", "size": 11, "color": "#222222"},
                                 hovertemplate="weights: %{y:,.0f} bytes<extra></extra>"))
    notes = ["bar colour: weight bits", "hatched: zipped"] + (["crossed: Huffman-coded"] if has_coded else [])
    notes += p.notes
    if p.runtime and not any(n.startswith("runtime") for n in notes):
        notes.append(f"{p.runtime} artefacts")
    layout = {"title": figure_title("Size of each variant: file, zipped and coded", notes), "barmode": "group",
              "xaxis": {"title": {"text": "variant"}, "type": "category"},
              "yaxis": {"title": {"text": "size (bytes)"}}}
    return figure_from(traces, layout, fig)


__all__ = ["size_breakdown"]
