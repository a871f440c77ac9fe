"""Interactive widgets for JupyterLab and Voilà: explore a sweep, run one, compare devices, export a variant.

* `TradeoffExplorer(results)`: the Pareto chart of two metrics with axis / colour / filter controls, a device
  and an accuracy bar; the best variant is ringed; clicking a point shows its figures and an Export box.
* `SweepPanel(task)`: choose a model and a grid, press Run; the progress bar and chart fill in live.
* `DevicePanel(results)`: one variant across devices (latency, energy, power, battery, fit), and which
  variants fit which device under a budget.
* `ExportPanel(results)`: export a variant with its parity report and signed manifest.
* `LLMPlanner()`: an LLM's memory per bit-width and context, and which hardware (how many of it) holds it.
* `demo_results()`: the dashboards' data (``$WORKBENCH_RESULTS``, the shipped results in data/demo/, or a cached
  sweep of the default model); `demo_page(Panel)`: a panel on them at once, or a progress page while a sweep runs.
* `serve(name)`: serve a dashboard with Voilà on localhost → ``(process, url)``.

Every control is a plain ipywidget: set its ``.value`` or call ``button.click()`` and the panel updates, exactly
as in the browser. Errors appear in the panel (``panel.errors``, ``panel.last_error``), never lost in a callback.
Heavy imports (ipywidgets, plotly) happen when a name is first used.

Example:
    >>> from workbench import ui
    >>> ex = ui.TradeoffExplorer(df)       # a sweep's results; dashboards pass ui.demo_results()
    >>> ex.x.value = "size_bytes"          # the chart updates in place
    >>> ex.figure.layout.xaxis.title.text
    'file size (measured, bytes)'
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

# plotly's FigureWidget imports nbformat, which imports jsonschema, which imports rfc3987-syntax when it is installed
# (jupyter-events pulls it in for IRI format checks): that package compiles 38 Lark grammars at import, 3-5 s of every
# dashboard's first paint (measured: FigureWidget import 7.3 s -> 1.9 s on this 2-core VM), for a check nothing in a
# kernel runs. Treat it as absent, as jsonschema does when the optional package is not installed; a process that
# imported it already keeps it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]

_NAMES = {
    "TradeoffExplorer": "workbench.ui.explorer",
    "SweepPanel": "workbench.ui.sweep_panel",
    "DevicePanel": "workbench.ui.device_panel",
    "ExportPanel": "workbench.ui.export_panel",
    "ExportBox": "workbench.ui.export_box",
    "LLMPlanner": "workbench.ui.llm_planner",
    "LLMExplorer": "workbench.ui.llm_explorer",
    "llm_results": "workbench.ui.llm_data",
    "RuntimeCompare": "workbench.ui.runtime_compare",
    "runtime_results": "workbench.ui.runtime_data",
    "demo_results": "workbench.ui.data",
    "demo_page": "workbench.ui.data",
    "demo_grid": "workbench.ui.data",
    "export_dir": "workbench.ui.data",
    "variant_handle": "workbench.ui.data",
    "load_results": "workbench.ui.base",
    "serve": "workbench.ui.server",
    "stop": "workbench.ui.server",
    "dashboard_path": "workbench.ui.server",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'workbench.ui' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_NAMES])
