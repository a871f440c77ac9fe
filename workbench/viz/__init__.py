"""Plotly figures of sweep results: each a function of a results DataFrame, returning a `go.Figure`.

The frame is the sweep contract: one row per variant x runtime x device with config columns (`prune`,
`structure`, `bits`, `recover`), measured columns (the task metric, `latency_ms_p50`, `size_bytes`, ...) and
estimate columns (`*_est`, per device). A sweep returns one; `workbench.results_frame(task, variants)`
measures a few variants into one without a sweep. Every figure follows the same rules:

* **One palette.** `BITS_COLORS`, `STRUCTURE_SYMBOLS`, `STRUCTURE_COLORS`, `RUNTIME_COLORS` and `DEVICE_COLORS`
  give every bit-width, structure, runtime and device the same colour (or marker) in every figure.
* **Estimates say so.** An axis of an estimate reads "latency (est., ms) on raspberry-pi-4"; a measured one
  "latency, median (measured, ms)" (`axis_label`). Hollow markers are variants whose compression is simulated
  (not executed by the runtime), so their latency is the float model's.
* **Nothing is dropped silently.** Rows with `error` set are left out and counted in the subtitle; an empty
  frame, or a missing column, raises a `WorkbenchError` that says what to do.
* **Updates in place.** Every function takes ``fig=``: given a `go.FigureWidget` already on screen, it updates that
  widget's traces in one `batch_update()` instead of drawing a new one (`update_pareto` for the trade-off chart).

Modules, one responsibility each: `style` (palette, labels, layout), `frames` (preparing a frame: error rows,
device and runtime picking, hover text), `markers` (colour groups, symbols, legend), `update` (`into`: in-place
updates), and the figures: `tradeoffs` (Pareto scatter and front), `grids` (heatmap, sensitivity bars), `latency`,
`devices` (fit, energy, estimate against measured, one variant across devices), `runtimes` (one variant on every
runtime), `facets` (the Pareto chart, one panel per runtime), `sizes` and `planning` (the
figures of `workbench.plan`), `quant_grid` (weights on the b-bit grid) and `roofline_chart` (a device's roofline
with a model's layers). plotly is imported by the functions that draw, not by ``import workbench.viz``.

Example:
    >>> from workbench import viz
    >>> fig = viz.pareto_scatter(df, x="latency_ms_p50", y="accuracy")
    >>> fig.layout.xaxis.title.text
    'latency, median (measured, ms)'
"""

from __future__ import annotations

from workbench.viz.devices import (
    DEVICE_ESTIMATES,
    device_compare,
    device_fit_table,
    energy_vs_accuracy,
    estimate_vs_measured,
    fit_status,
)
from workbench.viz.facets import pareto_facets
from workbench.viz.federated import federated_curves
from workbench.viz.grids import heatmap, heatmap_table, sensitivity_bars
from workbench.viz.latency import latency_distribution
from workbench.viz.planning import fleet_figure, llm_memory_figure, schedule_figure, update_size_figure
from workbench.viz.power_chart import power_strategy_figure
from workbench.viz.quant_grid import quantization_grid, quantization_table
from workbench.viz.roofline_chart import ridge_points, roofline, roofline_points
from workbench.viz.runtimes import runtime_compare, runtime_fit, runtime_summary, runtime_table, within_noise
from workbench.viz.search import hypervolume_chart
from workbench.viz.sizes import size_breakdown
from workbench.viz.speed import speed_breakdown
from workbench.viz.style import (
    BITS_COLORS,
    BITS_NAMES,
    DEVICE_COLORS,
    FIT_COLORS,
    FIT_STATUS,
    OTHER_COLOR,
    PALETTE,
    RUNTIME_COLORS,
    RUNTIME_NAMES,
    STRUCTURE_COLORS,
    STRUCTURE_NAMES,
    STRUCTURE_SYMBOLS,
    axis_label,
    color_of,
    is_estimate,
    maximized,
    runtime_name,
)
from workbench.viz.tradeoffs import pareto_front, pareto_scatter, update_pareto
from workbench.viz.update import into

__all__ = [
    "BITS_COLORS", "BITS_NAMES", "DEVICE_COLORS", "DEVICE_ESTIMATES", "FIT_COLORS", "FIT_STATUS", "OTHER_COLOR",
    "PALETTE", "RUNTIME_COLORS", "RUNTIME_NAMES", "STRUCTURE_COLORS", "STRUCTURE_NAMES", "STRUCTURE_SYMBOLS", "axis_label",
    "color_of", "device_compare", "device_fit_table", "energy_vs_accuracy", "estimate_vs_measured",
    "fit_status", "fleet_figure", "heatmap", "heatmap_table", "hypervolume_chart", "into", "is_estimate", "latency_distribution",
    "federated_curves", "llm_memory_figure", "maximized", "pareto_facets", "pareto_front", "pareto_scatter", "power_strategy_figure", "quantization_grid",
    "quantization_table", "ridge_points", "roofline", "roofline_points", "runtime_compare",
    "runtime_fit", "runtime_name", "runtime_summary", "runtime_table", "schedule_figure", "sensitivity_bars",
    "size_breakdown", "speed_breakdown", "update_pareto", "update_size_figure", "within_noise",
]
