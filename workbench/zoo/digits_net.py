"""Built-in "digits-cnn" demo model: a small MobileNet-style CNN for sklearn digits.

The model takes float32 images of shape ``(B, 1, 32, 32)`` (8x8 scikit-learn
digits upscaled bilinearly and normalised to roughly ``[-1, 1]``) and returns
``(B, 10)`` logits. It uses only plain ops (Conv2d, BatchNorm2d, ReLU, mean,
Linear) so it exports cleanly to ONNX and TFLite.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from workbench.nets.blocks import ConvBNReLU, DepthwiseSeparable, scaled_channels

WEIGHTS_FILE = "digits_cnn.safetensors"
"""File name of the trained weights (safetensors ``state_dict``)."""

INPUT_SHAPE = (1, 32, 32)
"""Per-sample input shape ``(C, H, W)``."""

NUM_CLASSES = 10

# (in_channels, out_channels, stride) of each depthwise-separable block.
_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (32, 64, 1),
    (64, 128, 2),
    (128, 128, 1),
    (128, 256, 2),
    (256, 256, 1),
)
_STEM_CHANNELS = 32
_STEM_STRIDE = 2


class DigitsCNN(nn.Module):
    """MobileNet-style CNN classifying 32x32 grayscale digits into 10 classes."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBNReLU(INPUT_SHAPE[0], _STEM_CHANNELS, 3, _STEM_STRIDE)
        self.blocks = nn.Sequential(*(DepthwiseSeparable(i, o, s) for i, o, s in _BLOCKS))
        self.classifier = nn.Linear(_BLOCKS[-1][1], NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``(B, 1, 32, 32)`` float32 images to ``(B, 10)`` logits."""
        x = self.blocks(self.stem(x))
        return self.classifier(x.mean((2, 3)))


def build_digits_cnn(width: float = 1.0) -> DigitsCNN:
    """Returns an untrained DigitsCNN: the architecture of the shipped weights, or every layer's channel count times
    `width` (MobileNet's alpha), rounded to a multiple of 8 (`scaled_channels`); 0.5 is the "half-width" student of
    `workbench.zoo.student`.

    A scaled net is the same class with its layers rebuilt, not a changed class: a model's fingerprint hashes its
    class's source, so editing `DigitsCNN` would orphan every stored sweep of the shipped model.
    """
    stem = scaled_channels(_STEM_CHANNELS, width)
    blocks = [(scaled_channels(i, width), scaled_channels(o, width), s) for i, o, s in _BLOCKS]
    model = DigitsCNN()
    if width != 1:
        model.stem = ConvBNReLU(INPUT_SHAPE[0], stem, 3, _STEM_STRIDE)
        model.blocks = nn.Sequential(*(DepthwiseSeparable(i, o, s) for i, o, s in blocks))
        model.classifier = nn.Linear(blocks[-1][1], NUM_CLASSES)
    return model


def digits_splits(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Loads scikit-learn digits as model-ready train/calibration/eval splits.

    Images are upscaled from 8x8 to 32x32 (bilinear) and normalised from
    ``0..16`` to ``[-1, 1]``. Deterministic for a given seed.

    Args:
        seed: Seed for the stratified 75/25 train/eval split and the calibration pick.

    Returns:
        Mapping ``"train"``, ``"calibration"``, ``"eval"`` to ``(x, y)`` with
        ``x`` float32 of shape ``(N, 1, 32, 32)`` and ``y`` int64 of shape ``(N,)``.
        ``"calibration"`` is 128 samples drawn from the train split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32)).unsqueeze(1)
    images = nn.functional.interpolate(images, size=INPUT_SHAPE[1:], mode="bilinear", align_corners=False)
    x = ((images / 16.0 - 0.5) / 0.5).numpy()
    y = digits.target.astype(np.int64)

    x_train, x_eval, y_train, y_eval = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    calib = np.random.default_rng(seed).permutation(len(x_train))[:128]
    return {
        "train": (x_train, y_train),
        "calibration": (x_train[calib], y_train[calib]),
        "eval": (x_eval, y_eval),
    }
