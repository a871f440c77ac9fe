"""The PyTorch runner: the in-memory module itself, under `torch.no_grad()`."""

from __future__ import annotations

import contextlib

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle, fixed_batch_of, flatten_outputs
from workbench.runtimes.runner import NATIVE, Runner


def make_runner(handle: ModelHandle, threads: int | None, name: str = "torch") -> Runner:
    import torch

    if handle.framework != "torch":
        raise WorkbenchError(
            f"{handle.name} is an {handle.framework.upper()} model; it runs in "
            f"{NATIVE[handle.framework]!r}, not 'torch'."
        )
    module = handle.module

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        with torch_threads(threads), torch.no_grad():
            result = module(*[torch.from_numpy(a) for a in arrays])
        return [t.detach().cpu().numpy() for _, t in flatten_outputs(result)]

    return Runner("torch", handle, handle.path, threads, torch.__version__, handle.inputs, call,
                  fixed_batch=fixed_batch_of(handle.inputs))


@contextlib.contextmanager
def torch_threads(threads: int | None):
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
