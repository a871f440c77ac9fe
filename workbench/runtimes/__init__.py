"""Runtimes: one module per inference engine, found by name in `registry.RUNNERS`.

Example:
    >>> from workbench.runtimes import RUNTIMES, available_runtimes
    >>> RUNTIMES[:3], "onnxruntime" in available_runtimes()
    (('torch', 'onnxruntime', 'litert'), True)
"""

from workbench.runtimes.registry import RUNNERS, RUNTIMES, RunnerEntry, available_runtimes, resolve_runtimes, runtime
from workbench.runtimes.runner import NATIVE, Generation, Runner, check_inputs

__all__ = ["NATIVE", "Generation", "RUNNERS", "RUNTIMES", "Runner", "RunnerEntry", "available_runtimes", "check_inputs",
           "resolve_runtimes", "runtime"]
