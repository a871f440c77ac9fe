"""A sweep's peak-memory probes (forked from a pre-started process) give `peak_memory`'s figure, much faster."""

from __future__ import annotations

import time

import pytest

from workbench.formats.convert import to_onnx
from workbench.measurement import record
from workbench.sweeps.memory import MemoryProbes


@pytest.fixture()
def probes():
    p = MemoryProbes()
    yield p
    p.close()


def test_forked_probes_agree_with_a_fresh_process_and_cost_far_less(digits, probes, onnx_file, tiny_inputs):
    cases = [(to_onnx(digits.model), [a[:1] for a in digits.example_inputs]), (onnx_file, [tiny_inputs[:1]])]
    probes("onnxruntime", *cases[0], 1)  # starts the pre-started process
    for path, sample in cases:
        t0 = time.perf_counter()
        fresh = record.peak_memory("onnxruntime", path, sample, 1)
        t1 = time.perf_counter()
        forked = probes("onnxruntime", path, sample, 1)
        t2 = time.perf_counter()
        assert fresh > 0 and forked == pytest.approx(fresh, rel=0.05), path
        assert t2 - t1 < t1 - t0  # no interpreter start-up nor runtime import per probe


def test_a_probe_that_fails_gives_none_and_the_next_one_works(digits, probes, tmp_path):
    bad = tmp_path / "not-a-model.onnx"
    bad.write_bytes(b"not an onnx file")
    sample = [a[:1] for a in digits.example_inputs]
    assert probes("onnxruntime", bad, sample, 1) is None
    assert probes("onnxruntime", to_onnx(digits.model), sample, 1) > 0


def test_runtimes_that_cannot_fork_use_a_fresh_process(digits, probes, monkeypatch):
    calls = []
    monkeypatch.setattr(record, "peak_memory", lambda *a: calls.append(a[0]) or 123)
    assert probes("openvino", to_onnx(digits.model), [a[:1] for a in digits.example_inputs], 1) == 123
    assert calls == ["openvino"]
