"""Sweep grids: which variants to build (low-rank × prune ratio × structure × bits × recovery) and where to measure
them.

A `Grid` is a frozen, validated description; `Grid.variants` expands it into `VariantSpec`s and
`Grid.dropped` lists the combinations that make no sense, each with the reason. A grid (plus the task name)
round-trips through YAML, so a sweep can be rerun headless with `workbench sweep SPEC.yaml`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import product
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

STRUCTURES = ("unstructured", "channel", "2:4", "layer")  # layer: whole decoder layers (language models)
METHODS = ("rtn", "hqq")
BITS = (32, 16, 8, 7, 6, 5, 4, 3, 2)
DEFAULT_PRUNE = (0.0, 0.25, 0.5, 0.75)
DEFAULT_STRUCTURES = ("unstructured", "channel")
DEFAULT_BITS = (32, 16, 8, 4, 2)
SCOPES = ("layer", "global")
ORDERS = ("prune-first", "quantize-first")
LOWRANK_FORMS = "None, a rank ratio in (0, 1] (SVD), 'svd-0.5', 'tucker-0.5', 'cp-0.25' or {'ratio': 0.5, 'method': 'tucker'}"


def lowrank_choice(value: Any) -> str | None:
    """One value of the ``lowrank`` axis in its canonical form, ``"<method>-<ratio>"`` or None (no factorisation).

    Accepts None, a ratio (SVD), ``"tucker-0.5"`` (also ``"svd-0.5"``, ``"cp-0.25"``, a `LowRank` label such as
    ``"lowrank-tucker-0.50"``) and ``{"ratio": 0.5, "method": "tucker"}``; validated as `workbench.LowRank` is.

    Example:
        >>> lowrank_choice(0.5), lowrank_choice("tucker-0.50"), lowrank_choice({"ratio": 0.25, "method": "cp"})
        ('svd-0.5', 'tucker-0.5', 'cp-0.25')
    """
    from workbench.compression.lowrank import LowRank

    if value is None:
        return None
    ratio: Any
    method: Any = "svd"
    if isinstance(value, Mapping):
        extra = sorted(set(value) - {"ratio", "method"})
        if "ratio" not in value or extra:
            raise ValueError(f"grid: a lowrank mapping has 'ratio' and optionally 'method', got {dict(value)!r}")
        ratio, method = value["ratio"], value.get("method", "svd")
    elif isinstance(value, str):
        text = value.strip().removeprefix("lowrank-")
        method, _, number = text.rpartition("-")
        try:
            ratio = float(number)
        except ValueError:
            raise ValueError(f"grid: lowrank values are {LOWRANK_FORMS}; got {value!r}") from None
        method = method or "svd"
    else:
        ratio = value
    try:
        cfg = LowRank(ratio, method=method)
    except ValueError as e:
        raise ValueError(f"grid: lowrank {value!r}: {str(e).removeprefix('LowRank: ')} (forms: {LOWRANK_FORMS})") \
            from None
    return f"{cfg.method}-{cfg.rank_ratio:g}"


def lowrank_config(choice: str) -> Any:
    """The `workbench.LowRank` config of a canonical ``lowrank`` axis value (``"tucker-0.5"``)."""
    from workbench.compression.lowrank import LowRank

    method, _, ratio = choice.rpartition("-")
    return LowRank(float(ratio), method=method)


@dataclass(frozen=True, order=True)
class VariantSpec:
    """One point of a grid: how to build a variant from the task's original model.

    Attributes:
        prune: fraction pruned (0 = none).
        structure: ``"unstructured"``, ``"channel"``, ``"2:4"``, or ``None`` when nothing is pruned.
        bits: 32 (float), 16 (fp16) or 2..8 (weight bits).
        recover: fine-tuning steps after pruning (`workbench.Recover`), or ``None``.
        scope: the pruning scope, ``"layer"`` or ``"global"`` (`workbench.Prune`'s `scope`); the grid's
            `scope`, a setting of the whole sweep, so it is not part of `to_dict` (nor of the store keys).
        group_size: weights per quantisation group (``None``: one scale per output channel).
        symmetric: symmetric weights (zero point 0) or asymmetric (min/max with a zero point).
        method: ``"rtn"`` (round to nearest) or ``"hqq"`` (half-quadratic: zero points and scales fitted to
            the weights). `group_size`, `symmetric` and `method` enter `to_dict` (and the store key) only when
            they differ from the defaults, so stores written before they existed keep their keys.
        layer_bits: per-layer weight bits, ``(("blocks.0.pw.conv", 4), ...)`` (`Quantize`'s `per_layer`; 32: that
            layer stays float); other layers get `bits`. A search point (`workbench.Space`), never a grid's.
        layer_prune: per-layer pruning ratios (`Prune`'s `per_layer`; 0: that layer is left whole).
        order: ``"prune-first"`` (prune, recover, then quantise) or ``"quantize-first"`` (quantise, then prune
            and recover the quantised model). These three, too, enter `to_dict` only when set.
        lowrank: ``None`` or ``"<method>-<ratio>"`` (`lowrank_choice`): `workbench.LowRank` factorisation, applied
            first (before pruning; recovery then heals both); in `to_dict` only when set.
    """

    prune: float = 0.0
    structure: str | None = None
    bits: int = 32
    recover: int | None = None
    scope: str = "layer"
    group_size: int | None = None
    symmetric: bool = True
    method: str = "rtn"
    layer_bits: tuple[tuple[str, int], ...] = ()
    layer_prune: tuple[tuple[str, float], ...] = ()
    order: str = "prune-first"
    lowrank: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lowrank", lowrank_choice(self.lowrank))
        if self.scope not in SCOPES:
            raise ValueError(f"VariantSpec: scope must be 'layer' or 'global', got {self.scope!r}")
        if self.order not in ORDERS:
            raise ValueError(f"VariantSpec: order must be one of {ORDERS}, got {self.order!r}")
        object.__setattr__(self, "layer_bits", tuple(sorted((str(n), int(b))
                                                            for n, b in dict(self.layer_bits).items())))
        if self.bits >= 16 and any(b < 16 for _, b in self.layer_bits):
            raise ValueError("VariantSpec: layer_bits gives integer bits to some layers, so `bits` (for the layers "
                             f"not named) must be 2..8 too, not {self.bits}; name a layer with 32 to keep it float")
        object.__setattr__(self, "layer_prune", tuple(sorted((str(n), float(r))
                                                             for n, r in dict(self.layer_prune).items())))

    def __repr__(self) -> str:  # the quantisation-grid fields only where they differ from the defaults
        extra = "".join(f", {k}={v!r}" for k, v, d in (("group_size", self.group_size, None),
                                                        ("symmetric", self.symmetric, True),
                                                        ("method", self.method, "rtn"),
                                                        ("layer_bits", self.layer_bits, ()),
                                                        ("layer_prune", self.layer_prune, ()),
                                                        ("order", self.order, "prune-first"),
                                                        ("lowrank", self.lowrank, None)) if v != d)
        return (f"VariantSpec(prune={self.prune!r}, structure={self.structure!r}, bits={self.bits!r}, "
                f"recover={self.recover!r}, scope={self.scope!r}{extra})")

    @property
    def is_baseline(self) -> bool:
        return (self.prune == 0 and self.bits == 32 and not self.layer_bits and not self.layer_prune
                and self.lowrank is None)

    @property
    def quantized(self) -> bool:
        """Whether this point quantises weights to integers (its `bits`, or any layer's)."""
        return self.bits < 16 or any(b < 16 for _, b in self.layer_bits)

    @property
    def label(self) -> str:
        """``baseline``, ``channel-0.50+r200+q8``, ``fp16``, ``lowrank-tucker-0.50+r100``, ..."""
        parts = [lowrank_config(self.lowrank).label] if self.lowrank else []
        if self.prune or self.layer_prune:
            head = "2:4" if self.structure == "2:4" else f"{self.structure}-{self.prune:.2f}"
            parts.append(head + (f"-m{_digest(self.layer_prune)}" if self.layer_prune else ""))
        if self.recover:
            parts.append(f"r{self.recover}")
        if self.bits == 16 and not self.layer_bits:
            parts.append("fp16")
        elif self.quantized:
            q = self.quantize().label
            parts = [q, *parts] if self.order == "quantize-first" else [*parts, q]
        return "+".join(parts) or "baseline"

    def quantize(self) -> Any:
        """The `Quantize` config of an integer bit-width (with this point's group size, symmetry and method)."""
        from workbench.compression import Quantize

        extra: dict[str, Any] = {}
        if self.layer_bits:
            extra["per_layer"] = {n: b for n, b in self.layer_bits if b < 16}
            extra["exclude"] = [n for n, b in self.layer_bits if b >= 16]
        if self.group_size is not None:
            extra.update(granularity="group", group_size=self.group_size)
        if not self.symmetric:
            extra["symmetric"] = False
        if self.method != "rtn":
            extra["method"] = self.method
        return Quantize(self.bits, **extra)

    def configs(self, *, scope: str | None = None) -> list[Any]:
        """The compression configs that build this variant: LowRank, Prune (with `scope`, default this spec's),
        then Recover (after either), then Quantize."""
        from workbench.compression import Prune, Quantize, Recover

        scope = self.scope if scope is None else scope
        out: list[Any] = [lowrank_config(self.lowrank)] if self.lowrank else []
        if self.prune or self.layer_prune:
            extra = {"per_layer": self.layer_prune} if self.layer_prune else {}
            out.append(Prune(self.prune, structure=self.structure, scope=scope, **extra))
        if out and self.recover:
            out.append(Recover(steps=self.recover))
        if self.bits == 16 and not self.layer_bits:
            out.append(Quantize(dtype="fp16"))
        elif self.quantized:
            q = self.quantize()
            out = [q, *out] if self.order == "quantize-first" else [*out, q]
        return out

    def to_dict(self) -> dict[str, Any]:
        """The grid point as stored in a results row and hashed into its key (`scope` is not part of it)."""
        d = {"prune": self.prune, "structure": self.structure, "bits": self.bits, "recover": self.recover}
        for name, default in (("group_size", None), ("symmetric", True), ("method", "rtn")):
            if getattr(self, name) != default:
                d[name] = getattr(self, name)
        for name in ("layer_bits", "layer_prune"):  # JSON text: one column value, stable in parquet and in keys
            if getattr(self, name):
                d[name] = json.dumps(dict(getattr(self, name)), sort_keys=True)
        if self.order != "prune-first":
            d["order"] = self.order
        if self.lowrank is not None:
            d["lowrank"] = self.lowrank
        return d


def _digest(pairs: tuple[tuple[str, Any], ...]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:6]


def _numbers(name: str, values: Any, ok, what: str) -> tuple:
    seq = [values] if isinstance(values, (int, float, str)) or values is None else list(values)
    if not seq:
        raise ValueError(f"grid: {name} must list at least one value ({what})")
    for v in seq:
        if not ok(v):
            raise ValueError(f"grid: {name} values must be {what}; got {v!r}")
    return tuple(dict.fromkeys(seq))  # de-duplicated, order kept


def _ratio(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, Real) and math.isfinite(v) and 0 <= v < 1


def _bits(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, Integral) and int(v) in BITS


def _steps(v: Any) -> bool:
    return v is None or (not isinstance(v, bool) and isinstance(v, Integral) and v >= 1)


def _names(name: str, values: Any) -> tuple[str, ...]:
    seq = [values] if isinstance(values, str) else list(values or [])
    if any(not isinstance(v, str) or not v for v in seq):
        raise ValueError(f"grid: {name} must be names (strings); got {values!r}")
    return tuple(dict.fromkeys(seq))


@dataclass(frozen=True)
class Grid:
    """A sweep grid. Build it with `workbench.grid(...)`; see that function for the arguments."""

    prune: tuple[float, ...] = DEFAULT_PRUNE
    structure: tuple[str, ...] = DEFAULT_STRUCTURES
    bits: tuple[int, ...] = DEFAULT_BITS
    recover: tuple[int | None, ...] = (None,)
    runtimes: tuple[str, ...] = ("onnxruntime",)
    devices: tuple[str, ...] = ()
    threads: int = 1
    limit: int | None = None
    scope: str = "layer"
    group_size: tuple[int | None, ...] = (None,)
    symmetric: tuple[bool, ...] = (True,)
    method: tuple[str, ...] = ("rtn",)
    lowrank: tuple[str | None, ...] = (None,)
    _variants: tuple[VariantSpec, ...] = field(default=(), init=False, repr=False, compare=False)
    _dropped: tuple[tuple[VariantSpec, str], ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from workbench.runtimes import RUNTIMES, resolve_runtimes

        object.__setattr__(self, "prune", tuple(float(v) for v in _numbers(
            "prune", self.prune, _ratio, "fractions in [0, 1)")))
        object.__setattr__(self, "structure", _numbers(
            "structure", self.structure, lambda v: v in STRUCTURES, f"one of {STRUCTURES}"))
        object.__setattr__(self, "bits", tuple(int(v) for v in _numbers(
            "bits", self.bits, _bits, "32 (float), 16 (fp16) or 2..8 (integer weight bits)")))
        object.__setattr__(self, "recover", _numbers(
            "recover", self.recover, _steps, "None or a positive number of fine-tuning steps"))
        runtimes = _names("runtimes", self.runtimes)
        if "all" in runtimes:  # every runtime installed here, in registry order
            runtimes = resolve_runtimes(runtimes)
        unknown = [r for r in runtimes if r not in RUNTIMES]
        if not runtimes or unknown:
            raise ValueError(f"grid: runtimes must be some of {', '.join(RUNTIMES)} or 'all'; got {list(self.runtimes)}")
        object.__setattr__(self, "runtimes", runtimes)
        object.__setattr__(self, "devices", _names("devices", self.devices))
        if isinstance(self.threads, bool) or not isinstance(self.threads, Integral) or self.threads < 1:
            raise ValueError(f"grid: threads must be a positive integer, got {self.threads!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, Integral)
                                       or self.limit < 1):
            raise ValueError(f"grid: limit must be None (whole evaluation split) or >= 1, got {self.limit!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"grid: scope must be 'layer' or 'global', got {self.scope!r}")
        object.__setattr__(self, "group_size", _numbers(
            "group_size", self.group_size, lambda v: v is None or (not isinstance(v, bool) and isinstance(v, Integral)
                                                                   and v >= 8), "None (per channel) or >= 8"))
        object.__setattr__(self, "symmetric", _numbers(
            "symmetric", [self.symmetric] if isinstance(self.symmetric, bool) else self.symmetric,
            lambda v: isinstance(v, bool), "True or False"))
        object.__setattr__(self, "method", _numbers("method", self.method, lambda v: v in METHODS, f"one of {METHODS}"))
        object.__setattr__(self, "lowrank", lowrank_axis("grid", self.lowrank))
        kept, dropped = _expand(self)
        object.__setattr__(self, "_variants", tuple(kept))
        object.__setattr__(self, "_dropped", tuple(dropped))

    @property
    def variants(self) -> list[VariantSpec]:
        """The variants to build, the baseline (no pruning, 32 bits) always first."""
        return list(self._variants)

    @property
    def dropped(self) -> list[tuple[VariantSpec, str]]:
        """Combinations left out, each with the reason."""
        return list(self._dropped)

    def __iter__(self) -> Iterator[VariantSpec]:
        return iter(self._variants)

    def __len__(self) -> int:
        return len(self._variants)

    def to_dict(self) -> dict[str, Any]:
        d = {"prune": list(self.prune), "structure": list(self.structure), "bits": list(self.bits),
             "recover": list(self.recover), "runtimes": list(self.runtimes), "devices": list(self.devices),
             "threads": self.threads, "limit": self.limit, "scope": self.scope}
        for name, default in (("group_size", (None,)), ("symmetric", (True,)), ("method", ("rtn",)),
                              ("lowrank", (None,))):
            if getattr(self, name) != default:
                d[name] = list(getattr(self, name))
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def save(self, path: str | Path, *, task: str | None = None) -> Path:
        """Write the grid (and the task name, for `workbench sweep SPEC.yaml`) as YAML."""
        import yaml

        from workbench.core.paths import atomic_write

        doc = {"task": task, **self.to_dict()} if task else self.to_dict()
        text = yaml.safe_dump(doc, sort_keys=False)
        return atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def grid(
    prune: Sequence[float] | float = DEFAULT_PRUNE,
    structure: Sequence[str] | str = DEFAULT_STRUCTURES,
    bits: Sequence[int] | int = DEFAULT_BITS,
    recover: Sequence[int | None] | int | None = None,
    runtimes: Sequence[str] | str = ("onnxruntime",),
    devices: Sequence[str] | str = (),
    *,
    threads: int = 1,
    limit: int | None = None,
    scope: str = "layer",
    group_size: Sequence[int | None] | int | None = None,
    symmetric: Sequence[bool] | bool = True,
    method: Sequence[str] | str = "rtn",
    lowrank: Sequence[Any] | Any = None,
) -> Grid:
    """The variants of a sweep: every prune ratio × structure × bit-width (× recovery), and where to measure.

    Args:
        prune: fractions to prune, in [0, 1).
        structure: ``"unstructured"`` (zeros; smaller zipped file, no speed-up on dense kernels),
            ``"channel"`` (smaller layers; real speed-up) and/or ``"2:4"`` (exactly 50 %).
        bits: 32 (the float model), 16 (fp16), 2..8 (weight bits; realised as int8/int4 where the runtime can).
        recover: fine-tuning steps after pruning (`workbench.Recover(steps=...)`); ``None`` for none. A list
            sweeps both, e.g. ``[None, 200]``.
        runtimes: where to measure (``"onnxruntime"``, ``"litert"``, ``"torch"``, ``"openvino"``, ``"executorch"``),
            or ``"all"``: every runtime installed here.
        devices: device profile names to estimate latency / energy / fit for (`workbench.devices()`).
        threads: intra-op threads while timing (1: comparable, and typical of small devices).
        limit: evaluate on the first `limit` samples only (quick looks); ``None`` for the whole split.
        scope: channel pruning scope, ``"layer"`` (even widths, which the runtimes' kernels favour) or
            ``"global"``.
        group_size: weights per quantisation group, e.g. ``[32, 64, 128]`` (``None``: per output channel).
        symmetric: ``True``, ``False`` or both (``[True, False]``): symmetric or asymmetric weight grids.
        method: ``"rtn"`` and/or ``"hqq"`` (see `workbench.Quantize`).
        lowrank: low-rank factorisation applied before pruning (`workbench.LowRank`), one value or a list:
            ``None`` (none), a rank ratio in (0, 1] (truncated SVD of Linear and 1x1 layers), or the method
            and ratio as ``"tucker-0.5"`` / ``"cp-0.25"`` / ``"svd-0.5"`` (also ``{"ratio": 0.5, "method":
            "tucker"}``). Values are stored as ``"<method>-<ratio>"`` (the YAML spec and the ``lowrank`` column
            of the results); labels read ``lowrank-tucker-0.50``. `recover` then fine-tunes factorised variants
            too, e.g. ``lowrank=[None, "svd-0.25", "tucker-0.25", "cp-0.25"], recover=[100]``.

    Returns:
        A `Grid`; `grid.variants` lists what will be built and `grid.dropped` what was left out and why.

    Example:
        >>> g = workbench.grid(prune=[0, 0.5], structure=["channel", "2:4"], bits=[32, 8])
        >>> [v.label for v in g]
        ['baseline', 'q8', 'channel-0.50', 'channel-0.50+q8', '2:4', '2:4+q8']
        >>> g.dropped[0][1]
        'prune 0 has no structure: same variant as the unpruned one'
        >>> [v.label for v in workbench.grid(prune=0, bits=32, lowrank=[None, 0.25, "tucker-0.25"], recover=20)]
        ['baseline', 'lowrank-0.25+r20', 'lowrank-tucker-0.25+r20']
    """
    return Grid(prune=prune, structure=structure, bits=bits, recover=recover, runtimes=runtimes,
                devices=devices, threads=threads, limit=limit, scope=scope,
                group_size=(group_size,) if group_size is None or isinstance(group_size, int) else group_size,
                symmetric=symmetric, method=method, lowrank=lowrank)


def lowrank_axis(owner: str, values: Any) -> tuple[str | None, ...]:
    """The ``lowrank`` axis (one value or a list, see `grid`) as de-duplicated canonical choices."""
    seq = [values] if values is None or isinstance(values, (str, Real, Mapping)) else list(values)
    if not seq:
        raise ValueError(f"{owner}: lowrank must list at least one value ({LOWRANK_FORMS})")
    try:
        return tuple(dict.fromkeys(lowrank_choice(v) for v in seq))
    except ValueError as e:
        raise ValueError(str(e).replace("grid:", f"{owner}:", 1)) from None


def _expand(g: Grid) -> tuple[list[VariantSpec], list[tuple[VariantSpec, str]]]:
    kept: dict[VariantSpec, None] = {}
    dropped: list[tuple[VariantSpec, str]] = []
    for lowrank, prune, structure, bits, recover, group, sym, method in product(
            g.lowrank, g.prune, g.structure, g.bits, g.recover, g.group_size, g.symmetric, g.method):
        if bits >= 16:  # float: no grid to choose; one variant per float width
            group, sym, method = None, True, "rtn"
        spec = VariantSpec(prune, structure, bits, recover, g.scope, group, sym, method, lowrank=lowrank)
        if prune == 0:
            # Unpruned variants have no structure, and nothing to recover unless factorised: one per bit-width,
            # kept even when every recover value asks for fine-tuning (the unpruned q8 belongs on the chart).
            canonical = VariantSpec(0.0, None, bits, recover if lowrank else None, g.scope, group, sym, method,
                                    lowrank=lowrank)
            if canonical in kept:
                reason = ("nothing pruned, so nothing to recover" if recover and not lowrank
                          else "prune 0 has no structure: same variant as the unpruned one")
                dropped.append((spec, reason))
                continue
            spec = canonical
        elif structure == "2:4" and prune != 0.5:
            dropped.append((spec, "2:4 sparsity removes exactly half: only prune 0.5 applies"))
            continue
        if spec in kept:
            continue  # a float width met again through the quantisation-only axes
        kept[spec] = None
    baseline = VariantSpec(scope=g.scope)
    ordered = [baseline] + [s for s in kept if s != baseline]
    return ordered, dropped


def load_spec(path: str | Path) -> tuple[str | None, Grid]:
    """Read a sweep spec written by `Grid.save` (or by hand): ``(task name or None, Grid)``."""
    from workbench.core.errors import WorkbenchError
    from workbench.core.paths import read_yaml_mapping

    p = Path(path)
    doc = read_yaml_mapping(p, "sweep spec", "grid fields (prune, bits, ...)")
    task = doc.pop("task", None)
    allowed = set(Grid.__dataclass_fields__) - {"_variants", "_dropped"}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise WorkbenchError(f"sweep spec {p}: unknown field(s) {unknown}; allowed: task, {', '.join(sorted(allowed))}")
    try:
        return task, Grid(**doc)
    except ValueError as e:
        raise WorkbenchError(f"sweep spec {p}: {e}") from None
