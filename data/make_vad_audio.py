"""Synthesises a small labelled speech / non-speech evaluation clip for VAD.

English sentences are spoken by ``espeak-ng`` (several voices and speeds),
resampled to 16 kHz with ``sox``, and interleaved with 0.5-2 s gaps of
background noise; light noise is then added over the whole clip. Every
512-sample frame (32 ms) is labelled speech (1) or not (0) from the smoothed
energy envelope of the *clean* speech track, so the labels do not depend on
any VAD model.

Outputs (next to this script):
    vad_eval.wav            16-bit PCM, 16 kHz, mono.
    vad_eval_labels.csv     column ``label``, one row per 512-sample frame
                            (``n_frames = n_samples // 512``).
    vad_eval.json           Seed, duration, sentences, voices and tool versions.

The result is deterministic for a given seed (espeak-ng and sox are
deterministic; all noise comes from a seeded numpy generator).

Usage:
    python data/make_vad_audio.py [--seed N] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
FRAME = 512
SEED = 1234
OUT_DIR = Path(__file__).resolve().parent

# (text, voice, words per minute)
UTTERANCES: list[tuple[str, str, int]] = [
    ("The quick brown fox jumps over the lazy dog.", "en-us", 160),
    ("Please switch off the lights when you leave.", "en-gb+f3", 160),
    ("Edge devices run small networks on little power.", "en-us+m3", 175),
    ("It was a bright cold day in April.", "en-gb-x-rp+f2", 140),
    ("Could you tell me the way to the station, please?", "en-us+f3", 165),
    ("Seven hundred people came to the concert.", "en-gb", 160),
    ("Fresh bread and warm soup make a fine lunch.", "en-us", 160),
    ("The forecast says heavy rain in the north.", "en-gb+f3", 175),
    ("Scientists measured the temperature of the ocean.", "en-us+m3", 155),
    ("Turn left at the corner, then cross the old bridge.", "en-gb-x-rp+f2", 165),
]

GAP_RANGE_S = (0.5, 2.0)  # silence (background noise only) before each utterance
TAIL_GAP_S = 0.6  # trailing background noise after the last utterance
PEAK_RANGE = (0.35, 0.7)  # per-utterance peak level of the clean speech
GAP_NOISE_RMS = 0.006  # pink noise in the gaps (about -44 dBFS)
GAP_NOISE_FADE_S = 0.05  # fade in/out of the gap noise
FLOOR_NOISE_RMS = 0.002  # white noise over everything (about -54 dBFS)

# Labelling of the clean speech track.
ENV_WINDOW_S = 0.02  # RMS envelope window
ENV_THRESHOLD_DB = -40.0  # envelope threshold relative to the utterance peak level
FRAME_ACTIVE_FRACTION = 0.25  # a frame is active if this fraction of it is above threshold
BRIDGE_FRAMES = 8  # fill non-speech runs up to this long between speech (256 ms)
HANGOVER_FRAMES = 2  # extend each speech run by this many frames (64 ms)


def tool_version(cmd: list[str]) -> str:
    """Returns the first output line of a ``--version`` command."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().splitlines()[0]


def synthesize(text: str, voice: str, speed: int, tmp: Path) -> np.ndarray:
    """Speaks ``text`` with espeak-ng and returns 16 kHz float32 audio.

    Args:
        text: Sentence to speak.
        voice: espeak-ng voice (optionally with ``+variant``).
        speed: Words per minute.
        tmp: Scratch directory.

    Returns:
        Mono float32 audio in [-1, 1] at ``SAMPLE_RATE``.
    """
    wav = tmp / "utt.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(wav), "-s", str(speed), "-v", voice, text],
        check=True,
        capture_output=True,
    )
    # -D: no dither (keeps it deterministic); float output avoids requantising.
    raw = subprocess.run(
        ["sox", "-D", str(wav), "-t", "raw", "-e", "floating-point", "-b", "32",
         "-c", "1", "-", "rate", "-v", str(SAMPLE_RATE)],
        check=True,
        capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Generates unit-RMS pink (1/f power) noise.

    Args:
        n: Number of samples.
        rng: Random generator.

    Returns:
        float64 array of length ``n``.
    """
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def speech_labels(clean: np.ndarray, ref_levels: np.ndarray) -> np.ndarray:
    """Labels frames as speech from the clean speech envelope.

    Args:
        clean: Clean speech track (zeros in the gaps).
        ref_levels: Per-sample reference level (peak of the utterance the
            sample belongs to; any positive value in the gaps).

    Returns:
        ``(len(clean) // FRAME,)`` int array of 0/1 labels.
    """
    win = int(ENV_WINDOW_S * SAMPLE_RATE)
    power = np.convolve(clean.astype(np.float64) ** 2, np.ones(win) / win, mode="same")
    env = np.sqrt(power)
    active = env > ref_levels * 10 ** (ENV_THRESHOLD_DB / 20)
    n = len(clean) // FRAME
    frac = active[: n * FRAME].reshape(n, FRAME).mean(axis=1)
    lab = frac >= FRAME_ACTIVE_FRACTION

    # Bridge short pauses between speech runs (word / comma pauses).
    idx = np.flatnonzero(lab)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= BRIDGE_FRAMES + 1:
            lab[a:b] = True
    # Hangover after the end of each speech run.
    ends = np.flatnonzero(lab[:-1] & ~lab[1:])
    for e in ends:
        lab[e + 1 : e + 1 + HANGOVER_FRAMES] = True
    return lab.astype(np.int64)


def build(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Builds the noisy clip, its frame labels and metadata.

    Args:
        seed: Seed for gap lengths, levels and noise.

    Returns:
        ``(audio, labels, meta)``: float32 audio at 16 kHz, int frame labels,
        JSON-serialisable metadata.
    """
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    refs: list[np.ndarray] = []
    is_gap: list[np.ndarray] = []
    segments: list[dict[str, object]] = []
    pos = 0

    def add_gap(seconds: float) -> None:
        nonlocal pos
        n = int(round(seconds * SAMPLE_RATE))
        parts.append(np.zeros(n, np.float32))
        refs.append(np.ones(n))
        is_gap.append(np.ones(n, bool))
        pos += n

    with tempfile.TemporaryDirectory() as tmpdir:
        for text, voice, speed in UTTERANCES:
            add_gap(rng.uniform(*GAP_RANGE_S))
            utt = synthesize(text, voice, speed, Path(tmpdir))
            peak = rng.uniform(*PEAK_RANGE)
            utt = utt / (np.max(np.abs(utt)) + 1e-12) * peak
            segments.append({"text": text, "voice": voice, "speed_wpm": speed,
                             "start_s": pos / SAMPLE_RATE,
                             "end_s": (pos + len(utt)) / SAMPLE_RATE,
                             "peak": round(float(peak), 4)})
            parts.append(utt.astype(np.float32))
            refs.append(np.full(len(utt), peak))
            is_gap.append(np.zeros(len(utt), bool))
            pos += len(utt)
        add_gap(TAIL_GAP_S)

    clean = np.concatenate(parts)
    ref = np.concatenate(refs)
    gap = np.concatenate(is_gap).astype(np.float64)
    n = len(clean)

    # Background noise in the gaps, faded in/out at the gap edges.
    fade = int(GAP_NOISE_FADE_S * SAMPLE_RATE)
    gap_env = np.convolve(gap, np.ones(fade) / fade, mode="same")
    noise = GAP_NOISE_RMS * pink_noise(n, rng) * gap_env
    noise += FLOOR_NOISE_RMS * rng.standard_normal(n)
    audio = np.clip(clean + noise, -1.0, 1.0).astype(np.float32)

    labels = speech_labels(clean, ref)
    meta: dict[str, object] = {
        "seed": seed,
        "sample_rate": SAMPLE_RATE,
        "frame": FRAME,
        "n_samples": n,
        "n_frames": n // FRAME,
        "duration_s": round(n / SAMPLE_RATE, 3),
        "speech_frame_fraction": round(float(labels.mean()), 4),
        "utterances": segments,
        "noise": {"gap_pink_rms": GAP_NOISE_RMS, "floor_white_rms": FLOOR_NOISE_RMS},
        "labelling": {
            "env_window_s": ENV_WINDOW_S,
            "env_threshold_db_re_peak": ENV_THRESHOLD_DB,
            "frame_active_fraction": FRAME_ACTIVE_FRACTION,
            "bridge_frames": BRIDGE_FRAMES,
            "hangover_frames": HANGOVER_FRAMES,
        },
        "espeak_ng_version": tool_version(["espeak-ng", "--version"]),
        "sox_version": tool_version(["sox", "--version"]),
    }
    return audio, labels, meta


def write_wav(path: Path, audio: np.ndarray) -> None:
    """Writes float audio as 16-bit PCM mono WAV at ``SAMPLE_RATE``."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    audio, labels, meta = build(args.seed)
    out = args.out_dir
    write_wav(out / "vad_eval.wav", audio)
    with (out / "vad_eval_labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label"])
        writer.writerows([[int(v)] for v in labels])
    (out / "vad_eval.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"{meta['duration_s']} s, {meta['n_frames']} frames, "
          f"speech fraction {meta['speech_frame_fraction']}")


if __name__ == "__main__":
    main()
