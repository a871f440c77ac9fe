"""Builds a balanced 8-class topic dataset from WordNet noun glosses.

Reads the locally installed WordNet database (Debian ``wordnet-base``) and
writes ``wordnet_topics.csv`` (columns ``text,label,split``) next to this
script. Each class is a WordNet lexicographer file (see ``lexnames(5WN)``);
the text is the definition part of a synset gloss. Fully offline and
deterministic.

Usage:
    python data/build_wordnet_topics.py [--data-noun PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

DATA_NOUN = Path("/usr/share/wordnet/data.noun")
OUT = Path(__file__).resolve().parent / "wordnet_topics.csv"
SEED = 20240611
PER_CLASS = 250
TRAIN_PER_CLASS = 150  # the remaining PER_CLASS - TRAIN_PER_CLASS are "eval"
MAX_CHARS = 200
MIN_CHARS = 10

# lex_filenum -> label (numbers from WordNet's lexnames(5WN) table).
LEX_FILES: dict[int, str] = {
    5: "animal",  # noun.animal
    13: "food",  # noun.food
    20: "plant",  # noun.plant
    18: "person",  # noun.person
    15: "location",  # noun.location
    8: "body",  # noun.body
    27: "substance",  # noun.substance
    10: "communication",  # noun.communication
}


def clean_gloss(gloss: str, max_chars: int = MAX_CHARS) -> str:
    """Keeps the definition part of a gloss.

    Drops quoted example sentences (everything from the first double quote),
    trailing separators and whitespace, and truncates at a word boundary.

    Args:
        gloss: Raw gloss text after ``" | "``.
        max_chars: Maximum length of the result.

    Returns:
        The cleaned definition (possibly empty).
    """
    text = gloss.split('"', 1)[0]
    text = " ".join(text.split()).strip(" ;:,")
    if len(text) > max_chars:
        cut = text[:max_chars].rsplit(" ", 1)[0]
        text = cut.rstrip(" ;:,(")
    return text


def read_glosses(path: Path) -> dict[str, list[str]]:
    """Reads cleaned glosses of the wanted lexicographer files.

    Args:
        path: WordNet ``data.noun`` file.

    Returns:
        Label -> list of unique cleaned glosses, in file (synset offset) order.
    """
    by_label: dict[str, list[str]] = {label: [] for label in LEX_FILES.values()}
    seen: set[str] = set()
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  ") or " | " not in line:
                continue  # license header
            fields = line.split(" ", 3)
            label = LEX_FILES.get(int(fields[1]))
            if label is None:
                continue
            text = clean_gloss(line.split(" | ", 1)[1])
            key = text.lower()
            if len(text) < MIN_CHARS or key in seen:
                continue  # drop trivial and duplicate definitions (any class)
            seen.add(key)
            by_label[label].append(text)
    return by_label


def build_rows(by_label: dict[str, list[str]], seed: int = SEED) -> list[dict[str, str]]:
    """Samples a balanced, deterministically split dataset.

    Args:
        by_label: Output of :func:`read_glosses`.
        seed: Shuffle seed.

    Returns:
        Rows with keys ``text``, ``label``, ``split``.
    """
    rows: list[dict[str, str]] = []
    for label in sorted(by_label):
        texts = list(by_label[label])
        if len(texts) < PER_CLASS:
            raise ValueError(f"only {len(texts)} glosses for {label!r}")
        random.Random(f"{seed}-{label}").shuffle(texts)
        for i, text in enumerate(texts[:PER_CLASS]):
            split = "train" if i < TRAIN_PER_CLASS else "eval"
            rows.append({"text": text, "label": label, "split": split})
    return rows


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-noun", type=Path, default=DATA_NOUN)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()

    rows = build_rows(read_glosses(args.data_noun), args.seed)
    with args.out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["text", "label", "split"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
