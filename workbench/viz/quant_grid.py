"""Weights snapped to the b-bit grid: the float distribution, the grid's levels and the rounding error.

The numbers come from the workbench's own quantiser, `workbench.compression.quantize.fake_quantize` (what
`Quantize(bits)` applies to every Conv and Linear weight): the snapped values are its output, and the grid is what
it makes of a dense ramp over the same range (so the levels need no second copy of its arithmetic). Symmetric
grids (the default) have ``2**bits - 1`` levels, ``-(2**(b-1) - 1) .. 2**(b-1) - 1`` times the step, zero exact;
asymmetric ones ``2**bits`` levels with a zero point.

Example:
    >>> t = quantization_table(task.model, (8, 4, 2), layer="classifier")
    >>> list(t["levels"]), bool((t["max_abs_error"] <= t["step"] / 2).all())
    ([255, 15, 3], True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.viz.style import BITS_NAMES, LAYOUT, color_of, figure_title
from workbench.viz.update import finish

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

FLOAT_COLOR = "#9E9E9E"
"""Bars of the float weights (the snapped ones take the bit-width's colour, `BITS_COLORS`)."""
BINS = 61
"""Histogram bins over the grid's range (odd, so that a bin is centred on 0, a level of every symmetric grid)."""


@dataclass(frozen=True)
class Snapped:
    """One bit-width's grid for one weight slice: the float values, what the quantiser made of them, the levels."""

    bits: int
    weights: np.ndarray
    snapped: np.ndarray
    levels: np.ndarray

    @property
    def error(self) -> np.ndarray:
        """snapped − float, per weight."""
        return self.snapped - self.weights

    @property
    def step(self) -> float:
        """The distance between neighbouring levels (the scale); 0 for a grid of one level."""
        return float(np.diff(self.levels).min()) if len(self.levels) > 1 else 0.0


def weight_slice(weights: Any, *, layer: str | None = None, channel: int | None = 0) -> tuple[Any, str]:
    """(the float weight tensor, a description) from a tensor / array, or from a model and a layer name."""
    import torch

    module = _module_of(weights)
    if module is not None:
        names = [n for n, m in module.named_modules() if n and isinstance(getattr(m, "weight", None), torch.Tensor)]
        if layer is None or layer not in names:
            got = "no layer" if layer is None else f"layer={layer!r}, which it does not have"
            few = [n for n in names if module.get_submodule(n).weight.ndim >= 2] or names  # Conv, Linear, ...
            raise WorkbenchError(f"quantization_grid: a model needs the layer whose weights to show; got {got}. "
                                 f"Layers Quantize rounds: {', '.join(few[:16])}{', ...' if len(few) > 16 else ''}.")
        w, what = module.get_submodule(layer).weight, layer
    else:
        if layer is not None:
            raise WorkbenchError("quantization_grid: layer= names a layer of a model; pass the model, not a tensor.")
        try:
            w, what = torch.as_tensor(np.asarray(weights, dtype=np.float32)), "weights"
        except (TypeError, ValueError) as e:
            raise WorkbenchError(f"quantization_grid takes a weight tensor or array, or a model and a layer name; "
                                 f"got {type(weights).__name__} ({e}).") from None
    w = w.detach().to(torch.float32)
    if w.numel() == 0:
        raise WorkbenchError(f"quantization_grid: {what} holds no weights.")
    if channel is not None and w.ndim >= 2:
        if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < w.shape[0]:
            raise WorkbenchError(f"quantization_grid: channel must be an output channel of {what}, 0 to "
                                 f"{w.shape[0] - 1} (or None for the whole tensor), got {channel!r}.")
    return w, what


def _module_of(obj: Any) -> Any:
    """The torch module of a Task, a ModelHandle or an nn.Module (None for anything else)."""
    import torch

    for candidate in (obj, getattr(obj, "module", None), getattr(getattr(obj, "model", None), "module", None)):
        if isinstance(candidate, torch.nn.Module):
            return candidate
    return None


def snap(w: Any, bits: int, *, channel: int | None = 0, symmetric: bool = True) -> Snapped:
    """Snap `w` (a float torch tensor) to the b-bit grid with `fake_quantize` and find the grid's levels.

    `channel` an int: that output channel (index along axis 0) on its own grid, as ``Quantize(bits)`` does
    (per-channel); None, or a 1-D `w`: the whole tensor on one grid (``granularity="tensor"``).
    """
    import torch

    from workbench.compression.quantize import Quantize, fake_quantize

    Quantize(bits, symmetric=symmetric)  # validates bits (2..8) as the config would
    if channel is None or w.ndim < 2:
        row = w.reshape(-1)
        snapped = fake_quantize(row, bits, granularity="tensor", symmetric=symmetric)
    else:
        row = w[channel].reshape(-1)
        snapped = fake_quantize(w, bits, granularity="channel", symmetric=symmetric)[channel].reshape(-1)
    # The grid: what the quantiser makes of a ramp with the same range (the same scale and zero point), dense
    # enough (step <= scale / 4) to land in every rounding bin. (Asymmetric: should the top of the range round to a
    # tie, the top code is out of reach of any weight in the range and is not listed.)
    if symmetric:
        lo, hi = -row.abs().max(), row.abs().max()
    else:
        lo, hi = row.min().clamp(max=0), row.max().clamp(min=0)
    ramp = torch.linspace(float(lo), float(hi), 4 * 2**bits + 1)
    levels = fake_quantize(ramp, bits, granularity="tensor", symmetric=symmetric).unique()
    return Snapped(bits, row.numpy().astype(np.float64), snapped.numpy().astype(np.float64),
                   np.sort(levels.numpy().astype(np.float64)))


def _snaps(weights: Any, bits: Any, layer: str | None, channel: int | None,
           symmetric: bool) -> tuple[list[Snapped], str]:
    widths = [bits] if np.ndim(bits) == 0 else list(bits)
    widths = [b.item() if isinstance(b, np.integer) else b for b in widths]
    if not widths:
        raise WorkbenchError("quantization_grid: give at least one bit-width, e.g. bits=(8, 4, 2).")
    w, what = weight_slice(weights, layer=layer, channel=channel)
    where = f"{what}, all {w.numel()} weights (one grid per tensor)" if channel is None or w.ndim < 2 else (
        f"{what}, output channel {channel} ({w[channel].numel()} weights, its own grid: per-channel)")
    return [snap(w, b, channel=channel, symmetric=symmetric) for b in widths], where


def quantization_table(weights: Any, bits: int | Sequence[int] = (8, 4, 2), *, layer: str | None = None,
                       channel: int | None = 0, symmetric: bool = True) -> pd.DataFrame:
    """Per bit-width: the grid's levels, its step, how many levels the weights use, and the rounding error.

    Arguments as `quantization_grid`. Columns: ``bits``, ``levels`` (the grid's size), ``levels_used``,
    ``step`` (distance between levels, the scale), ``max_abs_error``, ``rms_error``, ``weights`` (how many).

    Example:
        >>> t = quantization_table(np.array([-1.0, -0.2, 0.1, 0.5, 1.0]), 2)
        >>> int(t.levels[0]), float(t.step[0]), float(t.max_abs_error[0])   # levels -1, 0, 1; 0.5 rounds to 0
        (3, 1.0, 0.5)
    """
    snaps, _ = _snaps(weights, bits, layer, channel, symmetric)
    return pd.DataFrame([{"bits": s.bits, "levels": len(s.levels), "levels_used": len(np.unique(s.snapped)),
                          "step": s.step, "max_abs_error": float(np.abs(s.error).max()),
                          "rms_error": float(np.sqrt(np.mean(s.error ** 2))), "weights": len(s.weights)}
                         for s in snaps])


def quantization_grid(weights: Any, bits: int | Sequence[int] = (8, 4, 2), *, layer: str | None = None,
                      channel: int | None = 0, symmetric: bool = True, fig: Any = None) -> "go.Figure":
    """Weights snapped to the b-bit grid, one row of panels per bit-width.

    Left: the histogram of the float weights (grey) and, with the same bins, of the snapped weights (coloured):
    rounding piles the weights onto the grid's levels (ticks on the axis). Right: the rounding error (snapped − float) of every weight
    against its value, a saw-tooth inside ± half a step (dotted lines).

    Args:
        weights: a weight tensor or array, or a model (`Task`, `ModelHandle`, `nn.Module`) with `layer`.
        bits: one bit-width or several (2..8).
        layer: the layer whose ``weight`` to show, when `weights` is a model.
        channel: the output channel to show on its own grid (per-channel, `Quantize`'s default); None: the whole
            tensor on one grid (per-tensor).
        symmetric: symmetric grid (zero point 0, as `Quantize` by default) or asymmetric (with a zero point).
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> fig = quantization_grid(task, (8, 4, 2), layer="classifier")
        >>> [len(t.x) for t in fig.data if t.name.startswith("grid")]
        [255, 15, 3]
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    snaps, where = _snaps(weights, bits, layer, channel, symmetric)
    rows = len(snaps)
    new = make_subplots(rows=rows, cols=2, shared_xaxes=True, column_widths=[0.6, 0.4], horizontal_spacing=0.08,
                        vertical_spacing=0.1 / max(rows - 1, 1),
                        subplot_titles=[t for s in snaps for t in (
                            f"{BITS_NAMES.get(s.bits, f'{s.bits}-bit')}: {len(s.levels)} levels, step {s.step:.3g}",
                            f"rounding error, at most {np.abs(s.error).max():.3g}")])
    span = [float(min(s.levels.min() for s in snaps)), float(max(s.levels.max() for s in snaps))]
    for r, s in enumerate(snaps, start=1):
        colour, first = color_of("bits", s.bits), r == 1
        counts, edges = np.histogram(s.weights, bins=BINS, range=span if span[1] > span[0] else None)
        new.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name="float weights",
                             marker={"color": FLOAT_COLOR}, opacity=0.55, legendgroup="float", showlegend=first,
                             hovertemplate="%{y} float weights near %{x:.3g}<extra></extra>"), row=r, col=1)
        snapped, _ = np.histogram(s.snapped, bins=edges)
        new.add_trace(go.Bar(x=(edges[:-1] + edges[1:]) / 2, y=snapped, width=np.diff(edges),
                             name=f"snapped ({s.bits}-bit)", marker={"color": colour}, opacity=0.75,
                             hovertemplate="%{y} weights snapped near %{x:.3g}<extra></extra>"), row=r, col=1)
        new.add_trace(go.Scatter(x=s.levels, y=np.zeros(len(s.levels)), mode="markers", name=f"grid ({s.bits}-bit)",
                                 marker={"symbol": "line-ns-open", "size": 9, "color": colour},
                                 hovertemplate="level %{x:.4g}<extra></extra>", showlegend=False), row=r, col=1)
        new.add_trace(go.Scatter(x=s.weights, y=s.error, mode="markers", name=f"error ({s.bits}-bit)",
                                 marker={"color": colour, "size": 4, "opacity": 0.6}, showlegend=False,
                                 hovertemplate="float %{x:.4g}: error %{y:.3g}<extra></extra>"), row=r, col=2)
        for half in (s.step / 2, -s.step / 2):
            new.add_hline(y=half, line={"color": "#777777", "dash": "dot", "width": 1}, row=r, col=2)
        new.update_yaxes(title_text="weights", row=r, col=1)
        new.update_yaxes(title_text="snapped − float", exponentformat="e", row=r, col=2)
    new.update_xaxes(title_text="weight value", row=rows)
    kind = "symmetric" if symmetric else "asymmetric"
    new.update_layout(**LAYOUT, barmode="overlay", height=max(340, 60 + 230 * rows), bargap=0,
                      title=figure_title("Weights on the b-bit grid", [where, f"{kind}, round to nearest",
                                                                       "ticks: grid levels"]))
    new.update_layout(margin={"t": 110})
    return finish(new, fig)


__all__ = ["FLOAT_COLOR", "Snapped", "quantization_grid", "quantization_table", "snap", "weight_slice"]
