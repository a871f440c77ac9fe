"""`LLMPlanner`: the LLM memory planner as a panel (used by ``dashboards/llm_planner.ipynb``).

Pick a model shape, a weight bit-width, a context length and a batch; the chart (updated in place) stacks weights,
KV cache and workspace per bit-width and maps how many of each device are needed, and a summary says which
hardware holds the chosen bit-width and, for each device it does not fit, what it needs against what the device
has (a board holds a model alone or not at all: no count of hundreds of ESP32s). The planning is `workbench.plan.llm_memory`, the figure
`workbench.viz.llm_memory_figure`; every control is a plain ipywidget that a test or a browser drives by setting
its ``.value``, and an error appears in the panel (`Panel.errors`, `Panel.last_error`) instead of vanishing.

Example:
    >>> app = LLMPlanner()
    >>> app.model.value, app.bits.value = "Llama-2-70B", 4
    >>> "gpu-80gb" in app.summary.value
    True
    >>> app.model.value = "Llama-2-7B"
    >>> "<b>esp32-s3</b> does not fit: needs 3.86 GB of flash for the weights" in app.summary.value
    True
"""

from __future__ import annotations

import html
from typing import Any, Sequence

import ipywidgets as widgets

from workbench.plan.llm import GPUS, PRESETS, llm_memory
from workbench.ui.base import Panel, into

BITS = (16, 8, 6, 4, 3, 2)
CONTEXTS = (512, 1024, 2048, 4096, 8192, 16384, 32768, 131072)
TABLE_COLUMNS = ("bits", "params", "bits_per_param", "weight_gb", "kv_cache_gb", "activation_gb", "total_gb",
                 "fits_on", "does_not_fit")


class LLMPlanner(Panel):
    """How much memory a transformer needs at each bit-width, and which hardware (how many of it) holds it.

    Args:
        model: the initial model shape (a key of `workbench.plan.PRESETS`).
        bits: the initial weight bit-width the summary describes (one of `BITS`).
        context: the initial context length in tokens (one of `CONTEXTS`).
        devices: device profiles to map besides the GPUs (default: every profile the workbench knows).

    Attributes:
        model, bits, context, batch: the controls (`Dropdown`, `SelectionSlider` x 2, `IntSlider`).
        summary: what the chosen bit-width needs and which hardware holds it. figure: the `go.FigureWidget`.
        table: every bit-width's memory and devices needed (HTML). frame: the planner's table behind them.
    """

    def __init__(self, *, model: str = "Llama-2-7B", bits: int = 4, context: int = 2048,
                 devices: Sequence[Any] | None = None) -> None:
        import plotly.graph_objects as go

        self.devices = devices
        style = {"description_width": "initial"}
        self.model = widgets.Dropdown(options=list(PRESETS), value=model, description="Model", style=style)
        self.bits = widgets.SelectionSlider(options=list(BITS), value=bits, description="Weight bits",
                                            continuous_update=False, style=style)
        self.context = widgets.SelectionSlider(options=[(f"{c:,}", c) for c in CONTEXTS], value=context,
                                               description="Context length", continuous_update=False, style=style)
        self.batch = widgets.IntSlider(value=1, min=1, max=64, description="Batch", continuous_update=False,
                                       style=style)
        self.summary = widgets.HTML(description="Fits")
        self.table = widgets.HTML()
        self.figure = go.FigureWidget()
        self.frame: Any = None
        controls = widgets.HBox([self.model, self.bits, self.context, self.batch],
                                layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([controls, self.summary, self.figure, self.table])
        self.add_class("wb-llm")
        for name in ("model", "bits", "context", "batch", "summary", "figure", "table"):
            getattr(self, name).add_class(f"wb-llm-{name}")  # stable hooks for browser tests
        for w in (self.model, self.bits, self.context, self.batch):
            w.observe(self.guard(lambda _change: self.update()), names="value")
        self.guard(self.update)()

    def plan(self) -> tuple[Any, Any]:
        """`workbench.plan.llm_memory` for the chosen model, context and batch: ``(table, figure)``."""
        return llm_memory(**PRESETS[self.model.value], bits=BITS, max_seq_len=self.context.value,
                          batch=self.batch.value, devices=self.devices)

    def update(self) -> None:
        """Re-plan, update the figure in place, and rewrite the summary and the table."""
        df, fig = self.plan()
        fig.update_layout(title=f"{self.model.value}: memory at {self.context.value:,} tokens x batch "
                                f"{self.batch.value}")
        into(self.figure, fig)
        self.frame = df
        row = df.set_index("bits").loc[self.bits.value]
        gpus = ", ".join(f"{int(row[f'n_{g}'])} x {g}" for g in GPUS)
        one = row["fits_on"] or "no single device"
        names = [n for n in str(row.get("does_not_fit") or "").split(", ") if n]
        misfits = "".join(f"<br><b>{html.escape(n)}</b> {html.escape(str(row[f'fit_{n}']))}." for n in names)
        self.summary.value = (f"<b>{self.model.value}</b> at <b>{self.bits.value}-bit</b> weights needs "
                              f"<b>{row['total_gb']:.3g} GB</b> (weights {row['weight_gb']:.3g}, KV cache "
                              f"{row['kv_cache_gb']:.3g}, workspace {row['activation_gb']:.3g}). "
                              f"Held by one: {one}. GPUs needed: {gpus}."
                              + misfits)
        cols = [c for c in TABLE_COLUMNS if c in df] + [f"n_{g}" for g in GPUS]
        self.table.value = df[cols].to_html(index=False, float_format=lambda v: f"{v:.3g}")


__all__ = ["BITS", "CONTEXTS", "LLMPlanner"]
