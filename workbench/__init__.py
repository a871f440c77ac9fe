"""Edge Workbench: load a model, compress it, measure it on real runtimes, export it with proof.

Example:
    >>> import workbench
    >>> task = workbench.zoo.load()                       # the default digits CNN
    >>> run = workbench.runtime(task.model, "onnxruntime")
    >>> task.evaluate(run)["accuracy"] > 0.95
    True
"""

from __future__ import annotations

from workbench import keys, plan, zoo
from workbench.compress import (
    LowRank,
    Prune,
    Quantize,
    Recover,
    auto_mixed_precision,
    compress,
    prune_plan,
    sensitivity,
)
from workbench.devices import DeviceProfile, Estimate, calibrate_host, device, devices, estimate
from workbench.errors import WorkbenchError
from workbench.export import Artifact, Tolerance, VerifiedArtifact, decrypt, export, verify
from workbench.measure import Measurement, measure, profile_layers, to_frame
from workbench.model import ModelHandle, TensorSpec, load
from workbench.runtime import RUNTIMES, Runner, available_runtimes, runtime
from workbench.sweep import Grid, ResultStore, best, grid, pareto, sweep
from workbench.task import Task

__version__ = "0.1.0"

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
    "device",
    "devices",
    "estimate",
    "measure",
    "profile_layers",
    "to_frame",
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
    "grid",
    "pareto",
    "sweep",
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
    "plan",
    "zoo",
]
