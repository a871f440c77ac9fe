"""ONNX Runtime GenAI: a language-model variant as the GenAI folder whose kernels execute its quantisation.

=====================================  ============================================================================
float variant (pruned or not)          fp32 folder (the builder; a pruned model's smaller config carries over)
4 or 8 bits, one setting for all       int4 / int8 ``MatMulNBits`` with the variant's block (group) size and
linear layers                          symmetry; the LM head / embedding as the variant has them (realised)
2 bits                                 the builder's fp32 model quantised by ``MatMulNBitsQuantizer`` (realised)
3, 5..7 bits, mixed widths, fp16       the fp32 folder of the fake-quantised weights (simulated, said so)
=====================================  ============================================================================

Asymmetric variants come back exactly (the builder's asymmetric grid is the workbench's); symmetric ones are
re-quantised onto ONNX Runtime's ``[-8, 7]`` grid, which the note says. ``method="hqq"`` variants use ONNX
Runtime's HQQ quantiser, ``"k_quant"`` the builder's k-quant; anything else round-to-nearest.
"""

from __future__ import annotations

from typing import Any

from workbench.core.handle import ModelHandle
from workbench.core.quant import WHOLE_MODEL, QuantRecord
from workbench.formats.genai_folder import BLOCK_SIZES, GenaiOptions
from workbench.realize.common import Needs, Realized, join_notes

REALISED_BITS = (2, 4, 8)
"""Weight bits an ONNX Runtime GenAI folder executes as integers (``MatMulNBits`` on the CPU)."""


def options_for(quant: QuantRecord, method: str | None = None, *, tied: bool = False
                ) -> tuple[GenaiOptions, bool, str]:
    """The GenAI build that realises a variant's quantisation: (options, realised, note). `tied`: the LM head is
    the embedding table (SmolLM2), so a quantised embedding is a quantised LM head.

    Example:
        >>> from workbench.core.quant import LayerQuant
        >>> q = QuantRecord.of_layers({"model.layers.0.mlp.up_proj": LayerQuant(4, "group", 32, False)})
        >>> options, realised, note = options_for(q)
        >>> options.precision, options.block_size, options.symmetric, options.exclude_lm_head, realised
        ('int4', 32, False, True, True)
        >>> options_for(QuantRecord.of_layers({"lm_head": LayerQuant(3, "group", 32, True)}))[1:]
        (False, '3-bit weights simulated (float kernels)')
    """
    layers = quant.integer_layers
    if quant.is_fp16:
        return GenaiOptions(), False, "fp16 rounding simulated (fp32 kernels)"
    if not layers:
        return GenaiOptions(), True, "fp32"
    bits = sorted({e.bits for e in layers.values()})
    if len(bits) > 1:
        return GenaiOptions(), False, f"mixed {'/'.join(map(str, bits))}-bit weights simulated (float kernels)"
    b = bits[0]
    if b not in REALISED_BITS:
        return GenaiOptions(), False, f"{b}-bit weights simulated (float kernels)"
    entries = list(layers.values())
    notes = []
    groups = {e.group_size if e.granularity == "group" else None for e in entries}
    group = next(iter(groups)) if len(groups) == 1 else None
    if group not in BLOCK_SIZES:
        was = "per-channel" if group is None and len(groups) == 1 else f"group {sorted(groups, key=str)}"
        group = 32
        notes.append(f"the variant's {was} grid re-quantised to blocks of 32")
    symmetric = bool(entries[0].symmetric) if entries[0].symmetric is not None else True
    if len({e.symmetric for e in entries}) > 1:
        notes.append("mixed symmetric/asymmetric layers all quantised "
                     + ("symmetric" if symmetric else "asymmetric"))
    algo = {"hqq": "hqq", "k_quant": "k_quant"}.get(str(method or "rtn"), "rtn")
    if algo == "hqq" and b == 8:
        algo = "rtn"
    if algo == "hqq":
        symmetric = False
    elif symmetric:
        notes.append("re-quantised onto ONNX Runtime's symmetric grid [-8, 7]")
    names = list(layers)
    embeddings = any("embed_tokens" in n for n in names)
    options = GenaiOptions(precision=f"int{b}", block_size=group, symmetric=symmetric, algo=algo,
                           quantize_embeddings=embeddings,
                           exclude_lm_head=not (any(n.split(".")[-1] == "lm_head" for n in names)
                                                or (tied and embeddings)))
    return options, True, join_notes(options.describe(), *notes)


def method_of(handle: ModelHandle) -> str | None:
    """The quantisation method a language-model variant records (``meta["lm_quant"]["method"]``, written by
    `workbench.compression.lm_quantize`; ``meta["quant"]["*"]["method"]`` as a fallback)."""
    info = handle.meta.get("lm_quant")
    if isinstance(info, dict) and info.get("method"):
        return str(info["method"])
    whole = (handle.meta.get("quant") or {}).get(WHOLE_MODEL)
    return whole.get("method") if isinstance(whole, dict) else None


def realize_lm(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    """The GenAI folder ONNX Runtime GenAI runs for a language model or variant (see the module docstring)."""
    from workbench.formats.genai_folder import build_genai_folder, load_genai_folder
    from workbench.formats.lm_folder import lm_folder_of

    if handle.source_format == "genai":
        done = handle.meta.get("realised")
        return Realized(runtime, handle, handle.path, not needs.sparse_note,
                        join_notes(f"ONNX Runtime GenAI folder as loaded ({done or 'fp32'})", needs.sparse_note),
                        "int8" if (handle.meta.get("genai") or {}).get("accuracy_level") == 4 else None)
    from workbench.core.lm import lm_spec

    spec = lm_spec(handle)
    options, realised, note = options_for(needs.quant, method_of(handle), tied=bool(spec and spec.tie_embeddings))
    folder = build_genai_folder(lm_folder_of(handle), **options.to_dict())
    compute = "int8" if options.bits is not None and options.accuracy_level == 4 and options.algo != "hqq" else None
    return Realized(runtime, load_genai_folder(folder, name=handle.name), folder, realised and not needs.sparse_note,
                    join_notes(note, needs.sparse_note), compute)

