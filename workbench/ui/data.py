"""Data for the dashboards: a precomputed results store, or a small sweep of the default model, cached.

Dashboards call `demo_results()` and nothing else: with ``WORKBENCH_RESULTS`` pointing at a results file
(`workbench sweep ... --store FILE`, or ``python -m workbench demo``) they show that; otherwise they sweep the
default model once into the workbench cache (``$WORKBENCH_CACHE/demo/``), and every later page load reads the
stored rows. ``WORKBENCH_FAST=1`` shrinks the sweep (6 variants, 200 evaluation samples) for tests and CI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.core.errors import WorkbenchError

DEMO_DEVICES = ("raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "esp32-s3", "stm32h7", "coral-edge-tpu")
FAST_DEVICES = ("raspberry-pi-4", "jetson-orin-nano", "esp32-s3")


def fast_mode() -> bool:
    """True when ``WORKBENCH_FAST`` is set to 1 (tests, CI): small grids and evaluation splits."""
    return os.environ.get("WORKBENCH_FAST", "").strip().lower() in ("1", "true", "yes")


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
        >>> df = demo_results()          # first call sweeps (about a minute fast, a few minutes full), then cached
        >>> TradeoffExplorer(df)
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
    """Rebuild the variant of a results row from its config columns (`prune`, `structure`, `bits`, `recover`).

    Compression is deterministic, so this gives the model the sweep measured (the pruned model is rebuilt with
    the same scope, read from the row's `lineage`).

    Example:
        >>> handle = variant_handle(df.iloc[3], zoo.load("digits-cnn"))
        >>> handle.lineage
    """
    from workbench.compression import compress
    from workbench.sweeps.spec import VariantSpec

    def num(col: str, default: Any) -> Any:
        v = pd.to_numeric(pd.Series([row.get(col)]), errors="coerce").iloc[0]
        return default if pd.isna(v) else v

    prune = float(num("prune", 0.0))
    structure = row.get("structure")
    structure = None if structure is None or (isinstance(structure, float) and pd.isna(structure)) or not prune \
        else str(structure)
    recover = num("recover", None)
    spec = VariantSpec(prune, structure, int(num("bits", 32)), int(recover) if recover else None)
    scope = "global" if "-global" in str(row.get("lineage") or "") else "layer"
    configs = spec.configs(scope=scope)
    return compress(task.model, *configs, task=task) if configs else task.model
