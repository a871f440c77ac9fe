"""`runtime(handle, name)`: bind a model to PyTorch, ONNX Runtime or LiteRT, found by name in one registry.

`runtime` converts the handle to the runtime's format when needed (cached, see `workbench.formats.convert`)
and returns a `Runner`. Every runner takes numpy arrays, one per model input, and returns a list of numpy
arrays, so evaluation code never cares which runtime it talks to.

Adding a runtime is one module with ``make_runner(handle, threads, name) -> Runner`` plus one line in
`RUNNERS`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.lm import is_language_model
from workbench.runtimes.runner import Runner


@dataclass(frozen=True)
class RunnerEntry:
    """Where a runtime's runner lives and what must be installed for it."""

    module: str            # defines make_runner(handle, threads, name) -> Runner
    requires: str          # an importable top-level package
    optional: str = ""     # set for optional extras: what to say when it is missing
    lm_module: str = ""    # defines make_lm_runner(handle, threads, name) -> Runner for language models


RUNNERS: dict[str, RunnerEntry] = {
    "torch": RunnerEntry("workbench.runtimes.torch_runner", "torch", lm_module="workbench.runtimes.torch_lm_runner"),
    # a language model runs through ONNX Runtime GenAI (an ONNX Runtime session with a KV cache and a sampler)
    "onnxruntime": RunnerEntry("workbench.runtimes.onnxruntime_runner", "onnxruntime",
                               lm_module="workbench.runtimes.genai_runner"),
    "litert": RunnerEntry("workbench.runtimes.litert_runner", "ai_edge_litert",
                          lm_module="workbench.runtimes.litert_lm_runner"),
    # optional extra; see DESIGN.md for why it is never the default
    "tflite_runtime": RunnerEntry("workbench.runtimes.litert_runner", "tflite_runtime",
                                  "tflite_runtime is not installed (it is optional); use runtime 'litert' instead."),
}
RUNTIMES = tuple(RUNNERS)



def available_runtimes() -> list[str]:
    """Runtimes importable here; ``tflite_runtime`` is an optional extra."""
    return [r for r, e in RUNNERS.items() if not e.optional or importlib.util.find_spec(e.requires)]


def runtime(handle: ModelHandle, name: str = "onnxruntime", *, threads: int | None = None) -> Runner:
    """Bind a model to a runtime.

    Args:
        handle: the model.
        name: ``"torch"``, ``"onnxruntime"``, ``"litert"`` or ``"tflite_runtime"`` (when installed).
        threads: intra-op threads; `None` keeps the runtime's default.

    Returns:
        A callable `Runner`.

    Raises:
        WorkbenchError: unknown runtime, a conversion the workbench cannot do, or a failed conversion.

    Example:
        >>> task = workbench.zoo.load("digits-cnn")
        >>> run = workbench.runtime(task.model, "onnxruntime", threads=1)
        >>> run(np.zeros((2, 1, 32, 32), np.float32))[0].shape   # one input, batch 2 -> 10 logits each
        (2, 10)
    """
    if not isinstance(handle, ModelHandle):
        inner = getattr(handle, "model", None)  # a Task: run its model
        if not isinstance(inner, ModelHandle):
            raise WorkbenchError(
                f"runtime() takes a ModelHandle (from workbench.load) or a Task, got {type(handle).__name__}."
            )
        handle = inner
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise WorkbenchError(f"threads must be a positive integer or None, got {threads!r}.")
    if name not in RUNTIMES:
        raise WorkbenchError(f"Unknown runtime {name!r}. Choose one of: {', '.join(available_runtimes())}.")
    entry = RUNNERS[name]
    if entry.optional and not importlib.util.find_spec(entry.requires):
        raise WorkbenchError(entry.optional)
    if is_language_model(handle):
        if not entry.lm_module:
            raise WorkbenchError(f"{handle.name} is a language model; runtime {name!r} does not run language models. "
                                 f"Choose one of: {', '.join(r for r, e in RUNNERS.items() if e.lm_module)}.")
        return importlib.import_module(entry.lm_module).make_lm_runner(handle, threads, name)
    return importlib.import_module(entry.module).make_runner(handle, threads, name)
