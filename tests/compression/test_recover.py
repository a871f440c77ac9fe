"""Recover: config validation, recovery of damaged zoo models, compression kept through training, the teacher."""

from __future__ import annotations

import copy
import importlib
import json

import numpy as np
import pytest
import torch
import torch.nn.utils.prune

import workbench
from workbench import zoo
from workbench.compression import recover as recover_module
from workbench.compression.base import compress, config_from_dict
from workbench.compression.recover import Method, Recover

CNN_LAYERS = (torch.nn.Conv2d, torch.nn.Linear)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def baseline(digits):
    return _accuracy(digits, digits.model)


def _accuracy(task, handle) -> float:
    return task.evaluate(workbench.runtime(handle, "torch"))["accuracy"]


def _damaged(task, amount: float):
    """Global magnitude pruning of every conv/linear weight, made permanent, as a variant of the zoo model."""
    module = copy.deepcopy(task.model.module)
    params = [(m, "weight") for m in module.modules() if isinstance(m, CNN_LAYERS)]
    torch.nn.utils.prune.global_unstructured(params, pruning_method=torch.nn.utils.prune.L1Unstructured,
                                             amount=amount)
    for m, name in params:
        torch.nn.utils.prune.remove(m, name)
    handle = workbench.load(module, example_inputs=task.example_inputs, name="digits-cnn-pruned")
    handle.origin = task.model
    return handle


@pytest.fixture(scope="module")
def damaged60(digits):
    return _damaged(digits, 0.6)


@pytest.fixture(scope="module")
def damaged80(digits):
    return _damaged(digits, 0.8)


def _zeros(handle) -> dict[str, np.ndarray]:
    return {n: (p.detach().numpy() == 0) for n, p in handle.module.named_parameters() if p.dim() >= 2}


def _assert_clean(module) -> None:
    for name, m in module.named_modules():
        assert not m._forward_pre_hooks and not m._forward_hooks and not m._backward_hooks, name
        assert not torch.nn.utils.parametrize.is_parametrized(m), name
    assert all(p.grad is None for p in module.parameters())
    assert not module.training


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("bad, match", [
    (dict(steps=0), r"steps must be a positive integer"),
    (dict(steps=2.5), r"steps must be a positive integer"),
    (dict(steps=True), r"steps must be a positive integer"),
    (dict(lr=0.0), r"lr must be a finite number > 0"),
    (dict(lr=float("inf")), r"lr must be"),
    (dict(temperature=-1.0), r"temperature must be a finite number > 0"),
    (dict(batch_size=0), r"batch_size must be a positive integer"),
    (dict(seed=1.5), r"seed must be an integer"),
    (dict(method="prune"), r"method must be one of 'finetune', 'distill'"),
])
def test_bad_configs_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        Recover(**bad)


def test_label_round_trip_and_hashable():
    cfg = Recover(steps=300, method="distill", lr=5e-4, temperature=4, batch_size=32, seed=3)
    assert cfg.method is Method.DISTILL and cfg.temperature == 4.0
    assert cfg.label == "recover-distill-300" and Recover().label == "recover-finetune-200"
    d = json.loads(cfg.to_json())
    assert d["type"] == "recover" and d["method"] == "distill"
    assert config_from_dict(d) == cfg and hash(config_from_dict(d)) == hash(cfg)


# ---------------------------------------------------------------------------------------- refused early


def test_needs_a_task_and_a_training_split(digits, monkeypatch):
    recover = importlib.import_module("workbench.compression.recover")  # `workbench.compress` is also the verb

    def no_work(*_a, **_k):  # the errors must come before the model is even copied
        raise AssertionError("Recover started work before checking its input")

    monkeypatch.setattr(recover, "copy_module", no_work)
    with pytest.raises(workbench.WorkbenchError, match="pass the task"):
        compress(digits.model, Recover(steps=5))
    vad = zoo.load("silero-vad")
    with pytest.raises(workbench.WorkbenchError, match="this task has no training split"):
        compress(vad.model, Recover(steps=5), task=vad)
    with pytest.raises(workbench.WorkbenchError, match="input"):  # the wrong task for this model
        compress(vad.model, Recover(steps=5), task=digits)


# ---------------------------------------------------------------------------------------------- recovery


def test_finetune_recovers_heavy_pruning_and_keeps_the_zeros(digits, baseline, damaged80):
    fp_original, fp_damaged = digits.model.fingerprint, damaged80.fingerprint
    zeros_before = _zeros(damaged80)
    bn_before = {k: v.clone() for k, v in damaged80.module.state_dict().items() if "running" in k}
    before = _accuracy(digits, damaged80)
    assert before < baseline - 0.3  # 80 % of the weights gone really hurts

    fixed = compress(damaged80, Recover(steps=40), task=digits)

    after = _accuracy(digits, fixed)
    assert after > before + 0.5 and after >= baseline - 0.02, (before, after, baseline)
    zeros_after = _zeros(fixed)
    assert zeros_after.keys() == zeros_before.keys()
    for name, mask in zeros_before.items():  # exactly the same weights are zero: same sparsity, same pattern
        np.testing.assert_array_equal(zeros_after[name], mask, err_msg=name)
    bn_after = fixed.module.state_dict()
    assert not any(torch.equal(bn_after[k], v) for k, v in bn_before.items())  # statistics re-estimated
    meta = fixed.meta["recover"]
    assert meta["loss"] == "cross_entropy" and meta["steps"] == 40
    assert meta["final_loss"] < meta["initial_loss"] / 5
    assert meta["kept_zero_weights"] == sum(int(m.sum()) for m in zeros_before.values())
    assert [c.label for c in fixed.lineage] == ["recover-finetune-40"] and fixed.origin is digits.model
    _assert_clean(fixed.module)
    # Inputs untouched: the damaged variant and the original.
    assert workbench.core.handle.module_fingerprint(damaged80.module) == fp_damaged
    assert workbench.core.handle.module_fingerprint(digits.model.module) == fp_original
    assert _zeros(damaged80).keys() == zeros_before.keys()


def test_distill_learns_from_the_origin(digits, baseline, damaged60):
    before = _accuracy(digits, damaged60)
    fixed = compress(damaged60, Recover(steps=40, method="distill"), task=digits)
    after = _accuracy(digits, fixed)
    assert after > before + 0.02 and after >= baseline - 0.02, (before, after, baseline)
    assert fixed.meta["recover"]["loss"] == "kl"
    assert fixed.meta["recover"]["initial_loss"] > 0.1  # the teacher (origin) disagrees with the damaged model
    for name, mask in _zeros(damaged60).items():
        np.testing.assert_array_equal(_zeros(fixed)[name], mask, err_msg=name)
    # An original is its own teacher: nothing to learn at the first step (small batches: BatchNorm frozen).
    same = compress(digits.model, Recover(steps=1, method="distill", batch_size=8), task=digits)
    assert same.meta["recover"]["initial_loss"] < 1e-6


def test_seeded_and_deterministic(digits, damaged60):
    a = compress(damaged60, Recover(steps=4, seed=1), task=digits)
    b = compress(damaged60, Recover(steps=4, seed=1), task=digits)
    c = compress(damaged60, Recover(steps=4, seed=2), task=digits)
    assert a.fingerprint == b.fingerprint != c.fingerprint != damaged60.fingerprint


def test_small_batches_freeze_batchnorm(digits, damaged60):
    stats = {k: v for k, v in damaged60.module.state_dict().items() if "running" in k}
    small = compress(damaged60, Recover(steps=3, batch_size=8), task=digits).module.state_dict()
    assert all(torch.equal(small[k], v) for k, v in stats.items())
    assert not torch.equal(small["classifier.weight"], damaged60.module.classifier.weight)


def test_conv_models_train_channels_last_and_come_back_in_the_usual_layout(digits, damaged60, monkeypatch):
    xs = [torch.from_numpy(a[:2]) for a in digits.train_inputs]
    assert recover_module.channels_last(damaged60.module, xs)
    assert not recover_module.channels_last(torch.nn.Linear(4, 2), [torch.zeros(2, 4)])
    nhwc = compress(damaged60, Recover(steps=2), task=digits)
    tensors = [*nhwc.module.parameters(), *nhwc.module.buffers()]
    assert all(t.is_contiguous() for t in tensors)
    monkeypatch.setattr(recover_module, "channels_last", lambda *_: False)
    nchw = compress(damaged60, Recover(steps=2), task=digits)
    # The layout changes no value beyond float round-off: the same losses, and (Adam's first steps can turn a
    # near-zero gradient's round-off into a full lr-sized step) nearly the same model.
    first, last = (nhwc.meta["recover"][k] / nchw.meta["recover"][k] for k in ("initial_loss", "final_loss"))
    assert first == pytest.approx(1, abs=1e-5) and last == pytest.approx(1, abs=1e-2)
    x = torch.from_numpy(digits.eval_inputs[0][:256])
    with torch.no_grad():
        a, b = nhwc.module(x), nchw.module(x)
    assert float((a - b).abs().max()) < 0.02 * float(b.abs().max())


def test_recover_after_quantize_stays_on_the_grid(digits, baseline):
    quantize = pytest.importorskip("workbench.compression.quantize")
    q3 = compress(digits.model, quantize.Quantize(3))
    before = _accuracy(digits, q3)
    fixed = compress(q3, Recover(steps=40), task=digits)
    after = _accuracy(digits, fixed)
    assert after > before + 0.03 and after >= baseline - 0.02, (before, after, baseline)
    layers = [(n, m) for n, m in fixed.module.named_modules() if isinstance(m, CNN_LAYERS)]
    assert sorted(fixed.meta["recover"]["quantised_params"]) == sorted(f"{n}.weight" for n, _ in layers)
    for name, m in layers:
        w = m.weight.detach()
        rows = w.reshape(len(w), -1)
        assert max(len(torch.unique(r)) for r in rows) <= 2**3, name
        torch.testing.assert_close(quantize.fake_quantize(w, 3), w, rtol=0, atol=1e-6)  # already on the grid
    assert not torch.equal(fixed.module.classifier.weight, q3.module.classifier.weight)  # it did train


@pytest.mark.slow
def test_minilm_distillation_heals_a_low_rank_encoder():
    """50 steps at batch 16 (35-40 s on one core): the embeddings move back towards the fp32 ones."""
    from workbench.compression.lowrank import LowRank

    task = zoo.load("minilm")
    thin = compress(task.model, LowRank(0.5))
    finetune = compress(thin, Recover(steps=1, batch_size=4), task=task)
    assert finetune.meta["recover"]["loss"] == "cosine"  # topic ids are not targets for 384 embedding columns
    healed = compress(thin, Recover(steps=50, batch_size=16, method="distill", lr=1e-4), task=task)
    meta = healed.meta["recover"]
    assert meta["loss"] == "cosine" and meta["final_loss"] < meta["initial_loss"]
    before = task.evaluate(workbench.runtime(thin, "torch"), limit=96)["cosine"]
    after = task.evaluate(workbench.runtime(healed, "torch"), limit=96)["cosine"]
    assert after > before + 0.08, (before, after)  # measured: 0.72 -> 0.89 on 200 samples
