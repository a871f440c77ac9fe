"""Where a sweep's units run: this process, a local process pool, or Dask; found by name in `EXECUTORS`.

Every executor yields ``(unit, rows)`` as units finish; only the calling process writes the store. Adding an
executor is one function with the signature of `run_serial` plus one line in `EXECUTORS`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Sequence

from workbench.core.errors import WorkbenchError
from workbench.sweeps.spec import Grid
from workbench.sweeps.units import TaskRef, Unit, remote_unit, run_unit, task_ref

Results = Iterator[tuple[Unit, list[dict[str, Any]]]]


def run_serial(executor: Any, task: Any, g: Grid, pending: Sequence[Unit], workers: int | None, memory: bool) -> Results:
    """Every unit in this process, in order."""
    for u in pending:
        yield u, run_unit(task, u.spec, u.runtime, g, memory=memory)


def worker_task(task: Any) -> TaskRef:
    """The spec a worker process loads the task from; a clear error when only this process can run it."""
    ref = task_ref(task)
    if ref is None:
        raise WorkbenchError(
            f"task {task.name!r} lives only in this process (its model has no file, or was compressed in "
            "memory), so workers cannot load it. Use executor='serial', a zoo task, or a task made with "
            "Task.from_model(path, inputs) from a saved model file."
        )
    return ref


def is_dask_client(x: Any) -> bool:
    return type(x).__name__ == "Client" and type(x).__module__.startswith("distributed")


def run_processes(executor: Any, task: Any, g: Grid, pending: Sequence[Unit], workers: int | None, memory: bool):
    """A local pool of spawned processes; each loads the task once from its `TaskRef`."""
    ref = worker_task(task)
    workers = workers or os.cpu_count() or 1
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


def run_dask(executor: Any, task: Any, g: Grid, pending: Sequence[Unit], workers: int | None, memory: bool):
    """A new `LocalCluster` (``"dask"``), a scheduler address, or an existing `dask.distributed.Client`."""
    ref = worker_task(task)
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


EXECUTORS: dict[str, Callable[..., Results]] = {"serial": run_serial, "processes": run_processes, "dask": run_dask}


def executor_name(executor: Any) -> str | None:
    """The `EXECUTORS` entry for `executor`: a name, a scheduler address (Dask) or a Dask client; else None."""
    if isinstance(executor, str):
        return executor if executor in EXECUTORS else ("dask" if "://" in executor else None)
    return "dask" if is_dask_client(executor) else None


def execute(executor: Any, task: Any, g: Grid, pending: Sequence[Unit], workers: int | None, memory: bool) -> Results:
    """Yield ``(unit, rows)`` as units finish, from the chosen executor."""
    if not pending:
        return
    if executor == "serial":
        yield from run_serial(executor, task, g, pending, workers, memory)
        return
    worker_task(task)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise WorkbenchError(f"workers must be a positive integer, got {workers!r}")
    name = executor_name(executor)
    if name is None:
        raise WorkbenchError(
            f"unknown executor {executor!r}: use 'serial', 'processes', 'dask', a dask.distributed.Client, "
            "or a scheduler address such as 'tcp://127.0.0.1:8786'"
        )
    yield from EXECUTORS[name](executor, task, g, pending, workers, memory)
