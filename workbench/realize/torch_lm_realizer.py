"""PyTorch realisation of a language-model variant: the transformers model itself, from its Hugging Face folder.

Pruned layers and channels are real (the model is smaller); weight-only quantisation is simulated in PyTorch
(float weights on the b-bit grid, float matmuls): its perplexity is exact, its speed and size are the float
model's. ONNX Runtime GenAI and LiteRT execute the integer weights.
"""

from __future__ import annotations

from typing import Any

from workbench.core.handle import ModelHandle
from workbench.realize.common import Needs, Realized, join_notes


def realize_lm(handle: ModelHandle, runtime: str, task: Any, needs: Needs) -> Realized:
    from workbench.formats.lm_folder import lm_folder_of

    folder = lm_folder_of(handle) if handle.module is not None else handle.path
    bits = sorted(needs.quant.bit_widths)
    note = join_notes("transformers model in PyTorch (fp32)",
                      f"{'/'.join(map(str, bits))}-bit weights simulated (float kernels)" if bits else "",
                      "fp16 rounding simulated" if needs.quant.is_fp16 else "", needs.sparse_note)
    return Realized(runtime, handle, folder, not needs.quantised and not needs.sparse_note, note)
