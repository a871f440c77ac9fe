"""OpenVINO: fp32 (``f32`` inference precision), 16-bit inference precision, NNCF int8 and int4 (`realize_variant`).

What each variant runs as on the CPU plugin (measured on the zoo, Xeon with AVX-512 VNNI/BF16/FP16):

=================  ==============================================================================================
fp32               the ONNX conversion, compiled with ``INFERENCE_PRECISION_HINT=f32`` (the plugin's default on a
                   BF16 CPU is bf16: never for an fp32 row)
fp16-rounded       an IR with fp16 weights, inferred at the CPU's 16-bit precision: ``f16`` where the plugin offers
                   FP16 (``OPTIMIZATION_CAPABILITIES``), else ``bf16`` (labelled so: it is not fp16 arithmetic)
8-bit              NNCF post-training quantisation (``nncf.quantize``, calibrated on the task's calibration split;
                   ``ModelType.TRANSFORMER`` for models without convolutions): int8 weights *and* activations
                   (``compute_dtype="int8"``); without calibration data, int8 weight compression (float compute)
4-bit              NNCF weight compression (``nncf.compress_weights`` INT4_SYM / INT4_ASYM per the variant's record,
                   its group size or per channel) of MatMul and embedding weights; compute stays float
other widths       simulated: the fp32 artefact of the fake-quantised weights (said so in the note)
=================  ==============================================================================================

Realised IRs are cached as folders (``model.xml`` + ``model.bin``) in the workbench cache.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle
from workbench.formats.loader import load
from workbench.realize.common import Needs, Realized, cache_file, fallback_note, has_conv, join_notes

INT4_DEFAULT_GROUP = 32
"""Group size of int4 weights when the variant names none (its granularity is per channel: group size -1)."""


def realize_variant(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    from workbench.formats.convert import to_onnx

    sparse = needs.sparse_note
    base = to_onnx(handle)
    base_handle = load(base, name=handle.name)
    if not needs.quantised:
        return Realized(runtime, base_handle, base, not sparse, join_notes("fp32 (f32 inference precision)", sparse))
    try:
        if needs.quant.is_fp16:
            return _sixteen_bit(handle, runtime, base_handle, sparse)
        bits = needs.quant.bit_widths
        if len(bits) > 1:
            raise WorkbenchError(f"mixed bit-widths {sorted(bits)} have no single OpenVINO recipe")
        b = bits.pop()
        calibration = getattr(task, "calibration", None)
        if b == 8 and calibration:
            transformer = not has_conv(handle)
            xml = realised_ir(handle, base_handle, f"ov-int8-ptq{'-tf' if transformer else ''}",
                              lambda m: nncf_int8(m, calibration, transformer=transformer), calibration)
            what = "int8 NNCF PTQ (weights and activations, calibrated" + (", transformer" if transformer else "") + ")"
            return Realized(runtime, load(xml, name=handle.name), xml, not sparse, join_notes(what, sparse), "int8")
        if b in (8, 4):
            mode, group = weight_mode(needs, b)
            embeddings = any(e.module_type == "Embedding" for e in needs.quant.integer_layers.values())
            xml = realised_ir(handle, base_handle, f"ov-w{b}-{mode}-g{group}{'-emb' if embeddings else ''}",
                              lambda m: nncf_weights(m, mode, group, embeddings=embeddings), None)
            what = f"{mode.replace('_', ' ').lower()} weights (NNCF weight compression, " + (
                f"groups of {group}" if group > 0 else "per channel") + ", re-rounded to NNCF's grid; float compute)"
            if b == 8:
                what += "; no calibration data for int8 activations"
            convs = [n for n, e in needs.quant.integer_layers.items() if str(e.module_type or "").startswith("Conv")]
            if b == 4 and convs:  # NNCF's int4 compresses MatMul and embedding weights only
                from workbench.formats.openvino_file import ir_storage

                stored = ir_storage(xml)
                int8 = sum(stored.get(k, {}).get("elements", 0) for k in ("INT8", "UINT8"))
                rest = "stored int8 (NNCF's backup precision)" if int8 else "kept float"
                return Realized(runtime, load(xml, name=handle.name), xml, False, join_notes(
                    what.replace("weights", "weights of the linear layers", 1),
                    f"{len(convs)} convolution(s) {rest}: no int4 convolution kernel, their 4-bit grid is simulated",
                    sparse))
            return Realized(runtime, load(xml, name=handle.name), xml, not sparse, join_notes(what, sparse))
        raise WorkbenchError(f"{b}-bit weights have no OpenVINO kernel here")
    except (WorkbenchError, ValueError, RuntimeError) as e:
        return Realized(runtime, base_handle, base, False, fallback_note(e, sparse))


def sixteen_bit_precision() -> str | None:
    """The 16-bit inference precision this CPU's OpenVINO plugin offers: ``"f16"``, else ``"bf16"``, else `None`."""
    import openvino as ov

    caps = set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return "f16" if "FP16" in caps else "bf16" if "BF16" in caps else None


def _sixteen_bit(handle: ModelHandle, runtime: str, base_handle: ModelHandle, sparse: str) -> Realized:
    precision = sixteen_bit_precision()
    if precision is None:
        raise WorkbenchError("this CPU's OpenVINO plugin offers no 16-bit inference precision (no FP16 or BF16)")
    from workbench.formats.openvino_file import read_model, save_ir

    folder = cache_file(handle, "ov-fp16", ".openvino")
    xml = folder / "model.xml"
    if not _complete(xml):
        save_ir(read_model(base_handle), folder, compress_to_fp16=True)
    real = load(xml, name=handle.name)
    real.meta["inference_precision"] = precision
    if precision == "f16":
        return Realized(runtime, real, xml, not sparse, join_notes("fp16 weights, f16 inference precision", sparse))
    # bf16 is another rounding of the activations than the variant's fp16: run it, but say it is not the same
    return Realized(runtime, real, xml, False,
                    join_notes("fp16 weights, bf16 inference precision (this CPU has no fp16 kernels)", sparse))


def weight_mode(needs: Needs, bits: int) -> tuple[str, int]:
    """(NNCF `CompressWeightsMode` name, group size; -1 = per channel) for the variant's `bits`-bit weights."""
    entries = [e for e in needs.quant.entries() if e.bits == bits]
    sym = all(e.symmetric is not False for e in entries)
    groups = {e.group_size for e in entries if e.granularity == "group"}
    if len(groups) > 1:
        raise WorkbenchError(f"several group sizes {sorted(groups)} are not one NNCF recipe")
    if bits == 8:  # int8 weight compression is per output channel
        return ("INT8_SYM" if sym else "INT8_ASYM"), -1
    if groups:
        return ("INT4_SYM" if sym else "INT4_ASYM"), groups.pop()
    if any(e.granularity == "tensor" for e in entries):
        raise WorkbenchError("per-tensor int4 weights have no NNCF mode (it compresses per channel or per group)")
    return ("INT4_SYM" if sym else "INT4_ASYM"), -1


def realised_ir(handle: ModelHandle, base_handle: ModelHandle, tag: str, transform: Any,
                calibration: list[Any] | None) -> Path:
    """The IR of ``transform(ov model)`` for `handle`, cached as ``<cache>/realized/...openvino/model.xml``."""
    from importlib.metadata import version

    from workbench.compression.quantize_files import arrays_digest
    from workbench.formats.openvino_file import read_model, save_ir

    key = f"{tag}-nncf{version('nncf')}-ov{version('openvino')}" + (f"-{arrays_digest(calibration)}" if calibration
                                                                     else "")
    folder = cache_file(handle, key, ".openvino")
    xml = folder / "model.xml"
    if not _complete(xml):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        save_ir(transform(read_model(base_handle)), folder)
    return xml


def _complete(xml: Path) -> bool:
    return xml.is_file() and xml.with_suffix(".bin").is_file()


@contextlib.contextmanager
def quiet_nncf():
    """Silence NNCF's progress bars and info logging (errors still raise)."""
    from workbench.formats.convert import quiet_conversion

    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with quiet_conversion():
            yield
    finally:
        logger.setLevel(level)


def nncf_int8(model: Any, calibration: list[Any], *, transformer: bool) -> Any:
    """NNCF post-training int8 quantisation of an `ov.Model` (weights per channel, activations per tensor) on every
    calibration sample (batch 1); ``transformer``: NNCF's transformer scheme (SmoothQuant, no quantised softmax)."""
    import nncf

    n = len(calibration[0])
    dataset = nncf.Dataset(range(n), lambda i: [a[i:i + 1] for a in calibration])
    with quiet_nncf():
        try:
            return nncf.quantize(model, dataset, subset_size=n,
                                 model_type=nncf.ModelType.TRANSFORMER if transformer else None)
        except Exception as e:  # noqa: BLE001 - any NNCF failure is a compression not realised, not a crash
            raise WorkbenchError(f"NNCF could not quantise the model: {first_line(e)}") from e


def nncf_weights(model: Any, mode: str, group_size: int, *, embeddings: bool = True) -> Any:
    """NNCF weight compression of an `ov.Model` in `mode` (``"INT4_SYM"``, ``"INT8_ASYM"``, ...): int4 for every
    MatMul weight, first and last included (``all_layers``, ``ratio=1``), `group_size` weights per scale (-1: per
    output channel); embedding tables (Gather) too unless ``embeddings=False``."""
    import nncf

    kwargs: dict[str, Any] = {"mode": getattr(nncf.CompressWeightsMode, mode)}
    if mode.startswith("INT4"):
        kwargs.update(ratio=1.0, group_size=group_size, all_layers=True)
    if not embeddings:
        kwargs["ignored_scope"] = nncf.IgnoredScope(types=["Gather"], validate=False)
    with quiet_nncf():
        try:
            out = nncf.compress_weights(model, **kwargs)
        except Exception as e:  # noqa: BLE001 - e.g. a group size that does not divide a layer's inputs
            raise WorkbenchError(f"NNCF could not compress the weights: {first_line(e)}") from e
    if not _has_low_bit(out, mode):
        raise WorkbenchError(f"NNCF found no MatMul or embedding weight to compress to {mode} (a model of "
                             "convolutions keeps float weights)")
    return out


def _has_low_bit(model: Any, mode: str) -> bool:
    want = {"i4", "u4"} if mode.startswith("INT4") else {"i8", "u8"}
    return any(n.get_type_name() == "Constant" and n.get_element_type().get_type_name() in want
               for n in model.get_ordered_ops())
