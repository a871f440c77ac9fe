"""Pruning a causal language model: whole decoder layers (depth), MLP channels (width), or single weights.

* ``Prune(r, structure="layer")`` drops ``floor(n * r)`` of the n decoder layers, those of least *measured*
  importance on the task's calibration text (``task.calibration``: token-id chunks):

  - ``importance="cosine"`` (default): ``1 - cos(h_in, h_out)`` averaged over tokens, how much a layer turns
    the hidden state it receives (ShortGPT's "block influence"); a layer that barely changes it goes first;
  - ``importance="perplexity"``: the calibration perplexity with that one layer removed; the layers whose
    absence costs least go.

  The rest are renumbered (their attention's ``layer_idx``, which indexes the KV cache) and the config's
  ``num_hidden_layers`` follows, so the variant saves, reloads and generates like any checkpoint.
* ``Prune(r, structure="channel")`` removes ``floor(I * r)`` of the I intermediate channels of every MLP (the kept
  width then rounded to a multiple of `Prune.round_to`, 8 by default; ``round_to=1``: no rounding) — row
  j of ``gate_proj`` and ``up_proj`` and column j of ``down_proj`` together — the same number in every layer,
  because the config has one ``intermediate_size``. A channel's importance is its output's mean magnitude on
  the calibration text times the norm of its ``down_proj`` column (Wanda / FLAP style) when the task is
  given, else the norm (`importance` ``"l1"``/``"l2"``) of its three weight vectors together. `round_to`
  keeps a multiple of it (e.g. 32, one 4-bit block of ``down_proj``'s inputs).
* ``"unstructured"`` and ``"2:4"`` zero the decoder's linear weights as on any PyTorch model (embeddings and
  the LM head, often tied to them, are left alone).

``meta["lm"]`` describes the variant (layers, intermediate); quantisation records of layers that moved are
renamed, and those whose blocks a removed column broke (``down_proj``) are dropped.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from workbench.compression.base import copy_module, covered, technique, torch_variant
from workbench.compression.prune import Importance, Prune, Structure
from workbench.compression.prune_layers import weight_layers
from workbench.compression.prune_torch import zero_smallest, zero_two_of_four
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.lm import META_KEY, LMSpec, lm_spec
from workbench.core.quant import quant_meta, quant_record

CALIBRATION_ROWS = 8
"""Calibration chunks used to measure importances (enough to rank; each is a full forward pass)."""


def decoder_layers(module: Any) -> Any:
    """The `nn.ModuleList` of a transformers causal LM's decoder layers (``model.layers``)."""
    layers = getattr(getattr(module, "model", None), "layers", None)
    if layers is None:
        raise WorkbenchError(f"{type(module).__name__} keeps no decoder layers at .model.layers; depth and MLP "
                             "pruning support Llama-style models (Llama, SmolLM, Qwen, Mistral).")
    return layers


def calibration_ids(handle: ModelHandle, task: Any, what: str) -> Any:
    """The first `CALIBRATION_ROWS` token-id chunks of the task's calibration split, as a torch tensor."""
    import torch

    calibration = getattr(task, "calibration", None)
    if task is None or not calibration:
        raise WorkbenchError(
            f"{handle.name}: {what} is measured on text; pass the task: compress(handle, Prune(...), task=task) "
            "(workbench.zoo.load('smollm2'), or Task.from_text(handle, texts) for your own text)."
        )
    ids = np.asarray(calibration[0])[:CALIBRATION_ROWS]
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise WorkbenchError(f"{handle.name}: the task's calibration split must be token ids (n, L); got "
                             f"{ids.dtype} {ids.shape}. Use a language task (Task.from_text).")
    return torch.from_numpy(ids.astype(np.int64))


def _nll(module: Any, ids: Any) -> float:
    import torch

    with torch.no_grad():
        return float(module(input_ids=ids, labels=ids, use_cache=False).loss)


def layer_importance(module: Any, ids: Any, how: Importance) -> list[float]:
    """One score per decoder layer, higher = more important (see the module docstring)."""
    import torch

    layers = decoder_layers(module)
    if how is Importance.PERPLEXITY:
        scores = []
        for i in range(len(layers)):
            module.model.layers = torch.nn.ModuleList([m for j, m in enumerate(layers) if j != i])
            try:
                scores.append(math.exp(_nll(module, ids)))
            finally:
                module.model.layers = layers
        return scores
    sums = [0.0] * len(layers)

    def hook(i: int) -> Any:
        def fn(_: Any, args: tuple, kwargs: dict, out: Any) -> None:
            h_in = args[0] if args else kwargs["hidden_states"]
            h_out = out[0] if isinstance(out, tuple) else out
            cos = torch.nn.functional.cosine_similarity(h_in.float(), h_out.float(), dim=-1)
            sums[i] = float((1 - cos).mean())
        return fn

    forward_with_hooks(module, ids, [m.register_forward_hook(hook(i), with_kwargs=True)
                                     for i, m in enumerate(layers)])
    return sums


def _set_spec(handle: ModelHandle, module: Any, **changes: Any) -> dict[str, Any]:
    spec = lm_spec(handle) or LMSpec.from_hf_config(module.config)
    return dataclasses.replace(spec, **changes).to_dict()


def drop_layers(handle: ModelHandle, cfg: Prune, task: Any) -> ModelHandle:
    """``structure="layer"``: a variant without the least important decoder layers."""
    import torch

    layers = decoder_layers(handle.module)
    n = len(layers)
    drop = math.floor(n * cfg.ratio)
    if drop == 0:
        raise WorkbenchError(f"{handle.name}: Prune({cfg.ratio}, structure='layer') removes floor({n} x {cfg.ratio}) "
                             f"= 0 of its {n} decoder layers; use a ratio of at least {1 / n:.3g}.")
    names = [f"model.layers.{i}" for i in range(n)]
    kept_by_user = [i for i, name in enumerate(names) if covered(name, cfg.exclude)]
    if n - len(kept_by_user) < drop:
        raise WorkbenchError(f"{handle.name}: {len(kept_by_user)} of {n} layers are excluded, so {drop} cannot be "
                             "dropped; exclude fewer or lower the ratio.")
    ids = calibration_ids(handle, task, f"the importance of decoder layers ({cfg.importance.value})")
    module = copy_module(handle)
    scores = layer_importance(module, ids, cfg.importance)
    order = sorted((i for i in range(n) if i not in kept_by_user), key=lambda i: scores[i])
    dropped = sorted(order[:drop])
    kept = [i for i in range(n) if i not in dropped]
    layers = decoder_layers(module)
    module.model.layers = torch.nn.ModuleList([layers[i] for i in kept])
    for new, layer in enumerate(module.model.layers):
        for sub in layer.modules():
            if hasattr(sub, "layer_idx"):
                sub.layer_idx = new
    config = module.config
    config.num_hidden_layers = len(kept)
    if isinstance(getattr(config, "layer_types", None), list) and len(config.layer_types) == n:
        config.layer_types = [config.layer_types[i] for i in kept]
    rename = {f"model.layers.{old}": f"model.layers.{new}" for new, old in enumerate(kept)}
    meta = {
        META_KEY: _set_spec(handle, module, layers=len(kept)),
        "pruned_layers": [names[i] for i in dropped],
        "kept_layers": kept,
        "layer_importance": {"measure": cfg.importance.value, "scores": [round(s, 6) for s in scores]},
        **_renamed_quant(handle, rename, drop=[names[i] for i in dropped]),
    }
    return torch_variant(handle, module, cfg, meta=meta)


def _renamed_quant(handle: ModelHandle, rename: dict[str, str], drop: list[str]) -> dict[str, Any]:
    """The handle's quantisation record without the layers in `drop` and with decoder-layer prefixes renamed."""
    record = quant_record(handle)
    if not record:
        return {}

    def new_name(name: str) -> str:
        for old, new in rename.items():
            if covered(name, [old]):
                return new + name[len(old):]
        return name

    entries = []
    for name, entry in record.without(lambda nm: covered(nm, drop)).layers:
        param = new_name(entry.param) if entry.param else None
        entries.append((new_name(name), dataclasses.replace(entry, param=param)))
    return quant_meta(dataclasses.replace(record, layers=tuple(entries)))


def forward_with_hooks(module: Any, ids: Any, handles: list[Any]) -> None:
    """One no-grad forward pass of `ids` through `module` with the registered hooks `handles`, then remove them."""
    import torch

    try:
        with torch.no_grad():
            module(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()


def _channel_scores(module: Any, ids: Any | None, p: int) -> list[Any]:
    """Per decoder layer, the importance of each MLP intermediate channel (see the module docstring)."""
    import torch

    mlps = [layer.mlp for layer in decoder_layers(module)]
    if ids is None:
        return [torch.cat([m.gate_proj.weight, m.up_proj.weight, m.down_proj.weight.T], dim=1).detach()
                .norm(p=p, dim=1) for m in mlps]
    acts: list[Any] = [None] * len(mlps)

    def hook(i: int) -> Any:
        def fn(_: Any, args: tuple) -> None:
            acts[i] = args[0].detach().abs().float().mean(dim=(0, 1))
        return fn

    forward_with_hooks(module, ids, [m.down_proj.register_forward_pre_hook(hook(i)) for i, m in enumerate(mlps)])
    return [a * m.down_proj.weight.detach().norm(p=p, dim=0) for a, m in zip(acts, mlps)]


def _shrink(linear: Any, keep: Any, dim: int) -> Any:
    """A copy of `linear` keeping the output rows (dim 0) or input columns (dim 1) indexed by `keep`."""
    import torch

    w = linear.weight.detach().index_select(dim, keep)
    out = torch.nn.Linear(w.shape[1], w.shape[0], bias=linear.bias is not None, dtype=w.dtype)
    with torch.no_grad():
        out.weight.copy_(w)
        if linear.bias is not None:
            out.bias.copy_(linear.bias.detach() if dim == 1 else linear.bias.detach()[keep])
    return out


def prune_mlp_channels(handle: ModelHandle, cfg: Prune, task: Any) -> ModelHandle:
    """``structure="channel"``: the same number of MLP channels removed from every decoder layer."""
    import torch

    layers = decoder_layers(handle.module)
    if not all(hasattr(layer.mlp, n) for layer in layers for n in ("gate_proj", "up_proj", "down_proj")):
        raise WorkbenchError(f"{handle.name}: MLP channel pruning needs Llama-style MLPs (gate_proj, up_proj, "
                             "down_proj); this model's differ.")
    if cfg.exclude:
        raise WorkbenchError(f"{handle.name}: a language model's MLP width is one number in its config "
                             "(intermediate_size), so channel pruning removes the same channels count everywhere "
                             "and takes no exclude; drop exclude=.")
    width = layers[0].mlp.gate_proj.out_features
    keep_n = width - math.floor(width * cfg.ratio)
    if cfg.round_to:
        keep_n = max(cfg.round_to, int(round(keep_n / cfg.round_to)) * cfg.round_to)
    if keep_n >= width:
        raise WorkbenchError(f"{handle.name}: Prune({cfg.ratio}, structure='channel') removes no MLP channel of "
                             f"{width}; raise the ratio.")
    calibration = getattr(task, "calibration", None) if task is not None else None
    ids = calibration_ids(handle, task, "channel importance") if calibration else None
    module = copy_module(handle)
    scores = _channel_scores(module, ids, 1 if cfg.importance is Importance.L1 else 2)
    for layer, score in zip(decoder_layers(module), scores):
        keep = torch.sort(torch.topk(score, keep_n).indices).values
        mlp = layer.mlp
        mlp.gate_proj = _shrink(mlp.gate_proj, keep, 0)
        mlp.up_proj = _shrink(mlp.up_proj, keep, 0)
        mlp.down_proj = _shrink(mlp.down_proj, keep, 1)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = keep_n
    module.config.intermediate_size = keep_n
    names = [f"model.layers.{i}.mlp" for i in range(len(scores))]
    record = quant_record(handle)
    meta = {
        META_KEY: _set_spec(handle, module, intermediate=keep_n),
        "pruned_layers": names,
        "pruned_channels": {"intermediate": [width, keep_n],
                            "importance": "activation" if ids is not None else cfg.importance.value},
        **(quant_meta(record.without(lambda nm: nm.endswith(".mlp.down_proj"))) if record else {}),
    }
    return torch_variant(handle, module, cfg, meta=meta)


@technique(Prune, "lm")
def prune_lm(handle: ModelHandle, cfg: Prune, task: Any) -> ModelHandle:
    """Depth, MLP-channel, unstructured or 2:4 pruning of a language model; see the module docstring."""
    if cfg.structure is Structure.LAYER:
        return drop_layers(handle, cfg, task)
    if cfg.structure is Structure.CHANNEL:
        if cfg.per_layer:
            raise WorkbenchError(f"{handle.name}: per_layer ratios apply to a language model's unstructured pruning, "
                                 "not to its MLP channels; use structure='unstructured', or one ratio for all")
        return prune_mlp_channels(handle, cfg, task)
    module = copy_module(handle)
    head = module.get_output_embeddings()
    skip = [n for n, m in module.named_modules() if m is head]
    layers = {n: m for n, m in weight_layers(module).items() if not covered(n, (*cfg.exclude, *skip))}
    if not layers:
        raise WorkbenchError(f"{handle.name}: no linear layer left to prune outside the excluded ones.")
    if cfg.structure is Structure.N_M:
        meta = zero_two_of_four(layers)
    else:
        meta = zero_smallest(layers, cfg.ratio, per_layer=cfg.scope.value == "layer",
                             ratios=cfg.overridden(layers) if cfg.per_layer else None)
    return torch_variant(handle, module, cfg, meta=meta)
