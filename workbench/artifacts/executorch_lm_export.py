"""ExecuTorch targets for a language model: a ``.pte`` with its KV cache inside (``executorch`` fp32,
``executorch-int8`` int8 weights per channel with int8 dynamic activations), shipped as a folder: ``model.pte``
and ``model.tokenizer/`` (tokenizer files and ``executorch_lm.json``), built by `workbench.formats.executorch_lm`
from the variant's Hugging Face folder.

The manifest lists every file of the folder with its sha256, so `verify` refuses a changed tokenizer as it does a
changed program; parity is greedy next-token agreement with the source variant on the task's held-out text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.artifacts.targets import Built, Target, carried
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle

WEIGHTS = {"executorch": "fp32", "executorch-int8": "int8"}
"""The ExecuTorch LM weight recipe of each ExecuTorch target."""


def build_executorch_lm(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """The ExecuTorch LM folder of `handle` at the target's precision (in the workbench cache)."""
    from workbench.formats.executorch_lm import META, executorch_lm_file, read_meta

    if target.name not in WEIGHTS:
        raise WorkbenchError(f"{handle.name}: target {target.name!r} has no ExecuTorch language-model form; use one "
                             f"of {', '.join(WEIGHTS)}.")
    weights = WEIGHTS[target.name]
    if META in handle.meta:
        have = handle.meta[META].get("weights")
        if have != weights:
            raise WorkbenchError(f"{handle.name} is already an ExecuTorch LM program ({have}); export the PyTorch "
                                 "model instead, or use the target of its own precision.")
        return Built(own_folder(handle), {"converter": "as loaded", "weights": have}, (), True)
    realized, notes = carried(handle, target)
    path = executorch_lm_file(handle, weights=weights)
    meta = read_meta(path)
    recipe = {"converter": meta["converter"], "weights": weights, "kv_cache": meta["kv_cache"],
              "method": meta["method"], "activations": "float32" if weights == "fp32" else "int8 dynamic, per token",
              "embedding": "float32"}
    if weights != "fp32":
        notes.append("int8 weights per channel with int8 dynamic activations (XNNPACK 8da8w); embedding table "
                     "kept float32")
    return Built(path.parent, recipe, tuple(notes), realized)


def own_folder(handle: ModelHandle) -> Path:
    """A folder holding only a loaded ExecuTorch LM file and its tokenizer folder (a copy in the cache)."""
    from workbench.core.paths import cache_dir
    from workbench.formats.executorch_lm import copy_executorch_lm, is_executorch_lm

    dst = cache_dir() / "export" / f"executorch_lm-{handle.fingerprint[:20]}" / "model.pte"
    if not is_executorch_lm(dst):
        copy_executorch_lm(handle.path, dst)
    return dst.parent


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """What the folder's ``.pte`` stores, by weight type (from its metadata: the program keeps its tensors in
    delegate blobs that ExecuTorch does not expose from Python)."""
    from workbench.formats.executorch_lm import find_executorch_lm, read_meta

    p = Path(path)
    inner = find_executorch_lm(p) if p.is_dir() else p
    if inner is None:
        raise WorkbenchError(f"{path}: no ExecuTorch language-model file inside.")
    meta = read_meta(inner)
    kind = {"fp32": "float32", "int8": "int8", "int4": "int4"}.get(meta.get("weights"), "float32")
    return {kind: {"tensors": 0, "elements": int(meta.get("num_params") or 0), "bytes": inner.stat().st_size}}
