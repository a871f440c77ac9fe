"""Renders a small labelled text-direction set for PaddleOCR's direction classifier (bring-your-own-model data).

Short lines of English words (one to four words from a fixed list) are drawn in black on white with fonts Debian
ships (``fonts-dejavu-core``, ``fonts-liberation``; Pillow's built-in font when none is installed), cropped to the
text, and each line is kept twice: upright (label 0) and rotated 180 degrees (label 1). Every crop is then
resized as PaddleOCR's classifier preprocessing does (``resize_norm_img`` in ``ppocr/data/imaug/rec_img_aug.py``):
height 48, aspect kept, width capped at 192, padded on the right. The labels come from how each image was drawn,
never from a model.

Output (next to this script): ``foreign/text_direction.npz`` (``np.savez_compressed``) with
    images   uint8 [N, 48, 192] grey (black text on white: the RGB channels would be equal, so one is stored),
             the resized crop at the left, white padding on the right;
    widths   int64 [N], columns of real image (PaddleOCR pads with 0 *after* normalising, so the loader
             `workbench.zoo.text_direction.text_direction_samples` zeroes the columns past each width);
    labels   int64 [N], 0 upright, 1 rotated 180 degrees;
    texts    str [N], the words drawn.
Samples come in pairs (upright, rotated) of the same line, so any split at an even index is balanced.

The result is deterministic for a given seed and set of installed fonts. Running it prints the classifier's
accuracy on the set, measured with ONNX Runtime on the committed model file.

Usage:
    python data/make_text_direction.py [--seed N] [--lines N]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent / "foreign"
OUT = HERE / "text_direction.npz"
MODEL = HERE / "ch_ppocr_mobile_v2.0_cls_infer.onnx"
SEED = 13
LINES = 128  # 256 samples, about 0.6 MB compressed
HEIGHT, WIDTH = 48, 192  # the classifier's input (PaddleOCR cls_image_shape "3, 48, 192")

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
FONT_FILES = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
              "LiberationSans-Regular.ttf", "LiberationSerif-Regular.ttf", "LiberationMono-Regular.ttf",
              "LiberationSansNarrow-Regular.ttf")

WORDS = """
the of and to in is you that it he was for on are as with his they at be this have from or one had by word
but not what all were we when your can said there use an each which she do how their if will up other about
out many then them these so some her would make like him into time has look two more write go see number no
way could people my than first water been call who oil its now find long down day did get come made may part
over new sound take only little work know place year live me back give most very after thing our just name
good sentence man think say great where help through much before line right too mean old any same tell boy
follow came want show also around form three small set put end does another well large must big even such
because turn here why ask went men read need land different home us move try kind hand picture again change
off play spell air away animal house point page letter mother answer found study still learn should America
world Monday April London Paris Berlin Tokyo Delta Echo Kilo Sierra Model Device Edge Power Sensor Camera
""".split()


def fonts() -> list[tuple[str, object]]:
    """(name, path or None) of the fonts to draw with; Pillow's own font when Debian's are not installed."""
    found = [(f, Path(d) / f) for d in FONT_DIRS for f in FONT_FILES if (Path(d) / f).exists()]
    return found or [("pillow-default", None)]


def render_line(text: str, font_path: object, size: int, rng: np.random.Generator) -> Image.Image:
    """Black text on white, cropped to the ink with a small random margin (as a text detector's box would be)."""
    font = ImageFont.truetype(str(font_path), size) if font_path else ImageFont.load_default(size=size)
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    mx, my = int(rng.integers(2, 10)), int(rng.integers(2, 8))
    img = Image.new("L", (right - left + 2 * mx, bottom - top + 2 * my), "white")
    ImageDraw.Draw(img).text((mx - left, my - top), text, font=font, fill=0)
    return img


def resize_pad(img: Image.Image) -> tuple[np.ndarray, int]:
    """PaddleOCR's `resize_norm_img` up to the normalisation: height 48, aspect kept, width <= 192, pad right.

    Lines wider than 4:1 are squeezed to 192 columns, as PaddleOCR does; Pillow's bilinear resize stands in for
    its `cv2.resize` (OpenCV is not a dependency).
    """
    w, h = img.size
    resized_w = min(WIDTH, int(math.ceil(HEIGHT * w / h)))
    out = np.full((HEIGHT, WIDTH), 255, np.uint8)
    out[:, :resized_w] = np.asarray(img.resize((resized_w, HEIGHT), Image.BILINEAR))
    return out, resized_w


def build(seed: int = SEED, lines: int = LINES) -> dict[str, np.ndarray]:
    """`lines` random lines, each upright then rotated: the arrays the .npz holds."""
    rng = np.random.default_rng(seed)
    available = fonts()
    images, widths, labels, texts = [], [], [], []
    for _ in range(lines):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 5))))
        _, path = available[int(rng.integers(len(available)))]
        crop = render_line(text, path, int(rng.integers(22, 40)), rng)
        for label, img in ((0, crop), (1, crop.rotate(180))):
            arr, w = resize_pad(img)
            images.append(arr)
            widths.append(w)
            labels.append(label)
            texts.append(text)
    return {"images": np.stack(images), "widths": np.asarray(widths, np.int64),
            "labels": np.asarray(labels, np.int64), "texts": np.asarray(texts)}


def model_inputs(images: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """float32 NCHW as PaddleOCR feeds the classifier (as `workbench.zoo.text_direction.paddle_cls_inputs`;
    the data scripts stand alone): (pixel/255 - 0.5) / 0.5, zeros past each width."""
    x = (images.astype(np.float32) / 255.0 - 0.5) / 0.5
    x = np.where(np.arange(WIDTH)[None, None, :] < widths[:, None, None], x, np.float32(0.0))
    return np.ascontiguousarray(np.repeat(x[:, None], 3, axis=1))  # grey to RGB: the three channels are equal


def accuracy(data: dict[str, np.ndarray]) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    probs = sess.run(None, {name: model_inputs(data["images"], data["widths"])})[0]
    return float(np.mean(probs.argmax(axis=1) == data["labels"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--lines", type=int, default=LINES)
    args = parser.parse_args()
    data = build(args.seed, args.lines)
    np.savez_compressed(OUT, **data)
    print(f"{OUT.name}: {len(data['labels'])} samples ({OUT.stat().st_size / 1e3:.0f} kB), fonts: "
          f"{', '.join(n for n, _ in fonts())}")
    print(f"classifier accuracy (onnxruntime): {accuracy(data):.4f}")


if __name__ == "__main__":
    main()
