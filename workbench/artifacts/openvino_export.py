"""OpenVINO targets: an IR folder (``model.xml`` + ``model.bin``) at fp32 (``openvino``), NNCF int8 post-training
quantisation (``openvino-int8``, calibrated) or NNCF int4 weight compression (``openvino-int4``).

The folder goes through `workbench.artifacts.api`'s folder path: every file is listed with its sha256 in the
(signed) manifest, so `workbench.verify` refuses a changed ``model.bin``; parity runs in the ``openvino`` runtime
(f32 inference precision). A variant quantised to the target's bits keeps its own int4 recipe (symmetry, group
size); otherwise the target's default is used: int4 symmetric in groups of 32 for MatMul and embedding weights
(NNCF stores what has no int4 kernel, convolutions, at int8).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from workbench.artifacts.targets import Built, Target, cache_file, carried
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_record

INT4_GROUP = 32


def build_ir(handle: ModelHandle, target: Target, calibration: list[Any] | None) -> Built:
    """The IR folder of `handle` at the target's precision (in the workbench cache)."""
    from workbench.formats.openvino_file import read_model, save_ir, to_openvino_ir

    realized, notes = carried(handle, target)
    if target.precision == "fp32":
        xml = to_openvino_ir(handle)
        return Built(_folder_of(handle, xml), {"converter": "openvino.Core.read_model (ONNX) + openvino.save_model",
                                       "compress_to_fp16": False}, tuple(notes), realized)
    from workbench.realize.common import Needs
    from workbench.realize.openvino_realizer import nncf_int8, nncf_weights, weight_mode

    transformer = not _has_conv(handle)
    if target.precision == "int8":
        if not calibration:
            raise WorkbenchError(f"{handle.name}: {target.name} calibrates activation ranges; pass task=... (its "
                                 "calibration split) or calibration=[arrays] to export().")
        recipe = {"quantizer": "nncf.quantize (post-training, MinMax + fast bias correction)",
                  "model_type": "transformer" if transformer else "default",
                  "calibration_samples": int(len(calibration[0]))}

        def transform(m: Any) -> Any:
            return nncf_int8(m, calibration, transformer=transformer)
    else:
        own = quant_record(handle)
        if own.bit_widths == {4}:
            mode, group = weight_mode(Needs(own), 4)
            source = "the variant's own recipe"
        else:
            mode, group, source = "INT4_SYM", INT4_GROUP, "the target's default recipe"
        recipe = {"quantizer": "nncf.compress_weights", "mode": mode, "group_size": group, "ratio": 1.0,
                  "all_layers": True, "source": source}

        def transform(m: Any) -> Any:
            return nncf_weights(m, mode, group)
    folder = cache_file(handle, target, recipe, calibration if target.precision == "int8" else None)
    if not (folder / "model.xml").is_file() or not (folder / "model.bin").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        from workbench.formats.convert import to_onnx
        from workbench.formats.loader import load

        base = handle if handle.framework == "openvino" else load(to_onnx(handle), name=handle.name)
        save_ir(transform(read_model(base)), folder)
    if target.precision == "int4":
        stored = storage(folder)
        int4 = sum(stored.get(k, {}).get("elements", 0) for k in ("INT4", "UINT4"))
        if int4 < 0.5 * max(1, handle.num_params):
            notes.append(f"int4 holds {int4:,} of {handle.num_params:,} weights (MatMul/embedding layers); the rest "
                         "is stored int8 or float: NNCF has no int4 convolution")
    return Built(folder, recipe, tuple(notes), realized)


def _folder_of(handle: ModelHandle, xml: Path) -> Path:
    """The folder holding exactly this IR (its .xml and .bin); a loaded IR among other files is copied to one."""
    folder = xml.parent
    if sorted(p.name for p in folder.iterdir()) == sorted([xml.name, xml.with_suffix(".bin").name]) \
            and xml.name == "model.xml":
        return folder
    from workbench.formats.lm_folder import write_folder
    from workbench.formats.openvino_file import ir_folder

    out = ir_folder(handle, "as-loaded")
    if not (out / "model.xml").is_file():
        def copy(tmp: Path) -> None:
            shutil.copyfile(xml, tmp / "model.xml")
            shutil.copyfile(xml.with_suffix(".bin"), tmp / "model.bin")
        write_folder(out, copy)
    return out


def _has_conv(handle: ModelHandle) -> bool:
    if handle.framework == "openvino":
        import openvino as ov

        ops = ov.Core().read_model(str(handle.path)).get_ordered_ops()
        return any(op.get_type_name() in ("Convolution", "GroupConvolution") for op in ops)
    from workbench.realize.common import has_conv

    return has_conv(handle)


def storage(path: Path, handle: ModelHandle | None = None) -> dict[str, dict[str, int]]:
    """What the IR's constants store, by element type (tensors, elements, bytes)."""
    from workbench.formats.openvino_file import ir_storage

    path = Path(path)
    return ir_storage(path / "model.xml" if path.is_dir() else path)
