"""Prune's per-layer ratios (`Prune.per_layer`): validation, label and dict, and what each structure does with
them on digits-cnn (torch and ONNX) and a TFLite file."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import workbench
from workbench.compression import prune_plan
from workbench.compression.base import compress, config_from_dict
from workbench.compression.prune import Prune
from workbench.core.handle import module_fingerprint
from workbench.sweeps.frame import scope_of_lineage


def _weights(handle) -> dict[str, np.ndarray]:
    return {n: m.weight.detach().numpy().copy() for n, m in handle.module.named_modules()
            if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))}


def _zeros(handle) -> dict[str, float]:
    return {n: float(np.mean(w == 0)) for n, w in _weights(handle).items()}


def _at(ratio: float, w: np.ndarray) -> float:
    """The sparsity torch's magnitude pruning reaches on one array at `ratio` (it rounds the count)."""
    return round(ratio * w.size) / w.size


def _out_channels(handle) -> dict[str, int]:
    return {n: w.shape[0] for n, w in _weights(handle).items()}


# ------------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("bad, match", [
    (dict(per_layer={"classifier": 1.0}), r"per_layer\['classifier'\] must be a number in \[0, 1\)"),
    (dict(per_layer={"classifier": -0.1}), r"per_layer\['classifier'\] must be a number"),
    (dict(per_layer={"classifier": float("nan")}), r"per_layer\['classifier'\] must be a number"),
    (dict(per_layer={"classifier": True}), r"per_layer\['classifier'\] must be a number"),
    (dict(per_layer={"classifier": "0.2"}), r"per_layer\['classifier'\] must be a number"),
    (dict(per_layer={"": 0.2}), r"per_layer must map non-empty layer names"),
    (dict(per_layer=3), r"per_layer must map layer names to ratios"),
    (dict(per_layer=[("stem", 0.1), ("stem", 0.2)]), r"per_layer names 'stem' twice"),
    (dict(exclude=["classifier"], per_layer={"classifier": 0.2}), r"\['classifier'\] are both excluded"),
    (dict(exclude=["blocks"], per_layer={"blocks.4": 0.2}), r"\['blocks.4'\] are both excluded"),
    (dict(structure="2:4", per_layer={"blocks.4": 0.2}),
     r"2:4 is exactly half of every group of four; per_layer does not apply"),
    (dict(structure="layer", importance="cosine", per_layer={"blocks.4": 0.2}), r"per_layer does not apply"),
])
def test_config_rejects_bad_per_layer(bad, match):
    with pytest.raises(ValueError, match=match):
        Prune(0.5, **bad)


def test_config_normalises_round_trips_and_labels():
    cfg = Prune(0.5, structure="channel", scope="layer", per_layer={"stem": 0, "blocks.4": 0.25})
    assert cfg.per_layer == (("blocks.4", 0.25), ("stem", 0.0)) and isinstance(cfg.per_layer[1][1], float)
    assert cfg == Prune(0.5, structure="channel", scope="layer", per_layer=[("stem", 0.0), ("blocks.4", 0.25)])
    assert hash(cfg) == hash(Prune(0.5, structure="channel", scope="layer", per_layer=(("blocks.4", 0.25),
                                                                                        ("stem", 0))))
    d = json.loads(cfg.to_json())
    assert d["per_layer"] == {"blocks.4": 0.25, "stem": 0.0}
    assert config_from_dict(d) == cfg
    assert re.fullmatch(r"prune-channel-0\.50-layer-mixed[0-9a-f]{6}", cfg.label), cfg.label
    assert cfg.label != Prune(0.5, structure="channel", scope="layer", per_layer={"blocks.4": 0.3}).label
    # the scope stays readable from the lineage text of the results frame
    assert scope_of_lineage(cfg.label) == "layer"
    glob = Prune(0.5, structure="channel", exclude=["classifier"], per_layer={"blocks.4": 0.25})
    assert re.fullmatch(r"prune-channel-0\.50-x1-mixed[0-9a-f]{6}", glob.label) and scope_of_lineage(glob.label) == (
        "global")


def test_configs_without_per_layer_keep_their_label_dict_and_key():
    cfg = Prune(0.5, structure="channel")
    assert cfg.label == "prune-channel-0.50"
    assert cfg.to_dict() == {"type": "prune", "ratio": 0.5, "structure": "channel", "scope": "global",
                             "importance": "l1", "exclude": [], "round_to": 8}
    assert cfg.to_json() == ('{"exclude": [], "importance": "l1", "ratio": 0.5, "round_to": 8, "scope": "global", '
                             '"structure": "channel", "type": "prune"}')
    assert Prune(0.3, scope="layer").to_dict() == {"type": "prune", "ratio": 0.3, "structure": "unstructured",
                                                   "scope": "layer", "importance": "l1", "exclude": [],
                                                   "round_to": None}
    assert config_from_dict(cfg.to_dict()) == cfg and cfg.per_layer == ()


def test_the_most_specific_name_wins():
    cfg = Prune(0.5, per_layer={"blocks": 0.2, "blocks.4": 0.7, "blocks.4.pw.conv": 0.1})
    assert [cfg.ratio_for(n) for n in ("stem.conv", "blocks.0.pw.conv", "blocks.4.dw.conv", "blocks.4.pw.conv",
                                       "blocks.40.pw.conv")] == [0.5, 0.2, 0.7, 0.1, 0.2]
    assert cfg.overridden(["stem.conv", "blocks.4.pw.conv", "blocks.1.dw.conv"]) == {"blocks.4.pw.conv": 0.1,
                                                                                    "blocks.1.dw.conv": 0.2}


# ------------------------------------------------------------------------------------------ unstructured


def test_unstructured_per_layer_scope_prunes_each_layer_at_its_own_ratio(digits):
    model = digits.model
    before, fingerprint = _weights(model), model.fingerprint
    cfg = Prune(0.5, scope="layer", per_layer={"blocks": 0.3, "blocks.4.pw": 0.9, "classifier": 0})
    v = compress(model, cfg)
    want = {n: _at(cfg.ratio_for(n), w) for n, w in before.items()}
    assert want["stem.conv"] == 0.5 and want["blocks.4.pw.conv"] == pytest.approx(0.9, abs=1e-3)
    assert want["blocks.2.dw.conv"] == pytest.approx(0.3, abs=0.01) and want["classifier"] == 0
    assert _zeros(v) == pytest.approx(want, abs=1e-9)
    np.testing.assert_array_equal(_weights(v)["classifier"], before["classifier"])  # 0: left exactly as it was
    assert v.meta["prune_per_layer"] == {n: cfg.ratio_for(n) for n in before if n != "stem.conv"}
    assert "classifier" not in v.meta["pruned_layers"] and "stem.conv" in v.meta["pruned_layers"]
    # pure: the original is unchanged
    assert module_fingerprint(model.module) == fingerprint == model.fingerprint
    for n, w in _weights(model).items():
        np.testing.assert_array_equal(w, before[n])


def test_unstructured_global_ranks_only_the_layers_without_an_override(digits):
    model = digits.model
    v = compress(model, Prune(0.5, per_layer={"blocks.4.pw": 0.9}))
    alone = compress(model, Prune(0.5, exclude=["blocks.4.pw"]))  # the other layers, ranked together at 0.5
    got, ref = _weights(v), _weights(alone)
    w = _weights(model)["blocks.4.pw.conv"]
    assert float(np.mean(got["blocks.4.pw.conv"] == 0)) == _at(0.9, w)
    for n in got:
        if n != "blocks.4.pw.conv":
            np.testing.assert_array_equal(got[n], ref[n], err_msg=n)
    shares = {round(s, 2) for n, s in _zeros(v).items() if n != "blocks.4.pw.conv"}
    assert len(shares) > 2  # ranked globally: each layer loses a different share
    assert v.meta["prune_per_layer"] == {"blocks.4.pw.conv": 0.9}


def test_unknown_or_weightless_per_layer_names_are_refused_before_work(digits):
    with pytest.raises(workbench.WorkbenchError, match=r"'classifer' \(did you mean classifier"):
        compress(digits.model, Prune(0.5, per_layer={"classifer": 0.2}))
    with pytest.raises(workbench.WorkbenchError, match=r"per_layer names 'stem.bn' .* hold no Conv/Linear weight"):
        compress(digits.model, Prune(0.5, structure="channel", per_layer={"stem.bn": 0.2}))


# --------------------------------------------------------------------------------------------- channel


def test_channel_override_sets_its_groups_width_and_zero_keeps_it(digits):
    model = digits.model
    fingerprint = model.fingerprint
    cfg = Prune(0.5, structure="channel", scope="layer", round_to=1,
                per_layer={"blocks.4.pw": 0.25, "blocks.2.pw": 0.0})
    v = compress(model, cfg)
    width = _out_channels(v)
    assert width["blocks.4.pw.conv"] == 192  # floor(256 * 0.25) = 64 removed
    # blocks.2.pw.conv and the depthwise conv coupled to its outputs keep all 128
    assert width["blocks.2.pw.conv"] == width["blocks.3.dw.conv"] == 128
    assert width["stem.conv"] == 16 and width["blocks.1.pw.conv"] == 64 and width["classifier"] == 10
    assert v.meta["prune_per_layer"] == {"blocks.2.pw.conv": 0.0, "blocks.3.dw.conv": 0.0, "blocks.4.pw.conv": 0.25}
    x = digits.eval_inputs[0][:4]
    assert workbench.runtime(v, "onnxruntime")(x)[0].shape == (4, 10)
    assert model.fingerprint == fingerprint == module_fingerprint(model.module)
    assert _out_channels(model)["blocks.4.pw.conv"] == 256


def test_channel_override_in_global_scope_is_pruned_alone_then_rounded(digits):
    v = compress(digits.model, Prune(0.5, structure="channel", per_layer={"blocks.4.pw": 0.1}))
    plain = compress(digits.model, Prune(0.5, structure="channel"))
    # floor(256 * 0.1) = 25 removed -> 231 kept, rounded to the nearest multiple of 8: 232
    assert _out_channels(v)["blocks.4.pw.conv"] == 232 != _out_channels(plain)["blocks.4.pw.conv"]
    for n in ("stem.conv", "blocks.0.pw.conv", "blocks.1.pw.conv"):  # the rest still ranked globally
        assert _out_channels(v)[n] < _out_channels(digits.model)[n]


@pytest.mark.parametrize("per_layer", [{"blocks.3.pw": 0.5, "blocks.4.dw": 0.25},
                                       {"blocks.3.pw": 0.25, "blocks.4.dw": 0.5}])
def test_channel_group_named_by_different_overrides_takes_the_smallest(digits, per_layer):
    # blocks.4.dw.conv is depthwise: its channels are blocks.3.pw.conv's, one dependency group
    v = compress(digits.model, Prune(0.0, structure="channel", scope="layer", round_to=1, per_layer=per_layer))
    width = _out_channels(v)
    assert width["blocks.3.pw.conv"] == width["blocks.4.dw.conv"] == 192
    assert width["blocks.4.pw.conv"] == 256 and width["stem.conv"] == 32  # ratio 0 elsewhere
    assert v.meta["prune_per_layer"] == {"blocks.3.pw.conv": 0.25, "blocks.4.dw.conv": 0.25}


def test_channel_most_specific_name_wins(digits):
    v = compress(digits.model, Prune(0.0, structure="channel", scope="layer", round_to=1,
                                     per_layer={"blocks": 0.5, "blocks.4.pw": 0.125}))
    width = _out_channels(v)
    assert width["blocks.4.pw.conv"] == 224 and width["blocks.1.pw.conv"] == 64
    assert width["stem.conv"] == 16  # coupled to blocks.0.dw.conv, which "blocks" names


def test_prune_plan_shows_the_per_layer_result(digits):
    cfg = Prune(0.5, scope="layer", per_layer={"blocks.4.pw": 0.9, "classifier": 0})
    plan = prune_plan(digits.model, cfg).set_index("layer")
    v = compress(digits.model, cfg)
    for n, s in _zeros(v).items():
        assert plan.loc[n, "sparsity_after"] == pytest.approx(s)
    assert plan.loc["blocks.4.pw.conv", "note"] == "pruned at 0.9 (per_layer)"
    assert plan.loc["classifier", "note"] == "per_layer 0: not pruned"
    assert plan.loc["stem.conv", "note"] == "pruned"


# ------------------------------------------------------------------------------------------- ONNX, TFLite


def test_onnx_unstructured_per_layer_ratios(digits_onnx):
    import onnx
    from onnx import numpy_helper

    v = compress(digits_onnx, Prune(0.5, scope="layer", per_layer={"blocks.4.pw": 0.8, "classifier": 0.0}))
    inits = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(v.path)).graph.initializer}
    orig = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(digits_onnx.path)).graph.initializer}
    assert float(np.mean(inits["blocks.4.pw.conv.weight"] == 0)) == pytest.approx(0.8, abs=1e-4)
    assert float(np.mean(inits["blocks.1.pw.conv.weight"] == 0)) == pytest.approx(0.5, abs=1e-4)
    np.testing.assert_array_equal(inits["classifier.weight"], orig["classifier.weight"])
    assert v.meta["prune_per_layer"] == {"blocks.4.pw.conv.weight": 0.8, "classifier.weight": 0.0}
    assert "classifier.weight" not in v.meta["pruned_layers"]
    with pytest.raises(workbench.WorkbenchError, match=r"has no layer named 'blocks.9'"):
        compress(digits_onnx, Prune(0.5, per_layer={"blocks.9": 0.2}))


def test_tflite_unstructured_per_layer_ratios():
    from workbench.core.paths import data_file
    from workbench.formats.tflite_graph import tflite_weights

    hand = workbench.load(data_file("foreign/hand_recrop.tflite"))
    v = compress(hand, Prune(0.5, scope="layer", per_layer={"conv2d_6": 0.75, "output_crop": 0}))
    orig = {w.layer: w.array for w in tflite_weights(hand.path)}
    got = {w.layer: w.array for w in tflite_weights(v.path)}
    assert float(np.mean(got["conv2d_6"] == 0)) == 0.75
    assert float(np.mean(got["conv2d_4"] == 0)) == 0.5
    np.testing.assert_array_equal(got["output_crop"], orig["output_crop"])
    assert v.meta["prune_per_layer"] == {"conv2d_6": 0.75, "output_crop": 0.0}
    with pytest.raises(workbench.WorkbenchError, match=r"has no layer named 'conv2d_99'"):
        compress(hand, Prune(0.5, per_layer={"conv2d_99": 0.2}))
