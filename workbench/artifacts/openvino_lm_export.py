"""OpenVINO targets for a language model: an OpenVINO LM folder (``openvino`` fp32, ``openvino-int8``,
``openvino-int4``): a stateful decoder IR in optimum-intel's layout (``openvino_model.xml`` + ``.bin``), its
``config.json``, tokenizer files and ``openvino_lm.json``, built by `workbench.formats.openvino_lm` from the
variant's PyTorch model (NNCF ``compress_weights`` for int8/int4).

A variant quantised to the target's bits keeps its own recipe (group size, symmetry, embedding:
`workbench.realize.openvino_lm_realizer.options_for`); any other variant gets the target's default: int8
asymmetric per channel (NNCF's default mode) or int4 asymmetric in groups of 32 with the embedding table and LM
head in int8 (NNCF's default backup). Asymmetric, because SmolLM2's weights were distributed on an asymmetric 4-bit
grid (GGUF Q4_1, blocks of 32): on its held-out text symmetric int4 groups of 32 raised perplexity from 32.43 to
41.18, asymmetric ones to 37.07 (int8 embedding and LM head).

The manifest lists every file of the folder with its sha256; parity is greedy next-token agreement with the source
variant on the task's held-out text (`targets.LM_TOLERANCES`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from workbench.artifacts.targets import Built, Target, carried
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_record

DEFAULTS = {"openvino": {"weights": "fp32"}, "openvino-int8": {"weights": "int8_asym"},
            "openvino-int4": {"weights": "int4_asym", "group_size": 32, "backup": "int8_asym"}}
"""The OpenVINO LM options of each target for a variant that brings no recipe of its own at the target's bits."""


def build_openvino_lm(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """The OpenVINO LM folder of `handle` at the target's precision (in the workbench cache)."""
    from workbench.formats.openvino_lm import OVLMOptions
    from workbench.formats.openvino_lm import build_openvino_lm as build_folder
    from workbench.realize.openvino_lm_realizer import options_for

    if target.name not in DEFAULTS:
        raise WorkbenchError(f"{handle.name}: target {target.name!r} has no OpenVINO language-model form; use one of "
                             f"{', '.join(DEFAULTS)}.")
    default = OVLMOptions(**DEFAULTS[target.name])
    if handle.framework == "openvino":
        return _as_loaded(handle, default)
    realized, notes = carried(handle, target)
    own, own_realised, own_note = options_for(quant_record(handle), handle.meta.get("lm_quant"))
    if default.bits is None:
        options, source = default, "fp32"
    elif own_realised and own.bits == default.bits:
        options, source = own, "the variant's own recipe"
        notes.append(own_note)
    else:
        options, source = default, f"the target's default ({default.describe()})"
    folder = build_folder(handle, **options.to_dict())
    recipe = {"converter": "openvino.convert_model (stateful) + nncf.compress_weights", **options.to_dict(),
              "description": options.describe(), "source": source}
    return Built(folder, recipe, tuple(notes), realized)


def _as_loaded(handle: ModelHandle, default: Any) -> Built:
    """A loaded OpenVINO LM folder exported as it is (a copy in the cache), when its weights are the target's."""
    from workbench.core.paths import cache_dir
    from workbench.formats.lm_folder import write_folder

    info = handle.meta.get("openvino_lm") or {}
    have = info.get("weights")
    if have is None or (have == "fp32") != (default.bits is None) or (have != "fp32" and int(have[3]) != default.bits):
        raise WorkbenchError(f"{handle.name} is already an OpenVINO LM folder ({info.get('description', have)}); "
                             "export it with the target of its own precision, or export the PyTorch model.")
    dst = cache_dir() / "export" / f"openvino_lm-{handle.fingerprint[:20]}"
    if not dst.is_dir():
        write_folder(dst, lambda tmp: shutil.copytree(handle.path, tmp, dirs_exist_ok=True))
    return Built(dst, {"converter": "as loaded", "weights": have}, (), True)


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """What the folder's IR stores, by constant type (tensors, elements, bytes), read from the XML only."""
    import xml.etree.ElementTree as ET

    from workbench.formats.openvino_lm import MODEL_XML

    root = ET.parse(Path(path) / MODEL_XML).getroot()
    names = {"f32": "float32", "f16": "float16", "u4": "uint4", "i4": "int4", "u8": "uint8", "i8": "int8",
             "i64": "int64", "i32": "int32"}
    out: dict[str, dict[str, int]] = {}
    for layer in root.iter("layer"):
        data = layer.find("data")
        if layer.get("type") != "Const" or data is None or data.get("size") is None:
            continue
        n = 1
        for d in (data.get("shape") or "").split(","):
            n *= int(d) if d.strip() else 1
        kind = names.get(data.get("element_type", ""), data.get("element_type", "?"))
        row = out.setdefault(kind, {"tensors": 0, "elements": 0, "bytes": 0})
        row["tensors"] += 1
        row["elements"] += n
        row["bytes"] += int(data.get("size"))
    return out
