"""Synthesises the keyword-spotting ("kws") data set: MLPerf Tiny's 12 classes, spoken by espeak-ng, in noise.

Every clip is one second at 16 kHz: a word spoken by ``espeak-ng`` (one of many accents x voice variants, at
a random speaking rate and pitch), resampled with ``sox``, optionally given a little synthetic room reverb,
shifted to a random place in the window and mixed with noise (white, pink, brown, babble made from other words
in other voices, mains hum) at a signal-to-noise ratio drawn from ``SNRS_DB``. The 12 classes follow MLPerf
Tiny's keyword spotting benchmark (Speech Commands v2): the 10 keywords, ``_silence_`` (noise only) and
``_unknown_`` (Speech Commands' other words). Features are MLPerf Tiny's 49 x 10 MFCCs.

The evaluation split is held out by voice and by noise: its voice variants (and the en-us-nyc accent) never
speak in the training split, and its noise (including the babble, built from its own voices) comes from a
separate random stream. Calibration samples are drawn from the training split.

Outputs (next to this script):
    kws_features.npz    float16 MFCCs ``x_<split>`` (N, 49, 10), int64 labels ``y_<split>``, and per sample
                        ``voice_<split>`` (index into the JSON's voices), ``noise_<split>`` (index into
                        ``noise_types``), ``snr_<split>`` (dB; NaN for ``_silence_``), for ``train`` and
                        ``eval``; ``calibration_index`` (rows of the training split).
    kws_data.json       Seed, classes, words, voices per split, SNRs, feature recipe, counts, tool versions.

Deterministic for a given seed (espeak-ng and sox are deterministic; all randomness comes from seeded numpy
generators, drawn in a fixed order).

Usage:
    python data/make_kws_data.py [--seed N] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import scipy
import scipy.fft
import scipy.signal

SAMPLE_RATE = 16000
CLIP = SAMPLE_RATE  # one second
SEED = 0
OUT_DIR = Path(__file__).resolve().parent

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SILENCE, UNKNOWN = "_silence_", "_unknown_"
CLASSES = (*KEYWORDS, SILENCE, UNKNOWN)
# Speech Commands v2's auxiliary words, which MLPerf Tiny folds into "_unknown_".
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin", "nine", "one",
                 "seven", "sheila", "six", "three", "tree", "two", "wow", "zero", "backward", "forward", "follow",
                 "learn", "visual")
# Words for the babble noise only (neither keywords nor unknown words).
BABBLE_WORDS = ("the morning paper", "a glass of water", "people in the garden", "yellow window", "music",
                "coffee and bread", "by the river", "kitchen table", "monday evening", "pencil", "orange",
                "the doctor said", "market square", "silver spoon", "wednesday", "newspaper", "a quiet room",
                "thank you very much", "maybe later", "the weather today")

# espeak-ng accents (voices) and voice variants (+m1, +f3, ...). A voice is "accent+variant".
TRAIN_ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
EVAL_ACCENTS = ("en-us", "en-gb", "en-gb-x-rp", "en-us-nyc", "en-gb-x-gbcwmd")
# Variant names are case-sensitive (espeak-ng silently falls back to its default voice for an unknown one).
TRAIN_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "f1", "f2", "f3", "f4", "klatt", "klatt2", "klatt3",
                  "adam", "Alex", "Andy", "Annie", "aunty", "benjamin", "david", "ed", "edward", "Gene", "iven",
                  "Jacky", "john", "linda", "max", "Michael", "paul", "quincy", "robert", "steph", "travis",
                  "whisper", "croak")
EVAL_VARIANTS = ("m7", "m8", "f5", "klatt4", "belinda", "boris", "grandma", "grandpa", "rob", "Andrea",
                 "victor", "Mike")
RATE_WPM = (110, 230)  # speaking rate range (espeak-ng default 175)
PITCH = (25, 75)  # espeak-ng pitch range (default 50)

# Per split: samples per class. Classes are balanced (as in MLPerf Tiny's test set, roughly).
PER_CLASS = {"train": 400, "eval": 100}
CALIBRATION = 128  # calibration rows drawn from the training split

NOISE_TYPES = ("white", "pink", "brown", "babble", "hum")
SNRS_DB = (20.0, 15.0, 10.0, 5.0, 0.0)
SPEECH_DBFS = (-32.0, -12.0)  # RMS level of the spoken word
SILENCE_DBFS = (-55.0, -20.0)  # RMS level of the noise in "_silence_" clips
REVERB_PROB = 0.25
RT60_S = (0.1, 0.5)
BABBLE_SECONDS = 30.0  # per split
BABBLE_TALKERS = 8
# Babble is speech-like: at the same SNR it masks a word far more than stationary noise, so it is mixed this much
# quieter than the drawn SNR says.
BABBLE_OFFSET_DB = 6.0

# MFCC recipe of MLPerf Tiny's keyword spotting benchmark (its get_dataset.py, after TensorFlow's speech
# commands example): 30 ms Hann window, 20 ms stride, 512-point FFT magnitude, 40 mel bins over 20-4000 Hz
# (HTK mel scale), log(mel + 1e-6), DCT-II scaled as tf.signal.mfccs_from_log_mel_spectrograms, first 10
# coefficients. 1 s at 16 kHz gives 49 frames. Written here with numpy/scipy because no well-kept, light
# library on our pins reproduces TensorFlow's filterbank (librosa and torchaudio use other mel scales and
# normalisations, and pulling TensorFlow in for one function is out of proportion).
WINDOW = 480
STRIDE = 320
FFT = 512
MEL_BINS = 40
MEL_LOW_HZ, MEL_HIGH_HZ = 20.0, 4000.0
DCT_COEFFS = 10
FRAMES = 1 + (CLIP - WINDOW) // STRIDE  # 49

NOISE_SEEDS = {"train": 101, "eval": 202}  # separate noise streams: no eval noise sample is seen in training


def tool_version(cmd: list[str]) -> str:
    """Returns the first output line of a ``--version`` command."""
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return (out.stdout or out.stderr).strip().splitlines()[0]


def synthesize(text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """Speaks ``text`` with espeak-ng; returns 16 kHz float32 audio with leading/trailing silence trimmed."""
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-s", str(rate), "-p", str(pitch), "-v", voice, text],
        check=True, capture_output=True,
    ).stdout
    # -D: no dither (deterministic); float output avoids requantising.
    raw = subprocess.run(
        ["sox", "-D", "-t", "wav", "-", "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-",
         "rate", "-v", str(SAMPLE_RATE)],
        input=wav, check=True, capture_output=True,
    ).stdout
    x = np.frombuffer(raw, dtype="<f4").astype(np.float64)
    env = np.convolve(np.abs(x), np.ones(160) / 160, mode="same")
    keep = np.flatnonzero(env > 10 ** (-40 / 20) * (env.max() + 1e-12))
    return x[keep[0]:keep[-1] + 1] if len(keep) else x


def colored_noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power spectrum 1/f^exponent (0 white, 1 pink, 2 brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    x -= x.mean()
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def hum(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS mains hum: 50 or 60 Hz with random odd/even harmonics, over a little white noise."""
    t = np.arange(n) / SAMPLE_RATE
    f0 = rng.choice([50.0, 60.0])
    x = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
            for k in range(1, 9))
    x = x + 0.05 * rng.standard_normal(n)
    return x / np.sqrt(np.mean(x**2))


def babble_track(clips: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A unit-RMS babble track: BABBLE_TALKERS streams of shuffled clips, overlaid."""
    n = int(BABBLE_SECONDS * SAMPLE_RATE)
    out = np.zeros(n)
    for _ in range(BABBLE_TALKERS):
        stream: list[np.ndarray] = []
        length = 0
        while length < n:
            c = clips[rng.integers(len(clips))]
            c = c / (np.sqrt(np.mean(c**2)) + 1e-12)
            stream.append(c)
            stream.append(np.zeros(int(rng.uniform(0.0, 0.15) * SAMPLE_RATE)))
            length += len(c) + len(stream[-1])
        out += np.concatenate(stream)[:n]
    return out / np.sqrt(np.mean(out**2))


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolves with a synthetic room response (direct path + exponentially decaying noise tail)."""
    rt60 = rng.uniform(*RT60_S)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0
    h = np.concatenate([[1.0], rng.uniform(0.2, 0.6) * tail / np.sqrt(np.sum(tail**2))])
    return scipy.signal.fftconvolve(x, h)[: len(x) + n // 2]


def mel_matrix() -> np.ndarray:
    """(FFT//2+1, MEL_BINS) weights of tf.signal.linear_to_mel_weight_matrix (HTK mel, DC bin zero)."""
    def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(f) / 700.0)

    bins = FFT // 2 + 1
    spec_mel = hz_to_mel(np.linspace(0.0, SAMPLE_RATE / 2, bins)[1:])[:, None]
    edges = np.linspace(hz_to_mel(MEL_LOW_HZ), hz_to_mel(MEL_HIGH_HZ), MEL_BINS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    w = np.maximum(0.0, np.minimum((spec_mel - lower) / (center - lower), (upper - spec_mel) / (upper - center)))
    return np.vstack([np.zeros((1, MEL_BINS)), w])


def mfcc(audio: np.ndarray) -> np.ndarray:
    """MLPerf Tiny MFCCs of 1 s clips: ``(N, CLIP)`` float audio in [-1, 1] -> ``(N, 49, 10)`` float32."""
    window = scipy.signal.get_window("hann", WINDOW, fftbins=True)  # periodic, as tf.signal.hann_window
    idx = np.arange(FRAMES)[:, None] * STRIDE + np.arange(WINDOW)[None, :]
    frames = audio[:, idx] * window  # (N, 49, 480)
    mag = np.abs(np.fft.rfft(frames, n=FFT, axis=-1))
    log_mel = np.log(mag @ mel_matrix() + 1e-6)
    coeffs = scipy.fft.dct(log_mel, type=2, axis=-1) / np.sqrt(2.0 * MEL_BINS)
    return coeffs[..., :DCT_COEFFS].astype(np.float32)


def plan_split(split: str, rng: np.random.Generator) -> list[dict[str, object]]:
    """Draws every sample's label, word, voice, rate, pitch, noise, SNR, level and shift (no audio yet)."""
    accents = TRAIN_ACCENTS if split == "train" else EVAL_ACCENTS
    variants = TRAIN_VARIANTS if split == "train" else EVAL_VARIANTS
    labels = np.repeat(np.arange(len(CLASSES)), PER_CLASS[split])
    rng.shuffle(labels)
    plan = []
    for label in labels.tolist():
        name = CLASSES[label]
        word = None if name == SILENCE else (rng.choice(UNKNOWN_WORDS) if name == UNKNOWN else name)
        plan.append({
            "label": label,
            "word": None if word is None else str(word),
            "voice": f"{rng.choice(accents)}+{rng.choice(variants)}",
            "rate": int(rng.integers(RATE_WPM[0], RATE_WPM[1] + 1)),
            "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
            "noise": int(rng.integers(len(NOISE_TYPES))),
            "snr": float(rng.choice(SNRS_DB)) if word is not None else float("nan"),
            "speech_dbfs": float(rng.uniform(*SPEECH_DBFS)),
            "silence_dbfs": float(rng.uniform(*SILENCE_DBFS)),
            "reverb": bool(rng.random() < REVERB_PROB),
            "shift": float(rng.random()),
        })
    return plan


def render_split(split: str, seed: int, pool: ThreadPoolExecutor) -> tuple[np.ndarray, dict[str, np.ndarray],
                                                                          list[str]]:
    """Renders a split: ``(audio (N, CLIP), per-sample arrays, voices)``."""
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    noise_rng = np.random.default_rng([seed, NOISE_SEEDS[split]])
    plan = plan_split(split, rng)
    speech = list(pool.map(lambda p: synthesize(p["word"], p["voice"], p["rate"], p["pitch"])
                           if p["word"] is not None else np.zeros(0), plan))
    # Babble from this split's own voices speaking other words.
    accents = TRAIN_ACCENTS if split == "train" else EVAL_ACCENTS
    variants = TRAIN_VARIANTS if split == "train" else EVAL_VARIANTS
    babble_plan = [(str(noise_rng.choice(BABBLE_WORDS)), f"{noise_rng.choice(accents)}+{noise_rng.choice(variants)}",
                    int(noise_rng.integers(*RATE_WPM)), int(noise_rng.integers(*PITCH))) for _ in range(60)]
    babble = babble_track(list(pool.map(lambda b: synthesize(*b), babble_plan)), noise_rng)

    voices = sorted({str(p["voice"]) for p in plan} | {b[1] for b in babble_plan})
    audio = np.zeros((len(plan), CLIP))
    for i, (p, clean) in enumerate(zip(plan, speech)):
        kind = NOISE_TYPES[int(p["noise"])]
        if kind == "babble":
            start = int(noise_rng.integers(len(babble) - CLIP))
            noise = babble[start:start + CLIP]
        elif kind == "hum":
            noise = hum(CLIP, noise_rng)
        else:
            noise = colored_noise(CLIP, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind], noise_rng)
        if p["word"] is None:
            audio[i] = noise * 10 ** (float(p["silence_dbfs"]) / 20)
            continue
        level = 10 ** (float(p["speech_dbfs"]) / 20)
        word = clean / (np.sqrt(np.mean(clean**2)) + 1e-12) * level  # RMS over the spoken part
        if p["reverb"]:
            word = reverb(word, noise_rng)
        if len(word) > CLIP:  # slow speech: keep a random second of it
            start = int(float(p["shift"]) * (len(word) - CLIP))
            word = word[start:start + CLIP]
        offset = int(float(p["shift"]) * (CLIP - len(word)))
        audio[i, offset:offset + len(word)] = word
        snr = float(p["snr"]) + (BABBLE_OFFSET_DB if kind == "babble" else 0.0)
        audio[i] += noise * level * 10 ** (-snr / 20)
    audio = np.clip(audio, -1.0, 1.0)
    arrays = {
        "y": np.array([p["label"] for p in plan], np.int64),
        "voice": np.array([voices.index(str(p["voice"])) if p["word"] is not None else -1 for p in plan],
                          np.int64),
        "noise": np.array([p["noise"] for p in plan], np.int64),
        "snr": np.array([p["snr"] for p in plan], np.float32),
    }
    return audio, arrays, voices


def build(seed: int) -> tuple[dict[str, np.ndarray], dict[str, object]]:
    """Builds the feature arrays and metadata for both splits."""
    out: dict[str, np.ndarray] = {}
    splits: dict[str, object] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for split in ("train", "eval"):
            audio, arrays, voices = render_split(split, seed, pool)
            out[f"x_{split}"] = mfcc(audio).astype(np.float16)
            for key, arr in arrays.items():
                out[f"{key}_{split}"] = arr
            splits[split] = {
                "samples": len(audio),
                "per_class": PER_CLASS[split],
                "accents": list(TRAIN_ACCENTS if split == "train" else EVAL_ACCENTS),
                "variants": list(TRAIN_VARIANTS if split == "train" else EVAL_VARIANTS),
                "voices": voices,
                "noise_seed": [seed, NOISE_SEEDS[split]],
            }
    rng = np.random.default_rng([seed, 2])
    out["calibration_index"] = np.sort(rng.permutation(len(out["y_train"]))[:CALIBRATION]).astype(np.int64)
    meta: dict[str, object] = {
        "seed": seed,
        "sample_rate": SAMPLE_RATE,
        "clip_samples": CLIP,
        "classes": list(CLASSES),
        "keywords": list(KEYWORDS),
        "unknown_words": list(UNKNOWN_WORDS),
        "babble_words": list(BABBLE_WORDS),
        "noise_types": list(NOISE_TYPES),
        "snrs_db": list(SNRS_DB),
    "babble_offset_db": BABBLE_OFFSET_DB,
        "speech_dbfs": list(SPEECH_DBFS),
        "silence_dbfs": list(SILENCE_DBFS),
        "reverb": {"probability": REVERB_PROB, "rt60_s": list(RT60_S)},
        "rate_wpm": list(RATE_WPM),
        "pitch": list(PITCH),
        "features": {"kind": "mfcc (MLPerf Tiny KWS)", "window": WINDOW, "stride": STRIDE, "fft": FFT,
                     "mel_bins": MEL_BINS, "mel_hz": [MEL_LOW_HZ, MEL_HIGH_HZ], "dct_coefficients": DCT_COEFFS,
                     "frames": FRAMES, "dtype": "float16"},
        "calibration": {"from": "train", "samples": CALIBRATION},
        "splits": splits,
        "espeak_ng_version": tool_version(["espeak-ng", "--version"]),
        "sox_version": tool_version(["sox", "--version"]),
        "numpy_version": np.__version__,
        "scipy_version": scipy.__version__,
    }
    return out, meta


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    arrays, meta = build(args.seed)
    np.savez_compressed(args.out_dir / "kws_features.npz", **arrays)
    (args.out_dir / "kws_data.json").write_text(json.dumps(meta, indent=2) + "\n")
    sizes = {k: v.shape for k, v in arrays.items() if k.startswith("x_")}
    print(f"kws: {sizes}, {(args.out_dir / 'kws_features.npz').stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
