"""`runtime(handle, name)`: bind a model to PyTorch, ONNX Runtime, LiteRT, OpenVINO or ExecuTorch, found by name in one
registry.

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
from typing import Sequence

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
    # OpenVINO reads the workbench's ONNX files (and its own IR); installed by the README's setup, but optional at
    # import time so a slim environment still imports the workbench
    "openvino": RunnerEntry("workbench.runtimes.openvino_runner", "openvino",
                            "OpenVINO is not installed; install it with: pip install openvino nncf "
                            "(the README's setup installs both).",
                            lm_module="workbench.runtimes.openvino_lm_runner"),
    # ExecuTorch runs .pte programs (torch.export, lowered to XNNPACK); optional at import time like OpenVINO
    "executorch": RunnerEntry("workbench.runtimes.executorch_runner", "executorch",
                              "ExecuTorch is not installed; install it with: pip install executorch "
                              "(the README's setup installs it).",
                              lm_module="workbench.runtimes.executorch_lm_runner"),
    # optional extra; see DESIGN.md for why it is never the default
    "tflite_runtime": RunnerEntry("workbench.runtimes.litert_runner", "tflite_runtime",
                                  "tflite_runtime is not installed (it is optional); use runtime 'litert' instead."),
}
RUNTIMES = tuple(RUNNERS)



def available_runtimes() -> list[str]:
    """Runtimes importable here; ``tflite_runtime`` is an optional extra."""
    return [r for r, e in RUNNERS.items() if not e.optional or importlib.util.find_spec(e.requires)]


def resolve_runtimes(names: str | Sequence[str]) -> tuple[str, ...]:
    """Runtime names as given, or every installed one for ``"all"`` (`available_runtimes`), without repeats.

    Raises:
        WorkbenchError: an unknown name, or none at all.

    Example:
        >>> resolve_runtimes(["onnxruntime", "torch", "onnxruntime"]), "onnxruntime" in resolve_runtimes("all")
        (('onnxruntime', 'torch'), True)
    """
    seq = [names] if isinstance(names, str) else list(names or [])
    out: list[str] = []
    for n in seq:
        if not isinstance(n, str):
            raise WorkbenchError(f"A runtime is named by a string, got {n!r}.")
        out += available_runtimes() if n == "all" else [n]
    unknown = [n for n in out if n not in RUNTIMES]
    if unknown or not out:
        raise WorkbenchError(f"Unknown runtime(s) {unknown or list(seq)}. Choose from: {', '.join(RUNTIMES)}, or 'all' "
                             f"(installed here: {', '.join(available_runtimes())}).")
    return tuple(dict.fromkeys(out))


def runtime(handle: ModelHandle, name: str = "onnxruntime", *, threads: int | None = None) -> Runner:
    """Bind a model to a runtime.

    Args:
        handle: the model.
        name: ``"torch"``, ``"onnxruntime"``, ``"litert"``, ``"openvino"``, ``"executorch"`` or ``"tflite_runtime"``
            (the last three when installed).
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
