"""Where a search's trials run: this process, a local process pool, or Dask; found by name in `POOLS`.

A pool takes one unit at a time (`submit`) and hands back whichever finished first (`next_done`), so the search
asks Optuna for a new trial as soon as a worker is free. Only the calling process writes the store and the study.

Latency without contention: parallel workers build, evaluate and estimate side by side, but time one at a time.
Each worker runs its unit inside `workbench.measurement.latency.exclusive_timing` with one lock shared by all
(a ``multiprocessing`` manager lock for the process pool, a ``dask.distributed.Lock`` on Dask), and `measure`
holds it only around its timed calls (`timing_section`). While one worker times, the others may still evaluate
accuracy on other cores (keep `workers` below the core count, and the grid's ``threads=1``, so a timed call has a
core to itself); no two timings ever overlap, so the objective a parallel search optimises is measured as a
serial sweep measures it.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from workbench.core.errors import WorkbenchError
from workbench.sweeps.spec import Grid, VariantSpec
from workbench.sweeps.units import TaskRef, Unit, remote_unit, run_unit

LOCK_NAME = "workbench-timing"
"""The `dask.distributed.Lock` every Dask worker times under."""


def locked_unit(lock: Any, ref: TaskRef, spec: VariantSpec, runtime: str, g: Grid, memory: bool) -> list[dict]:
    """`remote_unit` with its timing serialised on `lock` (a lock object, or the name of a Dask lock)."""
    from workbench.measurement.latency import exclusive_timing

    if isinstance(lock, str):
        from distributed import Lock

        lock = Lock(lock)
    with exclusive_timing(lock):
        return remote_unit(ref, spec, runtime, g, memory)


class SerialPool:
    """Every unit measured in this process when submitted, with the grid's torch threads."""

    capacity = 1

    def __init__(self, task: Any, g: Grid, workers: int | None, memory: bool, executor: Any = "serial") -> None:
        self.task, self.g, self.memory = task, g, memory
        self.done: list[tuple[Unit, list[dict]]] = []

    def submit(self, unit: Unit) -> None:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.g.threads)
        try:
            self.done.append((unit, run_unit(self.task, unit.spec, unit.runtime, self.g, memory=self.memory)))
        finally:
            torch.set_num_threads(before)

    def running(self) -> int:
        return len(self.done)

    def next_done(self) -> tuple[Unit, list[dict]]:
        return self.done.pop(0)

    def close(self) -> None:
        self.done.clear()


class ProcessPool:
    """A local pool of spawned processes; each loads the task once from its `TaskRef`."""

    def __init__(self, task: Any, g: Grid, workers: int | None, memory: bool, executor: Any = "processes") -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from workbench.sweeps.executors import worker_task

        self.ref, self.g, self.memory = worker_task(task), g, memory
        self.capacity = workers or os.cpu_count() or 1
        ctx = mp.get_context("spawn")  # spawn, not fork: a forked torch / onnxruntime process can hang
        self.manager = ctx.Manager()
        self.lock = self.manager.Lock()
        self.pool = ProcessPoolExecutor(max_workers=self.capacity, mp_context=ctx)
        self.futures: dict[Any, Unit] = {}

    def submit(self, unit: Unit) -> None:
        fut = self.pool.submit(locked_unit, self.lock, self.ref, unit.spec, unit.runtime, self.g, self.memory)
        self.futures[fut] = unit

    def running(self) -> int:
        return len(self.futures)

    def next_done(self) -> tuple[Unit, list[dict]]:
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        fut = next(iter(done))
        unit = self.futures.pop(fut)
        try:
            return unit, fut.result()
        except BrokenProcessPool as e:
            raise WorkbenchError(f"a search worker process died ({e}); every finished trial is stored, so run the "
                                 "same search again to resume (or executor='serial' to see which trial crashes)") from None

    def close(self) -> None:
        for f in self.futures:
            f.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.manager.shutdown()


class DaskPool:
    """A new `LocalCluster` (``"dask"``), a scheduler address, or an existing `dask.distributed.Client`."""

    def __init__(self, task: Any, g: Grid, workers: int | None, memory: bool, executor: Any = "dask") -> None:
        from distributed import Client, LocalCluster

        from workbench.sweeps.executors import worker_task

        self.ref, self.g, self.memory = worker_task(task), g, memory
        self.cluster = None
        if executor == "dask":
            self.cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                        processes=True, dashboard_address=None)
            self.client = Client(self.cluster)
        elif isinstance(executor, str):
            self.client = Client(executor)
        else:
            self.client = executor
        self.owned = isinstance(executor, str)
        self.capacity = workers or len(self.client.scheduler_info().get("workers", {})) or 1
        self.futures: dict[Any, Unit] = {}

    def submit(self, unit: Unit) -> None:
        fut = self.client.submit(locked_unit, LOCK_NAME, self.ref, unit.spec, unit.runtime, self.g, self.memory,
                                 pure=False)
        self.futures[fut] = unit

    def running(self) -> int:
        return len(self.futures)

    def next_done(self) -> tuple[Unit, list[dict]]:
        from distributed import wait

        done, _ = wait(list(self.futures), return_when="FIRST_COMPLETED")
        fut = next(iter(done))
        unit = self.futures.pop(fut)
        return unit, fut.result()

    def close(self) -> None:
        for f in self.futures:
            f.cancel()
        if self.owned:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


POOLS: dict[str, Callable[..., Any]] = {"serial": SerialPool, "processes": ProcessPool, "dask": DaskPool}


def open_pool(executor: Any, task: Any, g: Grid, workers: int | None, memory: bool) -> Any:
    """The pool for `executor` (a `POOLS` name, a Dask scheduler address or client)."""
    from workbench.sweeps.executors import executor_name

    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise WorkbenchError(f"workers must be a positive integer, got {workers!r}")
    name = "serial" if executor == "serial" else executor_name(executor)
    if name is None:
        raise WorkbenchError(f"unknown executor {executor!r}: use 'serial', 'processes', 'dask', a "
                             "dask.distributed.Client, or a scheduler address such as 'tcp://127.0.0.1:8786'")
    return POOLS[name](task, g, workers, memory, executor)
