"""The rendered text-direction set (data/make_text_direction.py) and its loader, on the real paddle2onnx file."""

from __future__ import annotations

import numpy as np

from workbench.core.paths import data_file
from workbench.zoo.text_direction import DATA_FILE, MODEL_FILE, paddle_cls_inputs, text_direction_samples

MEASURED_ACCURACY = 0.996  # printed by data/make_text_direction.py (255 of 256 lines)


def test_samples_are_model_input_with_balanced_pairs():
    x, y = text_direction_samples()
    assert x.dtype == np.float32 and x.shape == (len(y), 3, 48, 192)
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}
    assert np.array_equal(y, np.tile([0, 1], len(y) // 2)), "pairs (upright, rotated): any even split is balanced"
    assert x.min() >= -1.0 and x.max() <= 1.0
    with np.load(data_file(DATA_FILE)) as d:
        images, widths, texts = d["images"], d["widths"], d["texts"]
    assert images.dtype == np.uint8 and (texts[0::2] == texts[1::2]).all()
    # each rotated sample is its upright twin turned 180 degrees (up to resampling), not another line
    up, rot = images[0].astype(int)[:, : widths[0]], images[1].astype(int)[:, : widths[1]]
    assert widths[0] == widths[1] and np.abs(up - rot[::-1, ::-1]).mean() < 8


def test_padding_is_zero_after_normalisation_as_paddleocr_pads():
    x, _ = text_direction_samples()
    with np.load(data_file(DATA_FILE)) as d:
        widths = d["widths"]
    short = int(np.argmin(widths))
    assert widths[short] < 192
    assert (x[short, :, :, widths[short]:] == 0).all()
    assert np.array_equal(paddle_cls_inputs(np.zeros((1, 48, 192, 3), np.uint8), np.array([192])),
                          np.full((1, 3, 48, 192), -1.0, np.float32))


def test_the_classifier_reads_the_rendered_lines():
    import onnxruntime as ort

    x, y = text_direction_samples()
    session = ort.InferenceSession(str(data_file(MODEL_FILE)), providers=["CPUExecutionProvider"])
    probs = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert probs.shape == (len(y), 2)
    assert float(np.mean(probs.argmax(axis=1) == y)) >= MEASURED_ACCURACY - 0.02
