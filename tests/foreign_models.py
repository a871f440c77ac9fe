"""Awkward model files, built the way other toolchains write them (seconds, no downloads).

* `constant_weights_onnx`: opset 11, every weight in a ``Constant`` node (as paddle2onnx writes), a flatten to
  a constant ``[-1, C*H*W]`` before the classifier and a constant ``[-1, 4, k]`` reshape that bakes one
  layer's channel count into the graph.
* `fixed_batch_pt2`: a ``torch.export`` program exported for batch 1 only.
* `traced_torchscript`: a traced TorchScript archive.

The real foreign files (paddle2onnx, MediaPipe) are in ``data/foreign/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

FOREIGN_ONNX = "foreign/ch_ppocr_mobile_v2.0_cls_infer.onnx"


class Small(nn.Module):
    """Two convs, a classifier on the flattened features, and a second head whose reshape fixes conv `b`."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.b(torch.relu(self.a(x))))
        h = nn.functional.adaptive_avg_pool2d(h, 4)
        return self.fc(h.reshape(-1, 8 * 4 * 4))


class Grouped(nn.Module):
    """Conv `b`'s width is baked into the graph twice: a per-channel gain constant ``[1, 8, 1, 1]`` and a
    constant reshape into 4 groups of 2 channels; conv `a` stays free to prune."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(16, 8, 3, padding=1)
        self.register_buffer("gain", torch.linspace(0.5, 1.5, 8).reshape(1, 8, 1, 1))
        self.fc = nn.Linear(2 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.b(torch.relu(self.a(x)))) * self.gain
        h = nn.functional.adaptive_avg_pool2d(h, 4)
        g = h.reshape(-1, 4, 2 * 4 * 4).sum(1)  # 4 groups of (2 channels x 4 x 4): fixed by b's 8 channels
        return self.fc(g)


def inputs(n: int = 16, seed: int = 0) -> list[np.ndarray]:
    return [np.random.default_rng(seed).standard_normal((n, 3, 8, 8)).astype(np.float32)]


def _seeded(cls: type) -> nn.Module:
    torch.manual_seed(0)
    return cls().eval()


def constant_weights_onnx(path: Path, cls: type = Small) -> Path:
    """A paddle2onnx-style file: opset 11, no initializers, weights in Constant nodes."""
    import onnx
    from onnx import helper

    x = torch.from_numpy(inputs(2)[0])
    torch.onnx.export(_seeded(cls), (x,), str(path), dynamo=False, opset_version=11, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
    m = onnx.load(str(path))
    consts = [helper.make_node("Constant", [], [i.name], value=i, name=f"const_{i.name}") for i in m.graph.initializer]
    nodes = list(m.graph.node)
    del m.graph.initializer[:]
    del m.graph.node[:]
    m.graph.node.extend(consts + nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def fixed_batch_pt2(path: Path) -> Path:
    """An ExportedProgram exported for batch 1 (its guards refuse any other batch)."""
    ep = torch.export.export(_seeded(Small), (torch.from_numpy(inputs(1)[0]),))
    torch.export.save(ep, str(path))
    return path


def traced_torchscript(path: Path) -> Path:
    torch.jit.trace(_seeded(Small), torch.from_numpy(inputs(2)[0])).save(str(path))
    return path
