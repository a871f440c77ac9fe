"""OpenVINO: a language-model variant as the OpenVINO LM folder whose weights NNCF compressed to its bits.

=====================================  ============================================================================
float variant (pruned or not)          fp32 IR (a pruned model's smaller config carries over), fp32 arithmetic
8 bits, one setting for all layers     ``INT8_SYM`` / ``INT8_ASYM`` per output channel (NNCF); the embedding and
                                       LM head are int8 too (NNCF compresses every weight in int8 modes)
4 bits, one setting for all layers     ``INT4_SYM`` / ``INT4_ASYM`` in groups of the variant's group size
                                       (16..256, else 32, said so); the embedding and LM head int4 when the
                                       variant quantised them, else float as in the variant
2, 3, 5..7 bits, mixed widths, fp16    the fp32 IR of the fake-quantised weights (simulated, said so)
=====================================  ============================================================================

NNCF re-quantises the variant's (already rounded) float weights with round to nearest: symmetric int4 is signed
[-8, 7] with the scale set by each group's largest magnitude, as the workbench's symmetric grid; asymmetric
groups are unsigned with a zero point. The CPU plugin runs int4/int8 weights with activations quantised to int8
at run time (its fast kernels; ``compute_dtype="int8"``); every note says so.
"""

from __future__ import annotations

from typing import Any

from workbench.core.handle import ModelHandle
from workbench.core.quant import QuantRecord
from workbench.formats.openvino_lm import GROUP_SIZES, OVLMOptions
from workbench.realize.common import Needs, Realized, join_notes

REALISED_BITS = (4, 8)
"""Weight bits NNCF compresses an OpenVINO LM to here (``compress_weights``, data-free)."""
DEFAULT_GROUP = 32


def options_for(quant: QuantRecord, info: dict[str, Any] | None = None) -> tuple[OVLMOptions, bool, str]:
    """The OpenVINO LM build that realises a variant's quantisation: (options, realised, note). `info`: the
    variant's ``meta["lm_quant"]`` (whether the embedding / LM head were quantised).

    Example:
        >>> from workbench.core.quant import LayerQuant
        >>> q = QuantRecord.of_layers({"model.layers.0.mlp.up_proj": LayerQuant(4, "group", 64, False)})
        >>> options, realised, note = options_for(q)
        >>> options.weights, options.group_size, options.backup, realised
        ('int4_asym', 64, 'none', True)
        >>> options_for(QuantRecord.of_layers({"lm_head": LayerQuant(3, "group", 32, True)}))[1:]
        (False, '3-bit weights simulated (fp32 IR of the fake-quantised weights)')
    """
    layers = quant.integer_layers
    if quant.is_fp16:
        return OVLMOptions(), False, "fp16 rounding simulated (fp32 IR)"
    if not layers:
        return OVLMOptions(), True, "fp32"
    bits = sorted({e.bits for e in layers.values()})
    if len(bits) > 1:
        return OVLMOptions(), False, f"mixed {'/'.join(map(str, bits))}-bit weights simulated (fp32 IR)"
    b = bits[0]
    if b not in REALISED_BITS:
        return OVLMOptions(), False, f"{b}-bit weights simulated (fp32 IR of the fake-quantised weights)"
    entries = list(layers.values())
    symmetric = bool(entries[0].symmetric) if entries[0].symmetric is not None else True
    notes = []
    if len({e.symmetric for e in entries}) > 1:
        notes.append("mixed symmetric/asymmetric layers all compressed " + ("symmetric" if symmetric else "asymmetric"))
    names = list(layers)
    info = info or {}
    table = bool(info.get("embeddings") or info.get("lm_head")) or any(
        "embed_tokens" in n or n.split(".")[-1] == "lm_head" for n in names)
    kind = "sym" if symmetric else "asym"
    if b == 8:
        if any(e.granularity == "group" for e in entries):
            notes.append("the variant's int8 groups re-quantised per channel")
        options = OVLMOptions(f"int8_{kind}")
    else:
        groups = {e.group_size if e.granularity == "group" else None for e in entries}
        group = next(iter(groups)) if len(groups) == 1 else None
        if group not in GROUP_SIZES:
            was = "per-channel" if groups == {None} else f"group {sorted(groups, key=str)}"
            notes.append(f"the variant's {was} 4-bit grid re-quantised to groups of {DEFAULT_GROUP}")
            group = DEFAULT_GROUP
        options = OVLMOptions(f"int4_{kind}", group, all_layers=table, backup="none")
    return options, True, join_notes(options.describe(), *notes)


def realize_lm(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    """The OpenVINO LM folder OpenVINO runs for a language model or variant (see the module docstring)."""
    from workbench.formats.openvino_lm import activation_note, build_openvino_lm, compressed, load_openvino_lm

    if handle.framework == "openvino":
        done = handle.meta.get("realised") or "fp32"
        weights = compressed(handle)
        return Realized(runtime, handle, handle.path, not needs.sparse_note,
                        join_notes(f"OpenVINO LM folder as loaded ({done})", activation_note(weights),
                                   needs.sparse_note), "int8" if weights else None)
    options, realised, note = options_for(needs.quant, handle.meta.get("lm_quant"))
    folder = build_openvino_lm(handle, **options.to_dict())
    weights = options.bits is not None
    return Realized(runtime, load_openvino_lm(folder, name=handle.name), folder, realised and not needs.sparse_note,
                    join_notes(note, activation_note(weights), needs.sparse_note), "int8" if weights else None)
