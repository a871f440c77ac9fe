"""The same fp32 model on every installed runtime: each zoo task's metric agrees with ONNX Runtime's within 0.005.

digits runs in the default suite; MiniLM, the VAD and the language model (minutes of conversion and evaluation)
in the slow step.
"""

from __future__ import annotations

import pytest

import workbench

AGREEMENT = 0.005  # the bar: fp32 on every runtime within 0.005 of ONNX Runtime's metric


def metrics_on_every_runtime(task, limit=None):
    out = {}
    for rt in workbench.available_runtimes():
        m = workbench.measure(task.model, task, runtime=rt, threads=1, limit=limit, memory=False)
        assert m.error is None, f"{task.name} on {rt}: {m.error}"
        out[rt] = m.metrics[task.metric]
    return out


def assert_agree(task, got):
    assert {"torch", "onnxruntime", "litert", "openvino", "executorch"} <= set(got), got
    ref = got["onnxruntime"]
    far = {rt: v for rt, v in got.items() if abs(v - ref) > AGREEMENT}
    assert not far, f"{task.name}: {task.metric} on ONNX Runtime {ref:.4f}; beyond {AGREEMENT}: {far}"


def test_digits_agrees_on_all_five_runtimes(digits):
    assert_agree(digits, metrics_on_every_runtime(digits))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minilm", "silero-vad"])
def test_zoo_task_agrees_on_all_five_runtimes(name):
    task = workbench.zoo.load(name)
    assert_agree(task, metrics_on_every_runtime(task))
