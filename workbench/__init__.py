"""Edge Workbench: load a model, compress it, measure it on real runtimes, export it with proof.

Example:
    >>> import workbench
    >>> task = workbench.zoo.load()                       # the default task: keyword spotting (DS-CNN)
    >>> run = workbench.runtime(task.model, "onnxruntime")
    >>> round(task.evaluate(run)["accuracy"], 4)
    0.8875
"""

from __future__ import annotations

from workbench import plan, zoo
from workbench.artifacts import Artifact, Tolerance, VerifiedArtifact, decrypt, export, keys, verify
from workbench.compression import (
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
from workbench.core.version import VERSION
from workbench.formats.loader import load
from workbench.hardware import Estimate, device, devices, estimate
from workbench.hardware.profile import DeviceProfile
from workbench.measurement import Measurement, measure, profile_layers, to_frame
from workbench.measurement.baseline import baseline
from workbench.measurement.calibrate import calibrate_host
from workbench.runtimes import RUNTIMES, Runner, available_runtimes, runtime
from workbench.sweeps import Decision, Grid, ResultStore, best, decide, grid, pareto, results_frame, sweep
from workbench.task import Task

__version__ = VERSION

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
    "baseline",
    "measure",
    "results_frame",
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
    "decide",
    "Decision",
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
