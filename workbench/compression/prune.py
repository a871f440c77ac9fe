"""Pruning: zero the weights that matter least (unstructured, 2:4) or remove whole channels and heads (channel).

Three structures, one config:

* ``"unstructured"`` – magnitude pruning with `torch.nn.utils.prune` (global or per layer), made permanent with
  `prune.remove`, so the variant's weights hold the zeros and no masks or hooks remain. The model keeps its
  size and speed in dense runtimes; it compresses well and runs faster only on sparse kernels.
* ``"2:4"`` – semi-structured N:M sparsity: in every group of 4 consecutive weights along a layer's input
  (Linear: ``in_features``; Conv: ``in_channels/groups * kernel`` flattened per output channel) the 2 of
  smallest magnitude become zero – the pattern sparse tensor cores accelerate.
* ``"channel"`` – structured pruning with torch-pruning's dependency graph: output channels of Conv/Linear
  layers (with everything coupled to them: BatchNorm, depthwise convs, the next layer's inputs) and, for
  HF-style attention (modules with ``query/key/value`` and ``num_attention_heads``), whole heads are removed,
  so the layers physically shrink and MACs drop.

Layers that are never pruned: those named in ``exclude`` (with their submodules), and the fixed transforms a
model marks with ``prune_fixed`` (Silero VAD's STFT basis). Channel pruning also keeps the output width of the
model's last layer (the classifier head; its input may shrink) and the layers a model marks with
``prune_protected``, whose width is part of its contract (Silero VAD's LSTM cell and decoder). An excluded or
protected layer keeps its weight shape *exactly*, so the layer feeding it keeps its output width too. The
marker is described in `Prune`'s docstring.

The code: this module holds the config and its two techniques (torch, ONNX); `prune_torch` zeroes single
weights, `channel_pruning` (with `channel_selection`) removes channels, `prune_onnx` rewrites ONNX
initialisers, `prune_layers` names the layers they touch, and `pruning_plan` previews a config per layer.

Example:
    >>> task = workbench.zoo.load("digits-cnn")
    >>> plan = workbench.prune_plan(task.model, Prune(0.5, structure="channel"))
    >>> plan.set_index("layer").loc["classifier", ["shape_before", "shape_after", "note"]].tolist()
    [(10, 256), (10, 136), 'head: outputs kept']
    >>> small = workbench.compress(task.model, Prune(0.5, structure="channel"))
    >>> small.num_params < task.model.num_params / 3
    True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass
from enum import StrEnum
from numbers import Real
from typing import Any, ClassVar

from workbench.compression.base import (
    CompressionConfig,
    bridged,
    copy_module,
    covered,
    layer_names,
    technique,
    torch_variant,
)
from workbench.compression.channel_pruning import prune_channels
from workbench.compression.prune_layers import protected_layers, weight_layers
from workbench.compression.prune_onnx import prune_onnx_model
from workbench.compression.prune_torch import check_torch_model, zero_smallest, zero_two_of_four
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle


class _Choice(StrEnum):
    def __repr__(self) -> str:  # Prune(ratio=0.5, structure='channel', ...) reads like the call that made it
        return repr(self.value)


class Structure(_Choice):
    UNSTRUCTURED = "unstructured"
    CHANNEL = "channel"
    N_M = "2:4"
    LAYER = "layer"


class Scope(_Choice):
    GLOBAL = "global"
    LAYER = "layer"


class Importance(_Choice):
    L1 = "l1"
    L2 = "l2"
    COSINE = "cosine"
    PERPLEXITY = "perplexity"


MEASURED = (Importance.COSINE, Importance.PERPLEXITY)
"""Importances of whole decoder layers (``structure="layer"``), measured on the task's calibration text."""

CHANNEL_MULTIPLE = 8
"""Channel pruning's default `Prune.round_to`: every pruned layer keeps a multiple of 8 channels (see `Prune`)."""


def _choice(enum: type[StrEnum], field: str, value: Any) -> StrEnum:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(repr(e.value) for e in enum)
        raise ValueError(f"Prune: {field} must be one of {allowed}, got {value!r}") from None


@dataclass(frozen=True)
class Prune(CompressionConfig):
    """Prune a model's Conv/Linear weights.

    Args:
        ratio: fraction to remove, in [0, 1): of the weights (unstructured), of the channels and heads (channel).
            ``"2:4"`` always removes exactly half, so it requires ``ratio=0.5``.
        structure: ``"unstructured"``, ``"channel"`` or ``"2:4"`` (see the module docstring); on a language
            model also ``"layer"``: drop ``floor(n * ratio)`` whole decoder layers (`workbench.compression.lm_prune`),
            and ``"channel"`` removes MLP channels.
        scope: ``"global"`` ranks all layers together (each layer loses a different share); ``"layer"``
            removes ``floor(n * ratio)`` of each layer's n weights / channels / heads (so a layer never
            empties, and 0.5 halves every even width). Ignored by ``"2:4"``, which is per group of 4.
        importance: ``"l1"`` or ``"l2"`` norm of a channel's weights (summed over its dependency group,
            normalised by the group mean for global ranking). For single weights (unstructured, 2:4) both
            rank identically, by absolute value. ``"layer"`` ranks decoder layers by a measured importance:
            ``"cosine"`` (the default there: how much a layer turns its input hidden states, ``1 - cos``) or
            ``"perplexity"`` (the task's perplexity with the layer dropped); ``"l1"``/``"l2"`` do not apply.
        exclude: module names (a name covers its submodules) left exactly as they are.
        round_to: channel pruning only: every pruned layer keeps a multiple of this many channels (the nearest
            multiple, at least one), so the ratio achieved differs slightly from `ratio`. `None` (the default)
            is `CHANNEL_MULTIPLE`, 8, for ``"channel"`` (and nothing for the other structures); 1 turns rounding
            off. Layers narrower than `round_to` and attention heads are left as ranked; on a language model it
            rounds the MLP width.
        per_layer: ``{layer or parent module: ratio}`` overrides of `ratio` (a dict or ``(name, ratio)`` pairs,
            each ratio in [0, 1)); a name covers its submodules and the most specific name wins (as in
            `Quantize`). Unstructured: each overridden layer is pruned alone at its ratio; the other layers
            follow `scope` at `ratio` (``"global"`` ranks only them together). Channel: a dependency group
            whose layers an override names removes ``floor(n * ratio)`` of its n channels (or heads), then
            rounds as usual (`round_to`); a group the overrides name with different ratios takes the smallest;
            the other groups follow `scope` at `ratio`. 0 leaves a layer unpruned (channel: its outputs; its
            inputs follow the layer feeding it – `exclude` keeps its shape exactly). ONNX and TFLite files take
            it for unstructured pruning too (names of weights or their prefixes), and so do language models
            (their MLP-channel pruning does not). Not for ``"2:4"`` or ``"layer"``. The variant's ``meta["prune_per_layer"]`` records
            ``{layer: ratio}`` for the layers an override applied to.

    Why the defaults (``scope="global"``, ``round_to=8``): measured by benchmarks/compression.py, 50 % channel
    pruning of kws (the MLPerf Tiny DS-CNN) and digits-cnn, batch 1, one thread, interleaved rounds through
    `workbench.runtime`, on a shared 2-core AVX-512 VM (ranges over three runs of these measurements). Without rounding, global ranking
    leaves widths such as 31/35 (kws) or 19/67/119 (digits); ONNX Runtime cannot block those for its NCHWc
    convolution kernels and falls back to im2col convolutions, so the pruned model ran at 0.3-0.7x the speed of
    the *unpruned* one (kws: 68.6 -> 227 us) for 3.3-3.6x fewer MACs. Multiples of 4 bring the NCHWc kernels
    back (1.4-1.9x faster than the original there); multiples of 8 were the fastest, or level with the fastest
    within the noise, on every runtime:
    speedup over the original 1.5-2.1x on ONNX Runtime, 1.9-2.3x on LiteRT, 1.3-1.5x on OpenVINO, 1.6-2.0x on
    ExecuTorch (without rounding: 0.3-0.7x, 1.2-2.0x, 1.1-1.6x, 1.4-1.8x). 16 bought nothing consistent over 8
    (the same widths on kws; on digits ahead in some runs and behind in others, within the noise) and strays
    further from `ratio`. With 8, ``"global"`` and ``"layer"`` give kws the same widths; on digits
    ``"layer"`` was ahead in two runs and behind in the third (within ~10 %), so the scope stays global, which
    lets the layers that matter keep more channels. Speedup stays at 0.4-0.7 of the MAC reduction at this
    size: a call's fixed cost (12-36 us through `workbench.runtime`) and the stem and depthwise layers, whose
    MACs only halve, weigh more than the pointwise layers that shrink 4x. The benchmark's study shows the ratio
    rising with size: 0.65-0.86 for the DS-CNN at 4x its width (batch 1), 0.64-0.83 at batch 16.

    A model protects its own layers with two optional attributes, read with `getattr` from the ``nn.Module``
    (its class or the instance), each a tuple of module names (a name covers its submodules):

    * ``prune_fixed``: fixed, non-learned transforms that no structure prunes (Silero VAD:
      ``("stft_conv",)``);
    * ``prune_protected``: layers whose width is part of the model's contract, which channel pruning leaves
      exactly as they are (Silero VAD: ``("ih", "hh", "final_conv")``, the LSTM cell whose state is a model
      input, and the decoder).

    Set them outside the class body (after it, or on the instance): ``ModelHandle.fingerprint`` hashes the
    class's source, so an attribute inside the class would change the model's fingerprint and every stored
    key. The variant's ``meta["prune_protected"]`` lists the protected layers that applied, and `prune_plan`
    notes them as ``"protected"``.

    Example:
        >>> Prune(0.5, structure="channel").label
        'prune-channel-0.50'
        >>> Prune(0.5, structure="2:4", exclude=["classifier"]).label
        'prune-2:4-x1'

        Marking a layer of one's own model: ``"4"`` keeps its shape, so ``"2"``, which feeds it, keeps its
        width too; ``"0"`` is halved and the head (``"6"``) keeps its outputs:

        >>> import torch.nn as nn
        >>> net = nn.Sequential(nn.Conv1d(1, 8, 3), nn.ReLU(), nn.Conv1d(8, 8, 1), nn.ReLU(),
        ...                     nn.Conv1d(8, 8, 1), nn.ReLU(), nn.Conv1d(8, 2, 1))
        >>> net.prune_protected = ("4",)
        >>> model = workbench.load(net, example_inputs=[np.random.default_rng(0).random((2, 1, 16), np.float32)])
        >>> small = workbench.compress(model, Prune(0.5, structure="channel", scope="layer"))
        >>> [m.out_channels for m in small.module if isinstance(m, nn.Conv1d)], small.meta["prune_protected"]
        ([4, 8, 8, 2], ['4'])

        Per-layer ratios: each layer of digits-cnn's last block loses 80 % of its weights, the classifier none,
        every other layer half:

        >>> cfg = Prune(0.5, scope="layer", per_layer={"blocks.4": 0.8, "classifier": 0.0})
        >>> cfg.per_layer, cfg.label
        ((('blocks.4', 0.8), ('classifier', 0.0)), 'prune-unstructured-0.50-layer-mixed...')
        >>> sparse = workbench.compress(task.model, cfg)
        >>> sparse.meta["prune_per_layer"]
        {'blocks.4.dw.conv': 0.8, 'blocks.4.pw.conv': 0.8, 'classifier': 0.0}
        >>> w = {n: m.weight for n, m in sparse.module.named_modules() if n in ("stem.conv", "blocks.4.pw.conv")}
        >>> {n: round(float((v == 0).float().mean()), 2) for n, v in w.items()}
        {'stem.conv': 0.5, 'blocks.4.pw.conv': 0.8}
    """

    kind: ClassVar[str] = "prune"

    ratio: float
    _: KW_ONLY
    structure: Structure = Structure.UNSTRUCTURED
    scope: Scope = Scope.GLOBAL
    importance: Importance | None = None
    exclude: tuple[str, ...] = ()
    round_to: int | None = None
    per_layer: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        r = self.ratio
        if isinstance(r, bool) or not isinstance(r, Real) or not math.isfinite(r) or not 0.0 <= r < 1.0:
            raise ValueError(f"Prune: ratio must be a number in [0, 1) (the fraction removed), got {r!r}")
        object.__setattr__(self, "ratio", float(r))
        object.__setattr__(self, "structure", _choice(Structure, "structure", self.structure))
        object.__setattr__(self, "scope", _choice(Scope, "scope", self.scope))
        if self.importance is None:
            object.__setattr__(self, "importance",
                               Importance.COSINE if self.structure is Structure.LAYER else Importance.L1)
        object.__setattr__(self, "importance", _choice(Importance, "importance", self.importance))
        if (self.importance in MEASURED) != (self.structure is Structure.LAYER):
            raise ValueError(
                f"Prune: importance {self.importance.value!r} does not apply to structure {self.structure.value!r}; "
                "'layer' takes 'cosine' or 'perplexity', the others 'l1' or 'l2'"
            )
        if self.structure is Structure.N_M and self.ratio != 0.5:
            raise ValueError(f"Prune: '2:4' keeps 2 of every 4 weights, so ratio must be 0.5, got {r!r}")
        object.__setattr__(self, "exclude", layer_names("Prune", self.exclude))
        if self.round_to is None:  # the measured default (CHANNEL_MULTIPLE) is stored, so it is part of the key
            object.__setattr__(self, "round_to", CHANNEL_MULTIPLE if self.structure is Structure.CHANNEL else None)
        else:
            if isinstance(self.round_to, bool) or not isinstance(self.round_to, int) or self.round_to < 1:
                raise ValueError(f"Prune: round_to must be None (the default, {CHANNEL_MULTIPLE}) or an integer >= 1 "
                                 f"(1: no rounding), got {self.round_to!r}")
            if self.structure is not Structure.CHANNEL:
                raise ValueError(f"Prune: round_to applies to structure='channel' only, not {self.structure.value!r}")
        object.__setattr__(self, "per_layer", _per_layer(self.per_layer))
        if self.per_layer and self.structure is Structure.N_M:
            raise ValueError("Prune: 2:4 is exactly half of every group of four; per_layer does not apply")
        if self.per_layer and self.structure is Structure.LAYER:
            raise ValueError("Prune: structure='layer' drops floor(n * ratio) whole decoder layers; per_layer does "
                             "not apply")
        both = [n for n, _ in self.per_layer if covered(n, self.exclude)]
        if both:
            raise ValueError(f"Prune: layer(s) {both} are both excluded and given a ratio in per_layer; pick one")

    @property
    def per_layer_ratios(self) -> dict[str, float]:
        """`per_layer` as a dict."""
        return dict(self.per_layer)

    def ratio_for(self, layer: str) -> float:
        """The ratio `layer` is pruned at: its most specific `per_layer` override, else `ratio`.

        Example:
            >>> cfg = Prune(0.5, per_layer={"blocks": 0.2, "blocks.4": 0.7})
            >>> cfg.ratio_for("blocks.4.pw.conv"), cfg.ratio_for("blocks.0.pw.conv"), cfg.ratio_for("stem.conv")
            (0.7, 0.2, 0.5)
        """
        hits = [(len(n), r) for n, r in self.per_layer if _covers(n, layer)]
        return max(hits)[1] if hits else self.ratio

    def overridden(self, layers: Iterable[str]) -> dict[str, float]:
        """``{layer: ratio}`` for those of `layers` that a `per_layer` name covers."""
        return {layer: self.ratio_for(layer) for layer in layers if any(_covers(n, layer) for n, _ in self.per_layer)}

    def to_dict(self) -> dict[str, Any]:
        d = {k: v.value if isinstance(v, StrEnum) else v for k, v in super().to_dict().items()}
        if self.per_layer:
            d["per_layer"] = self.per_layer_ratios
        else:  # left out, so that configs from before `per_layer` keep their dicts and stored keys
            del d["per_layer"]
        return d

    @property
    def label(self) -> str:
        """``prune-<structure>-<ratio>`` plus ``-layer``, ``-l2`` (channel), ``-mult<n>`` (a `round_to` other than
        the default; ``-mult1``: no rounding), ``-x<n excluded>`` and ``-mixed<6 hex digits: a hash of
        per_layer>`` when set."""
        if self.structure is Structure.N_M:
            text = "prune-2:4"
        elif self.structure is Structure.LAYER:
            text = f"prune-layer-{self.ratio:.2f}" + ("-ppl" if self.importance is Importance.PERPLEXITY else "")
        else:
            text = f"prune-{self.structure.value}-{self.ratio:.2f}"
            text += "-layer" if self.scope is Scope.LAYER else ""
        text += "-l2" if self.structure is Structure.CHANNEL and self.importance is Importance.L2 else ""
        text += f"-mult{self.round_to}" if self.round_to not in (None, CHANNEL_MULTIPLE) else ""
        text += f"-x{len(self.exclude)}" if self.exclude else ""
        if self.per_layer:
            text += "-mixed" + hashlib.sha256(json.dumps(self.per_layer).encode()).hexdigest()[:6]
        return text


def _covers(name: str, layer: str) -> bool:
    """Whether `name` is `layer` or a module above it (dotted names, or the slashed names of TFLite tensors)."""
    return layer == name or layer.startswith((name + ".", name + "/"))


def _per_layer(value: Any) -> tuple[tuple[str, float], ...]:
    """`Prune.per_layer` (a dict or ``(name, ratio)`` pairs) as sorted, validated ``(name, float)`` pairs."""
    pairs = value.items() if hasattr(value, "items") else value
    try:
        pairs = [(name, r) for name, r in pairs]
    except (TypeError, ValueError):
        raise ValueError(f"Prune: per_layer must map layer names to ratios, e.g. {{'classifier': 0.2}}; "
                         f"got {value!r}") from None
    out: dict[str, float] = {}
    for name, r in pairs:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Prune: per_layer must map non-empty layer names (strings) to ratios, got {name!r}")
        if name in out:
            raise ValueError(f"Prune: per_layer names {name!r} twice")
        if isinstance(r, bool) or not isinstance(r, Real) or not math.isfinite(r) or not 0.0 <= r < 1.0:
            raise ValueError(f"Prune: per_layer[{name!r}] must be a number in [0, 1) (the fraction removed; 0: "
                             f"not pruned), got {r!r}")
        out[name] = float(r)
    return tuple(sorted(out.items()))


@technique(Prune, "torch")
def _prune_torch(handle: ModelHandle, cfg: Prune, task: Any = None) -> ModelHandle:
    if cfg.structure is Structure.LAYER:
        raise WorkbenchError(f"{handle.name}: structure='layer' drops decoder layers of a language model; this "
                             "model is not one. Use 'channel', 'unstructured' or '2:4'.")
    channel = cfg.structure is Structure.CHANNEL
    check_torch_model(handle, [n for n, _ in handle.module.named_modules() if n],
                      (*cfg.exclude, *cfg.per_layer_ratios), traced=channel)
    module = copy_module(handle)
    _check_per_layer(handle, cfg, list(weight_layers(module)))
    fixed, shape = protected_layers(module)
    shape = shape if channel else ()
    # a module converted from a file: layers whose width a constant in the graph fixes (formats.onnx_module)
    locked = tuple(handle.meta.get("shape_locked", ()))
    if channel:
        meta = prune_channels(module, handle, ratio=cfg.ratio, per_layer=cfg.scope is Scope.LAYER,
                              norm=1 if cfg.importance is Importance.L1 else 2, round_to=cfg.round_to,
                              frozen=(*cfg.exclude, *fixed, *shape), keep_width=locked,
                              ratios=cfg.overridden(weight_layers(module)) if cfg.per_layer else None)
        if not meta["pruned_layers"]:
            raise WorkbenchError(
                f"{handle.name}: channel pruning found no channel it may remove"
                + (f" (the widths of {', '.join(locked)} are fixed by constant shapes later in the graph)"
                   if locked else "") + "; use structure='unstructured' or '2:4', or exclude fewer layers.")
        meta["shape_locked"] = list(locked)
    else:
        layers = {n: m for n, m in weight_layers(module).items() if not covered(n, (*cfg.exclude, *fixed))}
        if not layers:
            raise WorkbenchError(f"{handle.name}: no Conv/Linear weight to prune"
                                 + (" outside the excluded layers" if cfg.exclude else "") + ".")
        if cfg.structure is Structure.N_M:
            meta = zero_two_of_four(layers)
        else:
            meta = zero_smallest(layers, cfg.ratio, per_layer=cfg.scope is Scope.LAYER,
                                 ratios=cfg.overridden(layers) if cfg.per_layer else None)
    meta["prune_protected"] = [p for p in (*fixed, *shape) if p not in cfg.exclude]
    return torch_variant(handle, module, cfg, meta=meta)


def _check_per_layer(handle: ModelHandle, cfg: Prune, layers: list[str]) -> None:
    """Refuse a `per_layer` name that covers no Conv/Linear layer (a BatchNorm, an activation): no ratio of it
    would apply."""
    idle = [n for n in cfg.per_layer_ratios if not any(covered(layer, (n,)) for layer in layers)]
    if idle:
        raise WorkbenchError(f"Prune: per_layer names {', '.join(map(repr, idle))} of {handle.name}, which hold no "
                             f"Conv/Linear weight, so no ratio of theirs can apply. Name the layers to prune (e.g. "
                             f"{', '.join(layers[:3])}) or a module that contains them.")


@technique(Prune, "onnx")
def _prune_onnx(handle: ModelHandle, cfg: Prune, task: Any = None) -> ModelHandle:
    if cfg.structure is Structure.LAYER:
        raise WorkbenchError(f"{handle.name}: structure='layer' drops decoder layers of a language model; this "
                             "ONNX model is not one. Use 'channel', 'unstructured' or '2:4'.")
    if cfg.structure is Structure.CHANNEL:  # layers shrink: through an nn.Module, back to ONNX
        return bridged(handle, cfg, task)
    return prune_onnx_model(handle, cfg, ratio=cfg.ratio, per_layer=cfg.scope is Scope.LAYER,
                            two_four=cfg.structure is Structure.N_M, exclude=cfg.exclude, overrides=cfg.per_layer)
