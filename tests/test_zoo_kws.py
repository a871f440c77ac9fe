"""The "kws" zoo task: MLPerf Tiny's DS-CNN on the bundled espeak-ng keyword data.

Checks the committed data (shapes, balanced classes, an evaluation split whose voices and noise the training
split never contains), the committed weights (held-out accuracy in the range real keyword spotters reach, as
recorded by data/train_kws_dscnn.py), the ONNX export, and that channel pruning really shrinks the model.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import workbench
from workbench import zoo
from workbench.core.paths import data_file
from workbench.zoo.kws_net import CLASSES, FEATURES_FILE, INPUT_SHAPE, METADATA_FILE

# The range the task was tuned for: hard enough that compression visibly costs accuracy, not so hard that the
# original is useless.
ACCURACY_RANGE = (0.85, 0.95)


@pytest.fixture(scope="module")
def task() -> workbench.Task:
    return zoo.load("kws")


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads(data_file(METADATA_FILE).read_text())


def test_data_files_have_the_documented_shapes(meta):
    with np.load(data_file(FEATURES_FILE)) as z:
        for split in ("train", "eval"):
            x, y = z[f"x_{split}"], z[f"y_{split}"]
            n = meta["splits"][split]["samples"]
            assert x.shape == (n, *INPUT_SHAPE[1:]) and x.dtype == np.float16
            assert np.isfinite(x.astype(np.float32)).all()
            # Balanced over the 12 MLPerf Tiny classes.
            assert np.bincount(y, minlength=len(CLASSES)).tolist() == [meta["splits"][split]["per_class"]] * 12
            for key in ("voice", "noise", "snr"):
                assert z[f"{key}_{split}"].shape == (n,)
        calib = z["calibration_index"]
        assert len(np.unique(calib)) == meta["calibration"]["samples"] and calib.max() < len(z["y_train"])
    assert meta["classes"] == list(CLASSES)
    assert meta["features"]["frames"] == INPUT_SHAPE[1] and meta["features"]["dct_coefficients"] == INPUT_SHAPE[2]


def test_eval_voices_and_noise_are_unseen_in_training(meta):
    train, held_out = meta["splits"]["train"], meta["splits"]["eval"]
    assert not set(train["voices"]) & set(held_out["voices"])
    assert not set(train["variants"]) & set(held_out["variants"])
    assert train["noise_seed"] != held_out["noise_seed"]
    with np.load(data_file(FEATURES_FILE)) as z:
        for split, info in (("train", train), ("eval", held_out)):
            voice, y = z[f"voice_{split}"], z[f"y_{split}"]
            spoken = y != CLASSES.index("_silence_")
            assert (voice[spoken] >= 0).all() and (voice[~spoken] == -1).all()
            used = {info["voices"][i] for i in np.unique(voice[spoken])}
            assert {v.split("+")[1] for v in used} <= set(info["variants"])
        # No evaluation clip's features occur in the training split.
        seen = {row.tobytes() for row in z["x_train"]}
        assert not any(row.tobytes() in seen for row in z["x_eval"])


def test_task_shape(task):
    assert task.name == "kws" and task.metric == "accuracy"
    assert [tuple(s.shape[1:]) for s in task.model.inputs] == [INPUT_SHAPE]
    assert task.example_inputs[0].dtype == np.float32 and task.example_inputs[0].shape[0] >= 2
    assert len(task.calibration[0]) == 128
    assert task.train_inputs is not None and len(task.train_inputs[0]) == len(task.train_labels)
    assert len(task.eval_inputs[0]) == len(task.eval_labels) == 1200
    assert 20_000 <= task.model.num_params <= 40_000  # MLPerf Tiny DS-CNN scale


def test_accuracy_on_onnxruntime_matches_the_committed_range(task):
    recorded = json.loads(data_file("kws_dscnn.json").read_text())
    accuracy = task.evaluate(workbench.runtime(task.model, "onnxruntime", threads=1))["accuracy"]
    assert ACCURACY_RANGE[0] <= accuracy <= ACCURACY_RANGE[1]
    assert accuracy == pytest.approx(recorded["eval_accuracy"], abs=0.005)
    # Training accuracy is higher than held-out accuracy: the held-out voices are genuinely new.
    assert recorded["train_accuracy"] > accuracy


def test_onnx_export_agrees_with_torch(task):
    x = task.eval_inputs[0][:256]
    ref = workbench.runtime(task.model, "torch")(x)[0]
    ort = workbench.runtime(task.model, "onnxruntime", threads=1)(x)[0]
    assert ort.shape == (256, len(CLASSES))
    assert (np.argmax(ort, 1) == np.argmax(ref, 1)).all()
    assert np.max(np.abs(ort - ref)) < 1e-3


def test_channel_pruning_shrinks_the_ds_cnn(task):
    half = workbench.compress(task.model, workbench.Prune(0.5, structure="channel"), task=task)
    assert half.num_params < 0.6 * task.model.num_params
    out = workbench.runtime(half, "onnxruntime", threads=1)(task.eval_inputs[0][:8])[0]
    assert out.shape == (8, len(CLASSES))
