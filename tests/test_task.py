"""Task.from_model: accuracy with labels, fidelity without; evaluation limits; clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench import Task
from workbench.measurement.intervals import wilson


def test_from_model_with_labels_scores_accuracy(digits):
    x, y = digits.eval_inputs[0][:100], digits.eval_labels[:100]
    task = Task.from_model(digits.model.module, [x], labels=y, name="mine")
    assert task.metric == "accuracy"
    assert task.model.framework == "torch" and task.model.inputs[0].shape == (None, 1, 32, 32)
    acc = task.evaluate(workbench.runtime(task.model, "torch"))["accuracy"]
    # Same figure as the zoo task on the same rows.
    assert acc == digits.evaluate(workbench.runtime(digits.model, "torch"), limit=100)["accuracy"]
    shuffled = Task.from_model(task.model, [x], labels=np.roll(y, 1))
    assert shuffled.evaluate(workbench.runtime(task.model, "torch"))["accuracy"] < 0.3


@pytest.mark.parametrize("rt", ["torch", "onnxruntime", "litert"])
def test_from_model_without_labels_is_fidelity_one_everywhere(digits, rt):
    task = Task.from_model(digits.model, [digits.eval_inputs[0][:64]])
    assert task.metric == "fidelity"
    scores = task.evaluate(workbench.runtime(task.model, rt))
    # 64 of 64 agree: the figure is 1.0 and its Wilson interval says 64 samples cannot prove better than ~94 %.
    assert scores == {"fidelity": 1.0, "fidelity_low": pytest.approx(wilson(64, 64)[0], abs=1e-6), "fidelity_high": 1.0}


def test_fidelity_drops_for_a_different_model(digits):
    import copy

    import torch

    task = Task.from_model(digits.model, [digits.eval_inputs[0][:64]])
    broken = copy.deepcopy(digits.model.module)
    with torch.no_grad():
        broken.classifier.weight.mul_(-1)
    other = workbench.load(broken, example_inputs=digits.example_inputs)
    assert task.evaluate(workbench.runtime(other, "torch"))["fidelity"] < 0.5


def test_fidelity_uses_cosine_for_embeddings():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 1)).eval()  # one column: not a classifier
    x = np.random.default_rng(0).standard_normal((32, 8)).astype(np.float32)
    task = Task.from_model(net, [x])
    assert task.evaluate(workbench.runtime(task.model, "onnxruntime"))["fidelity"] == pytest.approx(1.0)


def test_from_model_rejects_bad_data(digits):
    with pytest.raises(workbench.WorkbenchError, match="labels"):
        Task.from_model(digits.model, [digits.eval_inputs[0][:10]], labels=np.zeros(3))
    with pytest.raises(workbench.WorkbenchError, match="batch"):
        Task.from_model(digits.model, [np.zeros((2, 1, 32, 32), np.float32), np.zeros((3, 4), np.float32)])
    with pytest.raises(workbench.WorkbenchError, match="limit"):
        digits.evaluate(workbench.runtime(digits.model, "torch"), limit=0)


def test_public_surface():
    for name in workbench.__all__:
        assert hasattr(workbench, name), name
    assert issubclass(workbench.WorkbenchError, ValueError)


def test_from_model_keeps_a_training_split_for_recover(digits):
    x, y = digits.eval_inputs[0][:20], digits.eval_labels[:20]
    same = Task.from_model(digits.model, [x], labels=y)
    assert same.train_inputs[0] is x and same.train_labels is y and "same samples" in same.description
    apart = Task.from_model(digits.model, [x], labels=y, train_inputs=[digits.train_inputs[0][:30]],
                            train_labels=digits.train_labels[:30])
    assert len(apart.train_inputs[0]) == 30 and len(apart.eval_inputs[0]) == 20
    assert "same samples" not in apart.description
    with pytest.raises(workbench.WorkbenchError, match="train_labels"):
        Task.from_model(digits.model, [x], labels=y, train_inputs=[x], train_labels=y[:3])
    with pytest.raises(workbench.WorkbenchError, match="shapes"):
        Task.from_model(digits.model, [x], train_inputs=[np.zeros((4, 3), np.float32)])
