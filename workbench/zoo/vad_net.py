"""Silero VAD v6 (16 kHz) as a plain ``nn.Module``.

The module reproduces the TorchScript model shipped in the ``silero_vad``
package (``silero_vad.jit``) with identical outputs, but exposes the LSTM
state explicitly so it can be traced, quantised or exported.

Streaming protocol (mirrors ``silero_vad``'s own wrapper): audio is cut into
512-sample frames; each frame is prefixed with the last 64 samples of the
previous frame (zeros for the first frame), giving 576 samples per step, and
the LSTM state ``(h, c)`` is carried from one frame to the next starting from
zeros.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SAMPLE_RATE = 16000
"""Sample rate the model expects (Hz)."""
FRAME = 512
"""New samples consumed per model step (32 ms at 16 kHz)."""
CONTEXT = 64
"""Samples of left context prepended to each frame."""
HIDDEN = 128
"""LSTM state size."""


class SileroVAD(nn.Module):
    """Silero VAD v6 network for 16 kHz audio (309,633 parameters).

    The STFT front end is a fixed 1-D convolution whose 258 output channels are
    the real and imaginary parts of 129 frequency bins.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stft_conv = nn.Conv1d(1, 258, 256, stride=128, bias=False)
        self.conv1 = nn.Conv1d(129, 128, 3, padding=1)
        self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
        self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
        self.ih = nn.Linear(128, 4 * HIDDEN)
        self.hh = nn.Linear(HIDDEN, 4 * HIDDEN)
        self.final_conv = nn.Conv1d(HIDDEN, 1, 1)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Runs one streaming step.

        Args:
            x: ``(B, CONTEXT + FRAME)`` = ``(B, 576)`` float audio in [-1, 1].
            h: ``(B, 128)`` LSTM hidden state.
            c: ``(B, 128)`` LSTM cell state.

        Returns:
            ``(prob, h, c)``: ``prob`` is ``(B, 1)`` speech probability for
            the 32 ms frame, ``h`` and ``c`` the updated states.
        """
        x = F.pad(x, (0, 64), mode="reflect").unsqueeze(1)
        x = self.stft_conv(x)
        x = (x[:, :129] ** 2 + x[:, 129:] ** 2).sqrt()  # magnitude spectrum
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = F.relu(conv(x))
        gates = self.ih(x.squeeze(-1)) + self.hh(h)
        i, f, g, o = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        y = torch.sigmoid(self.final_conv(F.relu(h).unsqueeze(-1)))
        prob = y.squeeze(1).mean(1, keepdim=True)
        return prob, h, c


# What pruning must leave alone (read by `workbench.compression.Prune` with getattr): the STFT basis is a fixed
# transform; the LSTM cell (whose state is a model input) and the decoder have widths that are part of the
# model's contract. Set here, after the class body, because a model's fingerprint hashes the class's source.
SileroVAD.prune_fixed = ("stft_conv",)
SileroVAD.prune_protected = ("ih", "hh", "final_conv")


# Mapping from SileroVAD parameter names to the TorchScript 16 kHz sub-model.
_JIT_NAMES: dict[str, str] = {
    "stft_conv.weight": "stft.forward_basis_buffer",
    "ih.weight": "decoder.rnn.weight_ih",
    "ih.bias": "decoder.rnn.bias_ih",
    "hh.weight": "decoder.rnn.weight_hh",
    "hh.bias": "decoder.rnn.bias_hh",
    "final_conv.weight": "decoder.decoder.2.weight",
    "final_conv.bias": "decoder.decoder.2.bias",
    **{
        f"conv{i + 1}.{t}": f"encoder.{i}.reparam_conv.{t}"
        for i in range(4)
        for t in ("weight", "bias")
    },
}


def build_silero_vad() -> SileroVAD:
    """Builds a SileroVAD loaded with the ``silero_vad`` package weights.

    The weights come from the packaged TorchScript model (``silero_vad.jit``);
    the packaged ``silero_vad_16k.safetensors`` holds different (older)
    weights and must not be used. Nothing is downloaded.

    Importing ``silero_vad`` calls ``torch.set_num_threads(1)`` as a side
    effect; the caller's thread count is restored afterwards.

    Returns:
        The model in eval mode on CPU.
    """
    n_threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad

        sd = load_silero_vad()._model.state_dict()
    finally:
        torch.set_num_threads(n_threads)
    vad = SileroVAD()
    vad.load_state_dict({k: sd[v] for k, v in _JIT_NAMES.items()})
    return vad.eval()


def frames_with_context(audio: np.ndarray) -> np.ndarray:
    """Cuts audio into model inputs the way ``silero_vad`` streams it.

    Only whole frames are used: ``n_frames = len(audio) // FRAME``. Each row is
    the ``CONTEXT`` samples preceding the frame (zeros for the first frame)
    followed by the ``FRAME`` samples of the frame.

    Args:
        audio: 1-D float audio at 16 kHz.

    Returns:
        ``(n_frames, CONTEXT + FRAME)`` float32 array.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = len(audio) // FRAME
    padded = np.concatenate([np.zeros(CONTEXT, np.float32), audio[: n * FRAME]])
    idx = np.arange(n)[:, None] * FRAME + np.arange(CONTEXT + FRAME)[None, :]
    return padded[idx]


@torch.no_grad()
def run_sequential(model: nn.Module, frames: np.ndarray) -> np.ndarray:
    """Runs frames through the model one by one, carrying the LSTM state.

    Args:
        model: A module with the ``SileroVAD.forward`` signature.
        frames: ``(n_frames, 576)`` array from :func:`frames_with_context`.

    Returns:
        ``(n_frames,)`` float32 speech probabilities.
    """
    h = torch.zeros(1, HIDDEN)
    c = torch.zeros(1, HIDDEN)
    x = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32))
    probs = np.empty(len(frames), dtype=np.float32)
    for t in range(len(frames)):
        p, h, c = model(x[t : t + 1], h, c)
        probs[t] = float(p)
    return probs


def vad_metrics(
    probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Scores frame-level speech probabilities against 0/1 labels.

    Args:
        probs: ``(n_frames,)`` speech probabilities.
        labels: ``(n_frames,)`` ground truth, 1 = speech.
        threshold: Probability at or above which a frame counts as speech.

    Returns:
        ``{"frame_accuracy": ..., "f1": ...}`` (F1 of the speech class), each with its 95 % interval
        (``frame_accuracy_low`` / ``_high``: Wilson; ``f1_low`` / ``_high``: a bootstrap over frames). Both
        treat frames as independent samples; neighbouring 32 ms frames of one utterance are strongly
        correlated, so the intervals are optimistic (narrower than a resampling of utterances would give).

    Example:
        >>> m = vad_metrics(np.array([0.9, 0.8, 0.1, 0.2, 0.7, 0.3]), np.array([1, 1, 0, 0, 0, 1]))
        >>> round(m["frame_accuracy"], 3), round(m["f1"], 3), m["f1_low"] <= m["f1"] <= m["f1_high"]
        (0.667, 0.667, True)
    """
    from workbench.core.intervals import f1_of_counts, with_interval

    pred = np.asarray(probs).reshape(-1) >= threshold
    true = np.asarray(labels).reshape(-1).astype(bool)
    if pred.shape != true.shape:
        raise ValueError(f"shape mismatch: {pred.shape} vs {true.shape}")
    tp = float(np.sum(pred & true))
    fp = float(np.sum(pred & ~true))
    fn = float(np.sum(~pred & true))
    denom = 2 * tp + fp + fn
    counts = np.stack([pred & true, pred & ~true, ~pred & true], axis=1)
    return {
        **with_interval("frame_accuracy", pred == true, value=float(np.mean(pred == true))),
        **with_interval("f1", counts, value=2 * tp / denom if denom else 1.0, statistic=f1_of_counts),
    }
