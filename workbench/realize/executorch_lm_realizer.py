"""ExecuTorch: a language-model variant as the ``.pte`` whose XNNPACK kernels execute its quantisation.

=====================================  ============================================================================
float variant (pruned or not)          fp32 program (a pruned model's smaller config carries over)
8 bits, one setting for all layers     int8 weights per channel, activations quantised to int8 per token at run
                                       time (torchao 8da8w; XNNPACK's dynamically quantised kernels)
4 bits, one setting for all layers     int4 weights in groups of the variant's group size when ExecuTorch has it
                                       (32/64/128/256), else groups of 32, same int8 activations (8da4w)
2, 3, 5..7 bits, mixed widths, fp16    the fp32 program of the fake-quantised weights (simulated, said so)
=====================================  ============================================================================

torchao's grids here are symmetric and cover every linear layer, the LM head included; the embedding table stays
float32. Every such difference is in the note; the measured perplexity is the program's own.
"""

from __future__ import annotations

from typing import Any

from workbench.core.handle import ModelHandle
from workbench.core.quant import QuantRecord
from workbench.realize.common import Needs, Realized, join_notes

GROUPS = (32, 64, 128, 256)


def recipe_for(quant: QuantRecord) -> tuple[str, int | None, bool, str]:
    """The ExecuTorch weight recipe that realises a variant's quantisation: (weights, group size, realised, note).

    Example:
        >>> from workbench.core.quant import LayerQuant
        >>> recipe_for(QuantRecord.of_layers({"model.layers.0.mlp.up_proj": LayerQuant(4, "group", 64, True)}))[:3]
        ('int4', 64, True)
        >>> recipe_for(QuantRecord.of_layers({"model.layers.0.mlp.up_proj": LayerQuant(3, "group", 32, True)}))[2:]
        (False, '3-bit weights simulated (fp32 program of the fake-quantised weights)')
    """
    if quant.is_fp16:
        return "fp32", None, False, "fp16 rounding simulated (fp32 program of the rounded weights)"
    layers = quant.integer_layers
    if not layers:
        return "fp32", None, True, "fp32 (XNNPACK)"
    bits = sorted({e.bits for e in layers.values()})
    if len(bits) > 1:
        return "fp32", None, False, (f"mixed {'/'.join(map(str, bits))}-bit weights simulated (fp32 program of the "
                                     "fake-quantised weights): one recipe covers the whole model")
    b = bits[0]
    if b not in (4, 8):
        return "fp32", None, False, f"{b}-bit weights simulated (fp32 program of the fake-quantised weights)"
    entries = list(layers.values())
    notes = []
    group = None
    if b == 8:
        what = "int8 weights per channel, int8 dynamic activations (XNNPACK 8da8w)"
        if any(e.granularity == "group" for e in entries):
            notes.append("the variant's int8 groups re-quantised per channel")
    else:
        groups = {e.group_size if e.granularity == "group" else None for e in entries}
        group = next(iter(groups)) if len(groups) == 1 else None
        if group not in GROUPS:
            was = "per-channel" if groups == {None} else f"group {sorted(groups, key=str)}"
            notes.append(f"the variant's {was} 4-bit grid re-quantised to groups of 32")
            group = 32
        what = f"int4 weights in groups of {group}, int8 dynamic activations (XNNPACK 8da4w)"
    if any(e.symmetric is False for e in entries):
        notes.append("asymmetric weights re-quantised onto torchao's symmetric grid")
    names = list(layers)
    if not any(n.split(".")[-1] == "lm_head" for n in names):
        notes.append("LM head quantised with them")
    notes.append("embedding table kept float32")
    return f"int{b}", group, True, join_notes(what, *notes)


def realize_lm(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    """The ExecuTorch LM program ``runtime`` runs for a language model or variant (see the module docstring)."""
    from workbench.formats.executorch_lm import META, executorch_lm_file, load_executorch_lm

    if META in handle.meta:
        weights = handle.meta[META].get("weights", "fp32")
        return Realized(runtime, handle, handle.path, not needs.sparse_note,
                        join_notes(f"ExecuTorch LM program as loaded ({weights})", needs.sparse_note),
                        None if weights == "fp32" else "int8")
    weights, group, realised, note = recipe_for(needs.quant)
    path = executorch_lm_file(handle, weights=weights, group_size=group)
    loaded = load_executorch_lm(path, name=handle.name)
    left = loaded.meta[META].get("float_linears") or []
    if left:
        realised = False
        note = join_notes(note, f"{', '.join(left)} kept float32 (groups of {group} do not divide their input)")
    return Realized(runtime, loaded, path, realised and not needs.sparse_note, join_notes(note, needs.sparse_note),
                    None if weights == "fp32" else "int8")
