"""The LLM memory planner as a small ipywidgets app (used by ``dashboards/llm_planner.ipynb``).

Pick a model shape, a weight bit-width, a context length and a batch; the chart (updated in place) stacks weights,
KV cache and workspace per bit-width and maps how many of each device are needed, and a summary says which
hardware holds the chosen bit-width. Every control has a ``description`` and can be driven from code or a browser
test by setting its ``.value``; errors appear in the ``error`` widget instead of vanishing.

Example:
    >>> app = LLMPlanner()
    >>> app.model.value, app.bits.value = "Llama-2-70B", 4
    >>> "gpu-80gb" in app.summary.value
    True
"""

from __future__ import annotations

from typing import Any, Sequence

import ipywidgets as widgets

from workbench.plan.llm import GPUS, PRESETS, llm_memory

BITS = (16, 8, 6, 4, 3, 2)
CONTEXTS = (512, 1024, 2048, 4096, 8192, 16384, 32768, 131072)
TABLE_COLUMNS = ("bits", "params", "bits_per_param", "weight_gb", "kv_cache_gb", "activation_gb", "total_gb",
                 "fits_on")


class LLMPlanner(widgets.VBox):
    """Controls (``model``, ``bits``, ``context``, ``batch``), a ``summary``, the ``figure`` and a ``table``."""

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
        self.error = widgets.HTML(description="")
        self.table = widgets.HTML(description="")
        self.frame = None
        _, fig = self._plan()
        self.figure = go.FigureWidget(fig)
        self._refresh()
        for w in (self.model, self.bits, self.context, self.batch):
            w.observe(lambda _change: self._refresh(), "value")
        controls = widgets.HBox([self.model, self.bits, self.context, self.batch])
        super().__init__([controls, self.summary, self.error, self.figure, self.table])

    def _plan(self) -> tuple[Any, Any]:
        return llm_memory(**PRESETS[self.model.value], bits=BITS, max_seq_len=self.context.value,
                          batch=self.batch.value, devices=self.devices)

    def _refresh(self) -> None:
        try:
            df, fig = self._plan()
        except Exception as e:  # noqa: BLE001 - shown to the user, not swallowed
            self.error.value = f"<b style='color:#b00'>Error:</b> {type(e).__name__}: {e}"
            return
        self.error.value = ""
        self.frame = df
        with self.figure.batch_update():
            for old, new in zip(self.figure.data, fig.data):
                old.update(new.to_plotly_json())
            self.figure.layout.title = f"{self.model.value}: memory at {self.context.value:,} tokens x batch " \
                                       f"{self.batch.value}"
        row = df.set_index("bits").loc[self.bits.value]
        gpus = ", ".join(f"{int(row[f'n_{g}'])} x {g}" for g in GPUS)
        one = row["fits_on"] or "no single device"
        self.summary.value = (f"<b>{self.model.value}</b> at <b>{self.bits.value}-bit</b> weights needs "
                              f"<b>{row['total_gb']:.3g} GB</b> (weights {row['weight_gb']:.3g}, KV cache "
                              f"{row['kv_cache_gb']:.3g}, workspace {row['activation_gb']:.3g}). "
                              f"Held by one: {one}. GPUs needed: {gpus}.")
        cols = [c for c in TABLE_COLUMNS if c in df] + [f"n_{g}" for g in GPUS]
        self.table.value = df[cols].to_html(index=False, float_format=lambda v: f"{v:.3g}")


def llm_planner(**kwargs: Any) -> LLMPlanner:
    """Build the `LLMPlanner` app (keyword arguments: initial ``model``, ``bits``, ``context``, ``devices``)."""
    return LLMPlanner(**kwargs)


__all__ = ["LLMPlanner", "llm_planner"]
