"""A model from a file as an `nn.Module` whose layers can be rewritten, and a rewritten module back in its format.

Channel pruning, `Recover`, `LowRank` and sensitivity rewrite or train `nn.Conv2d` / `nn.Linear` layers. A user
who only has an ONNX file, a TorchScript archive or a torch.export program has no such module, so `module_of`
makes one: TorchScript and ExportedProgram are exported to ONNX by the workbench (`convert.to_onnx`), foreign
ONNX graphs are normalised (`normalize.normalized`), and `onnx2torch` turns the graph into a `torch.fx`
GraphModule with real `nn.Conv2d` / `nn.Linear` submodules. `in_format` writes a rewritten module back as the
format the user brought (ONNX, TorchScript, ExportedProgram), so the variant runs where the original ran.

TFLite files have no such route here (no maintained TFLite -> ONNX/PyTorch converter runs beside numpy 2);
they are pruned and quantised in place instead.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, SourceFormat, fixed_batch_of
from workbench.core.paths import atomic_write, cache_dir

_CONVERTED: dict[str, ModelHandle] = {}  # fingerprint -> converted original (conversion takes ~0.5 s a model)


def import_onnx2torch() -> Any:
    """`onnx2torch`, imported without torchvision.

    onnx2torch imports torchvision at module level only for its NonMaxSuppression and RoiAlign converters, and
    PyPI's torchvision does not import beside the CPU torch wheel. A placeholder stands in for the import only
    (removed from `sys.modules` right after); converting a graph with those two ops then fails with a clear error.
    """
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"]
    try:
        import torchvision  # noqa: F401 - the real one, where it works
    except (ImportError, RuntimeError):
        def missing(*_a: Any, **_k: Any) -> Any:
            raise WorkbenchError("this model uses NonMaxSuppression or RoiAlign, which onnx2torch converts with "
                                 "torchvision; install a torchvision built for this torch, or exclude those ops.")

        tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
        ops.nms = ops.box_convert = ops.roi_align = missing
        tv.ops = ops
        saved = {k: sys.modules.pop(k) for k in ("torchvision", "torchvision.ops") if k in sys.modules}
        sys.modules.update({"torchvision": tv, "torchvision.ops": ops})
        try:
            import onnx2torch
        except ImportError as e:
            raise WorkbenchError("onnx2torch is not installed: run `pip install --no-deps onnx2torch` (see the "
                                 "Makefile for why without dependencies).") from e
        finally:
            for k in ("torchvision", "torchvision.ops"):
                sys.modules.pop(k, None)
            sys.modules.update(saved)
        return onnx2torch
    import onnx2torch

    return onnx2torch


def _onnx_of(handle: ModelHandle) -> ModelHandle:
    """The handle as an ONNX handle: itself, or the workbench's own export of a TorchScript / .pt2 model."""
    if handle.framework == "onnx":
        return handle
    from workbench.formats.convert import to_onnx
    from workbench.formats.loader import load

    return load(to_onnx(handle), example_inputs=handle.example_inputs, name=handle.name)


ROUTES: dict[SourceFormat, str] = {
    "onnx": "onnx -> onnx2torch",
    "torchscript": "torchscript -> onnx (torch.onnx, TorchScript exporter) -> onnx2torch",
    "exported_program": "exported program -> onnx (torch.onnx) -> onnx2torch",
}


def module_of(handle: ModelHandle) -> ModelHandle:
    """A torch handle around an `nn.Module` equivalent to `handle`, whose Conv/Linear layers can be rewritten.

    An in-memory module comes back as it is. Otherwise the result's `meta["route"]` says how it was made, its
    `origin` is the converted original (the teacher for distillation), and its outputs were checked against the
    file's on the example inputs.

    Raises:
        WorkbenchError: a TFLite model, or a graph onnx2torch cannot convert (the message names the op).
    """
    if handle.source_format == "module":
        return handle
    if handle.source_format not in ROUTES:
        raise WorkbenchError(f"{handle.name}: a {handle.source_format} model cannot be turned into a PyTorch "
                             "module here. Prune it with structure='unstructured' or '2:4' and quantise it in "
                             "place, or load the ONNX / PyTorch model it was converted from.")
    hit = _CONVERTED.get(handle.fingerprint) if not handle.lineage else None
    if hit is not None:
        return hit
    converted = _convert(handle)
    if not handle.lineage:
        _CONVERTED[handle.fingerprint] = converted
    return converted


def _convert(handle: ModelHandle) -> ModelHandle:
    import onnx

    from workbench.formats.module import examples_from_specs, from_module
    from workbench.formats.normalize import normalized

    if not handle.example_inputs and handle.inputs and (made := examples_from_specs(handle.inputs)) is not None:
        handle.example_inputs = made  # zeros of the file's own static signature: enough to trace shapes
    if not handle.example_inputs:
        raise WorkbenchError(f"{handle.name}: converting to a PyTorch module needs sample inputs; wrap the model "
                             "with Task.from_model(handle, inputs) or load it with example_inputs=[...].")
    graph = normalized(_onnx_of(handle), always=True)
    onnx2torch = import_onnx2torch()
    try:
        proto = for_onnx2torch(onnx.load(str(graph.path)))
        module = with_layer_names(onnx2torch.convert(proto), proto).eval()
    except WorkbenchError:
        raise
    except Exception as e:  # noqa: BLE001 - onnx2torch raises NotImplementedError/KeyError/... per op
        raise WorkbenchError(f"{handle.name}: onnx2torch cannot convert this graph ({first_line(e)}); prune it "
                             "with structure='unstructured' or '2:4' and quantise it in place instead.") from e
    examples = handle.example_inputs
    # the layers whose width a later constant shape or per-channel constant fixes: channel pruning keeps them
    locked = tidy_graph(module, examples[:1] if fixed_batch_of(graph.inputs) else examples)
    new = from_module(module, "module", None, examples, handle.name)
    new = dataclasses.replace(new, inputs=list(graph.inputs), outputs=list(graph.outputs))
    _check_matches(handle, new)
    origin = module_of(handle.origin) if handle.origin is not None else None
    route = [ROUTES[handle.source_format]]
    if graph.meta.get("normalized", ["constants folded"]) != ["constants folded"]:
        route.insert(-1 if handle.source_format == "onnx" else 1,
                     "onnxslim (" + "; ".join(graph.meta["normalized"]) + ")")
    route = [*handle.meta.get("route", []), *route]
    return dataclasses.replace(new, lineage=handle.lineage, origin=origin,
                               meta={**handle.meta, "route": route, "converted_from": handle.source_format,
                                     "shape_locked": locked})


ONNX2TORCH_OPSET = 17  # onnx2torch 1.5 has converters up to opset 17 for most ops (18+ AveragePool, ... missing)


def for_onnx2torch(proto: Any) -> Any:
    """The graph at an opset onnx2torch converts (torch.onnx writes opset 18+), via onnx's version converter."""
    from onnx import numpy_helper, version_converter

    # torch.onnx marks every Reshape allowzero=1, which onnx2torch refuses; it only matters for a 0 in the
    # target shape, so it is dropped where the shape is a constant without one.
    consts = {i.name: i for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in consts:
            if 0 not in numpy_helper.to_array(consts[node.input[1]]).tolist():
                kept = [a for a in node.attribute if a.name != "allowzero"]
                del node.attribute[:]
                node.attribute.extend(kept)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), ONNX2TORCH_OPSET)
    if opset <= ONNX2TORCH_OPSET:
        return proto
    try:
        return version_converter.convert_version(proto, ONNX2TORCH_OPSET)
    except Exception:  # noqa: BLE001 - the converter raises RuntimeError/ValueError per op adapter
        return proto  # try as it is: onnx2torch names the op it lacks


def with_layer_names(module: Any, proto: Any) -> Any:
    """The GraphModule with its weight layers renamed from onnx2torch's node names (``node_Conv_161``) to the
    layer names the in-place ONNX techniques use (``blocks.0.dw.conv``), so `exclude=`, `per_layer=`, sensitivity
    tables and variant meta name the same layers whichever route a technique takes."""
    import torch
    from onnx2torch.onnx_graph import OnnxGraph

    from workbench.formats.onnx_file import onnx_layer_name

    inits = {i.name for i in proto.graph.initializer}
    rename = {}
    for unique, node in zip(OnnxGraph(proto.graph).nodes, proto.graph.node):
        if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and len(node.input) > 1 \
                and node.input[1] in inits:
            rename[unique] = onnx_layer_name(node, node.input[1])
    names = list(rename.values())
    clash = {n for n in names if names.count(n) > 1 or any(o.startswith(n + ".") for o in names if o != n)}
    rename = {k: v for k, v in rename.items() if v not in clash and v.replace(".", "").replace("_", "").isalnum()}
    if not rename:
        return module
    graph = module.graph
    root: dict[str, Any] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            sub = module.get_submodule(node.target)
            node.target = rename.get(node.target, node.target)
            root[node.target] = sub
        elif node.op == "get_attr":
            root[node.target] = attrgetter(node.target)(module)
    return torch.fx.GraphModule(root, graph)


def tidy_graph(module: Any, examples: list[Any]) -> list[str]:
    """Make an onnx2torch GraphModule prunable and exportable, in place; return the shape-locked layers.

    * A ``Reshape`` to a constant ``[-1, C*H*W]`` after a ``[N, C, H, W]`` tensor (how exporters flatten before
      the classifier) becomes ``torch.flatten(x, 1)``, which follows any channel count; other constant reshapes
      become a plain ``reshape`` to the constant (onnx2torch's own module branches on the shape's values, which
      ``torch.export`` cannot trace).
    * Layers whose width a constant fixes (a constant reshape, a per-channel constant such as a PReLU slope or
      a ``Mul`` by a ``[1, C, 1, 1]`` tensor) are returned: the nearest Conv/Linear layers feeding that op.
    """
    import numpy as np
    import torch
    from torch import nn
    from torch.fx.passes.shape_prop import ShapeProp

    graph = module.graph
    ShapeProp(module).propagate(*[torch.from_numpy(np.ascontiguousarray(a)) for a in examples])
    weights = {n for n, m in module.named_modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))}

    def const(node: Any) -> Any:
        if getattr(node, "op", None) != "get_attr":
            return None
        obj = attrgetter(node.target)(module)
        return obj if isinstance(obj, torch.Tensor) else None

    def feeders(node: Any) -> set[str]:
        found, stack, seen = set(), [a for a in node.all_input_nodes if const(a) is None], set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n.op == "call_module" and n.target in weights:
                found.add(str(n.target))
            elif n.op != "placeholder":
                stack.extend(a for a in n.all_input_nodes if const(a) is None)
        return found

    locked: set[str] = set()
    for node in list(graph.nodes):
        sub = module.get_submodule(node.target) if node.op == "call_module" else None
        if sub is not None and type(sub).__name__ == "OnnxReshape" and const(node.args[1]) is not None:
            shape = [int(d) for d in const(node.args[1]).tolist()]
            meta = node.args[0].meta.get("tensor_meta")
            src = list(meta.shape) if meta is not None else None
            flatten = src is not None and len(shape) == 2 and len(src) > 2 and shape[1] == int(np.prod(src[1:]))
            with graph.inserting_after(node):
                new = (graph.call_function(torch.flatten, (node.args[0], 1)) if flatten
                       else graph.call_method("reshape", (node.args[0], tuple(shape))))
            node.replace_all_uses_with(new)
            graph.erase_node(node)
            if not flatten:
                locked |= feeders(new)
            continue
        if node.op not in ("call_module", "call_function", "call_method") or str(node.target) in weights:
            continue
        params = [p for p in (sub.parameters(recurse=False) if sub is not None else ()) if p.numel() > 1]
        consts = [c for a in node.all_input_nodes if (c := const(a)) is not None and c.numel() > 1]
        if params or consts:
            locked |= feeders(node)
    graph.eliminate_dead_code()
    module.recompile()
    return sorted(locked)


def _check_matches(original: ModelHandle, converted: ModelHandle) -> None:
    import torch

    from workbench.core.handle import flatten_outputs
    from workbench.formats.normalize import relative_error, run_onnx

    fixed = fixed_batch_of(original.inputs)
    xs = [a[:fixed] if fixed else a for a in original.example_inputs]
    ref = run_onnx(_onnx_of(original), xs)
    with torch.no_grad():
        got = [t.numpy() for _, t in flatten_outputs(converted.module(*[torch.from_numpy(a) for a in xs]))]
    for r, g in zip(ref, got):
        err = relative_error(r, g)
        if r.shape != g.shape or err > 1e-3:
            raise WorkbenchError(f"{original.name}: the PyTorch module onnx2torch made differs from the model "
                                 f"(relative error {err:.2e}); prune it unstructured and quantise it in place.")


def _write_torchscript(variant: ModelHandle, out: Path) -> None:
    import torch

    examples = tuple(torch.from_numpy(a) for a in variant.example_inputs)
    atomic_write(out, lambda tmp: torch.jit.trace(variant.module, examples, check_trace=False).save(str(tmp)))


def _write_exported_program(variant: ModelHandle, out: Path) -> None:
    import torch

    fixed = fixed_batch_of(variant.inputs)
    examples = tuple(torch.from_numpy(a[:fixed] if fixed else a) for a in variant.example_inputs)
    atomic_write(out, lambda tmp: torch.export.save(torch.export.export(variant.module, examples), str(tmp)))


DEBUG_METADATA = ("pkg.torch.onnx.stack_trace", "pkg.torch.onnx.fx_node", "pkg.torch.onnx.class_hierarchy",
                  "namespace")  # torch.onnx's per-node debugging notes: on a converted graph, half the file


def _onnx_file(variant: ModelHandle) -> Path:
    """The variant exported by torch.onnx, without the exporter's per-node debugging notes (the layer names it
    records, ``pkg.torch.onnx.name_scopes``, stay)."""
    import onnx

    from workbench.formats.convert import to_onnx

    src = to_onnx(variant)
    out = src.with_name(src.stem + "-lean.onnx")
    if not out.is_file():
        model = onnx.load(str(src))
        for node in model.graph.node:
            kept = [p for p in node.metadata_props if p.key not in DEBUG_METADATA]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
        atomic_write(out, lambda tmp: onnx.save(model, str(tmp)))
    return out


WRITERS: dict[SourceFormat, tuple[str, Callable[[ModelHandle, Path], None] | None]] = {
    "onnx": (".onnx", None),
    "torchscript": (".pt", _write_torchscript),
    "exported_program": (".pt2", _write_exported_program),
}


def in_format(variant: ModelHandle, like: ModelHandle) -> ModelHandle:
    """A rewritten torch `variant` written back as `like`'s format (ONNX, TorchScript, ExportedProgram).

    The result keeps the variant's name, lineage and meta (plus the step back in ``meta["route"]``) and has
    `like`'s original as its origin, so fidelity is measured against the file the user brought.
    """
    from workbench.formats.loader import load

    if like.source_format == "module":
        return variant
    suffix, write = WRITERS[like.source_format]
    if write is None:
        path = _onnx_file(variant)
    else:
        path = cache_dir() / "variants" / f"{variant.name.replace('|', '_').replace(':', '-')}-{variant.fingerprint[:16]}{suffix}"
        if not path.is_file():
            try:
                write(variant, path)
            except Exception as e:  # noqa: BLE001 - tracing/export errors come in many types
                raise WorkbenchError(f"{variant.name}: writing the variant back as {like.source_format} failed "
                                     f"({first_line(e)}).") from e
    back = load(path, example_inputs=variant.example_inputs, name=variant.name)
    step = f"{variant.lineage[-1].label}: torch" if variant.lineage else "torch"
    route = [*variant.meta.get("route", []), step, f"torch -> {like.source_format}"]
    origin = like.origin if like.origin is not None else like
    return dataclasses.replace(back, name=variant.name, lineage=variant.lineage, origin=origin,
                               inputs=list(like.inputs) if like.framework == back.framework else back.inputs,
                               meta={**variant.meta, "route": route})
