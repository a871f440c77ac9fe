"""TFLite targets for a language model: a LiteRT prefill/decode file (``tflite`` fp32, ``tflite-dynamic`` int8,
``tflite-int4``), shipped as a folder: ``model.tflite`` and ``model.tokenizer/`` (tokenizer files and
``litert_lm.json``), built by `workbench.formats.litert_lm` from the variant's Hugging Face folder.

A variant quantised to the target's bits keeps its own block size where LiteRT has it
(`workbench.realize.litert_lm_realizer.recipe_for`); any other variant gets the target's default (int8 per
channel; int4 in blocks of 32). The manifest lists every file of the folder with its sha256
(`workbench.artifacts.manifest.folder_entry`), so `verify` refuses a changed tokenizer as it does a changed model;
parity is greedy next-token agreement with the source variant on the task's held-out text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.artifacts.targets import Built, Target, carried
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_record

WEIGHTS = {"tflite": "fp32", "tflite-dynamic": "int8", "tflite-int4": "int4"}
"""The LiteRT LM weight recipe of each TFLite target that has a language-model form."""
DEFAULT_BLOCK = 32


def build_litert_lm(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """The LiteRT LM folder of `handle` at the target's precision (in the workbench cache)."""
    from workbench.formats.litert_lm import litert_lm_file, read_meta
    from workbench.realize.litert_lm_realizer import recipe_for

    if target.name not in WEIGHTS:
        raise WorkbenchError(f"{handle.name}: target {target.name!r} has no LiteRT language-model form; use one of "
                             f"{', '.join(WEIGHTS)}.")
    if handle.source_format == "litert_lm":
        have = (handle.meta.get("litert_lm") or {}).get("weights")
        if have != WEIGHTS[target.name]:
            raise WorkbenchError(f"{handle.name} is already a LiteRT LM file ({have}); export it with target "
                                 f"{next(t for t, w in WEIGHTS.items() if w == have)!r}, or export the PyTorch model.")
        return Built(own_folder(handle), {"converter": "as loaded", "weights": have}, (), True)
    realized, notes = carried(handle, target)
    weights = WEIGHTS[target.name]
    own, block, own_realised, own_note = recipe_for(quant_record(handle))
    if weights == "fp32":
        source = "fp32"
    elif own_realised and own == weights:
        source = "the variant's own recipe"
        notes.append(own_note)
    else:
        block = DEFAULT_BLOCK if weights == "int4" else None
        source = "the target's default (" + ("int8 per channel" if weights == "int8" else f"int4 blocks of {block}") \
            + ")"
    path = litert_lm_file(handle, weights=weights, block_size=block if weights == "int4" else None)
    meta = read_meta(path)
    recipe = {"converter": meta["converter"], "weights": weights, "block_size": meta.get("block_size"),
              "kv_cache": meta["kv_cache"], "prefill": meta["prefill"], "signatures":
              [f"prefill_{n}" for n in meta["prefill"]] + ["decode"], "source": source}
    return Built(path.parent, recipe, tuple(notes), realized)


def own_folder(handle: ModelHandle) -> Path:
    """A folder holding only a loaded LiteRT LM file and its tokenizer folder (a copy in the cache)."""
    from workbench.core.paths import cache_dir
    from workbench.formats.litert_lm import copy_litert_lm, is_litert_lm

    dst = cache_dir() / "export" / f"litert_lm-{handle.fingerprint[:20]}" / "model.tflite"
    if not is_litert_lm(dst):
        copy_litert_lm(handle.path, dst)
    return dst.parent


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """What the folder's ``.tflite`` stores, by tensor type (tensors, elements, bytes)."""
    from workbench.artifacts.tflite_export import storage as tflite_storage
    from workbench.formats.litert_lm import find_litert_lm

    p = Path(path)
    inner = find_litert_lm(p) if p.is_dir() else p
    if inner is None:
        raise WorkbenchError(f"{path}: no LiteRT language-model file inside.")
    return tflite_storage(inner, handle)
