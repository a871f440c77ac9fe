"""Small models for calibrating and checking the estimator: the zoo models plus structurally different
variants built from plain torch modules (random weights: only their speed matters).

Example:
    >>> handles = calibration_variants(("digits-cnn",), names=["mlp-small"])
    >>> sorted(handles)
    ['digits-cnn', 'mlp-small']
"""

from __future__ import annotations

import copy
from functools import lru_cache, partial
from typing import Any, Callable, Sequence

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle

_DIGITS_BLOCKS = ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1))


@lru_cache(maxsize=None)
def _classes() -> dict[str, type]:
    """The torch module classes (defined on first use, so importing this module does not import torch)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    from workbench.nets.blocks import ConvBNReLU, DepthwiseSeparable

    class ScaledCNN(nn.Module):
        """The digits CNN's architecture with every channel count scaled by `width`."""

        def __init__(self, width: float) -> None:
            super().__init__()
            w = lambda c: max(4, int(round(c * width)))
            self.stem = ConvBNReLU(1, w(32), 3, 2)
            self.blocks = nn.Sequential(*(DepthwiseSeparable(w(i), w(o), s) for i, o, s in _DIGITS_BLOCKS))
            self.classifier = nn.Linear(w(_DIGITS_BLOCKS[-1][1]), 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))

    class MLP(nn.Module):
        def __init__(self, d_in: int, hidden: int, depth: int) -> None:
            super().__init__()
            dims = [d_in] + [hidden] * depth
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
            self.head = nn.Linear(hidden, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layers:
                x = F.relu(layer(x))
            return self.head(x)

    class Conv1dNet(nn.Module):
        """An audio-style 1-D CNN: a strided front end, then strided 3-tap convs down to a few positions."""

        def __init__(self) -> None:
            super().__init__()
            self.front = nn.Conv1d(1, 96, 64, stride=32)
            self.convs = nn.ModuleList([nn.Conv1d(96, 64, 3, stride=2, padding=1),
                                        nn.Conv1d(64, 64, 3, stride=2, padding=1),
                                        nn.Conv1d(64, 128, 3, stride=2, padding=1)])
            self.head = nn.Linear(128, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.abs(self.front(x.unsqueeze(1)))
            for conv in self.convs:
                x = F.relu(conv(x))
            return self.head(x.mean(-1))

    class TokenFFN(nn.Module):
        """Transformer feed-forward blocks alone: GEMMs with one row per token, no attention."""

        def __init__(self, d: int, ffn: int, depth: int) -> None:
            super().__init__()
            self.up = nn.ModuleList(nn.Linear(d, ffn) for _ in range(depth))
            self.down = nn.ModuleList(nn.Linear(ffn, d) for _ in range(depth))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for up, down in zip(self.up, self.down):
                x = x + down(F.gelu(up(x)))
            return x.mean(1)

    class Recurrent(nn.Module):
        """An LSTM cell written out (two linears + gates), unrolled: many tiny element-wise kernels."""

        def __init__(self, d: int, steps: int) -> None:
            super().__init__()
            self.steps = steps
            self.ih, self.hh = nn.Linear(d, 4 * d), nn.Linear(d, 4 * d)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, c = torch.tanh(x), x
            for _ in range(self.steps):
                i, f, g, o = (self.ih(x) + self.hh(h)).chunk(4, dim=1)
                x = x + h
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            return h

    class Block(nn.Module):
        """A post-norm transformer encoder block (BERT-style) from plain modules."""

        def __init__(self, d: int, heads: int, ffn: int) -> None:
            super().__init__()
            self.heads = heads
            self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.up, self.down, self.act = nn.Linear(d, ffn), nn.Linear(ffn, d), nn.GELU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, s, d = x.shape
            split = lambda t: t.view(b, s, self.heads, d // self.heads).transpose(1, 2)
            a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)))
            x = self.ln1(x + self.o(a.transpose(1, 2).reshape(b, s, d)))
            return self.ln2(x + self.down(self.act(self.up(x))))

    class Encoder(nn.Module):
        def __init__(self, d: int, heads: int, ffn: int, depth: int) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(Block(d, heads, ffn) for _ in range(depth))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for blk in self.blocks:
                x = blk(x)
            return x.mean(1)

    return {"ScaledCNN": ScaledCNN, "MLP": MLP, "Conv1dNet": Conv1dNet, "TokenFFN": TokenFFN,
            "Recurrent": Recurrent, "Encoder": Encoder}


def _handle(module_fn: Callable[[], Any], shape: tuple[int, ...], name: str) -> ModelHandle:
    import torch

    from workbench.formats.loader import load

    torch.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    return load(module_fn().eval(), example_inputs=[x], name=name)


def scaled_cnn(width: float = 1.0, resolution: int = 32) -> ModelHandle:
    """The digits CNN architecture at `width` x channels on `resolution` x `resolution` inputs."""
    return _handle(lambda: _classes()["ScaledCNN"](width), (1, resolution, resolution), f"cnn-w{width:g}-r{resolution}")


def mlp(d_in: int, hidden: int, depth: int) -> ModelHandle:
    """`depth` ReLU Linear layers of width `hidden` and a 10-way head."""
    return _handle(lambda: _classes()["MLP"](d_in, hidden, depth), (d_in,), f"mlp-{d_in}-{hidden}x{depth}")


def encoder(d: int, heads: int, ffn: int, depth: int, tokens: int = 64) -> ModelHandle:
    """A BERT-style encoder of `depth` blocks on `tokens` x `d` float inputs."""
    return _handle(lambda: _classes()["Encoder"](d, heads, ffn, depth), (tokens, d), f"encoder-d{d}-h{heads}x{depth}")


def token_ffn(d: int, ffn: int, depth: int, tokens: int = 64) -> ModelHandle:
    """Transformer feed-forward blocks only (no attention)."""
    return _handle(lambda: _classes()["TokenFFN"](d, ffn, depth), (tokens, d), f"ffn-d{d}-{ffn}x{depth}")


def recurrent(d: int = 64, steps: int = 4) -> ModelHandle:
    """An LSTM cell written out with two Linear layers and gates, unrolled `steps` times."""
    return _handle(lambda: _classes()["Recurrent"](d, steps), (d,), f"recurrent-{d}x{steps}")


def conv1d_net(samples: int = 1024) -> ModelHandle:
    """An audio-style 1-D CNN on `samples` input samples."""
    return _handle(lambda: _classes()["Conv1dNet"](), (samples,), f"conv1d-{samples}")


def truncated_minilm(layers: int) -> ModelHandle:
    """The zoo MiniLM encoder with only its first `layers` transformer layers (same inputs and pooling)."""
    from torch import nn

    from workbench import zoo
    from workbench.formats.loader import load

    task = zoo.load("minilm")
    module = copy.deepcopy(task.model.module)
    module.bert.encoder.layer = nn.ModuleList(list(module.bert.encoder.layer)[:layers])
    return load(module, example_inputs=task.model.example_inputs, name=f"minilm-L{layers}")


def synthetic_builders() -> dict[str, Callable[[], ModelHandle]]:
    """The calibration set's synthetic variants: name -> zero-argument builder."""
    return {
        "cnn-w0.5": partial(scaled_cnn, 0.5),
        "cnn-w2": partial(scaled_cnn, 2.0),
        "cnn-w0.6": partial(scaled_cnn, 0.6),
        "cnn-w1.3": partial(scaled_cnn, 1.3),
        "cnn-r64": partial(scaled_cnn, 1.0, 64),
        "mlp-small": partial(mlp, 256, 256, 2),
        "mlp-big": partial(mlp, 1024, 1024, 4),
        "mlp-huge": partial(mlp, 2048, 2048, 3),
        "transformer": partial(encoder, 256, 4, 1024, 2),
        "transformer-wide": partial(encoder, 384, 12, 1536, 1),
        "ffn": partial(token_ffn, 384, 1536, 2),
        "ffn-big": partial(token_ffn, 768, 3072, 4),
        "recurrent": partial(recurrent, 64, 4),
        "conv1d": partial(conv1d_net, 1024),
        "conv1d-long": partial(conv1d_net, 4096),
    }


def calibration_variants(tasks: Sequence[str] = ("digits-cnn", "silero-vad"), *, synthetic: bool = True,
                         names: Sequence[str] | None = None) -> dict[str, ModelHandle]:
    """Zoo models by task name, plus the synthetic variants (all of them, or those in `names`).

    Synthetic variants: ``cnn-w0.5`` / ``cnn-w2`` (the digits CNN at half / double width), ``cnn-w0.6`` /
    ``cnn-w1.3`` (channel counts 19-154 / 42-333: not multiples of a SIMD block), ``cnn-r64`` (at 64x64 input),
    ``mlp-small`` (overhead-bound), ``mlp-big`` (17 MB of weights: beyond L2, within a 32 MB L3), ``mlp-huge``
    (50 MB: from DRAM), ``transformer`` (2 encoder blocks, d=256, 4 heads, 64 tokens), ``transformer-wide``
    (1 block, d=384, 12 heads, FFN 1536), ``ffn`` / ``ffn-big`` (2 / 4 transformer feed-forward blocks on 64
    tokens, d=384 / 768: GEMMs without attention, weights in L3 / in DRAM), ``recurrent`` (an LSTM cell unrolled
    4 steps: dozens of tiny element-wise kernels), ``conv1d`` / ``conv1d-long`` (an audio-style 1-D CNN on 1024 /
    4096 samples whose strided convolutions end at a few positions).
    """
    from workbench import zoo

    out = {t: zoo.load(t).model for t in tasks}
    if synthetic:
        builders = synthetic_builders()
        for name in names if names is not None else list(builders):
            if name not in builders:
                raise WorkbenchError(f"Unknown calibration variant {name!r}; choose from {', '.join(builders)}.")
            out[name] = builders[name]()
    return out
