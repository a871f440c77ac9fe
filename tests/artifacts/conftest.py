"""Shared export fixtures: one signing key pair per session and each (task, target) exported once.

Exports take seconds (conversion, quantisation, parity on the evaluation split), so every test that needs the
digits-cnn `onnx-int8` artefact, say, gets the same one; tests that change files copy them first.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest

from workbench.core.errors import WorkbenchError

# Targets that genuinely do not apply to a task: the export must refuse with this message (then the test skips).
NOT_APPLICABLE = {
    ("digits-cnn", "onnx-int4"): "has none",  # Conv + Gemm only: MatMulNBits packs MatMul/Gather weights
    ("silero-vad", "onnx-int4"): "has none",
    ("minilm", "tflite-int8"): "does not apply",  # the integer file fails in LiteRT (DIV by a zero point)
}
# Exports whose parity check must fail with default tolerances (the check doing its job; figures measured here).
EXPECTED_PARITY_FAILURES: set[tuple[str, str]] = set()
# Empty since accuracy control (workbench.artifacts.accuracy_control): silero-vad onnx-int8-dynamic (0.41 all-int8)
# and tflite-int8 (0.59), and minilm onnx-int8 (0.52), now export with their most fragile tensors kept float.
# Known defects outside the exporter (xfail while the export raises; passes once fixed).
KNOWN_BUGS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="session")
def keypair(tmp_path_factory) -> tuple[Path, Path]:
    import workbench

    return workbench.keys.generate(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def exported(tmp_path_factory, keypair) -> Callable[[str, str], object]:
    """`exported(task_name, target)` -> the signed `Artifact`, or the `WorkbenchError` the export raised."""
    import workbench
    from workbench import zoo

    done: dict[tuple[str, str], object] = {}
    root = tmp_path_factory.mktemp("exports")

    def get(task_name: str, target: str) -> object:
        key = (task_name, target)
        if key not in done:
            task = zoo.load(task_name)
            try:
                done[key] = workbench.export(task.model, target, root / task_name / target, task=task,
                                             sign_with=keypair[0], device="raspberry-pi-5")
            except WorkbenchError as e:
                done[key] = e
        return done[key]

    return get


@pytest.fixture(scope="session")
def artifact(exported) -> Callable[[str, str], object]:
    """`artifact(task_name, target)` -> the artefact; a skip (after checking that the refusal says why) where
    the target does not apply to the task or is expected to fail parity."""

    def get(task_name: str, target: str):
        result = exported(task_name, target)
        reason = NOT_APPLICABLE.get((task_name, target))
        if reason is not None:
            assert isinstance(result, WorkbenchError), f"{target} on {task_name} was expected not to apply"
            assert reason in str(result)
            pytest.skip(f"{target} does not apply to {task_name}: {result}")
        if (task_name, target) in EXPECTED_PARITY_FAILURES:
            assert isinstance(result, WorkbenchError) and "failed parity" in str(result), result
            pytest.skip(f"{target} on {task_name} fails parity with default tolerances, as expected: {result}")
        if isinstance(result, Exception) and (task_name, target) in KNOWN_BUGS:
            pytest.xfail(f"{KNOWN_BUGS[task_name, target]}: {result}")
        if isinstance(result, Exception):
            raise result
        return result

    return get


@pytest.fixture
def copied(tmp_path):
    """`copied(artifact)` -> (artefact copy, manifest copy) in this test's tmp_path."""
    from workbench.artifacts import manifest_path

    def copy(art) -> tuple[Path, Path]:
        dst = tmp_path / art.path.name
        shutil.copyfile(art.path, dst)
        shutil.copyfile(art.manifest_path, manifest_path(dst))
        return dst, manifest_path(dst)

    return copy
