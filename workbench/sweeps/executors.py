"""Where a sweep's units run: this process, a local process pool, or Dask; found by name in `EXECUTORS`.

Every executor yields ``(unit, rows)`` as units finish; only the calling process writes the store. Adding an
executor is one function with the signature of `run_serial` plus one line in `EXECUTORS`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Sequence

from workbench.core.errors import WorkbenchError
from workbench.sweeps.spec import Grid
from workbench.sweeps.units import TaskRef, Unit, remote_family, run_unit, task_ref

Results = Iterator[tuple[Unit, list[dict[str, Any]]]]


def run_serial(executor: Any, task: Any, g: Grid, pending: Sequence[Unit], workers: int | None, memory: bool) -> Results:
    """Every unit measured in this process, in order, with the grid's torch threads (as in a worker process).

    Building runs on `g.threads` intra-op threads too, not only timing: recovery fine-tuning of the kws DS-CNN
    took 60 ms a step on one thread and 300-650 ms on two on a busy 2-core machine. Prune points that fine-tune
    are built ahead, a few at a time, in this process and a helper process side by side (`workers` processes,
    default 2 on a machine with 2+ cores; see `workbench.sweeps.prebuild`), and only then measured here, with
    the helper idle.
    """
    import torch

    from workbench.sweeps.prebuild import Prebuild, build_processes

    before = torch.get_num_threads()
    torch.set_num_threads(g.threads)
    ahead = Prebuild(task, g, [u.spec for u in pending], build_processes(workers))
    try:
        ahead.start([u.spec for u in pending])
        for u in pending:
            ahead.ready(u.spec)
            yield u, run_unit(task, u.spec, u.runtime, g, memory=memory)
    finally:
        ahead.close()
        torch.set_num_threads(before)


def families(pending: Sequence[Unit], workers: int) -> list[list[Unit]]:
    """The units grouped so that a worker builds each pruned (+ recovered) model once and all its bit-widths from it.

    Units with nothing to prune share nothing costly and stay one per group. Where there are fewer groups than
    workers, the largest groups are halved (their pruning is then repeated, but every worker has work). The
    groups with fine-tuning come first, so the longest work starts first.

    Example:
        >>> g = workbench.grid(prune=[0, 0.5], structure=["channel"], bits=[32, 8, 4], recover=[10])
        >>> units = [Unit(s, "onnxruntime", s.label, ()) for s in g]
        >>> [[u.spec.label for u in f] for f in families(units, workers=2)][0]
        ['channel-0.50+r10', 'channel-0.50+r10+q8', 'channel-0.50+r10+q4']
    """
    groups: dict[Any, list[Unit]] = {}
    for u in pending:
        head = ((u.spec.lowrank, u.spec.prune, u.spec.structure, u.spec.recover) if u.spec.prune or u.spec.lowrank
                else ("alone", len(groups)))
        groups.setdefault(head, []).append(u)
    out = list(groups.values())
    while len(out) < workers and max(len(f) for f in out) > 1:
        big = max(out, key=len)
        out.remove(big)
        out += [big[: len(big) // 2], big[len(big) // 2:]]
    return sorted(out, key=lambda f: (f[0].spec.recover is None, f[0].spec.prune == 0, -len(f)))


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
    """A local pool of spawned processes; each loads the task once from its `TaskRef` and runs whole `families`."""
    ref = worker_task(task)
    workers = workers or os.cpu_count() or 1
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    # spawn, not fork: a forked copy of a process that already runs torch / onnxruntime thread pools can hang.
    groups = families(pending, workers)
    with ProcessPoolExecutor(max_workers=min(workers, len(groups)), mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(remote_family, ref, [(u.spec, u.runtime) for u in f], g, memory): f for f in groups}
        try:
            for fut in as_completed(futures):
                yield from zip(futures[fut], fut.result())
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
        groups = families(pending, workers or len(client.scheduler_info().get("workers", {})) or 1)
        futures = {client.submit(remote_family, ref, [(u.spec, u.runtime) for u in f], g, memory, pure=False): f
                   for f in groups}
        try:
            for fut in as_completed(futures):
                yield from zip(futures[fut], fut.result())
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
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise WorkbenchError(f"workers must be a positive integer, got {workers!r}")
    if executor == "serial":
        yield from run_serial(executor, task, g, pending, workers, memory)
        return
    worker_task(task)
    name = executor_name(executor)
    if name is None:
        raise WorkbenchError(
            f"unknown executor {executor!r}: use 'serial', 'processes', 'dask', a dask.distributed.Client, "
            "or a scheduler address such as 'tcp://127.0.0.1:8786'"
        )
    yield from EXECUTORS[name](executor, task, g, pending, workers, memory)
