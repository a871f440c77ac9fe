"""`sweep`: build, measure and estimate every variant of a grid, storing each result as it arrives.

One unit of work is one variant on one runtime: compress the task's original model (a fresh copy each time),
realise it for the runtime, evaluate, time, estimate for each device (`workbench.measure`). Units run in this
process, in a local process pool, or on Dask workers; the results come back to this process, which alone
writes the store, so a sweep killed at any moment resumes where it stopped.
"""

from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.sweeps.executors import execute
from workbench.sweeps.frame import with_baseline
from workbench.sweeps.spec import Grid
from workbench.sweeps.store import ResultStore, open_store
from workbench.sweeps.units import Unit, units


def sweep(
    task: Any,
    grid: Grid | None = None,
    *,
    store: ResultStore | str | None = "results.sqlite",
    executor: Any = "serial",
    workers: int | None = None,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    memory: bool = True,
) -> pd.DataFrame:
    """Compress, realise, measure and estimate every variant of `grid`; results are stored as they arrive.

    Args:
        task: a `Task` or a zoo task name (``"digits-cnn"``).
        grid: a `workbench.grid(...)`; default: the full default grid on onnxruntime.
        store: a `ResultStore`, a path to one (created if missing), or None (in memory: no resume).
        executor: ``"serial"`` (this process), ``"processes"`` (a local process pool), ``"dask"`` (a new local
            Dask cluster), a `dask.distributed.Client`, or a scheduler address (``"tcp://host:8786"``).
        workers: processes for ``"processes"`` / ``"dask"`` (default: the CPU count); for ``"serial"``, the
            processes that fine-tune prune points before they are measured (default 2 with 2+ cores; 1: only
            this process). Measuring is serial either way.
        progress: show a progress bar (a widget in JupyterLab) with variants done / total and ETA.
        on_result: called with each newly computed row (a dict) as it is stored; never for stored rows.
        memory: measure each variant's peak memory in a child process (about 1 s per variant).

    Returns:
        One row per variant × runtime × device: config columns (`prune`, `structure`, `bits`, `recover`),
        every `Measurement` column, the task's metrics and `baseline_<metric>` (the unpruned float model on
        the same runtime). ``df.attrs["dropped"]`` lists grid combinations left out, with reasons.

    Note:
        Latency is measured wherever the unit runs; with parallel workers, timings share the machine. Keep
        `workers` at or below the core count and `threads=1` for figures that compare.

    Example:
        >>> g = workbench.grid(prune=[0, .5], bits=[32, 8], limit=100)
        >>> df = workbench.sweep("digits-cnn", g, store="r.sqlite", progress=False, memory=False)
        >>> df["variant"].tolist()
        ['baseline', 'q8', 'unstructured-0.50', 'unstructured-0.50+q8', 'channel-0.50', 'channel-0.50+q8']
        >>> front = workbench.pareto(df)  # a copy with a boolean `pareto` column: the non-dominated variants
    """
    from workbench import zoo
    from workbench.measurement.record import library_versions

    task = zoo.load(task) if isinstance(task, str) else task
    g = grid if grid is not None else Grid()
    if not isinstance(g, Grid):
        raise WorkbenchError(f"sweep() takes a workbench.grid(...), got {type(g).__name__}")
    check_devices(g)
    dropped = [(s.label, r) for s, r in g.dropped]
    specs = g.variants
    if task.train_inputs is None:
        dropped += [(s.label, f"{task.name} has no training split to recover with") for s in specs if s.recover]
        specs = [s for s in specs if not s.recover]
    versions = {**library_versions(), "workbench": workbench_version()}
    todo_all = [u for u in units(task, g, versions) if u.spec in specs]
    st = open_store(store)
    have = st.present(k for u in todo_all for _, k in u.row_keys)
    pending = [u for u in todo_all if not all(k in have for _, k in u.row_keys)]

    bar = _progress(progress, total=len(todo_all), initial=len(todo_all) - len(pending), desc=f"sweep {task.name}")
    try:
        for unit, rows in execute(executor, task, g, pending, workers, memory):
            keyed = [{**r, "key": k, "unit": unit.key, "task": task.name}
                     for r, (_, k) in zip(rows_by_device(rows, unit), unit.row_keys)]
            for row in st.add(keyed):
                if on_result is not None:
                    on_result(row)
            if bar is not None:
                bar.set_postfix_str(f"{unit.spec.label} on {unit.runtime}", refresh=False)
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    df = with_baseline(st.to_frame(k for u in todo_all for _, k in u.row_keys))
    if not isinstance(store, ResultStore):
        st.close()
    df.attrs["dropped"] = dropped
    return df


def workbench_version() -> str:
    from workbench.core.version import VERSION

    return VERSION


def check_devices(g: Grid) -> None:
    from workbench.hardware.catalog import device

    for d in g.devices:
        device(d)  # raises WorkbenchError naming the known profiles


def rows_by_device(rows: list[dict[str, Any]], unit: Unit) -> list[dict[str, Any]]:
    """Order a unit's rows as its row keys (one per device, or the single device-less row)."""
    by = {r.get("device"): r for r in rows}
    out = []
    for d, _ in unit.row_keys:
        if d not in by:
            raise WorkbenchError(f"{unit.spec.label} on {unit.runtime}: no row for device {d!r}")
        out.append(by[d])
    return out


def _progress(enabled: bool, **kw: Any) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(unit="variant", dynamic_ncols=True, **kw)


