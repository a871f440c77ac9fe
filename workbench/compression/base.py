"""The compression spine: config base class, technique registry, and the one verb `compress`.

Every technique is a frozen dataclass (validated in `__post_init__` with `ValueError`) plus one apply function
per model framework, registered with `@technique(ConfigType, "torch")`. `compress` dispatches once, by config
type and framework; each apply function returns a *new* handle and leaves its input intact, so a sweep can
compress one original many times.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any, Callable, ClassVar

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, module_fingerprint
from workbench.core.lm import is_language_model

Apply = Callable[[ModelHandle, Any, Any], ModelHandle]
_APPLY: dict[tuple[type, str], Apply] = {}
_CONFIGS: dict[str, type] = {}


@dataclass(frozen=True)
class CompressionConfig:
    """Base of every technique's config: JSON round-trip and a short stable label."""

    kind: ClassVar[str] = "config"

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "kind" in cls.__dict__:
            _CONFIGS[cls.kind] = cls

    def to_dict(self) -> dict[str, Any]:
        """`{"type": kind, **fields}` with tuples as lists and dicts kept, for JSON/YAML."""
        out: dict[str, Any] = {"type": self.kind}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple):
                v = list(v)
            elif isinstance(v, frozenset):
                v = sorted(v)
            elif hasattr(v, "items"):
                v = dict(v)
            out[f.name] = v
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def label(self) -> str:  # pragma: no cover - every technique overrides
        return self.kind

    @property
    def digest(self) -> str:
        """A short hash of the config (stable across processes)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:12]


def config_from_dict(d: dict[str, Any]) -> CompressionConfig:
    """Rebuild a config from `to_dict()` output (validates again)."""
    d = dict(d)
    kind = d.pop("type", None)
    if kind not in _CONFIGS:
        raise ValueError(f"unknown compression config type {kind!r}; known: {', '.join(sorted(_CONFIGS))}")
    cls = _CONFIGS[kind]
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"{kind}: unknown field(s) {sorted(unknown)}; allowed: {sorted(names)}")
    return cls(**d)


def layer_names(owner: str, value: Any) -> tuple[str, ...]:
    """A config's `exclude`-style argument (one layer name or an iterable of names) as a validated tuple."""
    names = (value,) if isinstance(value, str) else value
    try:
        names = tuple(names)
    except TypeError:
        raise ValueError(f"{owner}: exclude must be a list of layer names, got {value!r}") from None
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{owner}: exclude must hold non-empty layer names (strings), got {value!r}")
    return names


def technique(config_type: type, framework: str) -> Callable[[Apply], Apply]:
    """Register `fn(handle, config, task) -> new handle` for one config type and framework."""

    def register(fn: Apply) -> Apply:
        _APPLY[(config_type, framework)] = fn
        return fn

    return register


def supported_frameworks(config_type: type) -> list[str]:
    return sorted(fw for (ct, fw) in _APPLY if ct is config_type)


def compress(handle: ModelHandle, *configs: CompressionConfig, task: Any = None) -> ModelHandle:
    """Apply compression configs in order and return the new variant; `handle` is left untouched.

    Args:
        handle: the model (a `ModelHandle`, or a `Task` whose model is used).
        *configs: `Prune`, `Quantize`, `Recover`, `LowRank`, ... applied left to right.
        task: the task whose splits some techniques need (calibration for int8 activations, training data
            for `Recover`, the metric for sensitivity).

    Returns:
        A new `ModelHandle` whose `lineage` lists every config applied so far.

    Raises:
        WorkbenchError: a technique that does not apply to this model's format, or bad input for it.

    Example:
        >>> small = workbench.compress(task.model, Prune(0.5, structure="channel"), Recover(steps=200), task=task)
        >>> [c.label for c in small.lineage]
        ['prune-channel-0.50', 'recover-finetune-200']
    """
    if not isinstance(handle, ModelHandle):
        inner = getattr(handle, "model", None)
        if not isinstance(inner, ModelHandle):
            raise WorkbenchError(f"compress() takes a ModelHandle or a Task, got {type(handle).__name__}.")
        task = task if task is not None else handle
        handle = inner
    for cfg in configs:
        if not isinstance(cfg, CompressionConfig):
            raise WorkbenchError(f"compress() takes compression configs (Prune, Quantize, ...), got {cfg!r}.")
        handle = apply_one(handle, cfg, task)
    return handle


# Formats whose layers the torch techniques cannot rewrite in place (a TorchScript graph, an exported program's
# functional graph): every technique reaches them through `module_of` and comes back in their format.
BRIDGED = ("torchscript", "exported_program")


def apply_one(handle: ModelHandle, cfg: CompressionConfig, task: Any) -> ModelHandle:
    """One technique on one model, by the route its format takes; any failure is a `WorkbenchError`.

    In place where a technique has an apply function for the model's framework (ONNX graphs normalised first);
    through an `nn.Module` (`workbench.formats.onnx_module`) for TorchScript and ExportedProgram models, and
    for ONNX models when only the PyTorch technique exists; the variant comes back in the model's format.
    """
    from workbench.formats.normalize import normalized

    if is_language_model(handle):
        return language_model_variant(handle, cfg, task)
    fn = _APPLY.get((type(cfg), handle.framework))
    torch_fn = _APPLY.get((type(cfg), "torch"))
    try:
        if handle.source_format in BRIDGED or (fn is None and torch_fn is not None and handle.framework == "onnx"):
            return bridged(handle, cfg, task)
        if fn is None:
            ok = supported_frameworks(type(cfg))
            raise WorkbenchError(
                f"{type(cfg).__name__} does not apply to {handle.framework} models ({handle.name}); it supports: "
                f"{', '.join(ok) or 'nothing yet'}. Load the PyTorch or ONNX model instead, or pick another "
                "technique."
            )
        source = normalized(handle) if handle.framework == "onnx" else handle
        variant = fn(source, cfg, task)
        if handle.source_format != "module" and variant.meta.get("route") == handle.meta.get("route"):
            steps = [f"onnxslim ({'; '.join(source.meta['normalized'])})"] if source is not handle else []
            variant.meta["route"] = [*handle.meta.get("route", []), *steps, f"{cfg.label}: {handle.source_format} "
                                     "in place"]
        return variant
    except WorkbenchError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug or a library failure inside a technique: say so, never crash
        raise WorkbenchError(
            f"{handle.name}: {cfg.label} failed inside {type(e).__name__}: {first_line(e)}. This model's graph is "
            "probably one the technique does not handle; exclude the layer named above (exclude=[...]) or try "
            "another structure/technique, and report it with the model file if it persists."
        ) from e


LANGUAGE_MODEL = "lm"
"""The registry key (in place of a framework) of techniques for causal language models: their layers are a
decoder stack, not a CNN's, so quantisation, pruning and recovery are their own functions."""


def language_model_variant(handle: ModelHandle, cfg: CompressionConfig, task: Any) -> ModelHandle:
    """`cfg` applied by its language-model technique; a clear error where there is none."""
    fn = _APPLY.get((type(cfg), LANGUAGE_MODEL))
    if fn is None:
        have = sorted(ct.__name__ for (ct, fw) in _APPLY if fw == LANGUAGE_MODEL)
        raise WorkbenchError(f"{type(cfg).__name__} does not apply to language models ({handle.name}) yet; "
                             f"these do: {', '.join(have) or 'none'}.")
    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name} is a {handle.source_format} language model: compress its Hugging Face "
                             "folder or .gguf file (the PyTorch model), then export the variant.")
    try:
        return fn(handle, cfg, task)
    except WorkbenchError:
        raise
    except Exception as e:  # noqa: BLE001 - a library failure inside a technique: say which, never crash
        raise WorkbenchError(f"{handle.name}: {cfg.label} failed inside {type(e).__name__}: {first_line(e)}.") from e


def bridged(handle: ModelHandle, cfg: CompressionConfig, task: Any) -> ModelHandle:
    """`cfg` applied to the `nn.Module` form of `handle` by its PyTorch technique, written back in its format."""
    from workbench.formats.onnx_module import in_format, module_of

    torch_fn = _APPLY.get((type(cfg), "torch"))
    if torch_fn is None:
        raise WorkbenchError(f"{type(cfg).__name__} has no PyTorch technique to apply to {handle.name} "
                             f"({handle.source_format}); it supports: {', '.join(supported_frameworks(type(cfg)))}.")
    module = module_of(handle)
    variant = torch_fn(module, cfg, task)
    return in_format(variant, handle)


def torch_variant(handle: ModelHandle, module: Any, cfg: CompressionConfig, **changes: Any) -> ModelHandle:
    """A new torch handle around a compressed copy of `handle.module`, with the config appended to lineage."""
    from workbench.core.handle import TensorSpec

    lineage = (*handle.lineage, cfg)
    outputs = handle.outputs
    return dataclasses.replace(
        handle,
        module=module.eval(),
        num_params=sum(p.numel() for p in module.parameters()),
        fingerprint=module_fingerprint(module),
        name=f"{base_name(handle)}|{'+'.join(c.label for c in lineage)}",
        path=None,
        source_format="module",
        lineage=lineage,
        origin=handle.origin if handle.origin is not None else handle,
        outputs=[TensorSpec(o.name, o.shape, o.dtype) for o in outputs],
        _artifacts={},
        meta={**handle.meta, **changes.pop("meta", {})},
        **changes,
    )


def base_name(handle: ModelHandle) -> str:
    """The original model's name, without the lineage suffix."""
    return handle.name.split("|", 1)[0]


def copy_module(handle: ModelHandle) -> Any:
    """A deep copy of a torch handle's module, so the original stays intact."""
    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name}: expected a PyTorch model, got {handle.framework}.")
    return copy.deepcopy(handle.module)


def covered(name: str, prefixes: tuple[str, ...] | list[str]) -> bool:
    """Whether layer `name` is one of `prefixes` or inside one of them (``"a.b"`` is inside ``"a"``).

    Example:
        >>> covered("blocks.0.dw.conv", ["blocks.0"]), covered("blocks.01", ["blocks.0"])
        (True, False)
    """
    return any(name == p or name.startswith(p + ".") for p in prefixes)
