"""Export with proof: deployable files (ONNX, TFLite, TorchScript, .pt2), parity in the target runtime, signed
manifests, verification and optional encryption.

Example:
    >>> task = workbench.zoo.load("digits-cnn")
    >>> private, public = workbench.keys.generate("keys/")
    >>> art = workbench.export(task.model, "tflite-int8", "out/", task=task, sign_with=private)
    >>> art.parity["artifact"]["accuracy"] >= art.parity["source"]["accuracy"] - 0.02
    True
    >>> workbench.verify(art.path, public).target
    'tflite-int8'
"""

from __future__ import annotations

from workbench.artifacts.accuracy_control import AccuracyControl
from workbench.artifacts.api import Artifact, export
from workbench.artifacts.manifest import VerifiedArtifact, decrypt, manifest_path, release_of, verify, verify_chain
from workbench.artifacts.parity import DEFAULT_TOLERANCES, Tolerance
from workbench.artifacts.release_table import releases
from workbench.artifacts.sealed import sealed_evidence
from workbench.artifacts.targets import TARGETS, Target

__all__ = ["DEFAULT_TOLERANCES", "TARGETS", "AccuracyControl", "Artifact", "Target", "Tolerance", "VerifiedArtifact", "decrypt",
           "export", "manifest_path", "release_of", "releases", "sealed_evidence", "verify", "verify_chain"]
