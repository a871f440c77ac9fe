"""Labelled data for a model no one here wrote: PaddleOCR's text-direction classifier (notebook 09).

`data/foreign/ch_ppocr_mobile_v2.0_cls_infer.onnx` (paddle2onnx, opset 11) tells whether a cropped text line is
upright (class 0) or rotated 180 degrees (class 1). `data/make_text_direction.py` renders lines of words with
Debian's fonts, each upright and rotated, and stores them as uint8; the labels come from how each line was
drawn, not from any model. This module turns them into the input the classifier expects.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.core.paths import data_file

__all__ = ["DATA_FILE", "MODEL_FILE", "model_path", "paddle_cls_inputs", "text_direction_samples"]

MODEL_FILE = "foreign/ch_ppocr_mobile_v2.0_cls_infer.onnx"
DATA_FILE = "foreign/text_direction.npz"


def model_path() -> Path:
    """Where the classifier file is: a path like any a user has (`workbench.load` takes it).

    Example:
        >>> workbench.load(workbench.zoo.text_direction.model_path()).source_format
        'onnx'
    """
    return data_file(MODEL_FILE)


def paddle_cls_inputs(images: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """PaddleOCR's classifier preprocessing from resized uint8 lines to float32 NCHW [N, 3, 48, 192].

    Written out rather than imported because PaddleOCR itself is not a dependency; it mirrors the
    normalisation of ``resize_norm_img`` (``ppocr/data/imaug/rec_img_aug.py``): ``(pixel / 255 - 0.5) / 0.5``,
    then zeros past each line's width (PaddleOCR pads *after* normalising, so the pad is 0, not white).

    Args:
        images: uint8 [N, 48, 192] grey (or [N, 48, 192, 3] RGB) lines, already resized to height 48.
        widths: int [N], the columns of each image that hold the line; the rest is padding.

    Example:
        >>> lines = np.full((2, 48, 192), 255, np.uint8)
        >>> x = paddle_cls_inputs(lines, np.array([192, 96]))
        >>> x.shape, x.dtype, float(x[1, 0, 0, 95]), float(x[1, 0, 0, 96])
        ((2, 3, 48, 192), dtype('float32'), 1.0, 0.0)
    """
    x = (np.asarray(images, np.float32) / 255.0 - 0.5) / 0.5
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=-1)  # black text on white: the three RGB channels are equal
    columns = np.arange(x.shape[2])[None, None, :, None] < np.asarray(widths)[:, None, None, None]
    x = np.where(columns, x, np.float32(0.0))
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def text_direction_samples() -> tuple[np.ndarray, np.ndarray]:
    """The rendered text-direction set as model input and labels.

    Samples come in pairs (a line upright, then the same line rotated), so both halves of an even split hold
    the same number of each class and no line appears in both.

    Returns:
        float32 [N, 3, 48, 192] inputs and int64 [N] labels (0 upright, 1 rotated 180 degrees).

    Example:
        >>> x, y = workbench.zoo.text_direction.text_direction_samples()
        >>> x.shape[1:], x.dtype, y.dtype, int(y[:2].sum()), float(y.mean())
        ((3, 48, 192), dtype('float32'), dtype('int64'), 1, 0.5)
    """
    with np.load(data_file(DATA_FILE)) as data:
        return paddle_cls_inputs(data["images"], data["widths"]), data["labels"].astype(np.int64)
