"""What a quantised variant records: `LayerQuant` per layer, `QuantRecord` for the model, one owner of the format.

Compression writes its quantisation facts into ``handle.meta["quant"]`` as plain JSON (the handle's `meta` is
JSON-friendly, and its exact text is part of cache keys). Everything else reads them through `quant_record`,
never through dict keys:

    >>> q8 = workbench.compress(task.model, workbench.Quantize(8))
    >>> record = quant_record(q8)
    >>> record.for_layer("classifier").bits, record.weight_bits("classifier"), record.is_fp16
    (8, 8, False)
    >>> QuantRecord.from_dict(q8.meta["quant"]).to_dict() == q8.meta["quant"]
    True

The stored shape (kept byte for byte): ``{layer: {"bits", "granularity", "group_size", "symmetric", ...}}`` with
optional ``type`` / ``param`` (PyTorch: the module type and the parameter that holds the weight), ``op`` /
``initializer`` / ``axis`` (ONNX) and ``activations`` (8: int8 inputs); the key ``"*"`` is the whole model
(``{"*": {"dtype": "fp16"}}``, or a TFLite recipe's settings). Reading also accepts the hand-written forms the
estimators always took: ``act_bits`` / ``activation_bits`` for ``activations``, a bare number of bits per layer,
and a flat ``{"bits": b}`` / ``{"dtype": d}`` for the whole model; unknown keys are ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

META_KEY = "quant"
"""The `ModelHandle.meta` key that holds the record's `to_dict()`."""
WHOLE_MODEL = "*"
"""The stored key of the whole-model entry."""
GRANULARITIES = ("channel", "tensor", "group")
DTYPE_BITS = {"fp32": 32, "float32": 32, "fp16": 16, "float16": 16, "bf16": 16, "bfloat16": 16,
              "int8": 8, "uint8": 8, "int4": 4, "uint4": 4}
"""Storage bits of a dtype name (an entry that records a dtype instead of bits)."""

_ACT_KEYS = ("activations", "act_bits", "activation_bits")  # the first is the one written
# Stored key -> field, in the order every writer has always emitted them (each writer uses a subsequence).
_FIELDS = (("dtype", "dtype"), ("bits", "bits"), ("granularity", "granularity"), ("group_size", "group_size"),
           ("symmetric", "symmetric"), ("type", "module_type"), ("param", "param"), ("op", "op"),
           ("initializer", "initializer"), ("axis", "axis"))
_WEIGHT_FIELDS = ("bits", "granularity", "group_size", "symmetric")  # stored together whenever bits are


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _parse_bits(what: str, v: Any) -> int | None:
    """An int bit-width from an int, an integral float, ``"8"`` or ``"int8"``; `None` stays `None`."""
    if v is None or _is_int(v):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        digits = v.lower().removeprefix("u").removeprefix("int")
        if digits.isdigit():
            return int(digits)
    raise ValueError(f"{what} must be a number of bits such as 8 (or 'int8'), got {v!r}")


@dataclass(frozen=True)
class LayerQuant:
    """How one layer (or the whole model) was quantised.

    Attributes:
        bits: weight bit-width (`None`: not integer-quantised, e.g. an fp16 entry).
        granularity: ``"channel"``, ``"tensor"`` or ``"group"`` (stored with `bits`).
        group_size: weights per scale for ``"group"``.
        symmetric: symmetric (zero point 0) or asymmetric weights.
        act_bits: activation bits (8: int8 inputs) or `None` (float activations).
        dtype: a float dtype the weights were rounded through (``"fp16"``), instead of bits.
        param: PyTorch: the parameter holding the weight (``"<layer>.layer.weight"`` once an activation
            quantiser wraps the layer).
        module_type: PyTorch: the layer's class name (stored as ``type``).
        op / initializer / axis: ONNX: the consuming op, the weight initializer and its output-channel axis.
        states_activations: whether the stored entry names its activations even when they are float
            (``"activations": None``, as a TFLite recipe's whole-model entry does); set whenever `act_bits` is.
    """

    bits: int | None = None
    granularity: str | None = None
    group_size: int | None = None
    symmetric: bool | None = None
    act_bits: int | None = None
    dtype: str | None = None
    param: str | None = None
    module_type: str | None = None
    op: str | None = None
    initializer: str | None = None
    axis: int | None = None
    states_activations: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "bits", _parse_bits("bits", self.bits))
        object.__setattr__(self, "act_bits", _parse_bits("act_bits", self.act_bits))
        if self.bits is not None and self.bits < 1 or self.act_bits is not None and self.act_bits < 1:
            raise ValueError(f"bits and act_bits must be positive, got {self.bits!r} and {self.act_bits!r}")
        if self.granularity is not None and self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES} or None, got {self.granularity!r}")
        if self.group_size is not None and (not _is_int(self.group_size) or self.group_size < 1):
            raise ValueError(f"group_size must be a positive int or None, got {self.group_size!r}")
        if self.symmetric is not None and not isinstance(self.symmetric, bool):
            raise ValueError(f"symmetric must be True, False or None, got {self.symmetric!r}")
        if self.axis is not None and not _is_int(self.axis):
            raise ValueError(f"axis must be an int or None, got {self.axis!r}")
        for name in ("dtype", "param", "module_type", "op", "initializer"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string or None, got {getattr(self, name)!r}")
        if self.act_bits is not None:
            object.__setattr__(self, "states_activations", True)

    @classmethod
    def from_dict(cls, entry: Any) -> LayerQuant:
        """One stored entry (a dict, or a bare number of bits; anything else says nothing)."""
        if isinstance(entry, (int, float)) and not isinstance(entry, bool):
            return cls(bits=entry)
        if not isinstance(entry, Mapping):
            return cls()
        kwargs = {field: entry[key] for key, field in _FIELDS if key in entry}
        acts = [k for k in _ACT_KEYS if k in entry]
        if acts:
            kwargs.update(act_bits=entry[acts[0]], states_activations=True)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The stored entry: exactly the JSON the workbench has always written for it."""
        out: dict[str, Any] = {}
        for key, field in _FIELDS:
            value = getattr(self, field)
            if value is not None or (key in _WEIGHT_FIELDS and self.bits is not None):
                out[key] = value
        if self.states_activations:
            out[_ACT_KEYS[0]] = self.act_bits
        return out

    @property
    def storage_bits(self) -> int | None:
        """Storage bits per weight: `bits`, else those of `dtype`; `None` when the entry says neither."""
        if self.bits is not None:
            return self.bits
        return DTYPE_BITS.get(str(self.dtype or "").lower())

    @property
    def quantises_activations(self) -> bool:
        return bool(self.act_bits)

    @property
    def setting(self) -> tuple[int | None, str | None, int | None, bool | None]:
        """``(bits, granularity, group_size, symmetric)``: what a weight quantiser needs."""
        return self.bits, self.granularity, self.group_size, self.symmetric

    def weights_only(self) -> LayerQuant:
        """Only the weight setting (`setting`), as a recipe handed to a quantiser."""
        return LayerQuant(*self.setting)


@dataclass(frozen=True)
class QuantRecord:
    """A model's quantisation: per-layer entries (in the order they were recorded) and a whole-model entry.

    Attributes:
        layers: ``((layer name, LayerQuant), ...)``; a mapping is accepted too.
        whole_model: applies to every layer (fp16 rounding, a TFLite recipe), or `None`.
    """

    layers: tuple[tuple[str, LayerQuant], ...] = ()
    whole_model: LayerQuant | None = None

    def __post_init__(self) -> None:
        pairs = tuple(self.layers.items() if isinstance(self.layers, Mapping) else self.layers)
        names = [name for name, _ in pairs]
        if not all(isinstance(n, str) and n and n != WHOLE_MODEL for n in names) or len(set(names)) != len(names):
            raise ValueError(f"layer names must be distinct non-empty strings other than {WHOLE_MODEL!r}: {names}")
        if not all(isinstance(e, LayerQuant) for _, e in pairs):
            raise ValueError("every layer entry must be a LayerQuant")
        if self.whole_model is not None and not isinstance(self.whole_model, LayerQuant):
            raise ValueError(f"whole_model must be a LayerQuant or None, got {self.whole_model!r}")
        object.__setattr__(self, "layers", pairs)

    @classmethod
    def from_dict(cls, stored: Any) -> QuantRecord:
        """Read ``meta["quant"]`` (`None`, or anything but a non-empty dict, is an empty record)."""
        if not isinstance(stored, Mapping) or not stored:
            return cls()
        if "bits" in stored or "dtype" in stored:  # a flat hand-written entry: the whole model
            return cls(whole_model=LayerQuant.from_dict(stored))
        whole = LayerQuant.from_dict(stored[WHOLE_MODEL]) if WHOLE_MODEL in stored else None
        return cls(tuple((str(k), LayerQuant.from_dict(v)) for k, v in stored.items() if k != WHOLE_MODEL), whole)

    def to_dict(self) -> dict[str, Any]:
        """``meta["quant"]`` as stored (``"*"`` first, then the layers in order)."""
        out = {WHOLE_MODEL: self.whole_model.to_dict()} if self.whole_model is not None else {}
        out.update((name, entry.to_dict()) for name, entry in self.layers)
        return out

    def __bool__(self) -> bool:
        return self.whole_model is not None or bool(self.layers)

    # ------------------------------------------------------------------------------------------ reading

    @property
    def layer_entries(self) -> dict[str, LayerQuant]:
        """``{layer: LayerQuant}`` in recorded order (the whole-model entry not included)."""
        return dict(self.layers)

    @property
    def integer_layers(self) -> dict[str, LayerQuant]:
        """The layer entries with integer weights (`bits` set)."""
        return {name: e for name, e in self.layers if e.bits is not None}

    def entries(self) -> list[LayerQuant]:
        """Every entry: the whole-model one (if any) first, then the layers."""
        return ([self.whole_model] if self.whole_model is not None else []) + [e for _, e in self.layers]

    def for_layer(self, name: str) -> LayerQuant | None:
        """The entry of layer `name`; a layer an activation quantiser wrapped exports as ``<layer>.layer`` and
        finds its layer's entry."""
        entries = self.layer_entries
        return entries.get(name, entries.get(name.removesuffix(".layer")))

    def by_leaf(self) -> dict[str, LayerQuant]:
        """Layer entries keyed by the leaf module that holds each weight (`param` without ``.weight``)."""
        out = {}
        for name, e in self.layers:
            leaf = e.param[: -len(".weight")] if e.param and e.param.endswith(".weight") else name
            out[leaf] = e
        return out

    def weight_bits(self, leaf: str) -> int | None:
        """Storage bits per weight of the leaf module `leaf`: its own entry's, else the whole model's, else
        `None` (the parameter's own dtype)."""
        own = self.by_leaf().get(leaf)
        if own is not None and own.storage_bits is not None:
            return own.storage_bits
        return self.whole_model.storage_bits if self.whole_model is not None else None

    @property
    def is_fp16(self) -> bool:
        """The whole model was rounded through float16."""
        return self.whole_model is not None and self.whole_model.dtype == "fp16"

    @property
    def bit_widths(self) -> set[int]:
        """Every weight bit-width recorded (whole model included)."""
        return {e.bits for e in self.entries() if e.bits is not None}

    @property
    def quantises_activations(self) -> bool:
        """Some entry has int activations."""
        return any(e.quantises_activations for e in self.entries())

    # ------------------------------------------------------------------------------------------ writing

    def with_layer(self, name: str, entry: LayerQuant) -> QuantRecord:
        """A copy with `name`'s entry set (a recorded layer keeps its place; a new one goes last)."""
        entries = self.layer_entries
        entries[name] = entry
        return dataclasses.replace(self, layers=tuple(entries.items()))

    def without(self, drop: Callable[[str], bool]) -> QuantRecord:
        """A copy without the layers for which ``drop(name)`` is true (e.g. layers replaced by float ones)."""
        return dataclasses.replace(self, layers=tuple((n, e) for n, e in self.layers if not drop(n)))

    @classmethod
    def of_layers(cls, entries: Iterable[tuple[str, LayerQuant]] | Mapping[str, LayerQuant]) -> QuantRecord:
        """A record of per-layer entries only."""
        return cls(tuple(entries.items()) if isinstance(entries, Mapping) else tuple(entries))


FP16 = QuantRecord(whole_model=LayerQuant(dtype="fp16"))
"""The record of a model rounded through float16 (``{"*": {"dtype": "fp16"}}``)."""


def quant_record(handle: Any) -> QuantRecord:
    """The `QuantRecord` of a handle (empty when its compression quantised nothing)."""
    meta = getattr(handle, "meta", None)
    return QuantRecord.from_dict(meta.get(META_KEY) if isinstance(meta, dict) else None)


def quant_meta(record: QuantRecord) -> dict[str, Any]:
    """The `meta` update that stores `record` on a variant: ``{"quant": record.to_dict()}``."""
    return {META_KEY: record.to_dict()}


def quant_cache_key(handle: Any) -> str:
    """The stored record's exact text, for in-memory caches keyed by what a variant's quantisation says."""
    meta = getattr(handle, "meta", None)
    return repr(meta.get(META_KEY)) if isinstance(meta, dict) else ""
