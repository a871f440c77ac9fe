"""Data for the dashboards: a precomputed results store, or a small sweep of the default model, cached.

Dashboards call `demo_results()` and nothing else: with ``WORKBENCH_RESULTS`` pointing at a results file
(`workbench sweep ... --store FILE`, or ``python -m workbench demo``) they show that; otherwise they sweep the
default model once into the workbench cache (``$WORKBENCH_CACHE/demo/``), and every later page load reads the
stored rows. ``WORKBENCH_FAST=1`` shrinks the sweep (6 variants, 200 evaluation samples) for tests and CI
(`workbench.core.env.fast_mode` is the one parser of that switch; `fast_mode` here is the same function).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.env import fast_mode as fast_mode
from workbench.core.errors import WorkbenchError

DEMO_DEVICES = ("raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "esp32-s3", "stm32h7", "coral-edge-tpu")
FAST_DEVICES = ("raspberry-pi-4", "jetson-orin-nano", "esp32-s3")


def demo_grid(fast: bool | None = None) -> Any:
    """The dashboards' sweep of the default model.

    Fast: baseline, int8, 50 % channel and unstructured pruning, each float and int8 (6 variants, 200 samples).
    Full: 0 / 25 / 50 % pruning in every structure, with and without 100 recovery fine-tuning steps, at 32 / 16
    / 8 / 4 bits (44 variants), on six device profiles.

    Example:
        >>> [v.label for v in demo_grid(fast=True)][:3]
        ['baseline', 'q8', 'channel-0.50']
    """
    from workbench.sweeps import grid

    fast = fast_mode() if fast is None else fast
    if fast:
        return grid(prune=[0, 0.5], structure=["channel", "unstructured"], bits=[32, 8], devices=FAST_DEVICES,
                    limit=200)
    return grid(prune=[0, 0.25, 0.5], structure=["unstructured", "channel", "2:4"], bits=[32, 16, 8, 4],
                recover=[None, 100], devices=DEMO_DEVICES)


def export_dir() -> Path:
    """Where the panels write exports by default: ``$WORKBENCH_EXPORTS``, else ``<workbench cache>/exports``
    (never the folder a dashboard is served from)."""
    from workbench.core.paths import cache_dir

    env = os.environ.get("WORKBENCH_EXPORTS")
    return Path(env).expanduser() if env else cache_dir() / "exports"


def demo_store(task: str = "digits-cnn", fast: bool | None = None) -> Path:
    """Where `demo_results` keeps its sweep: ``<workbench cache>/demo/<task>-<fast|full>.sqlite``."""
    from workbench.core.paths import cache_dir

    fast = fast_mode() if fast is None else fast
    return cache_dir() / "demo" / f"{task}-{'fast' if fast else 'full'}.sqlite"


def demo_results(task: str = "digits-cnn", *, fast: bool | None = None, results: Any = None,
                 progress: bool = False) -> pd.DataFrame:
    """Sweep results for a dashboard: ``results`` or ``$WORKBENCH_RESULTS`` if given, else a cached demo sweep.

    Args:
        task: the zoo task to sweep when no results are given.
        fast: the small grid (default: ``WORKBENCH_FAST=1``).
        results: a results file or frame to show instead (overrides the environment).
        progress: show the sweep's progress bar.

    Returns:
        The results frame (one row per variant x runtime x device).

    Example:
        >>> len(demo_results(results=df))  # given results; without: the cached demo sweep (first call sweeps)
        6
    """
    from workbench.sweeps import sweep
    from workbench.ui.base import load_results

    source = results if results is not None else os.environ.get("WORKBENCH_RESULTS") or None
    if source is not None:
        if isinstance(source, (str, Path)) and not Path(source).is_file():
            raise WorkbenchError(f"WORKBENCH_RESULTS / results points to {source}, which does not exist. Run "
                                 "`python -m workbench demo` or `workbench sweep SPEC --store FILE` first, or unset "
                                 "WORKBENCH_RESULTS to sweep the default model.")
        return load_results(source)
    fast = fast_mode() if fast is None else fast
    store = demo_store(task, fast)
    return sweep(task, demo_grid(fast), store=store, memory=not fast, progress=progress)


# ------------------------------------------------------------------------------------- rebuild a row


def task_for(row: pd.Series, task: Any = None) -> Any:
    """The task a results row belongs to: `task` if given (and matching), else the zoo task of that name."""
    from workbench import zoo

    name = str(row.get("task", "")) if row.get("task") is not None else ""
    if task is not None:
        if name and getattr(task, "name", name) != name:
            raise WorkbenchError(f"this row belongs to task {name!r}, but the panel was given {task.name!r}.")
        return task
    if name not in zoo.names():
        raise WorkbenchError(f"the row's task {name!r} is not a zoo task; pass task=... (the Task the sweep ran) to "
                             "the panel so the variant can be rebuilt for export.")
    return zoo.load(name)


def variant_handle(row: pd.Series, task: Any) -> Any:
    """Rebuild the variant of a results row from its grid point (`workbench.sweeps.frame.spec_of_row`: the
    config columns `prune`, `structure`, `bits`, `recover`, and the pruning scope).

    Compression is deterministic, so this gives the model the sweep measured.

    Example:
        >>> handle = variant_handle(df.iloc[3], task)
        >>> [c.label for c in handle.lineage]
        ['prune-unstructured-0.50-layer', 'q8']
    """
    from workbench.compression import compress
    from workbench.sweeps.frame import spec_of_row

    configs = spec_of_row(row).configs()
    return compress(task.model, *configs, task=task) if configs else task.model
