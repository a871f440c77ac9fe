"""Compressing models no one here wrote: every loaded format, every first technique, an honest route or error."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

import workbench
from tests import foreign_models
from workbench import LowRank, Prune, Quantize, Recover, compress
from workbench.compression.mixed_precision import sensitivity
from workbench.core.errors import WorkbenchError
from workbench.core.paths import data_file

FIRST_TRIES = [Quantize(8), Prune(0.5), Prune(0.5, structure="channel")]


@pytest.fixture(scope="module")
def paddle_task():
    x = np.random.default_rng(0).standard_normal((16, 3, 48, 192)).astype(np.float32)
    return workbench.Task.from_model(workbench.load(data_file(foreign_models.FOREIGN_ONNX)), [x])


def _weights(path) -> dict[str, np.ndarray]:
    m = onnx.load(str(path))
    return {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer if len(i.dims) >= 2}


def test_the_paddle2onnx_file_is_quantised_and_pruned_in_place(paddle_task):
    h = paddle_task.model
    q8, half = compress(paddle_task, Quantize(8)), compress(paddle_task, Prune(0.5))
    for v in (q8, half):
        assert v.framework == "onnx" and v.origin is h and v.meta["route"][0].startswith("onnxslim (")
        assert v.meta["route"][-1].endswith("onnx in place")
    assert len(q8.meta["quant"]) == 54  # 53 convs + the classifier, all quantised
    assert paddle_task.evaluate(workbench.runtime(q8, "onnxruntime"))["fidelity"] >= 0.9
    w = _weights(half.path)
    zeros = sum(int((a == 0).sum()) for a in w.values()) / sum(a.size for a in w.values())
    assert 0.45 <= zeros <= 0.55 and half.meta["sparsity"] == pytest.approx(zeros, abs=0.05)


@pytest.mark.slow
def test_the_paddle2onnx_file_is_channel_pruned_through_a_module(paddle_task):
    h = paddle_task.model
    thin = compress(paddle_task, Prune(0.5, structure="channel"))
    assert thin.framework == "onnx" and thin.origin is h and "onnx -> onnx2torch" in thin.meta["route"]
    assert thin.num_params < 0.6 * h.num_params and thin.meta["channels"]
    assert workbench.runtime(thin, "onnxruntime")(paddle_task.eval_inputs[0][:2])[0].shape == (2, 2)


@pytest.mark.parametrize("build", ["fixed_batch_pt2", "traced_torchscript"])
def test_torchscript_and_exported_programs_compress_and_come_back_in_their_format(tmp_path, build):
    path = getattr(foreign_models, build)(tmp_path / ("m.pt2" if "pt2" in build else "m.pt"))
    task = workbench.Task.from_model(workbench.load(path), foreign_models.inputs(24))  # 24 samples, batch 1 file
    for cfg in FIRST_TRIES:
        v = compress(task, cfg)
        assert v.source_format == task.model.source_format and v.origin is task.model
        assert v.meta["route"][-1] == f"torch -> {task.model.source_format}"
        score = task.evaluate(workbench.runtime(v, "torch"))["fidelity"]
        assert score >= (0.9 if cfg.kind == "quantize" else 0.3)
    assert v.num_params < task.model.num_params  # the channel-pruned one is smaller


def _users_task(digits, digits_onnx, n=400):
    return workbench.Task.from_model(digits_onnx, [digits.eval_inputs[0][:n]], labels=digits.eval_labels[:n],
                                     train_inputs=digits.train_inputs, train_labels=digits.train_labels)


@pytest.mark.slow
def test_recover_fine_tunes_a_users_onnx_file_with_their_labels(digits, digits_onnx):
    mine = _users_task(digits, digits_onnx)
    base = mine.evaluate(workbench.runtime(mine.model, "onnxruntime"))["accuracy"]
    pruned = compress(mine, Prune(0.7, structure="channel"))
    recovered = compress(mine, Prune(0.7, structure="channel"), Recover(steps=150))
    before = mine.evaluate(workbench.runtime(pruned, "onnxruntime"))["accuracy"]
    after = mine.evaluate(workbench.runtime(recovered, "onnxruntime"))["accuracy"]
    assert recovered.framework == "onnx" and after > before + 0.3 and after > base - 0.3  # 0.12 -> 0.76 seen


def test_sensitivity_ranks_the_layers_of_a_users_onnx_file(digits, digits_onnx):
    mine = _users_task(digits, digits_onnx, n=150)
    base = mine.evaluate(workbench.runtime(mine.model, "onnxruntime"))["accuracy"]
    sens = sensitivity(mine, "quantize", levels=[2], progress=False)
    assert len(sens) == 12 and sens["baseline"].iloc[0] == pytest.approx(base, abs=0.02)
    assert sens["drop"].max() > 0.05  # some layer matters at 2 bits


def test_lowrank_on_a_users_onnx_file(digits_onnx):
    digits_onnx.example_inputs = None  # the file's own static signature is enough to trace it
    thin = compress(digits_onnx, LowRank(0.25))
    assert thin.framework == "onnx" and thin.num_params < digits_onnx.num_params


def test_a_graph_without_weights_says_so_instead_of_returning_itself(tmp_path):
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    h = workbench.load(path)
    for cfg in [Prune(0.5), Prune(0.5, structure="2:4"), Quantize(8)]:
        with pytest.raises(WorkbenchError, match="no .*(weight|initializer)"):
            compress(h, cfg)
    with pytest.raises(WorkbenchError):
        compress(h, Prune(0.5, structure="channel"))


def test_sensitivity_ranks_a_tflite_files_layers_in_the_flatbuffer():
    h = workbench.load(data_file("foreign/hand_recrop.tflite"))
    task = workbench.Task.from_model(h, [np.random.default_rng(0).standard_normal((4, 256, 256, 3)).astype(np.float32)])
    sens = sensitivity(task, "quantize", levels=[2], progress=False)
    assert len(sens) > 20 and set(sens["type"]) >= {"CONV_2D", "DEPTHWISE_CONV_2D"}
    assert sens["baseline"].iloc[0] == 1.0 and sens["drop"].max() > 0.01  # 2-bit weights hurt some layer
    pruned = sensitivity(task, "prune", levels=[0.0], layers=["output_crop"], progress=False)
    assert pruned["drop"].tolist() == [0.0]  # level 0 changes nothing: the original is restored between layers


def test_a_crash_inside_a_technique_comes_out_as_a_workbench_error_that_names_it(digits_onnx, monkeypatch):
    import importlib

    prune = importlib.import_module("workbench.compression.prune")

    def broken(*_a, **_k):
        return [][0]  # an IndexError deep inside, as a library bug would raise

    monkeypatch.setattr(prune, "prune_onnx_model", broken)
    with pytest.raises(WorkbenchError, match=r"prune-unstructured-0.50 failed inside IndexError.*exclude"):
        compress(digits_onnx, Prune(0.5))
