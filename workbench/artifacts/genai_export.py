"""ONNX targets for a language model: an ONNX Runtime GenAI folder (``onnx`` fp32, ``onnx-int8``, ``onnx-int4``).

The folder is built by the GenAI model builder from the variant's Hugging Face folder
(`workbench.formats.genai_folder`). A variant quantised to the target's bits keeps its own recipe (block size,
symmetry, LM head, method: `workbench.realize.genai_realizer.options_for`); any other variant gets the target's
default, symmetric blocks of 32 (a tied embedding then shares the LM head's 4-bit table, as SmolLM2's does).
The manifest lists every file of the folder with its sha256 (`workbench.artifacts.manifest.folder_entry`);
parity is greedy next-token agreement with the source variant on the task's held-out text
(`targets.LM_TOLERANCES`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.artifacts.targets import Built, Target, carried
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_record

DEFAULT_BLOCK = 32


def build_genai(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """The GenAI folder of `handle` at the target's precision (in the workbench cache)."""
    from workbench.formats.genai_folder import GenaiOptions, build_genai_folder
    from workbench.formats.lm_folder import lm_folder_of
    from workbench.realize.genai_realizer import method_of, options_for

    realized, notes = carried(handle, target)
    own, own_realised, own_note = options_for(quant_record(handle), method_of(handle))
    if target.precision == "fp32":
        options, source = GenaiOptions(), "fp32"
    elif own_realised and own.precision == target.precision:
        options, source = own, "the variant's own recipe"
        notes.append(own_note)
    else:
        options = GenaiOptions(precision=target.precision, block_size=DEFAULT_BLOCK, symmetric=True)
        source = f"the target's default ({options.describe()})"
    folder = build_genai_folder(lm_folder_of(handle), **options.to_dict())
    recipe = {"builder": "onnxruntime_genai.models.builder", **options.to_dict(), "source": source}
    return Built(folder, recipe, tuple(notes), realized)


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """What the folder's decoder stores, by tensor type (tensors, elements, bytes), read without loading weights."""
    import onnx

    model = onnx.load(str(Path(path) / "model.onnx"), load_external_data=False)
    out: dict[str, dict[str, int]] = {}
    for init in model.graph.initializer:
        kind = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).name
        n = 1
        for d in init.dims:
            n *= d
        ext = {e.key: e.value for e in init.external_data}
        size = int(ext["length"]) if "length" in ext else len(init.raw_data)
        row = out.setdefault(kind, {"tensors": 0, "elements": 0, "bytes": 0})
        row["tensors"] += 1
        row["elements"] += n
        row["bytes"] += size
    return out
