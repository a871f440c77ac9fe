"""Work a sweep's variants share: one pruned-and-recovered model per prune point, one ONNX trace per architecture.

A sweep builds every bit-width of a prune point from the same pruned (and fine-tuned) float model, so that model
is built once (`build_variant`) and each bit-width is made from it. Variants are pure (every config returns a new
handle), so the result is the one a full rebuild gives, without re-running pruning and fine-tuning per bit-width.

Exporting to ONNX is the other repeated cost: ``torch.onnx.export(dynamo=True)`` traces the module, decomposes
and translates it (1-2 s of CPU time for the 23k-parameter kws DS-CNN, more on first use), while the weights play
no part in that. Every bit-width of a prune point, and every unstructured prune point (zeros change no shape),
has the same layers and shapes as its siblings. `share_onnx` therefore traces each architecture once, unoptimised
(``optimize=False``), and makes each variant's file by putting the variant's own weights into that graph
(``ONNXProgram.apply_weights``) and running the exporter's own optimiser on it (``ONNXProgram.optimize``: BatchNorm
folding and the rest), which is what ``torch.onnx.export(optimize=True)`` does after tracing: the nodes and every
initializer come out as a direct export's (tests/sweeps/test_shared.py checks it), for ~0.1 s instead of 1-2 s.
The exporter has no public "same graph, new weights" entry point, hence this module. Each derived file is checked
against the variant's PyTorch outputs before it is used; one that disagrees is dropped and the variant exported
the usual way.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

PARITY_RTOL = 1e-3
"""Largest ``max |onnx - torch| / max(1, max |torch|)`` accepted for a derived ONNX file on the example inputs."""

ONNX_RUNTIMES = ("onnxruntime", "openvino")
"""Runtimes that load the ONNX export of a torch variant (the others convert from the module themselves)."""


@dataclass
class SharedWork:
    """What this process built once and reused, for tests and benchmarks.

    Attributes:
        heads: pruned (+ recovered) models built; `head_reuses`: variants that reused one.
        traces: architectures traced for ONNX; `derived`: ONNX files made from a trace with a variant's weights;
        `fallbacks`: variants whose derived file failed the parity check (exported directly instead).
    """

    heads: int = 0
    head_reuses: int = 0
    traces: int = 0
    derived: int = 0
    fallbacks: int = 0


STATS = SharedWork()
_HEADS: dict[tuple[str, str], Any] = {}
_TRACES: dict[str, bytes] = {}
CACHE_BYTES = 512 * 2**20
"""Memory for the pruned models (and, apart, the traces) this process keeps, by the weights' float32 size; at
least `MIN_CACHED` are kept whatever their size. A sweep visits its prune points in order, and a serial sweep
builds as many ahead as fit (`head_room`): all six of the kws demo grid, five of MiniLM's."""

MIN_CACHED = 2


def build_variant(task: Any, configs: list[Any]) -> Any:
    """`compress(task.model, *configs)`, reusing the pruned (+ recovered) model of an earlier variant.

    The configs up to the last ``prune`` / ``recover`` one are the head; a head seen before (same task model and
    same configs) is not rebuilt, and the rest (the bit-width) is applied to it.

    Example:
        >>> from workbench.compression import Prune, Quantize
        >>> before = STATS.heads
        >>> q8 = build_variant(task, [Prune(0.5, structure="channel"), Quantize(8)])
        >>> q4 = build_variant(task, [Prune(0.5, structure="channel"), Quantize(4)])
        >>> STATS.heads - before, [c.label for c in q4.lineage]
        (1, ['prune-channel-0.50', 'q4'])
    """
    from workbench.compression import compress

    head, tail = split_head(configs)
    if not head:
        return compress(task.model, *tail, task=task)
    key = head_key(task, head)
    if key in _HEADS:
        STATS.head_reuses += 1
    else:
        add_head(key, compress(task.model, *head, task=task))
        STATS.heads += 1
    return compress(_HEADS[key], *tail, task=task)


def split_head(configs: list[Any]) -> tuple[list[Any], list[Any]]:
    """``(head, tail)``: the configs up to the last ``lowrank`` / ``prune`` / ``recover`` one, and the rest."""
    n = max((i + 1 for i, c in enumerate(configs) if c.kind in ("lowrank", "prune", "recover")), default=0)
    return list(configs[:n]), list(configs[n:])


def head_key(task: Any, head: list[Any]) -> tuple[str, str]:
    """The key of a head in this process's cache: the task's model and the head's configs."""
    return task.name + task.model.fingerprint, json.dumps([c.to_dict() for c in head], sort_keys=True, default=str)


def has_head(key: tuple[str, str]) -> bool:
    return key in _HEADS


def add_head(key: tuple[str, str], handle: Any) -> None:
    """Keep a built head (from this process or a helper) for the variants that follow it."""
    _remember(_HEADS, key, handle)


def prepare_family(task: Any, specs: list[Any], g: Any) -> Any:
    """Build the head the `specs` (one prune point's bit-widths) share, and each one's ONNX file where the grid
    measures on an ONNX runtime; returns the head, or None when a variant cannot be built (its unit then
    builds it again and stores the error)."""
    head, _ = split_head(specs[0].configs(scope=g.scope))
    try:
        variants = [build_variant(task, s.configs(scope=g.scope)) for s in specs]
    except Exception:  # noqa: BLE001 - reported by the unit that builds this variant again
        return None
    if any(rt in ONNX_RUNTIMES for rt in g.runtimes):
        for v in variants:
            share_onnx(v)
    return _HEADS.get(head_key(task, head))


def head_room(task: Any) -> int:
    """How many pruned models of `task`'s model the cache holds (`CACHE_BYTES`, at least `MIN_CACHED`)."""
    return max(MIN_CACHED, CACHE_BYTES // max(1, 4 * task.model.num_params))


def _remember(cache: dict, key: Any, value: Any) -> None:
    def size(v: Any) -> int:
        return len(v) if isinstance(v, bytes) else 4 * int(getattr(v, "num_params", 0))

    while len(cache) >= MIN_CACHED and sum(map(size, cache.values())) + size(value) > CACHE_BYTES:
        cache.pop(next(iter(cache)))
    cache[key] = value


def shareable(handle: Any) -> bool:
    """Whether `share_onnx` can make `handle`'s ONNX file: an `nn.Module` (not TorchScript, not a language model)
    with example inputs and a free batch dimension, as `workbench.formats.convert.to_onnx` exports it."""
    from workbench.core.handle import fixed_batch_of
    from workbench.core.lm import is_language_model

    if handle.framework != "torch" or handle.module is None or not handle.example_inputs:
        return False
    import torch

    return (not isinstance(handle.module, torch.jit.ScriptModule) and not is_language_model(handle)
            and fixed_batch_of(handle.inputs) is None)


def share_onnx(handle: Any) -> Path | None:
    """Give `handle` its ONNX export from the trace of its architecture (traced here once); None where it cannot.

    After this, ``to_onnx(handle)`` returns the file without exporting. The file lies under the conversion cache
    (``<cache>/conversions/shared/``), keyed by the handle's fingerprint and the exporter's library versions, so a
    later process reuses it; `workbench.formats.convert.clear_cache` deletes it with the other conversions.

    Example:
        >>> from workbench.compression import Quantize
        >>> q4 = workbench.compress(task.model, Quantize(4))
        >>> path = share_onnx(q4)
        >>> path.suffix, workbench.formats.convert.to_onnx(q4) == path
        ('.onnx', True)
    """
    if not shareable(handle):
        return None
    out = _shared_path(handle)
    if handle._artifacts.get("onnx") == out and out.is_file():  # the slot to_onnx reads first
        return out
    # A direct export the handle may already have is not reused: its node names (not its graph) differ from a
    # derived file's, and a sweep's sizes must not depend on which path an earlier call took.
    if not out.is_file():
        from workbench.core.paths import atomic_write

        proto = _trace(handle)
        if proto is None:
            return None
        try:
            atomic_write(out, lambda tmp: _derive(proto, handle, tmp))
        except Exception:  # noqa: BLE001 - to_onnx then exports the variant directly, reporting any failure itself
            STATS.fallbacks += 1
            return None
        if not _agrees(out, handle):
            out.unlink(missing_ok=True)
            STATS.fallbacks += 1
            return None
        STATS.derived += 1
    handle._artifacts["onnx"] = out
    return out


def _versions() -> str:
    import onnx
    import onnxscript
    import torch

    return f"torch={torch.__version__},onnx={onnx.__version__},onnxscript={onnxscript.__version__}"


def _shared_path(handle: Any) -> Path:
    from workbench.compression.base import base_name
    from workbench.core.paths import cache_dir

    key = hashlib.sha256(f"{handle.fingerprint}|onnx-shared|{_versions()}".encode()).hexdigest()[:24]
    return cache_dir() / "conversions" / "shared" / f"{base_name(handle)}-{key}.onnx"


def architecture_key(handle: Any) -> str:
    """What the trace depends on: the module's class, structure (its repr: layer types and hyper-parameters),
    every state tensor's name, shape and dtype (sorted: unstructured pruning re-registers its weights, which
    changes their order but not the graph), and the input and output specs; never the weights' values."""
    cls = type(handle.module)
    state = sorted((k, tuple(t.shape), str(t.dtype)) for k, t in handle.module.state_dict().items())
    specs = [(s.name, str(s.shape), str(s.dtype)) for s in (*handle.inputs, *handle.outputs)]
    examples = [(a.shape[1:], str(a.dtype)) for a in handle.example_inputs]
    text = json.dumps([f"{cls.__module__}.{cls.__qualname__}", repr(handle.module), state, specs, examples],
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _trace(handle: Any) -> bytes | None:
    """The unoptimised ONNX graph of `handle`'s architecture (serialised), traced with the arguments
    `workbench.formats.convert.to_onnx` uses; None when the exporter fails (the caller then exports directly)."""
    key = architecture_key(handle)
    if key in _TRACES:
        return _TRACES[key]
    import onnx_ir as ir
    import torch

    from workbench.formats.convert import batch_at_least_2, quiet_conversion

    args = tuple(torch.from_numpy(np.ascontiguousarray(batch_at_least_2(a))) for a in handle.example_inputs)
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with quiet_conversion():
            program = torch.onnx.export(
                handle.module, args, dynamo=True, optimize=False, external_data=False,
                input_names=[s.name for s in handle.inputs], output_names=[s.name for s in handle.outputs] or None,
                dynamic_shapes=tuple({0: batch} for _ in args),
            )
    except Exception:  # noqa: BLE001 - to_onnx then exports the variant itself and reports any failure clearly
        return None
    proto = ir.serde.serialize_model(program.model).SerializeToString()
    _remember(_TRACES, key, proto)
    STATS.traces += 1
    return proto


def _derive(proto: bytes, handle: Any, out: Path) -> None:
    """Write `handle`'s ONNX file: the traced graph with `handle`'s state, optimised as the exporter does."""
    import onnx
    import onnx_ir as ir
    import torch

    from workbench.formats.convert import quiet_conversion

    model = ir.serde.deserialize_model(onnx.load_from_string(proto))
    program = torch.onnx.ONNXProgram(model, None)
    state = {k: t.detach() for k, t in handle.module.state_dict().items() if k in model.graph.initializers}
    with quiet_conversion():
        program.apply_weights(state)
        program.optimize()
        program.save(str(out), external_data=False)


def _agrees(path: Path, handle: Any) -> bool:
    """The derived file gives the variant's PyTorch outputs on its example inputs (within `PARITY_RTOL`)."""
    import onnxruntime as ort
    import torch

    from workbench.core.handle import flatten_outputs

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        got = session.run(None, dict(zip(names, handle.example_inputs)))
    except Exception:  # noqa: BLE001 - a file ONNX Runtime rejects is simply not used
        return False
    with torch.no_grad():
        want = [t.detach().numpy() for _, t in flatten_outputs(
            handle.module(*[torch.from_numpy(np.ascontiguousarray(a)) for a in handle.example_inputs]))]
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if g.shape != w.shape or not np.isfinite(g).all():
            return False
        if float(np.max(np.abs(g - w), initial=0.0)) > PARITY_RTOL * max(1.0, float(np.max(np.abs(w), initial=0.0))):
            return False
    return True


__all__ = ["CACHE_BYTES", "MIN_CACHED", "ONNX_RUNTIMES", "PARITY_RTOL", "STATS", "SharedWork", "add_head", "architecture_key",
           "build_variant", "has_head", "head_key", "head_room", "prepare_family", "share_onnx", "shareable", "split_head"]
