"""What every realiser shares: the `Realized` record, what a variant needs (`Needs`), cached artefact paths."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from workbench.core.handle import ModelHandle
from workbench.core.quant import QuantRecord


@dataclass(frozen=True)
class Realized:
    """What a runtime will execute for a variant.

    Attributes:
        runtime: the runtime name.
        handle: the handle to run (the torch variant itself, or a handle of the realised file).
        path: the artefact the runtime loads (TorchScript for torch, .onnx, .tflite).
        realized: True when everything the variant's compression promises is executed for real.
        note: what is real and what is simulated, in words.
        compute_dtype: the dtype the runtime computes in when quantisation changed it (``"int8"`` for static,
            dynamic and dynamic-range int8 kernels), else None (the weights' own float type); device
            estimates use it so they cost the same kernels that were measured.
    """

    runtime: str
    handle: ModelHandle
    path: Path | None
    realized: bool
    note: str
    compute_dtype: str | None = None


@dataclass(frozen=True)
class Needs:
    """What a torch variant's compression asks of a runtime (worked out once by `realize`).

    Attributes:
        quant: the variant's quantisation (`workbench.core.quant.QuantRecord`).
        sparse_note: says which sparsity is simulated ("" when none).
    """

    quant: QuantRecord
    sparse_note: str = ""

    @property
    def quantised(self) -> bool:
        """fp16 rounding or integer weights to realise."""
        return self.quant.is_fp16 or bool(self.quant.bit_widths)


def prune_structures(handle: ModelHandle) -> set[str]:
    """The structures (``"channel"``, ``"unstructured"``, ``"2:4"``, ...) of the prune steps in the lineage."""
    return {str(getattr(c, "structure", "")) for c in handle.lineage if getattr(c, "kind", "") == "prune"}


def join_notes(*parts: str) -> str:
    """Non-empty parts joined with ``"; "``."""
    return "; ".join(p for p in parts if p)


def cache_file(handle: ModelHandle, tag: str, suffix: str) -> Path:
    """Where a realised artefact of `handle` is cached: ``cache_dir()/realized/<base>-<tag>-<key><suffix>``."""
    from workbench.compression.base import base_name
    from workbench.core.paths import cache_dir

    key = hashlib.sha256(f"{handle.fingerprint}|{tag}".encode()).hexdigest()[:20]
    return cache_dir() / "realized" / f"{base_name(handle)}-{tag}-{key}{suffix}"


def has_conv(handle: ModelHandle) -> bool:
    """The model has a convolution (static int8 suits it): a Conv1d/2d/3d layer, or a Conv node in its file."""
    from torch import nn

    if handle.module is None and handle.framework == "onnx":
        import onnx

        return any(n.op_type == "Conv" for n in onnx.load(str(handle.path), load_external_data=False).graph.node)
    return any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in handle.module.modules())


def fallback_note(error: Exception, sparse_note: str) -> str:
    """The note of a quantisation the runtime could not realise."""
    from workbench.core.errors import first_line

    return join_notes(f"not realised ({first_line(error)}); fp32 artefact of fake-quantised weights", sparse_note)
