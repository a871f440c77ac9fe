"""Reading ExecuTorch programs (.pte): a converted file loads and runs; truncated, garbage and renamed files get a
clear WorkbenchError (the runtime opens them in a child process first, so nothing crashes the test process)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import workbench
from workbench.core.errors import WorkbenchError

pytest.importorskip("executorch")


@pytest.fixture(scope="module")
def digits():
    return workbench.zoo.load("digits-cnn")


@pytest.fixture(scope="module")
def pte(digits):
    from workbench.formats.pte_file import to_pte

    return to_pte(digits.model)


def test_converted_program_loads_and_runs(pte, digits):
    h = workbench.load(pte)
    assert (h.framework, h.source_format) == ("executorch", "pte")
    assert pte.read_bytes()[4:8] == b"ET12"  # the flatbuffer identifier the loader sniffs
    assert h.inputs[0].shape == (None, 1, 32, 32) and h.inputs[0].dtype == "float32"
    assert h.outputs[0].shape == (None, 10)
    # weights live in the XNNPACK delegate's data: bytes are known, element counts are not (num_params says so)
    assert h.meta["pte"]["constant_bytes"] > 0.9 * digits.model.num_params * 4
    assert "XnnpackBackend" in h.meta["pte"]["delegates"]
    x = digits.eval_inputs[0][:3]
    np.testing.assert_allclose(workbench.runtime(h, "executorch", threads=1)(x)[0],
                               workbench.runtime(digits.model, "torch")(x)[0], atol=1e-4)


def test_truncated_program_is_a_clear_error(pte, tmp_path):
    bad = tmp_path / "cut.pte"
    bad.write_bytes(pte.read_bytes()[: pte.stat().st_size // 3])
    with pytest.raises(WorkbenchError, match="not a loadable ExecuTorch program|crashed"):
        workbench.load(bad)


def test_garbage_behind_the_identifier_is_a_clear_error(tmp_path):
    bad = tmp_path / "junk.pte"
    bad.write_bytes(b"\x10\x00\x00\x00ET12" + np.random.default_rng(0).bytes(4096))
    with pytest.raises(WorkbenchError, match="not a loadable ExecuTorch program|crashed"):
        workbench.load(bad)


def test_another_format_renamed_to_pte_is_refused(digits, tmp_path):
    onnx_file = workbench.runtime(digits.model, "onnxruntime").artifact
    renamed = tmp_path / "model.pte"
    shutil.copy(onnx_file, renamed)
    with pytest.raises(WorkbenchError, match="says an ExecuTorch program .*content is an ONNX model"):
        workbench.load(renamed)


def test_bytes_without_the_identifier_are_refused(tmp_path):
    bad = tmp_path / "noise.pte"
    bad.write_bytes(np.random.default_rng(1).bytes(2048))
    with pytest.raises(WorkbenchError, match="not an ExecuTorch program"):
        workbench.load(bad)
