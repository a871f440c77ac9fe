"""`sweep`: build, measure and estimate every variant of a grid, storing each result as it arrives.

One unit of work is one variant on one runtime: compress the task's original model (a fresh copy each time),
realise it for the runtime, evaluate, time, estimate for each device (`workbench.measure`). Units run in this
process, in a local process pool, or on Dask workers; the results come back to this process, which alone
writes the store, so a sweep killed at any moment resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.sweeps.frame import with_baseline
from workbench.sweeps.spec import Grid, VariantSpec
from workbench.sweeps.store import ResultStore, open_store

# Bump when a change to the measuring code should invalidate stored results.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class TaskRef:
    """How a worker process gets the task: a zoo name, or a model file plus evaluation arrays.

    Workers load the task themselves from this small picklable spec; a live model object never travels.
    """

    zoo: str | None = None
    model_path: str | None = None
    inputs: tuple[Any, ...] = ()
    labels: Any = None
    name: str | None = None

    def load(self) -> Any:
        from workbench import zoo
        from workbench.task import Task

        if self.zoo:
            return zoo.load(self.zoo)
        return Task.from_model(self.model_path, list(self.inputs), self.labels, name=self.name)


def task_ref(task: Any) -> TaskRef | None:
    """A spec workers can load the task from, or None when only this process can run it."""
    from workbench import zoo

    if task.name in zoo.names() and zoo.load(task.name) is task:
        return TaskRef(zoo=task.name)
    path = task.model.path
    if path is not None and not task.model.lineage and os.path.exists(path):
        return TaskRef(model_path=str(path), inputs=tuple(task.eval_inputs), labels=task.eval_labels, name=task.name)
    return None


@dataclass(frozen=True)
class Unit:
    """One variant on one runtime, with the store keys of its rows (one per device, or one)."""

    spec: VariantSpec
    runtime: str
    key: str
    row_keys: tuple[tuple[str | None, str], ...]


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def units(task: Any, g: Grid, versions: dict[str, str]) -> list[Unit]:
    """Every variant × runtime of the grid, keyed by everything that determines its result."""
    devices: list[str | None] = list(g.devices) or [None]
    settings = {"threads": g.threads, "limit": g.limit, "scope": g.scope, "schema": SCHEMA_VERSION}
    out = []
    for spec in g.variants:
        for rt in g.runtimes:
            key = _hash(task.model.fingerprint, task.name, spec.to_dict(), rt, settings, versions)
            out.append(Unit(spec, rt, key, tuple((d, _hash(key, d)) for d in devices)))
    return out


def run_unit(task: Any, spec: VariantSpec, runtime: str, g: Grid, *, memory: bool = True) -> list[dict[str, Any]]:
    """Build and measure one variant on one runtime; returns its rows (errors become rows, never exceptions)."""
    from workbench.core.errors import first_line
    from workbench.measurement.record import Measurement, measure

    t0 = time.perf_counter()
    try:
        variant = _build(task, spec.configs(scope=g.scope))
    except Exception as e:  # noqa: BLE001 - a variant that cannot be built is a stored row, the sweep goes on
        m = Measurement(variant=spec.label, runtime=runtime, threads=g.threads, batch=1, task=task.name,
                        error=f"compress: {type(e).__name__}: {first_line(e)}")
        rows = m.rows()
        if g.devices:
            rows = [{**rows[0], "device": d} for d in g.devices]
    else:
        m = measure(variant, task, runtime=runtime, threads=g.threads, devices=g.devices, limit=g.limit,
                    memory=memory)
        rows = m.rows()
    seconds = time.perf_counter() - t0
    return [{**r, "variant": spec.label, **spec.to_dict(), "seconds": seconds} for r in rows]


_TASKS: dict[TaskRef, Any] = {}
_PRUNED: dict[tuple[str, str], Any] = {}


def _build(task: Any, configs: list[Any]) -> Any:
    """Compress; the pruned-and-recovered model is shared by the bit-widths that follow it in the grid.

    Variants are pure (each config returns a new handle), so reusing the float pruned model for q8, q4, ...
    gives the same result as rebuilding it, without re-running pruning and fine-tuning for every bit-width.
    """
    from workbench.compression import compress

    head = [c for c in configs if c.kind in ("prune", "recover")]
    tail = configs[len(head):]
    if not head:
        return compress(task.model, *tail, task=task)
    key = (task.name + task.model.fingerprint, json.dumps([c.to_dict() for c in head], sort_keys=True, default=str))
    if key not in _PRUNED:
        if len(_PRUNED) >= 4:
            _PRUNED.pop(next(iter(_PRUNED)))
        _PRUNED[key] = compress(task.model, *head, task=task)
    return compress(_PRUNED[key], *tail, task=task)


def remote_unit(ref: TaskRef, spec: VariantSpec, runtime: str, g: Grid, memory: bool) -> list[dict[str, Any]]:
    """`run_unit` in a worker process: load the task from its spec (once per process) and run."""
    import torch

    torch.set_num_threads(g.threads)
    if ref not in _TASKS:
        _TASKS[ref] = ref.load()
    return run_unit(_TASKS[ref], spec, runtime, g, memory=memory)


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
        workers: processes for ``"processes"`` / ``"dask"`` (default: the CPU count).
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
        >>> df = workbench.sweep("digits-cnn", workbench.grid(prune=[0, .5], bits=[32, 8]), store="r.sqlite")
        >>> workbench.pareto(df)[["variant", "accuracy", "latency_ms_p50", "pareto"]]
    """
    from workbench import zoo
    from workbench.measurement.record import library_versions

    task = zoo.load(task) if isinstance(task, str) else task
    g = grid if grid is not None else Grid()
    if not isinstance(g, Grid):
        raise WorkbenchError(f"sweep() takes a workbench.grid(...), got {type(g).__name__}")
    _check_devices(g)
    dropped = [(s.label, r) for s, r in g.dropped]
    specs = g.variants
    if task.train_inputs is None:
        dropped += [(s.label, f"{task.name} has no training split to recover with") for s in specs if s.recover]
        specs = [s for s in specs if not s.recover]
    versions = {**library_versions(), "workbench": _workbench_version()}
    todo_all = [u for u in units(task, g, versions) if u.spec in specs]
    st = open_store(store)
    have = st.present(k for u in todo_all for _, k in u.row_keys)
    pending = [u for u in todo_all if not all(k in have for _, k in u.row_keys)]

    bar = _progress(progress, total=len(todo_all), initial=len(todo_all) - len(pending), desc=f"sweep {task.name}")
    try:
        for unit, rows in _execute(executor, task, g, pending, workers, memory):
            keyed = [{**r, "key": k, "unit": unit.key, "task": task.name}
                     for r, (_, k) in zip(_by_device(rows, unit), unit.row_keys)]
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


def _workbench_version() -> str:
    from workbench.core.version import VERSION

    return VERSION


def _check_devices(g: Grid) -> None:
    from workbench.hardware.catalog import device

    for d in g.devices:
        device(d)  # raises WorkbenchError naming the known profiles


def _by_device(rows: list[dict[str, Any]], unit: Unit) -> list[dict[str, Any]]:
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


def _execute(executor: Any, task: Any, g: Grid, pending: Sequence[Unit], workers: int | None, memory: bool):
    """Yield ``(unit, rows)`` as units finish, from the chosen executor."""
    if not pending:
        return
    if executor == "serial":
        for u in pending:
            yield u, run_unit(task, u.spec, u.runtime, g, memory=memory)
        return
    ref = task_ref(task)
    if ref is None:
        raise WorkbenchError(
            f"task {task.name!r} lives only in this process (its model has no file, or was compressed in "
            "memory), so workers cannot load it. Use executor='serial', a zoo task, or a task made with "
            "Task.from_model(path, inputs) from a saved model file."
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise WorkbenchError(f"workers must be a positive integer, got {workers!r}")
    if executor == "processes":
        yield from _processes(ref, g, pending, workers or os.cpu_count() or 1, memory)
    elif executor == "dask" or isinstance(executor, str) and "://" in executor or _is_client(executor):
        yield from _dask(executor, ref, g, pending, workers, memory)
    else:
        raise WorkbenchError(
            f"unknown executor {executor!r}: use 'serial', 'processes', 'dask', a dask.distributed.Client, "
            "or a scheduler address such as 'tcp://127.0.0.1:8786'"
        )


def _is_client(x: Any) -> bool:
    return type(x).__name__ == "Client" and type(x).__module__.startswith("distributed")


def _processes(ref: TaskRef, g: Grid, pending: Sequence[Unit], workers: int, memory: bool):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: a forked copy of a process that already runs torch / onnxruntime thread pools can hang.
    with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(remote_unit, ref, u.spec, u.runtime, g, memory): u for u in pending}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BrokenProcessPool as e:
            raise WorkbenchError(
                f"a sweep worker process died ({e}); every finished variant is stored, so run the same sweep "
                "again to resume (or use executor='serial' to see which variant crashes)"
            ) from None
        finally:
            for f in futures:
                f.cancel()


def _dask(executor: Any, ref: TaskRef, g: Grid, pending: Sequence[Unit], workers: int | None, memory: bool):
    from distributed import Client, LocalCluster, as_completed

    cluster = client = None
    if executor == "dask":
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    elif isinstance(executor, str):
        client = Client(executor)
    else:
        client = executor
    try:
        futures = {client.submit(remote_unit, ref, u.spec, u.runtime, g, memory, pure=False): u for u in pending}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        finally:
            for f in futures:
                f.cancel()
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
        elif isinstance(executor, str):
            client.close()
