"""Foreign ONNX graphs normalised before compressing: the paddle2onnx file and a built Constant-weights file."""

from __future__ import annotations

import collections

import numpy as np
import onnx
import pytest

import workbench
from tests import foreign_models
from workbench.core.paths import data_file
from workbench.formats.normalize import irregularities, normalized, run_onnx


@pytest.fixture(scope="module")
def paddle():
    x = np.random.default_rng(0).standard_normal((4, 3, 48, 192)).astype(np.float32)
    return workbench.load(data_file(foreign_models.FOREIGN_ONNX), example_inputs=[x])


def test_paddle2onnx_weights_move_from_constant_nodes_to_initializers(paddle):
    before = onnx.load(str(paddle.path))
    assert len(before.graph.initializer) == 0 and irregularities(before)  # the file as paddle2onnx wrote it
    assert paddle.num_params > 100_000  # its weights are counted even though they are Constant nodes
    norm = normalized(paddle)
    after = onnx.load(str(norm.path))
    ops = collections.Counter(n.op_type for n in after.graph.node)
    assert len(after.graph.initializer) > 100 and ops["Constant"] == 0 and ops["BatchNormalization"] == 0
    assert irregularities(after) == []
    assert norm.origin is paddle and norm.path != paddle.path and norm.meta["normalized"]
    x = paddle.example_inputs
    np.testing.assert_allclose(run_onnx(norm, x)[0], run_onnx(paddle, x)[0], atol=1e-5)
    assert onnx.load(str(paddle.path)).graph.node[0].op_type == "Constant"  # the original file is untouched


def test_a_regular_graph_comes_back_as_it_is(digits_onnx):
    assert normalized(digits_onnx) is digits_onnx


def test_an_opset_11_constant_weight_file_is_raised_to_opset_13(tmp_path):
    path = foreign_models.constant_weights_onnx(tmp_path / "c.onnx")
    h = workbench.load(path, example_inputs=foreign_models.inputs(4))
    found = irregularities(onnx.load(str(path)))
    assert any("Constant" in f for f in found) and any("opset 11" in f for f in found)
    norm = normalized(h)
    assert norm.path.is_file() and onnx.load(str(norm.path)).opset_import[0].version == 13
    np.testing.assert_allclose(run_onnx(norm, h.example_inputs)[0], run_onnx(h, h.example_inputs)[0], atol=1e-5)
