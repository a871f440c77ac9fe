"""MobileNet-style building blocks shared by the digits CNN (`workbench.zoo.digits_net`) and the host
calibration variants (`workbench.measurement.calibration_variants`). Importing this module imports torch."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

CHANNEL_MULTIPLE = 8
"""Width-scaled channel counts are rounded to this multiple: the SIMD-friendly widths `Prune`'s ``round_to``
defaults to (notebook 02 measures why)."""


def scaled_channels(channels: int, width: float) -> int:
    """`channels` x `width` rounded to the nearest multiple of `CHANNEL_MULTIPLE` (at least one multiple).

    Example:
        >>> [scaled_channels(c, 0.5) for c in (32, 64, 256)], scaled_channels(24, 1.0), scaled_channels(64, 0.1)
        ([16, 32, 128], 24, 8)
    """
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not 0 < width <= 16:
        raise ValueError(f"width must be a number in (0, 16], got {width!r}")
    if width == 1:
        return channels
    return max(CHANNEL_MULTIPLE, int(round(channels * width / CHANNEL_MULTIPLE)) * CHANNEL_MULTIPLE)


class ConvBNReLU(nn.Sequential):
    """Conv2d (no bias) followed by BatchNorm2d and ReLU (submodules ``conv``, ``bn``, ``act``)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, groups=groups, bias=False),
                bn=nn.BatchNorm2d(c_out),
                act=nn.ReLU(inplace=True),
            )
        )


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 conv + BN + ReLU, then pointwise 1x1 conv + BN + ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.dw = ConvBNReLU(c_in, c_in, 3, stride, groups=c_in)
        self.pw = ConvBNReLU(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))
