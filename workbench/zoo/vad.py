"""Silero VAD v6 (weights from the `silero-vad` package) on synthesised speech with noise gaps.

Evaluation streams the clip frame by frame (32 ms frames with 64 samples of context) through the runner,
carrying the LSTM state the runner itself returns, exactly as a device would. Labels come from the clean speech
envelope when data/make_vad_audio.py built the clip, never from the model.
"""

from __future__ import annotations

import csv
import wave
from dataclasses import dataclass

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.paths import data_file
from workbench.formats.loader import load
from workbench.task import Task, eval_rows

AUDIO_FILE = "vad_eval.wav"
LABELS_FILE = "vad_eval_labels.csv"


def read_audio() -> np.ndarray:
    """The evaluation clip as float32 in [-1, 1] at 16 kHz."""
    from workbench.zoo.vad_net import SAMPLE_RATE

    path = data_file(AUDIO_FILE)
    with wave.open(str(path), "rb") as w:
        if w.getframerate() != SAMPLE_RATE or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise WorkbenchError(f"{path}: expected 16 kHz mono 16-bit PCM; rebuild it with data/make_vad_audio.py.")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def read_labels() -> np.ndarray:
    with data_file(LABELS_FILE).open(newline="") as f:
        return np.asarray([int(r["label"]) for r in csv.DictReader(f)], dtype=np.int64)


@dataclass(eq=False)
class StreamingVADTask(Task):
    """A stateful streaming model: `evaluate` feeds frames one at a time and carries the state."""

    def run(self, runner, *, limit: int | None = None) -> tuple[list[np.ndarray], slice]:  # type: ignore[override]
        """Stream the clip through `runner` one frame at a time, carrying the state the runner returns."""
        rows = eval_rows(limit)
        frames = self.eval_inputs[0][rows]
        h = np.zeros((1, self.eval_inputs[1].shape[1]), np.float32)
        c = np.zeros_like(h)
        probs = np.empty(len(frames), np.float32)
        for t in range(len(frames)):
            p, h, c = runner(frames[t:t + 1], h, c)[:3]
            probs[t] = float(p.reshape(-1)[0])
        return [probs], rows

    def reference_outputs(self) -> list[np.ndarray]:
        if self._reference is None:
            from workbench.runtimes import runtime

            self._reference = self.run(runtime(self.model, "torch"))[0]
        return self._reference

    def agreement_samples(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> np.ndarray:
        """Per frame: whether its speech / no-speech decision matches the original model's."""
        ref = self.reference_outputs()[0][rows]
        return (outputs[0].reshape(-1) >= 0.5) == (ref >= 0.5)

    def fidelity(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> float:
        """Share of frames whose speech / no-speech decision matches the original model's (its interval, from
        `fidelity_scores`, treats frames as independent, which neighbouring frames are not: it is optimistic)."""
        return round(float(np.mean(self.agreement_samples(outputs, rows))), 6)

    def score(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> dict[str, float]:
        from workbench.zoo.vad_net import vad_metrics

        return vad_metrics(outputs[0].reshape(-1), self.eval_labels[rows])


def _teacher_states(model, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fp32 model's (h, c) state *before* each frame, so frames can be fed in batches (calibration)."""
    import torch

    hs = np.zeros((len(frames), 128), np.float32)
    cs = np.zeros_like(hs)
    h = torch.zeros(1, 128)
    c = torch.zeros(1, 128)
    x = torch.from_numpy(frames)
    with torch.no_grad():
        for t in range(len(frames)):
            hs[t], cs[t] = h[0].numpy(), c[0].numpy()
            _, h, c = model(x[t:t + 1], h, c)
    return hs, cs


def load_task() -> Task:
    """silero-vad: 309k-parameter streaming VAD; metrics frame accuracy and F1 on a 43.6 s clip."""
    from workbench.zoo.vad_net import build_silero_vad, frames_with_context

    model = build_silero_vad()
    model.output_names = ("speech_prob", "h_out", "c_out")
    frames = frames_with_context(read_audio())
    labels = read_labels()
    if len(labels) != len(frames):
        raise WorkbenchError(f"VAD data: {len(frames)} frames but {len(labels)} labels; rebuild data/ with its script.")
    hs, cs = _teacher_states(model, frames)
    eval_inputs = [frames, hs, cs]
    pick = np.arange(0, len(frames), max(1, len(frames) // 128))[:128]
    example = [a[100:102] for a in eval_inputs]
    handle = load(model, example_inputs=example, name="silero-vad")
    return StreamingVADTask(
        name="silero-vad",
        model=handle,
        metric="frame_accuracy",
        example_inputs=example,
        calibration=[a[pick] for a in eval_inputs],
        eval_inputs=eval_inputs,
        eval_labels=labels,
        description="Silero VAD v6, 43.6 s of espeak-ng speech with noise gaps, streamed in 32 ms frames; "
        "metrics: frame accuracy and F1 of the speech class",
    )
