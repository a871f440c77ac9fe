"""The tiny CNN the loader and format tests share (a module, not conftest: several conftest.py files exist, so
``from conftest import ...`` would pick whichever was imported first)."""

from __future__ import annotations

import torch


class TinyCNN(torch.nn.Module):
    """Conv2d(1, 4, 3) → ReLU → spatial mean → Linear(4, 3); input (B, 1, 8, 8) float32, 55 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


TINY_PARAMS = 4 * 1 * 3 * 3 + 4 + 3 * 4 + 3  # 55
TINY_INPUT_SHAPE = (None, 1, 8, 8)
TINY_OUTPUT_SHAPE = (None, 3)


def make_tiny_cnn(seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN().eval()
