"""Channel pruning's defaults give speed: on the default task (kws, the MLPerf Tiny DS-CNN) a plain
``Prune(0.5, structure="channel")`` keeps multiples of 8 channels, ONNX Runtime then runs every convolution on its
NCHWc kernels (odd widths fall back to im2col convolutions, slower than the unpruned model), the MACs drop, and
the accuracy path still runs. The speed figures themselves are in benchmarks/compression.py."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

import workbench
from workbench import zoo
from workbench.compression.base import compress
from workbench.compression.prune import CHANNEL_MULTIPLE, Prune
from workbench.core.layers import count_macs
from workbench.measurement.latency import time_runner
from workbench.realize import realize


@pytest.fixture(scope="module")
def kws():
    return zoo.load("kws")


@pytest.fixture(scope="module")
def plain(kws):
    return compress(kws.model, Prune(0.5, structure="channel"))


def _widths(handle) -> list[int]:
    return [m.out_channels for m in handle.module.modules() if isinstance(m, torch.nn.Conv2d)]


def _ort_ops(handle, task, out) -> collections.Counter:
    """The op types ONNX Runtime runs after its own graph optimisations (layout transforms included)."""
    import onnx
    import onnxruntime as ort

    real = realize(handle, "onnxruntime", task)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.log_severity_level = 1, 3
    opts.optimized_model_filepath = str(out / f"{handle.fingerprint}-ort-optimised.onnx")
    ort.InferenceSession(str(real.path), opts, providers=["CPUExecutionProvider"])
    graph = onnx.load(opts.optimized_model_filepath).graph
    return collections.Counter(f"{n.domain}:{n.op_type}" for n in graph.node)


def test_plain_channel_pruning_keeps_multiples_of_eight_and_cuts_macs(kws, plain):
    assert CHANNEL_MULTIPLE == 8 and Prune(0.5, structure="channel").round_to == CHANNEL_MULTIPLE
    widths = _widths(plain)
    assert len(widths) == 9 and all(w % CHANNEL_MULTIPLE == 0 and 0 < w < 64 for w in widths), widths
    assert plain.module.classifier.in_features % CHANNEL_MULTIPLE == 0 and plain.module.classifier.out_features == 12
    assert count_macs(plain) < count_macs(kws.model) / 3  # pointwise convs lose half their inputs and outputs
    # without rounding, global ranking leaves odd widths on this model
    assert any(w % 4 for w in _widths(compress(kws.model, Prune(0.5, structure="channel", round_to=1))))


def test_plain_channel_pruning_keeps_the_accuracy_path(kws, plain):
    x = kws.eval_inputs[0][:64]
    ref = workbench.runtime(plain, "torch")(x)[0]
    assert ref.shape == (64, 12)
    np.testing.assert_allclose(workbench.runtime(plain, "onnxruntime", threads=1)(x)[0], ref, atol=1e-4, rtol=1e-4)
    # before Recover, half the channels gone: above chance (1/12), below the original's ~0.89
    acc = kws.evaluate(workbench.runtime(plain, "torch"), limit=400)["accuracy"]
    assert 1 / 12 < acc < kws.evaluate(workbench.runtime(kws.model, "torch"), limit=400)["accuracy"]


def test_onnxruntime_runs_every_pruned_conv_on_its_nchwc_kernels(kws, plain, tmp_path):
    original, rounded = _ort_ops(kws.model, kws, tmp_path), _ort_ops(plain, kws, tmp_path)
    assert original["com.microsoft.nchwc:Conv"] == rounded["com.microsoft.nchwc:Conv"] == 9
    # odd widths: ONNX Runtime cannot block the channels, and runs im2col convolutions (measured ~3x slower)
    odd = _ort_ops(compress(kws.model, Prune(0.5, structure="channel", round_to=1)), kws, tmp_path)
    assert odd["com.microsoft.nchwc:Conv"] < 9 and odd["com.microsoft:FusedConv"] > 0


@pytest.mark.slow
def test_plain_channel_pruning_is_not_slower_than_the_original_on_onnxruntime(kws, plain):
    runners = {k: workbench.runtime(realize(h, "onnxruntime", kws).handle, "onnxruntime", threads=1)
               for k, h in (("original", kws.model), ("pruned", plain))}
    x = [kws.example_inputs[0][:1].copy()]
    p50 = {k: [] for k in runners}
    for _ in range(5):  # interleaved rounds: background load hits both alike
        for k, run in runners.items():
            p50[k].append(time_runner(run, x, min_seconds=0.2, max_seconds=1.0).p50)
    assert np.median(p50["pruned"]) < np.median(p50["original"]), p50
