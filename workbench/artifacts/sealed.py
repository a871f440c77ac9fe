"""What an encrypted artefact shows to someone without the key: measured, not asserted.

Three measurements of the file as it travels: how well deflate compresses it (a model compresses, ciphertext does
not: ratio about 1.0), the Shannon entropy of its bytes (8 bits per byte is uniform noise), and what the model
loader says when handed the ciphertext under the model's own name (it cannot parse it).

Example:
    >>> private, public = workbench.keys.generate("keys/")
    >>> secret = workbench.keys.generate_secret("keys/model.key")
    >>> enc = workbench.export(task.model, "onnx", "out/", task=task, sign_with=private, encrypt_with=secret, limit=64)
    >>> seen = sealed_evidence(enc.path)
    >>> seen["deflate_ratio"] > 0.99, seen["loads_without_key"], "not a valid ONNX" in seen["load_error"]
    (True, False, True)
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from workbench.artifacts.manifest import MAGIC, manifest_path
from workbench.core.errors import WorkbenchError
from workbench.measurement.size import deflated_size


def byte_entropy(data: bytes) -> float:
    """Shannon entropy of the byte histogram, in bits per byte (8.0: every byte value equally likely)."""
    if not data:
        return 0.0
    counts = np.bincount(np.frombuffer(data, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(data)
    return float(-(p * np.log2(p)).sum())


def sealed_evidence(path: str | os.PathLike, *, plain: str | os.PathLike | None = None) -> dict[str, Any]:
    """Measure how unreadable an encrypted artefact is without its key.

    Args:
        path: the encrypted artefact (``*.enc``, `workbench.export(..., encrypt_with=...)`).
        plain: the decrypted model, if at hand, for its deflate ratio and entropy beside the ciphertext's.

    Returns:
        ``file``, ``size_bytes``, ``header`` (the clear-text magic, the only readable part), ``deflate_ratio``,
        ``entropy_bits_per_byte``, ``loads_without_key`` (False: the loader refused the ciphertext),
        ``load_error`` (what it said), and with `plain` ``plain_deflate_ratio`` and ``plain_entropy_bits_per_byte``.

    Raises:
        WorkbenchError: the file is missing or is not an artefact encrypted by `workbench.export`.
    """
    from workbench.formats.loader import load

    src = Path(path)
    if not src.is_file():
        raise WorkbenchError(f"{src}: no such file.")
    data = src.read_bytes()
    if not data.startswith(MAGIC):
        raise WorkbenchError(f"{src} is not an artefact encrypted by workbench.export (no {MAGIC!r} header).")
    name = src.name[: -len(".enc")] if src.name.endswith(".enc") else src.name
    try:  # the manifest names the plaintext file, hence the format the loader will try
        name = Path(json.loads(manifest_path(src).read_text("ascii"))["encryption"]["plaintext_file"]).name
    except (OSError, ValueError, KeyError, TypeError):
        pass
    with tempfile.TemporaryDirectory(prefix="wb-sealed-") as tmp:
        as_model = Path(tmp) / name
        as_model.write_bytes(data)
        try:
            load(as_model)
            loads, error = True, ""
        except Exception as e:  # noqa: BLE001 - any refusal is the evidence; its words are reported
            loads, error = False, str(e).replace(str(as_model), name).splitlines()[0][:300]
    seen: dict[str, Any] = {
        "file": src.name, "size_bytes": len(data), "header": MAGIC.decode("ascii").strip(),
        "deflate_ratio": _ratio(src, len(data)), "entropy_bits_per_byte": byte_entropy(data),
        "loads_without_key": loads, "load_error": error,
    }
    if plain is not None:
        clear = Path(plain).read_bytes()
        seen["plain_deflate_ratio"] = _ratio(Path(plain), len(clear))
        seen["plain_entropy_bits_per_byte"] = byte_entropy(clear)
    return seen


def _ratio(path: Path, size: int) -> float:
    """Deflated size / size, by the measurement's own deflate (what `size_deflated_bytes` reports)."""
    return deflated_size(path) / size if size else 1.0


__all__ = ["byte_entropy", "sealed_evidence"]
