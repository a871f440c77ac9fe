"""ExecuTorch realisation: fp32 XNNPACK says which ops stay on portable kernels; an 8-bit CNN variant becomes a
real int8 XNNPACK program (PT2E static, calibrated) within int8 tolerance; other widths fall back, said so."""

from __future__ import annotations

import pytest

import workbench
from workbench.realize import realize

pytest.importorskip("executorch")


@pytest.fixture(scope="module")
def digits():
    return workbench.zoo.load("digits-cnn")


def _accuracy(real, task) -> float:
    outputs, rows = task.run(workbench.runtime(real.handle, "executorch", threads=1))
    return task.score(outputs, rows)["accuracy"]


def test_fp32_names_ops_left_to_portable_kernels(digits):
    real = realize(digits.model, "executorch", digits)
    assert real.realized and real.path.suffix == ".pte" and real.compute_dtype is None
    # the CNN's global average pool (mean over H, W) is not taken by the XNNPACK partitioner
    assert real.note == "fp32 XNNPACK; aten::mean on portable kernels (not delegated to XNNPACK)"


@pytest.mark.slow
def test_int8_variant_is_static_int8_xnnpack(digits):
    q8 = workbench.compress(digits.model, workbench.Quantize(8))
    real = realize(q8, "executorch", digits)
    assert real.realized and real.compute_dtype == "int8"
    assert real.note.startswith("int8 XNNPACK (PT2E static, calibrated)")
    assert real.path.stat().st_size < 0.4 * realize(digits.model, "executorch", digits).path.stat().st_size
    assert abs(_accuracy(real, digits) - 0.989) <= 0.02


@pytest.mark.slow
def test_4_bit_falls_back_with_the_reason(digits):
    q4 = workbench.compress(digits.model, workbench.Quantize(4))
    real = realize(q4, "executorch", digits)
    assert not real.realized and real.compute_dtype is None
    assert real.note.startswith("not realised (4-bit weights") and "fp32 artefact" in real.note


@pytest.mark.slow
def test_minilm_int8_is_dynamic_int8_xnnpack():
    # the XNNPACK quantizer's scalar-to-tensor pass used to turn the attention mask's integer positions float
    minilm = workbench.zoo.load("minilm")
    real = realize(workbench.compress(minilm.model, workbench.Quantize(8)), "executorch", minilm)
    assert real.realized and real.compute_dtype == "int8"
    assert real.note.startswith("int8 XNNPACK (PT2E dynamic activations)") and "more on portable kernels" in real.note
    scores = minilm.score(*minilm.run(workbench.runtime(real.handle, "executorch", threads=1)))
    assert scores["cosine"] > 0.99 and abs(scores["accuracy"] - 0.885) <= 0.02
