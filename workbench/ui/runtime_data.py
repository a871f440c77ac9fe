"""Data for the runtimes dashboard: a results store, or the default model's variants measured on every installed
runtime, cached.

`runtime_results()` is what ``dashboards/runtimes.ipynb`` shows: ``results`` or ``$WORKBENCH_RESULTS`` when given
(as `workbench.ui.data.demo_results` reads them), otherwise a small sweep of the default model on
`workbench.available_runtimes()`, stored in ``<workbench cache>/demo/<task>-runtimes-<fast|full>.sqlite`` (the store
is keyed per variant and runtime, so a runtime installed later is measured on the next page load and the rest
are read). ``WORKBENCH_FAST=1`` keeps it small: the float model and int8, 200 evaluation samples, no memory probe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from workbench.core.env import fast_mode
from workbench.ui.data import DEMO_DEVICES, FAST_DEVICES


def runtime_grid(runtimes: Sequence[str] | None = None, fast: bool | None = None) -> Any:
    """The runtimes dashboard's sweep: every variant on every runtime in `runtimes` (default: the installed ones).

    Fast: baseline and int8 (2 variants, 200 samples, three devices). Full: also fp16, 50 % channel pruning
    float and int8 (5 variants), on the dashboards' six device profiles.

    Example:
        >>> g = runtime_grid(["onnxruntime", "torch"], fast=True)
        >>> [v.label for v in g], g.runtimes
        (['baseline', 'q8'], ('onnxruntime', 'torch'))
    """
    from workbench.runtimes import available_runtimes
    from workbench.sweeps import grid

    fast = fast_mode() if fast is None else fast
    names = tuple(runtimes) if runtimes is not None else tuple(available_runtimes())
    if fast:
        return grid(prune=[0], bits=[32, 8], runtimes=names, devices=FAST_DEVICES, limit=200)
    return grid(prune=[0, 0.5], structure=["channel"], bits=[32, 16, 8], runtimes=names, devices=DEMO_DEVICES)


def runtime_store(task: str = "digits-cnn", fast: bool | None = None) -> Path:
    """Where `runtime_results` keeps its sweep: ``<workbench cache>/demo/<task>-runtimes-<fast|full>.sqlite``."""
    from workbench.core.paths import cache_dir

    fast = fast_mode() if fast is None else fast
    return cache_dir() / "demo" / f"{task}-runtimes-{'fast' if fast else 'full'}.sqlite"


def runtime_results(task: str = "digits-cnn", *, runtimes: Sequence[str] | None = None, fast: bool | None = None,
                    results: Any = None, progress: bool = False) -> pd.DataFrame:
    """Results for the runtimes dashboard: `results` or ``$WORKBENCH_RESULTS``, else the cached sweep of
    `runtime_grid` (measured on first use; a runtime that cannot run a variant gives an error row, shown as such).

    Args:
        task: the zoo task to sweep when no results are given.
        runtimes: the runtimes to measure on (default: `workbench.available_runtimes()`).
        fast: the small grid (default: ``WORKBENCH_FAST=1``).
        results: a results file or frame to show instead (overrides the environment).
        progress: show the sweep's progress bar.

    Example:
        >>> len(runtime_results(results=df))  # given results; without: the cached sweep (first call measures)
        6
    """
    from workbench.sweeps import sweep
    from workbench.ui.data import demo_results

    if results is not None or os.environ.get("WORKBENCH_RESULTS"):
        return demo_results(task, results=results)
    fast = fast_mode() if fast is None else fast
    return sweep(task, runtime_grid(runtimes, fast), store=runtime_store(task, fast), memory=not fast,
                 progress=progress)


__all__ = ["runtime_grid", "runtime_results", "runtime_store"]
