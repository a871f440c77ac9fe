"""Data for the dashboards: given results, the precomputed results shipped with the repository, or a cached sweep.

Dashboards call `demo_results()` (or `demo_page`, which also shows a sweep's progress) and nothing else:

1. with ``WORKBENCH_RESULTS`` pointing at a results file (`workbench sweep ... --store FILE`, or ``python -m
   workbench demo``) they show that;
2. otherwise the results shipped in ``data/demo/<task>.parquet`` (written by ``python data/build_demo_results.py``)
   when they are fresh: made from the same grid spec (`demo_grid`, full), task and results schema as this code
   (`stale_reasons` says why not). They open at once, without a sweep; ``WORKBENCH_NO_SHIPPED=1`` ignores them;
3. otherwise they sweep the default model once into the workbench cache (``$WORKBENCH_CACHE/demo/``), and every
   later page load reads the stored rows. ``WORKBENCH_FAST=1`` shrinks that sweep (6 variants, 200 evaluation
   samples) for tests and CI (`workbench.core.env.fast_mode` is the one parser of that switch; `fast_mode` here is
   the same function). Fast mode still reads the shipped results first: only a sweep is made smaller.

The task is the zoo's default (`workbench.zoo.DEFAULT`, read at call time) unless one is named.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from workbench.core.env import env_flag
from workbench.core.env import fast_mode as fast_mode
from workbench.core.errors import WorkbenchError

DEMO_DEVICES = ("raspberry-pi-4", "raspberry-pi-5", "jetson-orin-nano", "esp32-s3", "stm32h7", "coral-edge-tpu")
FAST_DEVICES = ("raspberry-pi-4", "jetson-orin-nano", "esp32-s3")
SHIPPED_FORMAT = 1
"""Version of the shipped-results layout (``<name>.parquet`` plus ``<name>.json``); bump it when that changes."""
NO_SHIPPED = "WORKBENCH_NO_SHIPPED"
"""Environment switch: ``1`` ignores the shipped results (the dashboards sweep, showing their progress)."""
BUILD_COMMAND = "python data/build_demo_results.py"

Progress = Callable[[int, int, str], None]
"""``on_progress(done, total, text)``: units (variant x runtime) measured so far, of the sweep's total."""


def demo_task(task: str | None = None) -> str:
    """The task the dashboards show: `task`, else the zoo's default (`workbench.zoo.DEFAULT`, read now).

    Example:
        >>> from workbench import zoo
        >>> demo_task() == zoo.DEFAULT, demo_task("digits-cnn")
        (True, 'digits-cnn')
    """
    if task:
        return str(task)
    from workbench import zoo

    return zoo.DEFAULT


def demo_grid(fast: bool | None = None) -> Any:
    """The dashboards' sweep of the default model.

    Fast: baseline, int8, 50 % channel and unstructured pruning, each float and int8 (6 variants, 200 samples).
    Full: 0 / 25 / 50 % pruning in every structure, with and without 100 recovery fine-tuning steps, at 32 / 16
    / 8 / 4 bits (44 variants), on six device profiles. The shipped results are this full grid.

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


def demo_store(task: str | None = None, fast: bool | None = None) -> Path:
    """Where `demo_results` keeps its sweep: ``<workbench cache>/demo/<task>-<fast|full>.sqlite``."""
    from workbench.core.paths import cache_dir

    fast = fast_mode() if fast is None else fast
    return cache_dir() / "demo" / f"{demo_task(task)}-{'fast' if fast else 'full'}.sqlite"


# ------------------------------------------------------------------------------------- shipped results


def shipped_dir() -> Path:
    """The folder of the shipped results: ``$WORKBENCH_SHIPPED_DIR``, else the repository's ``data/demo/``."""
    env = os.environ.get("WORKBENCH_SHIPPED_DIR")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "data" / "demo"


def shipped_path(name: str | None = None) -> Path:
    """The shipped results file of a data set: ``data/demo/<name>.parquet`` (`name`: a task, or
    ``<task>-runtimes``); its description is the ``.json`` beside it."""
    return shipped_dir() / f"{demo_task(name)}.parquet"


def shipped_identity(task: str, grid: Any) -> dict[str, Any]:
    """What shipped results must have been made from to be fresh: the layout version, the task, the grid spec
    and the results schema of this code (`workbench.measurement.record` ``COLUMNS`` + ``DEVICE_COLUMNS`` and
    the sweep's ``SCHEMA_VERSION``).

    Example:
        >>> sorted(shipped_identity("digits-cnn", demo_grid(fast=False)))
        ['format', 'grid', 'record_columns', 'schema_version', 'task']
    """
    from workbench.measurement.record import COLUMNS, DEVICE_COLUMNS
    from workbench.sweeps.units import SCHEMA_VERSION

    return {"format": SHIPPED_FORMAT, "task": task, "grid": json.loads(json.dumps(grid.to_dict(), default=str)),
            "record_columns": [*COLUMNS, *DEVICE_COLUMNS], "schema_version": SCHEMA_VERSION}


def shipped_meta(name: str | None = None) -> dict[str, Any] | None:
    """The description written beside a shipped results file (``<name>.json``), or None when there is none."""
    path = shipped_path(name).with_suffix(".json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def stale_reasons(name: str | None, task: str, grid: Any) -> list[str]:
    """Why the shipped results `name` cannot stand for a sweep of `grid` on `task` by this code (empty: fresh).

    Example:
        >>> stale_reasons("no-such-task", "no-such-task", demo_grid(fast=False))
        ['no shipped results (data/demo/no-such-task.parquet)']
    """
    path = shipped_path(name)
    where = f"data/demo/{path.name}"
    meta = shipped_meta(name)
    if not path.is_file() or meta is None:
        return [f"no shipped results ({where})"]
    out = []
    for key, want in shipped_identity(task, grid).items():
        if meta.get(key) != want:
            out.append(f"{key} differs: shipped {json.dumps(meta.get(key), default=str)[:300]}, this code "
                       f"{json.dumps(want, default=str)[:300]}")
    if meta.get("sha256") != file_digest(path):
        out.append(f"{where} does not match the sha256 recorded beside it")
    return out


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_shipped(name: str | None, task: str, grid: Any) -> pd.DataFrame | None:
    """The shipped results `name` when they are fresh for `grid` on `task` (`stale_reasons`), else None.

    The frame's ``attrs["source"]`` is ``"shipped"`` and ``attrs["note"]`` says where and when it was measured.
    """
    if stale_reasons(name, task, grid):
        return None
    meta = shipped_meta(name) or {}
    df = pd.read_parquet(shipped_path(name))
    df.attrs["source"] = "shipped"
    df.attrs["note"] = (f"Precomputed results shipped with the repository (data/demo/{shipped_path(name).name}), "
                        f"measured on {meta.get('machine', 'another machine')} ({str(meta.get('built', ''))[:10]}); "
                        f"set {NO_SHIPPED}=1 to measure on this machine.")
    return df


def write_shipped(df: pd.DataFrame, name: str, task: str, grid: Any, **about: Any) -> Path:
    """Write results as shipped results: ``<name>.parquet`` (machine-local ``artifact`` paths dropped) and
    ``<name>.json`` (`shipped_identity` plus the columns, the row count, the file's sha256 and `about`)."""
    from workbench.core.paths import atomic_write

    out = shipped_path(name)
    df = df.copy()
    if "artifact" in df:
        df["artifact"] = None
    df.attrs = {}
    atomic_write(out, lambda tmp: df.to_parquet(tmp, index=False, compression="zstd"))
    meta = {**shipped_identity(task, grid), "columns": list(df.columns), "rows": len(df), "sha256": file_digest(out),
            "rebuild": BUILD_COMMAND, **about}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1, default=str) + "\n", encoding="utf-8")
    return out


def use_shipped(shipped: bool | None = None) -> bool:
    """Whether to read the shipped results: `shipped` if given, else unless ``WORKBENCH_NO_SHIPPED=1``."""
    return (not env_flag(NO_SHIPPED)) if shipped is None else bool(shipped)


# ------------------------------------------------------------------------------------- the dashboards' data


def demo_results(task: str | None = None, *, fast: bool | None = None, results: Any = None,
                 progress: bool = False, shipped: bool | None = None, on_progress: Progress | None = None,
                 cached_only: bool = False) -> pd.DataFrame | None:
    """Results for a dashboard: ``results`` / ``$WORKBENCH_RESULTS`` if given, else the shipped results when
    fresh, else a cached demo sweep (measured on first use).

    Args:
        task: the zoo task (default: `workbench.zoo.DEFAULT`, read now).
        fast: sweep the small grid (default: ``WORKBENCH_FAST=1``); the shipped results are read in either mode.
        results: a results file or frame to show instead (overrides the environment).
        progress: show the sweep's progress bar (tqdm).
        shipped: read the shipped results (default: unless ``WORKBENCH_NO_SHIPPED=1``).
        on_progress: called as ``on_progress(done, total, text)`` while a sweep measures (see `demo_page`).
        cached_only: return None instead of sweeping.

    Returns:
        The results frame (one row per variant x runtime x device); ``attrs["source"]`` is ``"given"``,
        ``"shipped"`` or ``"sweep"``.

    Example:
        >>> len(demo_results(results=df))  # given results; without: the shipped ones, or the cached demo sweep
        6
    """
    given = given_results(results)
    if given is not None:
        return given
    task = demo_task(task)
    if use_shipped(shipped):
        df = read_shipped(task, task, demo_grid(fast=False))
        if df is not None:
            return df
    if cached_only:
        return None
    fast = fast_mode() if fast is None else fast
    return run_demo_sweep(task, demo_grid(fast), demo_store(task, fast), memory=not fast, progress=progress,
                          on_progress=on_progress)


def given_results(results: Any = None) -> pd.DataFrame | None:
    """``results``, else the file ``$WORKBENCH_RESULTS`` names, as a frame; None when neither is given."""
    from workbench.ui.base import load_results

    source = results if results is not None else os.environ.get("WORKBENCH_RESULTS") or None
    if source is None:
        return None
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise WorkbenchError(f"WORKBENCH_RESULTS / results points to {source}, which does not exist. Run "
                             "`python -m workbench demo` or `workbench sweep SPEC --store FILE` first, or unset "
                             "WORKBENCH_RESULTS to see the shipped results of the default model.")
    df = load_results(source)
    df.attrs.setdefault("source", "given")
    return df


def run_demo_sweep(task: str, grid: Any, store: Any, *, memory: bool, progress: bool = False,
                   on_progress: Progress | None = None) -> pd.DataFrame:
    """`workbench.sweep` of `grid` into `store`, reporting each measured unit to `on_progress`."""
    from workbench.sweeps import sweep

    total = len(grid) * len(grid.runtimes)
    seen: set[tuple[Any, Any]] = set()
    t0 = time.monotonic()

    def on_result(row: dict[str, Any]) -> None:
        unit = (row.get("variant"), row.get("runtime"))
        if on_progress is None or unit in seen:
            return
        seen.add(unit)
        done = min(len(seen), total)
        left = (time.monotonic() - t0) / done * (total - done)
        on_progress(done, total, f"last: {unit[0]} on {unit[1]}" + (f"; about {left:.0f} s left" if done < total
                                                                     else ""))

    if on_progress is not None:
        on_progress(0, total, f"{task} on this machine")
    df = sweep(task, grid, store=store, memory=memory, progress=progress and on_progress is None,
               on_result=on_result)
    df.attrs["source"] = "sweep"
    return df


def demo_page(make: Callable[[pd.DataFrame], Any], load: Callable[..., pd.DataFrame | None] | None = None, *,
              background: bool = True, **kwargs: Any) -> Any:
    """A dashboard's page: ``make(results)`` at once when the results need no sweep (given or shipped), else a
    progress bar ("Measuring variant 7 of 44…") while `load` sweeps in a background thread, then the panel.

    Args:
        make: builds the panel from a results frame (``TradeoffExplorer``, ``DevicePanel``, ...).
        load: the data function (default `demo_results`; ``runtime_results`` for the runtimes page); it takes
            ``cached_only`` and ``on_progress``.
        background: sweep in a thread (the page shows at once); False sweeps here, before returning.
        **kwargs: passed to `load` (``task=...``, ``fast=...``).

    Returns:
        The panel, or a `workbench.ui.sweep_panel.SweepProgress` page whose progress bar and status fill in and
        which shows the panel when the sweep ends (its ``panel``; ``join()`` waits for it).

    Example:
        >>> from workbench.ui import TradeoffExplorer
        >>> page = demo_page(TradeoffExplorer, results=df)  # given results: the panel itself
        >>> type(page).__name__
        'TradeoffExplorer'
    """
    from workbench.ui.sweep_panel import SweepProgress

    load = demo_results if load is None else load
    df = load(cached_only=True, **kwargs)
    if df is not None:
        return make(df)
    page = SweepProgress(make, load, **kwargs)
    page.start(background)
    return page


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
