"""The roofline of a device profile with a model's layers on it: an estimate, drawn from the estimator's numbers.

The roofs are the profile's datasheet figures: one flat compute roof per dtype (`DeviceProfile.peak_ops`), a
memory slope per memory level (`memory_bandwidth_bytes_s`, and the cache, last-level cache or flash bandwidth
where the profile has one), and the ridge point ``peak / main-memory bandwidth`` where a roof meets the main
memory slope. Each layer is a point from `workbench.hardware.layer_table` — the table `workbench.estimate` sums —
at its arithmetic intensity ``ops / (weight + activation bytes)`` and its estimated rate
``ops / (time − fixed overhead)``, coloured by the table's `bound`. Points sit below the roofs: the estimator
derates peak and bandwidth by the profile's efficiencies.

Example:
    >>> pts = roofline_points("raspberry-pi-4", task.model)
    >>> pts.loc[pts.layer == "blocks.4.pw.conv", ["bound", "intensity"]].round(1).values.tolist()
    [['compute', 7.1]]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.quant import DTYPE_BITS  # a dtype's roof takes the colour of its bit-width
from workbench.viz.style import LAYOUT, color_of, figure_title
from workbench.viz.update import finish

if TYPE_CHECKING:  # pragma: no cover
    import plotly.graph_objects as go

BOUND_COLORS: dict[str, str] = {"compute": "#E45756", "memory": "#4C78A8"}
"""Marker colour of a compute-bound and of a memory-bound layer."""
TABLE_COLUMNS = ("layer", "kind", "dtype", "ops", "weight_read_bytes", "activation_bytes", "compute_s", "memory_s",
                 "overhead_s", "time_s", "bound")


def _profile(device: Any) -> Any:
    from workbench.hardware import DeviceProfile
    from workbench.hardware import device as find

    if not isinstance(device, (str, DeviceProfile)):
        raise WorkbenchError(f"roofline(device, model): the device comes first, a profile name such as "
                             f"'raspberry-pi-4' or a DeviceProfile; got {type(device).__name__}.")
    return find(device)


def memory_levels(device: Any) -> list[tuple[str, float]]:
    """(name, bandwidth in bytes/s) of each memory level the profile describes, main memory first."""
    p = _profile(device)
    levels = [("main memory", p.memory_bandwidth_bytes_s)]
    levels += [(n, bw) for n, bw in (("cache", p.cache_bandwidth_bytes_s), ("last-level cache", p.llc_bandwidth_bytes_s))
               if bw]
    if p.weights_in_storage and p.storage_bandwidth_bytes_s:
        levels.append(("flash", p.storage_bandwidth_bytes_s))
    return levels


def ridge_points(device: Any) -> dict[str, float]:
    """{dtype: ridge intensity in ops/byte}: the profile's peak over its main-memory bandwidth.

    Example:
        >>> ridge_points("raspberry-pi-4")
        {'fp32': 7.5, 'int8': 15.0}
    """
    p = _profile(device)
    return {d: p.peak_ops[d] / p.memory_bandwidth_bytes_s for d in p.dtypes if d in p.peak_ops}


def roofline_points(device: Any, model: Any, *, dtype: str | None = None, batch: int = 1) -> pd.DataFrame:
    """One row per layer that computes and moves bytes: where it sits on the device's roofline (estimates).

    Args:
        device: a profile name or `DeviceProfile`.
        model: a torch `ModelHandle` or `Task`, or a table `workbench.hardware.layer_table` made for `device`.
        dtype / batch: as `workbench.estimate` (ignored when `model` is already a table).

    Returns:
        Columns ``layer``, ``kind``, ``dtype``, ``ops``, ``bytes`` (weights + activations moved), ``intensity``
        (ops/byte), ``ops_per_s_est`` (ops / (time − overhead)), ``bound``, ``compute_s``, ``memory_s`` and, when
        the table has them, ``weights_from`` / ``activations_from``. BatchNorm rows folded into the layer before
        them (no ops, no bytes) are left out.
    """
    if isinstance(model, pd.DataFrame):
        missing = [c for c in TABLE_COLUMNS if c not in model.columns]
        if missing:
            raise WorkbenchError(f"roofline: the table lacks {missing}; pass a model, or "
                                 "workbench.hardware.layer_table(model, device).")
        table = model
    else:
        from workbench.hardware import layer_table

        table = layer_table(model, device, dtype=dtype, batch=batch)
    moved = table["weight_read_bytes"] + table["activation_bytes"]
    t = table[(table["ops"] > 0) & (moved > 0)].copy()
    if t.empty:
        raise WorkbenchError("roofline: no layer of this model both computes and moves bytes.")
    busy = t["time_s"] - t["overhead_s"]
    if not np.isfinite(busy.to_numpy(float)).all():
        p = _profile(device)
        lacking = sorted(set(t.loc[~np.isfinite(busy.to_numpy(float)), "dtype"]))
        raise WorkbenchError(f"roofline: {p.name} cannot execute {', '.join(lacking)} (it runs "
                             f"{', '.join(p.dtypes)}), so the estimate has no time for those layers. Quantise "
                             "first, e.g. Quantize(8, activations=8), or pass dtype=.")
    t["bytes"] = moved[t.index]
    t["intensity"] = t["ops"] / t["bytes"]
    t["ops_per_s_est"] = t["ops"] / busy
    cols = ["layer", "kind", "dtype", "ops", "bytes", "intensity", "ops_per_s_est", "bound", "compute_s", "memory_s"]
    cols += [c for c in ("weights_from", "activations_from") if c in t.columns]
    return t[cols].reset_index(drop=True)


def roofline(device: Any, model: Any, *, dtype: str | None = None, batch: int = 1, whole_model: bool = True,
             fig: Any = None) -> "go.Figure":
    """Log-log roofline of a device profile with the model's layers placed on it (an estimate).

    Flat lines: the profile's peak per dtype (dashed: derated by its compute efficiency, where the estimator's
    compute-bound layers sit); slopes: its memory bandwidths (solid: main memory, dotted: cache levels or flash);
    diamonds: the ridge points (peak / main-memory bandwidth). Each layer is a point at its
    arithmetic intensity and estimated rate, red when the estimator finds it compute-bound, blue when
    memory-bound; hover for the layer's name and numbers. The star is the whole model (total ops / total bytes).

    Args:
        device: a profile name or `DeviceProfile`.
        model: a torch `ModelHandle` or `Task`, or a `workbench.hardware.layer_table` made for `device`.
        dtype / batch: as `workbench.estimate`.
        whole_model: also plot the whole model as one point.
        fig: a `go.FigureWidget` to update in place.

    Example:
        >>> fig = roofline("raspberry-pi-4", task)
        >>> [t.name for t in fig.data if t.name.startswith("ridge")], fig.layout.yaxis.type
        (['ridge points'], 'log')
    """
    import plotly.graph_objects as go

    p = _profile(device)
    pts = roofline_points(p, model, dtype=dtype, batch=batch)
    ridges = ridge_points(p)
    levels = memory_levels(p)
    peaks = {d: p.peak_ops[d] for d in ridges}
    top = max(peaks.values())
    xs = np.concatenate([pts["intensity"].to_numpy(float), list(ridges.values()),
                         [top / bw for _, bw in levels]])
    x0, x1 = xs.min() / 4, xs.max() * 4
    main, fastest = p.memory_bandwidth_bytes_s, max(bw for _, bw in levels)
    used = set(pts["dtype"])
    traces: list[Any] = []
    for d, peak in peaks.items():  # flat compute roofs from their ridge point on
        colour = color_of("bits", DTYPE_BITS[d])
        traces.append(go.Scatter(x=[peak / main, x1], y=[peak, peak], mode="lines", name=f"{d} peak {gops(peak)}",
                                 line={"color": colour, "width": 2.5}, legendgroup=d,
                                 hovertemplate=f"{d} roof: {gops(peak)}<extra></extra>"))
        if fastest > main:  # the roof also holds where a faster level (a cache) serves the bytes
            traces.append(go.Scatter(x=[peak / fastest, peak / main], y=[peak, peak], mode="lines",
                                     name=f"{d} peak (bytes from a cache)", showlegend=False, legendgroup=d,
                                     line={"color": colour, "width": 1.5, "dash": "dot"}, hoverinfo="skip"))
        if d in used:  # where the estimator's compute-bound layers sit: the peak derated by the efficiency
            eff = p.efficiency["compute"]
            traces.append(go.Scatter(x=[peak * eff / fastest, x1], y=[peak * eff, peak * eff], mode="lines",
                                     name=f"{d} × efficiency {eff:g} (est.)", legendgroup=d,
                                     line={"color": colour, "width": 1.5, "dash": "dash"},
                                     hovertemplate=f"{d} peak × {eff:g}: {gops(peak * eff)}<extra></extra>"))
    for i, (name, bw) in enumerate(levels):  # memory slopes, main memory solid, up to the highest roof
        traces.append(go.Scatter(x=[x0, top / bw], y=[bw * x0, top], mode="lines", name=f"{name} {bw / 1e9:.3g} GB/s",
                                 line={"color": "#555555" if i == 0 else "#888888", "width": 2.5 if i == 0 else 1.5,
                                       "dash": "solid" if i == 0 else "dot"},
                                 hovertemplate=f"{name}: %{{x:.3g}} ops/byte × {bw / 1e9:.3g} GB/s<extra></extra>"))
    traces.append(go.Scatter(x=list(ridges.values()), y=list(peaks.values()), mode="markers+text", name="ridge points",
                             text=[f"ridge {d}: {x:.3g}" for d, x in ridges.items()], textposition="top left",
                             marker={"symbol": "diamond", "size": 11, "color": "#333333"},
                             hovertemplate="ridge point: %{x:.3g} ops/byte at %{y:.3s}ops/s<extra></extra>"))
    for bound, colour in BOUND_COLORS.items():
        sub = pts[pts["bound"] == bound]
        if len(sub):
            traces.append(go.Scatter(x=sub["intensity"], y=sub["ops_per_s_est"], mode="markers",
                                     name=f"{bound}-bound layers", marker={"color": colour, "size": 10},
                                     hovertext=[_hover(r) for r in sub.itertuples()],
                                     hovertemplate="%{hovertext}<extra></extra>"))
    if whole_model:
        ops, moved = float(pts["ops"].sum()), float(pts["bytes"].sum())
        rate = ops / float((pts["ops"] / pts["ops_per_s_est"]).sum())
        traces.append(go.Scatter(x=[ops / moved], y=[rate], mode="markers", name="whole model",
                                 marker={"symbol": "star", "size": 16, "color": "#F2CF5B",
                                         "line": {"color": "#333333", "width": 1}},
                                 hovertemplate=f"whole model: {ops:.3g} ops, {moved:.3g} bytes<br>"
                                               "%{x:.3g} ops/byte, %{y:.3s}ops/s (est.)<extra></extra>"))
    notes = [f"{p.display_name}<br>solid lines: datasheet peaks and bandwidths",
             "points: the estimator's rate per layer (fixed overheads left out)"]
    layout = {**LAYOUT, "title": figure_title(f"Roofline of {p.name} (estimate from its device profile)", notes),
              "xaxis": {"type": "log", "title": {"text": "arithmetic intensity (ops per byte moved)"},
                        "exponentformat": "SI"},
              "yaxis": {"type": "log", "title": {"text": f"attainable performance (est., ops/s) on {p.name}"},
                        "exponentformat": "SI"},
              "height": 540, "margin": {**LAYOUT["margin"], "t": 120}}
    return finish(go.Figure(data=traces, layout=layout), fig)


def gops(ops_per_s: float) -> str:
    """ops/s in words: ``gops(9.6e10)`` is ``"96 GOP/s"`` (MOP/s, GOP/s or TOP/s, whichever reads best)."""
    scale, unit = next(((s, u) for s, u in ((1e12, "T"), (1e9, "G")) if ops_per_s >= s), (1e6, "M"))
    return f"{ops_per_s / scale:.3g} {unit}OP/s"


def _hover(r: Any) -> str:
    where = f"<br>weights from {r.weights_from}, activations from {r.activations_from}" if hasattr(
        r, "weights_from") else ""
    return (f"<b>{r.layer}</b> ({r.kind}, {r.dtype})<br>{r.ops:.3g} ops, {r.bytes:.3g} bytes: "
            f"{r.intensity:.3g} ops/byte<br>{r.ops_per_s_est:.3g} ops/s (est.), {r.bound}-bound<br>"
            f"compute {r.compute_s * 1e6:.3g} µs, memory {r.memory_s * 1e6:.3g} µs{where}")


__all__ = ["BOUND_COLORS", "gops", "memory_levels", "ridge_points", "roofline", "roofline_points"]
