"""Distill: a smaller student trained from the digits CNN's soft targets; inputs untouched; validation; refusals."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import workbench
from workbench import zoo
from workbench.compression import Distill, Prune
from workbench.compression.base import compress, config_from_dict, supported_frameworks
from workbench.compression.distill import distill_language_model
from workbench.core.handle import module_fingerprint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LEARN = dict(steps=60, lr=1e-2)  # enough for a quarter-width student from scratch (~0.9 on the first 200)


def _accuracy(task, handle, limit: int = 200) -> float:
    return task.evaluate(workbench.runtime(handle, "torch"), limit=limit)["accuracy"]


@pytest.fixture(scope="module")
def student(digits):
    """A quarter-width digits CNN, untrained (10.6k parameters against the teacher's 136k)."""
    return zoo.student(digits, width=0.25)


def _fp(module) -> str:
    return module_fingerprint(module)


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("bad, match", [
    (dict(steps=0), r"steps must be a positive integer"),
    (dict(steps=1.5), r"steps must be a positive integer"),
    (dict(temperature=0.0), r"temperature must be a finite number > 0"),
    (dict(temperature=float("nan")), r"temperature must be"),
    (dict(alpha=-0.1), r"alpha must be a number in \[0, 1\]"),
    (dict(alpha=1.5), r"alpha must be"),
    (dict(lr=-1e-3), r"lr must be a finite number > 0"),
    (dict(batch_size=0), r"batch_size must be a positive integer"),
    (dict(seed=True), r"seed must be an integer"),
])
def test_bad_values_are_refused(student, bad, match):
    with pytest.raises(ValueError, match=match):
        Distill(student=student, **bad)


def test_the_student_must_be_a_module(digits):
    with pytest.raises(ValueError, match=r"student must be a torch nn.Module.*handle.module"):
        Distill(student=digits.model)
    with pytest.raises(TypeError):
        Distill()  # the student is required


def test_label_repr_and_a_stable_json_description(student):
    cfg = Distill(student=student, steps=50, alpha=0.5, temperature=2)
    assert cfg.label == "distill-digitscnn-11k-a0.5-t2-50"
    assert repr(cfg) == ("Distill(student=DigitsCNN(10,634 params), steps=50, temperature=2, alpha=0.5, lr=0.003, "
                         "batch_size=64, seed=0)")
    d = json.loads(cfg.to_json())
    assert d["student"]["class"] == "workbench.zoo.digits_net.DigitsCNN" and d["student"]["params"] == 10634
    assert cfg.digest == Distill(student=copy.deepcopy(student), steps=50, alpha=0.5, temperature=2).digest
    assert cfg.digest != Distill(student=zoo.student("digits-cnn", width=0.25, seed=1), steps=50, alpha=0.5,
                                 temperature=2).digest  # another init is another config
    with pytest.raises(ValueError, match="cannot be rebuilt from JSON"):
        config_from_dict(d)


# ---------------------------------------------------------------------------------------------- training


def test_the_student_learns_and_nothing_passed_in_changes(digits, student):
    fp_student, fp_teacher = _fp(student), _fp(digits.model.module)
    before = _accuracy(digits, workbench.load(student, example_inputs=digits.example_inputs))
    cfg = Distill(student=student, **LEARN)
    small = compress(digits.model, cfg, task=digits)
    after = _accuracy(digits, small)
    assert before < 0.3 and after > before + 0.5, (before, after)
    assert _fp(student) == fp_student and _fp(digits.model.module) == fp_teacher  # both intact
    assert small.module is not student and type(small.module) is type(student) and not small.module.training
    assert small.num_params == sum(p.numel() for p in student.parameters()) == 10634
    assert small.lineage == (cfg,) and small.origin is digits.model and small.name == f"digits-cnn|{cfg.label}"
    meta = small.meta["distill"]
    assert meta["student"] == "DigitsCNN" and meta["teacher"] == "digits-cnn" and meta["alpha"] == 0.9
    assert meta["final_loss"] < meta["initial_loss"] / 3
    assert all(t.is_contiguous() for t in [*small.module.parameters(), *small.module.buffers()])
    assert all(p.grad is None for p in small.module.parameters())


def test_the_soft_targets_are_what_alpha_weighs(digits, student):
    """alpha=0 never looks at the teacher; alpha=1 learns only from it, so another teacher gives another model."""
    other = compress(digits.model, Prune(0.5, structure="channel"))  # a different teacher, same outputs
    short = dict(steps=5, batch_size=32)
    labels_a = compress(digits.model, Distill(student=student, alpha=0.0, **short), task=digits)
    labels_b = compress(other, Distill(student=student, alpha=0.0, **short), task=digits)
    soft_a = compress(digits.model, Distill(student=student, alpha=1.0, **short), task=digits)
    soft_b = compress(other, Distill(student=student, alpha=1.0, **short), task=digits)
    assert labels_a.fingerprint == labels_b.fingerprint  # the teacher plays no part without soft targets
    assert soft_a.fingerprint != soft_b.fingerprint != labels_a.fingerprint
    assert other.lineage and len(soft_b.lineage) == 1  # the student carries none of the teacher's
    assert soft_b.meta["distill"]["teacher_lineage"] == [c.label for c in other.lineage] and "quant" not in soft_b.meta


def test_seeded_and_deterministic(digits, student):
    a, b, c = (compress(digits.model, Distill(student=student, steps=4, batch_size=32, seed=s), task=digits)
               for s in (1, 1, 2))
    assert a.fingerprint == b.fingerprint != c.fingerprint != _fp(student)


# ---------------------------------------------------------------------------------------------- refusals


def test_a_student_of_the_wrong_shape_is_refused_before_training(digits):
    five = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(32 * 32, 5))
    with pytest.raises(workbench.WorkbenchError, match=r"outputs \(5,\) per sample.*\(10,\).*nn.Linear\(\.\.\., 10\)"):
        compress(digits.model, Distill(student=five), task=digits)
    flat = torch.nn.Linear(3, 10)  # cannot even run on a (1, 32, 32) image
    with pytest.raises(workbench.WorkbenchError, match=r"cannot run on digits-cnn's input, of shape \(1, 32, 32\) per sample"):
        compress(digits.model, Distill(student=flat), task=digits)


def test_needs_a_task_with_training_data(digits, student):
    with pytest.raises(workbench.WorkbenchError, match=r"pass the task.*Distill\(student=\.\.\.\)"):
        compress(digits.model, Distill(student=student, steps=1))


def test_language_models_are_refused_clearly(digits, student):
    assert supported_frameworks(Distill) == ["lm", "torch"]
    with pytest.raises(workbench.WorkbenchError, match=r"language-model students.*Recover\(method='distill'"):
        distill_language_model(digits.model, Distill(student=student), None)
