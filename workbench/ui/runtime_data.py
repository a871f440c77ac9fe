"""Data for the runtimes dashboard: a results store, or the default model's variants measured on every installed
runtime, cached.

`runtime_results()` is what ``dashboards/runtimes.ipynb`` shows: ``results`` or ``$WORKBENCH_RESULTS`` when given
(as `workbench.ui.data.demo_results` reads them), else the shipped results ``data/demo/<task>-runtimes.parquet``
when they are fresh (the full `runtime_grid` on the same installed runtimes, task and schema; see
`workbench.ui.data.stale_reasons`), otherwise a small sweep of the default model on
`workbench.available_runtimes()`, stored in ``<workbench cache>/demo/<task>-runtimes-<fast|full>.sqlite`` (the store
is keyed per variant and runtime, so a runtime installed later is measured on the next page load and the rest
are read). ``WORKBENCH_FAST=1`` keeps it small: the float model and int8, 200 evaluation samples, no memory probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from workbench.core.env import fast_mode
from workbench.ui.data import DEMO_DEVICES, FAST_DEVICES, Progress, demo_task


def runtime_grid(runtimes: Sequence[str] | None = None, fast: bool | None = None) -> Any:
    """The runtimes dashboard's sweep: every variant on every runtime in `runtimes` (default: the installed ones).

    Fast: baseline and int8 (2 variants, 200 samples, three devices). Full: float, fp16 and int8, each also with
    50 % channel pruning (6 variants), on the dashboards' six device profiles: the shipped results.

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


def runtime_name(task: str | None = None) -> str:
    """The name of the runtimes page's shipped results: ``<task>-runtimes`` (``data/demo/<task>-runtimes.parquet``).

    Example:
        >>> runtime_name("digits-cnn")
        'digits-cnn-runtimes'
    """
    return f"{demo_task(task)}-runtimes"


def runtime_store(task: str | None = None, fast: bool | None = None) -> Path:
    """Where `runtime_results` keeps its sweep: ``<workbench cache>/demo/<task>-runtimes-<fast|full>.sqlite``."""
    from workbench.core.paths import cache_dir

    fast = fast_mode() if fast is None else fast
    return cache_dir() / "demo" / f"{runtime_name(task)}-{'fast' if fast else 'full'}.sqlite"


def runtime_results(task: str | None = None, *, runtimes: Sequence[str] | None = None, fast: bool | None = None,
                    results: Any = None, progress: bool = False, shipped: bool | None = None,
                    on_progress: Progress | None = None, cached_only: bool = False) -> pd.DataFrame | None:
    """Results for the runtimes dashboard: `results` or ``$WORKBENCH_RESULTS``, else the shipped results when
    fresh, else the cached sweep of `runtime_grid` (measured on first use; a runtime that cannot run a variant
    gives an error row, shown as such).

    Args:
        task: the zoo task (default: `workbench.zoo.DEFAULT`, read now).
        runtimes: the runtimes to measure on (default: `workbench.available_runtimes()`).
        fast: sweep the small grid (default: ``WORKBENCH_FAST=1``); the shipped results are read in either mode.
        results: a results file or frame to show instead (overrides the environment).
        progress: show the sweep's progress bar (tqdm).
        shipped: read the shipped results (default: unless ``WORKBENCH_NO_SHIPPED=1``).
        on_progress: called as ``on_progress(done, total, text)`` while a sweep measures.
        cached_only: return None instead of sweeping.

    Example:
        >>> len(runtime_results(results=df))  # given results; without: the shipped ones, or the cached sweep
        6
    """
    from workbench.ui.data import given_results, read_shipped, run_demo_sweep, use_shipped

    given = given_results(results)
    if given is not None:
        return given
    task = demo_task(task)
    if use_shipped(shipped):
        df = read_shipped(runtime_name(task), task, runtime_grid(runtimes, fast=False))
        if df is not None:
            return df
    if cached_only:
        return None
    fast = fast_mode() if fast is None else fast
    return run_demo_sweep(task, runtime_grid(runtimes, fast), runtime_store(task, fast), memory=not fast,
                          progress=progress, on_progress=on_progress)


__all__ = ["runtime_grid", "runtime_name", "runtime_results", "runtime_store"]
