"""Edge Workbench: load a model, compress it, measure it on real runtimes, export it with proof.

Example:
    >>> import workbench
    >>> task = workbench.zoo.load()                       # the default task: keyword spotting (DS-CNN)
    >>> run = workbench.runtime(task.model, "onnxruntime")
    >>> round(task.evaluate(run)["accuracy"], 4)
    0.8875
"""

from __future__ import annotations

# Lazy public surface (PEP 562): `import workbench` loads no heavy library (torch alone takes ~2 s to import, pandas
# ~0.4 s); each name is imported from its module on first use, so a notebook pays only for what it touches.
import importlib
from typing import TYPE_CHECKING, Any

from workbench.core.version import VERSION

_LAZY = {
    "Artifact": "workbench.artifacts", "Tolerance": "workbench.artifacts", "VerifiedArtifact": "workbench.artifacts",
    "decrypt": "workbench.artifacts", "export": "workbench.artifacts", "keys": "workbench.artifacts",
    "verify": "workbench.artifacts",
    "Distill": "workbench.compression", "LowRank": "workbench.compression", "Prune": "workbench.compression", "Quantize": "workbench.compression",
    "Recover": "workbench.compression", "auto_mixed_precision": "workbench.compression",
    "compress": "workbench.compression", "prune_plan": "workbench.compression", "sensitivity": "workbench.compression",
    "WorkbenchError": "workbench.core.errors", "ModelHandle": "workbench.core.handle",
    "TensorSpec": "workbench.core.handle", "load": "workbench.formats.loader",
    "Estimate": "workbench.hardware", "device": "workbench.hardware", "devices": "workbench.hardware",
    "estimate": "workbench.hardware", "DeviceProfile": "workbench.hardware.profile",
    "Measurement": "workbench.measurement", "measure": "workbench.measurement",
    "profile_layers": "workbench.measurement", "to_frame": "workbench.measurement",
    "SpeedExplanation": "workbench.measurement.explain", "explain_speed": "workbench.measurement.explain",
    "baseline": "workbench.measurement.baseline", "calibrate_host": "workbench.measurement.calibrate",
    "Space": "workbench.searches", "hypervolume": "workbench.searches", "search": "workbench.searches",
    "RUNTIMES": "workbench.runtimes", "Runner": "workbench.runtimes", "available_runtimes": "workbench.runtimes",
    "runtime": "workbench.runtimes",
    "Decision": "workbench.sweeps", "Grid": "workbench.sweeps", "ResultStore": "workbench.sweeps",
    "best": "workbench.sweeps", "decide": "workbench.sweeps", "grid": "workbench.sweeps", "pareto": "workbench.sweeps",
    "results_frame": "workbench.sweeps", "sweep": "workbench.sweeps",
    "Task": "workbench.task",
}
"""Public name -> the module it lives in; `__getattr__` imports it on first access."""
_SUBPACKAGES = ("artifacts", "cli", "compression", "core", "federated", "formats", "hardware", "measurement", "nets",
                "plan", "realize", "report", "runtimes", "searches", "sweeps", "task", "ui", "viz", "zoo")
"""Submodules reachable as attributes (``workbench.viz.pareto_scatter``), imported on first access too."""

if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from workbench import federated, plan, zoo
    from workbench.artifacts import Artifact, Tolerance, VerifiedArtifact, decrypt, export, keys, verify
    from workbench.compression import (
        Distill,
        LowRank,
        Prune,
        Quantize,
        Recover,
        auto_mixed_precision,
        compress,
        prune_plan,
        sensitivity,
    )
    from workbench.core.errors import WorkbenchError
    from workbench.core.handle import ModelHandle, TensorSpec
    from workbench.formats.loader import load
    from workbench.hardware import Estimate, device, devices, estimate
    from workbench.hardware.profile import DeviceProfile
    from workbench.measurement import Measurement, measure, profile_layers, to_frame
    from workbench.measurement.baseline import baseline
    from workbench.measurement.calibrate import calibrate_host
    from workbench.measurement.explain import SpeedExplanation, explain_speed
    from workbench.runtimes import RUNTIMES, Runner, available_runtimes, runtime
    from workbench.searches import Space, hypervolume, search
    from workbench.sweeps import Decision, Grid, ResultStore, best, decide, grid, pareto, results_frame, sweep
    from workbench.task import Task

__version__ = VERSION


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        value = importlib.import_module(f"workbench.{name}")
    elif name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        # As `from package import name` does, a name that is a submodule (workbench.artifacts.keys) is imported.
        value = getattr(module, name) if hasattr(module, name) else importlib.import_module(f"{_LAZY[name]}.{name}")
    else:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    globals()[name] = value  # later accesses skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, *_SUBPACKAGES})


__all__ = [
    "Artifact",
    "Tolerance",
    "VerifiedArtifact",
    "decrypt",
    "export",
    "keys",
    "verify",
    "DeviceProfile",
    "Estimate",
    "Measurement",
    "calibrate_host",
    "explain_speed",
    "SpeedExplanation",
    "device",
    "devices",
    "estimate",
    "baseline",
    "measure",
    "results_frame",
    "profile_layers",
    "to_frame",
    "Distill",
    "LowRank",
    "Prune",
    "Quantize",
    "Recover",
    "auto_mixed_precision",
    "compress",
    "prune_plan",
    "sensitivity",
    "Grid",
    "ResultStore",
    "best",
    "decide",
    "Decision",
    "grid",
    "pareto",
    "sweep",
    "Space",
    "hypervolume",
    "search",
    "RUNTIMES",
    "ModelHandle",
    "Runner",
    "Task",
    "TensorSpec",
    "WorkbenchError",
    "__version__",
    "available_runtimes",
    "load",
    "runtime",
    "federated",
    "plan",
    "zoo",
]
