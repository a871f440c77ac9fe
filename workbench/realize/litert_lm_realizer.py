"""LiteRT: a language-model variant as the prefill/decode ``.tflite`` whose kernels execute its quantisation.

=====================================  ============================================================================
float variant (pruned or not)          fp32 file (a pruned model's smaller config carries over)
fp16-rounded weights                   fp16 weights (litert_torch's fp16 recipe; float32 compute)
8 bits, one setting for all layers     dynamic-range int8, per channel (int8 kernels)
4 bits, one setting for all layers     dynamic-range int4 in blocks of the variant's group size when LiteRT has
                                       it (32/64/128/256), else blocks of 32 (the note says so)
2, 3, 5..7 bits, mixed widths          the fp32 file of the fake-quantised weights (simulated, said so)
=====================================  ============================================================================

litert_torch's recipes are symmetric min-max and model-wide: an asymmetric variant is re-quantised onto the
symmetric grid, and the embedding table (which a tied LM head shares) is quantised with the rest whether the
variant kept it or not. Every such difference is in the note; the measured perplexity is the file's own.
"""

from __future__ import annotations

from typing import Any

from workbench.core.handle import ModelHandle
from workbench.core.quant import QuantRecord
from workbench.realize.common import Needs, Realized, join_notes

BLOCKS = (32, 64, 128, 256)


def recipe_for(quant: QuantRecord) -> tuple[str, int | None, bool, str]:
    """The LiteRT weight recipe that realises a variant's quantisation: (weights, block size, realised, note).

    Example:
        >>> from workbench.core.quant import LayerQuant
        >>> recipe_for(QuantRecord.of_layers({"model.layers.0.mlp.up_proj": LayerQuant(4, "group", 64, True)}))
        ('int4', 64, True, 'int4 weights in blocks of 64 (dynamic range); embedding and LM head quantised with them')
        >>> recipe_for(QuantRecord.of_layers({"model.layers.0.mlp.up_proj": LayerQuant(3, "group", 32, True)}))[2:]
        (False, '3-bit weights simulated (fp32 file of the fake-quantised weights)')
    """
    if quant.is_fp16:
        return "fp16", None, True, "fp16 weights (float32 compute)"
    layers = quant.integer_layers
    if not layers:
        return "fp32", None, True, "fp32"
    bits = sorted({e.bits for e in layers.values()})
    if len(bits) > 1:
        return "fp32", None, False, (f"mixed {'/'.join(map(str, bits))}-bit weights simulated (fp32 file of the "
                                     "fake-quantised weights): LiteRT recipes are one setting for the whole model")
    b = bits[0]
    if b not in (4, 8):
        return "fp32", None, False, f"{b}-bit weights simulated (fp32 file of the fake-quantised weights)"
    entries = list(layers.values())
    notes = []
    block = None
    if b == 8:
        what = "int8 weights per channel (dynamic range)"
        if any(e.granularity == "group" for e in entries):
            notes.append("the variant's int8 groups re-quantised per channel")
    else:
        groups = {e.group_size if e.granularity == "group" else None for e in entries}
        block = next(iter(groups)) if len(groups) == 1 else None
        if block not in BLOCKS:
            was = "per-channel" if groups == {None} else f"group {sorted(groups, key=str)}"
            notes.append(f"the variant's {was} 4-bit grid re-quantised to blocks of 32")
            block = 32
        what = f"int4 weights in blocks of {block} (dynamic range)"
    if any(e.symmetric is False for e in entries):
        notes.append("asymmetric weights re-quantised onto LiteRT's symmetric grid")
    names = list(layers)
    if not any("embed_tokens" in n or n.split(".")[-1] == "lm_head" for n in names):
        notes.append("embedding and LM head quantised with them")
    return f"int{b}", block, True, join_notes(what, *notes)


def realize_lm(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    """The LiteRT LM file ``runtime`` runs for a language model or variant (see the module docstring)."""
    from workbench.formats.litert_lm import litert_lm_file, load_litert_lm

    if handle.source_format == "litert_lm":
        weights = (handle.meta.get("litert_lm") or {}).get("weights", "fp32")
        return Realized(runtime, handle, handle.path, not needs.sparse_note,
                        join_notes(f"LiteRT LM file as loaded ({weights})", needs.sparse_note),
                        "int8" if weights == "int8" else None)
    weights, block, realised, note = recipe_for(needs.quant)
    path = litert_lm_file(handle, weights=weights, block_size=block)
    loaded = load_litert_lm(path, name=handle.name)
    return Realized(runtime, loaded, path, realised and not needs.sparse_note, join_notes(note, needs.sparse_note),
                    "int8" if weights == "int8" else None)
