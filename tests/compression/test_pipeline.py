"""The compression verb end to end: lineage, JSON round trip, the original intact, prune + recover."""

from __future__ import annotations

import json

import numpy as np
import pytest

import workbench
from workbench import LowRank, Prune, Quantize, Recover, compress
from workbench.compression import config_from_dict
from workbench.core.layers import count_macs


def _acc(task, handle):
    return task.evaluate(workbench.runtime(handle, "torch"))["accuracy"]


def test_configs_round_trip_through_json():
    for cfg in [Prune(0.5, structure="channel"), Prune(0.3), Quantize(4, granularity="group", group_size=32),
                Quantize(8, per_layer={"classifier": 8, "stem.conv": 6}), Quantize(dtype="fp16"), Recover(steps=10),
                LowRank(0.25)]:
        back = config_from_dict(json.loads(cfg.to_json()))
        assert back == cfg and back.label == cfg.label and hash(back) == hash(cfg)


def test_channel_prune_then_recover_is_within_two_points(digits):
    """Done-when: 50 % channel pruning followed by Recover returns within 2 points of the baseline."""
    base = _acc(digits, digits.model)
    before = digits.model.fingerprint
    pruned = compress(digits.model, Prune(0.5, structure="channel"), task=digits)
    recovered = compress(pruned, Recover(steps=80), task=digits)
    assert [c.label for c in recovered.lineage] == ["prune-channel-0.50", "recover-finetune-80"]
    assert recovered.origin is digits.model and digits.model.fingerprint == before
    assert _acc(digits, pruned) < base - 0.2           # pruning alone hurts ...
    assert _acc(digits, recovered) >= base - 0.02       # ... recovery brings it back
    assert count_macs(recovered) < 0.35 * count_macs(digits.model)
    assert recovered.num_params < 0.35 * digits.model.num_params
    # Still a smaller real model: it exports and agrees with torch on ONNX Runtime.
    x = digits.eval_inputs[0][:8]
    ort = workbench.runtime(recovered, "onnxruntime")(x)[0]
    assert np.max(np.abs(ort - workbench.runtime(recovered, "torch")(x)[0])) < 1e-3


def test_techniques_compose_and_lineage_orders_them(digits):
    v = compress(digits.model, Prune(0.3), Quantize(8), task=digits)
    assert [c.kind for c in v.lineage] == ["prune", "quantize"]
    assert v.name.startswith("digits-cnn|") and "q8" in v.name
    assert _acc(digits, v) >= _acc(digits, digits.model) - 0.02


def test_unsupported_technique_for_a_format_says_which_formats(digits):
    tfl = workbench.load(workbench.runtime(digits.model, "litert").artifact)
    with pytest.raises(workbench.WorkbenchError, match="supports: .*torch"):  # TFLite has no module route
        compress(tfl, LowRank(0.5))
    with pytest.raises(workbench.WorkbenchError, match="configs"):
        compress(digits.model, "prune 50%")


def test_compress_accepts_a_task(digits):
    v = compress(digits, Quantize(8, activations=8))  # the task supplies calibration data
    assert v.meta.get("activation_ranges")
