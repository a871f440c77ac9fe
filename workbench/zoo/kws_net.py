"""Built-in "kws" model: MLPerf Tiny's keyword-spotting reference DS-CNN, and its data splits.

The model takes float32 MFCCs of shape ``(B, 1, 49, 10)`` (49 frames of 10 coefficients, one second of
16 kHz audio; see data/make_kws_data.py) and returns ``(B, 12)`` logits over `CLASSES`. The layers are those of
the MLPerf Tiny reference (its keras_model.py, after Zhang et al., "Hello Edge", 2017): a 10x4 stride-2
convolution to 64 channels, four depthwise-separable blocks of 64 (3x3 depthwise, 1x1 pointwise, each with
BatchNorm and ReLU), global average pooling and a 12-way linear layer; dropout 0.2 after the stem and 0.4
before pooling, as there. Convolutions before BatchNorm carry no bias (BatchNorm's shift takes its place).
Only plain ops, so it exports to every runtime the workbench has and torch-pruning can shrink its channels.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from workbench.nets.blocks import DepthwiseSeparable, scaled_channels

WEIGHTS_FILE = "kws_dscnn.safetensors"
"""File name of the trained weights (safetensors ``state_dict``)."""

FEATURES_FILE = "kws_features.npz"
"""File name of the MFCC features and labels (data/make_kws_data.py)."""

METADATA_FILE = "kws_data.json"
"""File name of the data set's metadata: seed, voices per split, SNRs, tool versions."""

INPUT_SHAPE = (1, 49, 10)
"""Per-sample input shape ``(C, frames, coefficients)``."""

CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_silence_", "_unknown_")
"""The 12 output classes, in logit order (MLPerf Tiny's)."""

CHANNELS = 64
BLOCKS = 4


class DSCNN(nn.Module):
    """Depthwise-separable CNN classifying 49x10 MFCCs into 12 keyword classes (MLPerf Tiny reference)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(INPUT_SHAPE[0], CHANNELS, (10, 4), stride=2, padding=(5, 1), bias=False),
            bn=nn.BatchNorm2d(CHANNELS),
            act=nn.ReLU(inplace=True),
            drop=nn.Dropout(0.2),
        ))
        self.blocks = nn.Sequential(*(DepthwiseSeparable(CHANNELS, CHANNELS, 1) for _ in range(BLOCKS)))
        self.drop = nn.Dropout(0.4)
        self.classifier = nn.Linear(CHANNELS, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``(B, 1, 49, 10)`` float32 MFCCs to ``(B, 12)`` logits."""
        x = self.drop(self.blocks(self.stem(x)))
        return self.classifier(x.mean((2, 3)))


def build_kws_dscnn(width: float = 1.0) -> DSCNN:
    """Returns an untrained DS-CNN: the architecture of the shipped weights, or `CHANNELS` times `width` rounded to a
    multiple of 8 (`scaled_channels`); 0.5 is the student of `workbench.zoo.student`.

    A scaled net is the same class with its layers rebuilt, not a changed class: a model's fingerprint hashes its
    class's source, so editing `DSCNN` would orphan every stored sweep of the shipped model.
    """
    ch = scaled_channels(CHANNELS, width)
    model = DSCNN()
    if width != 1:
        model.stem = nn.Sequential(OrderedDict(
            conv=nn.Conv2d(INPUT_SHAPE[0], ch, (10, 4), stride=2, padding=(5, 1), bias=False),
            bn=nn.BatchNorm2d(ch),
            act=nn.ReLU(inplace=True),
            drop=nn.Dropout(0.2),
        ))
        model.blocks = nn.Sequential(*(DepthwiseSeparable(ch, ch, 1) for _ in range(BLOCKS)))
        model.classifier = nn.Linear(ch, len(CLASSES))
    return model


def kws_splits(features: str | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Loads the bundled MFCCs as model-ready train/calibration/eval splits.

    The evaluation split is spoken by voices and mixed with noise that the training split never contains
    (data/kws_data.json lists both). Calibration rows come from the training split.

    Args:
        features: path of a ``kws_features.npz``; default: the bundled one.

    Returns:
        Mapping ``"train"``, ``"calibration"``, ``"eval"`` to ``(x, y)`` with ``x`` float32 of shape
        ``(N, 1, 49, 10)`` and ``y`` int64 of shape ``(N,)``.
    """
    from workbench.core.paths import data_file

    with np.load(features or data_file(FEATURES_FILE)) as z:
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_eval", "y_eval", "calibration_index")}
    x_train = arrays["x_train"].astype(np.float32)[:, None]
    x_eval = arrays["x_eval"].astype(np.float32)[:, None]
    y_train, y_eval = arrays["y_train"].astype(np.int64), arrays["y_eval"].astype(np.int64)
    calib = arrays["calibration_index"]
    return {
        "train": (x_train, y_train),
        "calibration": (x_train[calib], y_train[calib]),
        "eval": (x_eval, y_eval),
    }
