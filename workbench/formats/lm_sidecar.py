"""A language-model file with its tokenizer folder beside it: ``model.<ext>`` + ``model.tokenizer/`` holding the
tokenizer files and a metadata JSON that says which workbench format wrote it.

LiteRT (`workbench.formats.litert_lm`) and ExecuTorch (`workbench.formats.executorch_lm`) language models are both
stored this way (a flatbuffer cannot carry a tokenizer); this module is the layout they share.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError, first_line

TOKENIZER_SUFFIX = ".tokenizer"


def tokenizer_dir(path: Path | str) -> Path:
    """The folder beside an LM file that holds its tokenizer and metadata: ``<stem>.tokenizer/``."""
    p = Path(path)
    return p.with_name(p.stem + TOKENIZER_SUFFIX)


def has_sidecar(path: Path | str, suffix: str, meta_file: str) -> bool:
    """`path` is a `suffix` file with ``<stem>.tokenizer/<meta_file>`` beside it."""
    p = Path(path)
    return p.suffix.lower() == suffix and p.is_file() and (tokenizer_dir(p) / meta_file).is_file()


def find_sidecar(folder: Path | str, suffix: str, meta_file: str) -> Path | None:
    """The one `suffix` file in `folder` with its tokenizer folder, or `None` (none, or several)."""
    found = [f for f in sorted(Path(folder).glob(f"*{suffix}")) if (tokenizer_dir(f) / meta_file).is_file()]
    return found[0] if len(found) == 1 else None


def sidecar_files(path: Path | str) -> list[Path]:
    """Every file of the artefact: the model file first, then the tokenizer folder's files (sorted)."""
    p = Path(path)
    return [p, *sorted(f for f in tokenizer_dir(p).rglob("*") if f.is_file())]


def copy_with_sidecar(src: Path | str, dst: Path | str) -> Path:
    """Copy an LM file and its tokenizer folder to `dst` (the model file's path); returns `dst`. The model file
    appears last and whole, so a reader never sees half a copy."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tokenizer_dir(dst), ignore_errors=True)
    shutil.copytree(tokenizer_dir(src), tokenizer_dir(dst))
    part = dst.with_name(dst.name + ".part")
    shutil.copy2(src, part)
    os.replace(part, dst)
    return dst


def read_sidecar_meta(path: Path | str, meta_file: str, fmt: str, what: str) -> dict[str, Any]:
    """The metadata JSON beside an LM file, checked to be format `fmt` (`what`: e.g. "a LiteRT language-model
    file", for the message)."""
    meta_path = tokenizer_dir(path) / meta_file
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no {meta_path.parent.name}/{meta_file} beside it, so this is not {what} the "
                             "workbench wrote. Keep the tokenizer folder beside the file, or re-export it.") from None
    except (OSError, ValueError) as e:
        raise WorkbenchError(f"{meta_path}: unreadable ({first_line(e)}). Re-export the model.") from e
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise WorkbenchError(f"{meta_path}: not a {fmt} file. Re-export the model.")
    return meta
