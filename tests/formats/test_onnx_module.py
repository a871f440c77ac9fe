"""Files as nn.Modules (onnx2torch) and back: outputs match, constant shapes are found or rewritten."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench
from tests import foreign_models
from workbench.core.errors import WorkbenchError
from workbench.core.paths import data_file
from workbench.formats.onnx_module import in_format, module_of


def _torch_out(handle, xs):
    with torch.no_grad():
        return handle.module(*[torch.from_numpy(a) for a in xs]).numpy()


def test_the_paddle2onnx_classifier_becomes_a_module_with_the_same_outputs():
    x = np.random.default_rng(1).standard_normal((3, 3, 48, 192)).astype(np.float32)
    h = workbench.load(data_file(foreign_models.FOREIGN_ONNX), example_inputs=[x])
    m = module_of(h)
    assert m.framework == "torch" and m.source_format == "module"
    assert sum(isinstance(l, torch.nn.Conv2d) for l in m.module.modules()) == 53  # real layers to rewrite
    ref = workbench.runtime(h, "onnxruntime")(x)[0]
    np.testing.assert_allclose(_torch_out(m, [x]), ref, atol=1e-5)
    assert m.meta["route"][0].startswith("onnxslim (") and m.meta["route"][1] == "onnx -> onnx2torch"
    assert m.meta["shape_locked"] == []  # its only reshape is a flatten, rewritten to follow any width
    assert module_of(h) is m  # converted once per original


def test_a_constant_reshape_that_names_a_width_locks_the_layer_feeding_it(tmp_path):
    h = workbench.load(foreign_models.constant_weights_onnx(tmp_path / "g.onnx", foreign_models.Grouped),
                       example_inputs=foreign_models.inputs(4))
    m = module_of(h)
    assert m.meta["shape_locked"] == ["b"]  # the gain constant and the [-1, 4, 32] reshape fix b's width
    v = workbench.compress(h, workbench.Prune(0.5, structure="channel"))
    assert v.framework == "onnx" and v.num_params < h.num_params
    assert v.meta["channels"] == {"a": [16, 8]} and v.meta["shape_locked"] == ["b"]


@pytest.mark.parametrize("build", ["fixed_batch_pt2", "traced_torchscript"])
def test_torch_files_round_trip_through_a_module_in_their_own_format(tmp_path, build):
    path = getattr(foreign_models, build)(tmp_path / ("m.pt2" if "pt2" in build else "m.pt"))
    h = workbench.load(path, example_inputs=foreign_models.inputs(1 if "pt2" in build else 2))
    m = module_of(h)
    back = in_format(m, h)
    assert back.source_format == h.source_format and back.origin is h
    xs = foreign_models.inputs(5)
    want = workbench.runtime(h, "torch")(*xs)[0]  # five samples through a batch-1 program: fed one by one
    np.testing.assert_allclose(workbench.runtime(back, "torch")(*xs)[0], want, atol=1e-5)


def test_tflite_has_no_module_route_and_says_what_to_do(tflite_file):
    with pytest.raises(WorkbenchError, match="unstructured"):
        module_of(workbench.load(tflite_file))
