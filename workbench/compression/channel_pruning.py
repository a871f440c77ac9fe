"""Channel pruning with torch-pruning's dependency graph: layers physically shrink, and MACs drop with them.

Output channels of Conv/Linear layers are removed with everything coupled to them (BatchNorm, depthwise convs,
the next layer's inputs); for HF-style attention (modules with ``query/key/value`` Linears and
``num_attention_heads``) whole heads go. torch-pruning traces the model, builds the groups and scores them
(`tp.importance.MagnitudeImportance`); `workbench.compression.channel_selection` picks the units to remove;
torch-pruning removes them. The model's last layer (its head) keeps its output width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from workbench.compression.base import covered
from workbench.compression.channel_selection import ChannelGroup, select_units
from workbench.compression.prune_layers import weight_layers
from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle


def prune_channels(module: Any, handle: ModelHandle, *, ratio: float, per_layer: bool, norm: int,
                   round_to: int | None, frozen: tuple[str, ...], keep_width: tuple[str, ...] = (),
                   ratios: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Remove the least important channels and heads of `module` in place.

    Args:
        module: a copy of `handle.module`, changed in place.
        handle: the model it was copied from (name, example inputs and output shapes).
        ratio: fraction of channels (and of heads) to remove.
        per_layer: remove ``floor(n * ratio)`` of each group; else rank all groups together.
        norm: 1 or 2, the norm of a channel's weights that scores it.
        round_to: keep a multiple of this many channels per group (`None` or 1: no rounding).
        frozen: layer names (covering their submodules) whose weights must keep their shape exactly.
        keep_width: layer names whose output width must stay (a later constant shape depends on it); their
            inputs may still shrink.
        ratios: per-layer ratios (`Prune.per_layer`) by Conv/Linear name: a group holding such layers removes
            ``floor(n * r)`` of its units, r the smallest of their ratios (0: none); the other groups follow
            `per_layer` at `ratio`.

    Returns:
        The variant's meta: ``sparsity`` (weights removed from the layers that shrank), ``pruned_layers``,
        ``channels`` and ``heads`` (``[before, after]`` per layer), ``params_removed`` and ``prune_head``; with
        `ratios`, ``prune_per_layer``: the ratio each layer of an overridden group was pruned at.
    """
    import torch
    import torch.nn as nn
    import torch_pruning as tp

    example = [torch.from_numpy(np.ascontiguousarray(a)) for a in handle.example_inputs]
    names = {m: n for n, m in module.named_modules()}
    frozen_mods = {m for n, m in module.named_modules() if n and covered(n, frozen)}
    kept_wide = [m for n, m in module.named_modules() if n and covered(n, keep_width)]
    try:
        dg = tp.DependencyGraph().build_dependency(module, example_inputs=example)
    except Exception as e:
        raise WorkbenchError(f"{handle.name}: torch-pruning could not trace the model ({first_line(e)}); "
                             "use structure='unstructured' or '2:4' instead.") from e
    head = _head_layer(module, example, set(dg.module2node))
    attention = _attention_modules(module)
    imp = tp.importance.MagnitudeImportance(p=norm, group_reduction="mean", normalizer="mean")
    groups: list[ChannelGroup] = []
    for group in dg.get_all_groups(ignored_layers=[head, *frozen_mods, *kept_wide], root_module_types=[nn.modules.conv._ConvNd,
                                                                                           nn.Linear]):
        members = [dep.target.module for dep, _ in group]
        if frozen_mods.intersection(members):
            continue  # a protected layer would change shape (as an input of this group)
        scores = imp(group)
        if scores is None:
            continue
        outs = [m for dep, _ in group if dg.is_out_channel_pruning_fn(dep.handler)
                and isinstance(m := dep.target.module, (nn.modules.conv._ConvNd, nn.Linear))]
        g = ChannelGroup(group[0].dep.target.module, group[0].dep.handler, [names[m] for m in outs], scores)
        attn = next((attention[m] for m in outs if m in attention), None)
        if attn is not None:
            g.unit = int(attn.attention_head_size)
            g.scores = scores.view(-1, g.unit).mean(1)  # one score per head: heads go whole
        own = [ratios[n] for n in g.names if n in (ratios or {})]
        g.ratio = min(own) if own else None  # names with different overrides: the most careful one
        groups.append(g)
    select_units(groups, ratio=ratio, per_layer=per_layer, round_to=round_to, model=handle.name)

    shapes = {n: tuple(m.weight.shape) for n, m in weight_layers(module).items()}
    attn_modules = list(dict.fromkeys(attention.values()))  # in model order
    heads_before = {names[a]: int(a.num_attention_heads) for a in attn_modules}
    params_before = sum(p.numel() for p in module.parameters())
    for g in groups:
        if g.remove:
            idxs = [u * g.unit + i for u in g.remove for i in range(g.unit)]
            pg = dg.get_pruning_group(g.root, g.handler, idxs)
            if not dg.check_pruning_group(pg):  # pragma: no cover - select_units never empties a group
                raise WorkbenchError(f"{handle.name}: pruning {g.names} would leave a layer with no channels.")
            pg.prune()
    for a in attn_modules:  # HF attention reads these to split heads (transformers < 5 does)
        a.all_head_size = a.query.out_features
        a.num_attention_heads = a.query.out_features // a.attention_head_size
    _check_runs(module, handle, example)

    after = {n: tuple(m.weight.shape) for n, m in weight_layers(module).items()}
    changed = [n for n in after if after[n] != shapes[n]]
    w_before = sum(math.prod(shapes[n]) for n in changed)
    w_after = sum(math.prod(after[n]) for n in changed)
    own = {n: g.ratio for g in groups if g.ratio is not None for n in g.names}
    return {
        "sparsity": 1 - w_after / w_before if w_before else 0.0,  # weights removed from the layers that shrank
        "pruned_layers": changed,
        "channels": {n: [shapes[n][0], after[n][0]] for n in changed if after[n][0] != shapes[n][0]},
        "heads": {n: [h, int(a.num_attention_heads)] for a, n in ((a, names[a]) for a in attn_modules)
                  if (h := heads_before[n]) != a.num_attention_heads},
        "params_removed": int(params_before - sum(p.numel() for p in module.parameters())),
        "prune_head": names.get(head),
        **({} if ratios is None else {"prune_per_layer": {n: own[n] for n in shapes if n in own}}),  # model order
    }


def _attention_modules(module: Any) -> dict[Any, Any]:
    """HF-style self-attention (query/key/value Linears + num_attention_heads) keyed by its q, k and v."""
    import torch.nn as nn

    out = {}
    for m in module.modules():
        qkv = [getattr(m, a, None) for a in ("query", "key", "value")]
        if all(isinstance(x, nn.Linear) for x in qkv) and hasattr(m, "num_attention_heads") and hasattr(
                m, "attention_head_size"):
            out.update({x: m for x in qkv})
    return out


def _head_layer(module: Any, example: list[Any], traced: set[Any]) -> Any:
    """The last Conv/Linear the forward pass runs that feeds the outputs: the model's head."""
    import torch

    order: list[Any] = []
    hooks = [m.register_forward_hook(lambda mod, _i, _o: order.append(mod))
             for m in weight_layers(module).values() if m in traced]
    try:
        with torch.no_grad():
            module(*example)
    finally:
        for h in hooks:
            h.remove()
    return order[-1] if order else None


def _check_runs(module: Any, handle: ModelHandle, example: list[Any]) -> None:
    import torch

    from workbench.core.handle import flatten_outputs

    try:
        with torch.no_grad():
            outs = flatten_outputs(module(*example))
    except Exception as e:
        raise WorkbenchError(f"{handle.name}: the channel-pruned model no longer runs ({first_line(e)}). "
                             "Exclude the layers around the failing op with Prune(..., exclude=[...]).") from e
    got = [tuple(t.shape[1:]) for _, t in outs]
    want = [tuple(s.shape[1:]) if s.shape else None for s in handle.outputs]
    if any(w is not None and w != g for w, g in zip(want, got)):
        raise WorkbenchError(f"{handle.name}: channel pruning changed the output shapes {want} -> {got}. "
                             "Exclude the layers that produce the outputs with Prune(..., exclude=[...]).")
