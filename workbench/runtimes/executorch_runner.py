"""The ExecuTorch runner: a .pte program (XNNPACK delegate) through ``executorch.runtime``.

A torch model is converted first (`workbench.formats.pte_file.to_pte`, cached): torch.export with a dynamic batch
up to `pte_file.MAX_BATCH`, lowered to XNNPACK. The program's ``forward`` runs through
``Runtime.get().load_program(path).load_method("forward").execute([...])``; numpy inputs become tensors without a
copy (``torch.from_numpy``), and the runtime copies outputs out on every call, so they are returned as they are.

Threads: XNNPACK runs on ExecuTorch's one process-wide thread pool. ``portable_lib._unsafe_reset_threadpool(n)``
(an experimental pybinding) resizes it; the runner sets it to `threads` before a call whenever it differs
(``_threadpool_get_thread_count``), so two runners with different thread counts in one process each run at theirs.
`threads=None` leaves the pool as ExecuTorch sized it (one thread per performance core).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, fixed_batch_of
from workbench.runtimes.runner import Runner


def make_runner(handle: ModelHandle, threads: int | None, name: str = "executorch") -> Runner:
    import torch
    from executorch.runtime import Runtime

    from workbench.formats.pte_file import quiet_executorch, to_pte

    if handle.framework not in ("torch", "executorch"):
        raise WorkbenchError(f"{handle.name} is a {handle.framework} model; 'executorch' runs PyTorch models (converted "
                             "to .pte) and .pte files. Run it with its own runtime (e.g. 'onnxruntime', 'litert').")
    path = to_pte(handle)
    pin = thread_pinner(threads)
    pin()
    try:
        with quiet_executorch():
            method = Runtime.get().load_program(path).load_method("forward")
    except Exception as e:
        raise WorkbenchError(f"{path}: ExecuTorch cannot load the program: {first_line(e)}.") from e
    meta = method.metadata
    planned = [tuple(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())]
    if handle.framework == "executorch":
        specs = handle.inputs
    else:  # converted from torch: the torch names and dtypes, the batch free unless the model or program fixes it
        fixed = fixed_batch_of(handle.inputs) or static_batch(planned)
        specs = [TensorSpec(s.name, (fixed, *p[1:]) if fixed or not p else (None, *p[1:]), s.dtype)
                 for s, p in zip(handle.inputs, planned)] if len(planned) == len(handle.inputs) else handle.inputs
    fixed_batch = fixed_batch_of(specs)
    max_batch = planned[0][0] if planned and planned[0] else None

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        pin()
        outs = method.execute([torch.from_numpy(a) for a in arrays])
        return [o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outs]

    call = run if fixed_batch or not max_batch else _chunked(run, max_batch)
    from importlib.metadata import version

    return Runner(name, handle, path, threads, version("executorch"), specs, call, fixed_batch=fixed_batch)


def static_batch(planned: list[tuple[int, ...]]) -> int | None:
    """The batch of a converted program exported for a fixed batch (`to_pte` does that when a dynamic one fails at
    another batch): its inputs are planned for fewer than `MAX_BATCH` rows. None for a dynamic-batch program."""
    from workbench.formats.pte_file import MAX_BATCH

    rows = {p[0] for p in planned if p}
    return rows.pop() if len(rows) == 1 and next(iter(rows)) < MAX_BATCH else None


def thread_pinner(threads: int | None) -> Callable[[], None]:
    """A function that sets ExecuTorch's thread pool to `threads` when it has another size (no-op for `None`)."""
    if not threads:
        return lambda: None
    from executorch.extension.pybindings import portable_lib

    reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
    count = getattr(portable_lib, "_threadpool_get_thread_count", None)
    if reset is None or count is None:  # pragma: no cover - an ExecuTorch build without the threadpool bindings
        raise WorkbenchError("This ExecuTorch build cannot size its thread pool from Python; run with threads=None.")

    def pin() -> None:
        if count() != threads:
            reset(int(threads))

    return pin


def _chunked(run: Callable[[list[np.ndarray]], list[np.ndarray]], limit: int) -> Callable[..., Any]:
    """`run` on at most `limit` rows at a time (the batch the program's memory is planned for), concatenated."""

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        n = arrays[0].shape[0] if arrays and arrays[0].ndim else 1
        if n == 0:  # the program takes at least one row: run one to learn the output shapes, return none of it
            return [o[:0] for o in run([np.zeros((1, *a.shape[1:]), a.dtype) for a in arrays])]
        if n <= limit:
            return run(arrays)
        parts = [run([np.ascontiguousarray(a[i:i + limit]) for a in arrays]) for i in range(0, n, limit)]
        return [np.concatenate(p, axis=0) for p in zip(*parts)]

    return call
