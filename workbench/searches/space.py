"""Search spaces: the choices a search may combine, uniform (a grid's axes) and per layer, and how a trial's
choices become one `VariantSpec`.

A `Space` is frozen and validated like a `Grid` (a grid *is* a space: `Space.from_grid`), and it round-trips
through YAML with the search's settings (`Space.save`, `load_search_spec`), so `workbench search SPEC.yaml` runs
it headless. Every dimension is a categorical choice: Optuna's samplers then treat bits, ratios and switches alike,
and a trial's choices are canonicalised (`Space.point`) so that two trials that build the same model share one
store key, measured once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Mapping, Sequence

from workbench.sweeps.spec import BITS, METHODS, ORDERS, SCOPES, STRUCTURES, Grid, VariantSpec, lowrank_axis

SETTINGS = ("runtimes", "devices", "threads", "limit", "scope")
"""Measurement settings a space shares with a grid (not searched: they decide how every point is measured)."""

UNIFORM = ("prune", "structure", "bits", "recover", "group_size", "symmetric", "method", "order", "lowrank")
"""The uniform dimensions, in the order a trial suggests them."""


def _choices(name: str, values: Any, ok: Any, what: str) -> tuple:
    seq = [values] if isinstance(values, (int, float, str, bool)) or values is None else list(values)
    if not seq:
        raise ValueError(f"Space: {name} must list at least one choice ({what})")
    for v in seq:
        if not ok(v):
            raise ValueError(f"Space: {name} choices must be {what}; got {v!r}")
    return tuple(dict.fromkeys(seq))


def _ratio(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, Real) and math.isfinite(v) and 0 <= v < 1


def _bits(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, Integral) and int(v) in BITS


def _per_layer(name: str, value: Any, ok: Any, what: str, cast: Any) -> tuple[tuple[str, tuple], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = [(str(k), v) for k, v in items]
    except (TypeError, ValueError):
        raise ValueError(f"Space: {name} maps layer names to choices, e.g. {{'classifier': [8, 4]}}; "
                         f"got {value!r}") from None
    return tuple(sorted((k, tuple(cast(c) for c in _choices(f"{name}[{k!r}]", v, ok, what))) for k, v in pairs))


@dataclass(frozen=True)
class Space:
    """What a search may choose. Each field lists the choices of one dimension; a single choice is fixed.

    Attributes:
        prune / structure / bits / recover / group_size / symmetric / method: uniform choices, as `workbench.grid`
            takes them (one value for the whole model).
        layer_bits: ``{layer: [bits, ...]}``, per-layer weight bits (32: that layer stays float); a layer with one
            choice is pinned. Layers not named get the uniform `bits`.
        layer_prune: ``{layer: [ratio, ...]}``, per-layer pruning ratios of the chosen `structure` (0: left whole);
            layers not named get the uniform `prune`.
        order: technique order: ``"prune-first"`` (prune, recover, quantise) and/or ``"quantize-first"``.
        lowrank: low-rank factorisation choices, as `workbench.grid` takes them (``None``, ``"svd-0.5"``,
            ``"tucker-0.5"``, ``"cp-0.25"``, ...), applied before pruning; `recover` fine-tunes it too.
        runtimes: where to measure; more than one makes the runtime a dimension too.
        devices / threads / limit / scope: measurement settings, as in `workbench.grid`.

    Example:
        >>> s = workbench.Space(prune=[0, 0.5], structure="channel", bits=[32, 8], layer_bits={"classifier": [8, 4]})
        >>> s.size, s.dimensions()["layer_bits:classifier"]
        (8, (8, 4))
        >>> s.point({"prune": 0.5, "structure": "channel", "bits": 8, "layer_bits:classifier": 4}).label
        'channel-0.50+q-mixed-92f9c7'
    """

    prune: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75)
    structure: tuple[str, ...] = ("unstructured", "channel")
    bits: tuple[int, ...] = (32, 16, 8, 4, 2)
    recover: tuple[int | None, ...] = (None,)
    group_size: tuple[int | None, ...] = (None,)
    symmetric: tuple[bool, ...] = (True,)
    method: tuple[str, ...] = ("rtn",)
    order: tuple[str, ...] = ("prune-first",)
    lowrank: tuple[str | None, ...] = (None,)
    layer_bits: tuple[tuple[str, tuple[int, ...]], ...] = ()
    layer_prune: tuple[tuple[str, tuple[float, ...]], ...] = ()
    runtimes: tuple[str, ...] = ("onnxruntime",)
    devices: tuple[str, ...] = ()
    threads: int = 1
    limit: int | None = None
    scope: str = "layer"
    _grid: Grid = field(default=None, init=False, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "prune", tuple(float(v) for v in _choices("prune", self.prune, _ratio, "fractions in [0, 1)")))
        put(self, "structure", _choices("structure", self.structure, lambda v: v in STRUCTURES[:3],
                                        f"one of {STRUCTURES[:3]}"))
        put(self, "bits", tuple(int(v) for v in _choices("bits", self.bits, _bits, f"one of {BITS}")))
        put(self, "recover", _choices("recover", self.recover, lambda v: v is None or (
            not isinstance(v, bool) and isinstance(v, Integral) and v >= 1), "None or a positive number of steps"))
        put(self, "group_size", _choices("group_size", self.group_size, lambda v: v is None or (
            not isinstance(v, bool) and isinstance(v, Integral) and v >= 8), "None (per channel) or >= 8"))
        put(self, "symmetric", _choices("symmetric", self.symmetric, lambda v: isinstance(v, bool), "True or False"))
        put(self, "method", _choices("method", self.method, lambda v: v in METHODS, f"one of {METHODS}"))
        put(self, "order", _choices("order", self.order, lambda v: v in ORDERS, f"one of {ORDERS}"))
        put(self, "lowrank", lowrank_axis("Space", self.lowrank))
        put(self, "layer_bits", _per_layer("layer_bits", self.layer_bits, _bits, f"one of {BITS}", int))
        put(self, "layer_prune", _per_layer("layer_prune", self.layer_prune, _ratio, "fractions in [0, 1)", float))
        if any(b < 16 for _, bs in self.layer_bits for b in bs) and not any(b < 16 for b in self.bits):
            raise ValueError("Space: layer_bits gives integer bits to some layers, so `bits` (the layers not named) "
                             "needs an integer choice (2..8) too; name a layer with 32 to keep it float")
        if self.layer_prune and "2:4" in self.structure:
            raise ValueError("Space: 2:4 removes exactly half of every group of four; per-layer ratios do not apply. "
                             "Drop '2:4' from structure or drop layer_prune")
        if self.scope not in SCOPES:
            raise ValueError(f"Space: scope must be 'layer' or 'global', got {self.scope!r}")
        # the measurement settings are validated (and runtimes resolved) exactly as a grid's
        g = Grid(prune=(0.0,), structure=self.structure[:1], bits=(32,), runtimes=self.runtimes, devices=self.devices,
                 threads=self.threads, limit=self.limit, scope=self.scope)
        put(self, "runtimes", g.runtimes)
        put(self, "devices", g.devices)
        put(self, "_grid", g)

    @classmethod
    def from_grid(cls, g: Grid) -> Space:
        """The space whose uniform choices are `g`'s axes (a search over it can reach every grid point).

        Example:
            >>> g = workbench.grid(prune=[0, 0.5], structure="channel", bits=[32, 8, 4])
            >>> s = workbench.Space.from_grid(g)
            >>> sorted({s.point(p).label for p in s.points()}) == sorted(v.label for v in g)
            True
        """
        if not isinstance(g, Grid):
            raise ValueError(f"Space.from_grid takes a workbench.grid(...), got {type(g).__name__}")
        d = g.to_dict()
        return cls(prune=g.prune, structure=tuple(s for s in g.structure if s != "layer") or ("unstructured",),
                   bits=g.bits, recover=g.recover, group_size=g.group_size, symmetric=g.symmetric, method=g.method,
                   lowrank=g.lowrank, runtimes=g.runtimes, devices=g.devices, threads=d["threads"], limit=d["limit"], scope=g.scope)

    @classmethod
    def per_layer(cls, task: Any, *, bits: Sequence[int] = (8, 4), prune: Sequence[float] | None = None,
                  structure: str = "channel", pin: Sequence[str] = (), sensitivity: Any = None,
                  fragile: float = 0.02, **settings: Any) -> Space:
        """A space with one dimension per weight layer of `task`'s model (convolutions and linear layers).

        Args:
            task: a `Task` (or zoo name) whose model's layers are searched.
            bits: each layer's bit choices; the first is the uniform `bits` of layers not listed (and of pinned
                layers).
            prune: each layer's pruning ratios (of `structure`), or None to search bits only.
            structure: ``"channel"`` or ``"unstructured"`` for `prune`.
            pin: layers fixed at ``bits[0]`` and left unpruned (known fragile: the stem, the classifier).
            sensitivity: a `workbench.sensitivity(...)` table; layers whose metric drop at any level exceeds
                `fragile` are pinned too.
            fragile: the drop (in the metric's units) that marks a layer fragile.
            **settings: runtimes, devices, threads, limit, scope.

        Example:
            >>> s = workbench.Space.per_layer("kws", bits=[8, 4], pin=["stem.conv", "classifier"])
            >>> len(s.layer_bits), s.dimensions()["layer_bits:stem.conv"], s.size
            (10, (8,), 256)
        """
        from workbench import zoo
        from workbench.compression.prune_layers import weight_layers

        task = zoo.load(task) if isinstance(task, str) else task
        if task.model.module is None:
            raise ValueError(f"Space.per_layer: {task.name} is a {task.model.framework} model; per-layer choices "
                             "need its PyTorch form (load the model from PyTorch)")
        names = list(weight_layers(task.model.module))
        pinned = set(pin)
        unknown = sorted(pinned - set(names))
        if unknown:
            raise ValueError(f"Space.per_layer: no layer(s) {unknown} in {task.name}; layers: {', '.join(names)}")
        if sensitivity is not None:
            drop = sensitivity.groupby("layer")["drop"].max()
            pinned |= {str(n) for n, d in drop.items() if d > fragile}
        bits = tuple(bits)
        lb = {n: (bits[0],) if n in pinned else bits for n in names}
        lp = {n: (0.0,) if n in pinned else tuple(prune) for n in names} if prune is not None else {}
        return cls(prune=(0.0,) if prune is None else (0.0,), structure=(structure,), bits=bits[:1],
                   layer_bits=lb, layer_prune=lp, **settings)

    def dimensions(self) -> dict[str, tuple]:
        """Every dimension with its choices, in suggestion order (``"layer_bits:<layer>"`` for per-layer ones, and
        ``"runtime"`` when there are several)."""
        dims: dict[str, tuple] = {name: getattr(self, name) for name in UNIFORM}
        dims.update({f"layer_bits:{n}": c for n, c in self.layer_bits})
        dims.update({f"layer_prune:{n}": c for n, c in self.layer_prune})
        dims["runtime"] = self.runtimes
        return dims

    @property
    def size(self) -> int:
        """The number of distinct choice combinations (before canonicalisation merges equivalent ones)."""
        return math.prod(len(c) for c in self.dimensions().values())

    def points(self) -> list[dict[str, Any]]:
        """Every combination of choices (only for small spaces: a per-layer space is astronomically large)."""
        from itertools import product

        if self.size > 100_000:
            raise ValueError(f"Space.points: {self.size} combinations is too many to list; search it instead")
        dims = self.dimensions()
        return [dict(zip(dims, combo)) for combo in product(*dims.values())]

    @property
    def grid(self) -> Grid:
        """A one-point grid carrying this space's measurement settings (runtimes, devices, threads, limit, scope)."""
        return self._grid

    def point(self, params: Mapping[str, Any]) -> VariantSpec:
        """The variant a trial's choices build, canonical (as a grid would list it): nothing pruned has no
        structure and nothing to recover, 2:4 is exactly half, float widths take no quantisation options.

        Raises:
            ValueError: a choice outside the space.
        """
        dims = self.dimensions()
        p = {k: params.get(k, dims[k][0]) for k in dims}
        for k, v in p.items():
            if v not in dims[k]:
                raise ValueError(f"Space.point: {k}={v!r} is not one of {dims[k]}")
        structure = p["structure"]
        layer_prune = {k.split(":", 1)[1]: v for k, v in p.items() if k.startswith("layer_prune:")}
        layer_prune = {n: r for n, r in layer_prune.items() if r != p["prune"]}
        prune = p["prune"]
        if structure == "2:4" and (prune or layer_prune):
            prune = 0.5
        pruned = bool(prune or any(layer_prune.values()))
        if pruned:  # pinned layers stay whole (channel pruning: their outputs, and so their coupled layers', kept)
            layer_prune.update({n: 0.0 for n, c in self.layer_prune if c == (0.0,)})
        layer_bits = {k.split(":", 1)[1]: v for k, v in p.items() if k.startswith("layer_bits:")}
        layer_bits = {n: b for n, b in layer_bits.items() if b != p["bits"]}
        bits = p["bits"]
        integer = bits < 16 or any(b < 16 for b in layer_bits.values())
        group, sym, method = (p["group_size"], p["symmetric"], p["method"]) if integer else (None, True, "rtn")
        lowrank = p["lowrank"]
        return VariantSpec(
            prune=prune if pruned else 0.0, structure=structure if pruned else None, bits=bits,
            recover=p["recover"] if pruned or lowrank else None, scope=self.scope, group_size=group, symmetric=sym,
            method=method, layer_bits=tuple(layer_bits.items()), layer_prune=tuple(layer_prune.items()) if pruned else (),
            order=p["order"] if pruned and integer else "prune-first", lowrank=lowrank)

    def runtime_of(self, params: Mapping[str, Any]) -> str:
        """The runtime a trial's choices measure on."""
        return params.get("runtime", self.runtimes[0])

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"prune": list(self.prune), "structure": list(self.structure), "bits": list(self.bits),
                             "recover": list(self.recover)}
        for name, default in (("group_size", (None,)), ("symmetric", (True,)), ("method", ("rtn",)),
                              ("order", ("prune-first",)), ("lowrank", (None,))):
            if getattr(self, name) != default:
                d[name] = list(getattr(self, name))
        for name in ("layer_bits", "layer_prune"):
            if getattr(self, name):
                d[name] = {n: list(c) for n, c in getattr(self, name)}
        d.update({"runtimes": list(self.runtimes), "devices": list(self.devices), "threads": self.threads,
                  "limit": self.limit, "scope": self.scope})
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def save(self, path: str | Path, *, task: str | None = None, **search: Any) -> Path:
        """Write the space (and the task name and `workbench.search` settings, for `workbench search SPEC.yaml`)
        as YAML: ``space.save("s.yaml", task="kws", objectives={"accuracy": "max"}, n_trials=30)``."""
        import yaml

        from workbench.core.paths import atomic_write

        unknown = sorted(set(search) - set(SEARCH_FIELDS))
        if unknown:
            raise ValueError(f"Space.save: unknown search setting(s) {unknown}; known: {', '.join(SEARCH_FIELDS)}")
        doc = {**({"task": task} if task else {}), "space": self.to_dict(), **({"search": search} if search else {})}
        text = yaml.safe_dump(doc, sort_keys=False)
        return atomic_write(Path(path), lambda tmp: tmp.write_text(text))


SEARCH_FIELDS = ("objectives", "constraints", "n_trials", "sampler", "executor", "workers", "seed", "store")
"""The `workbench.search` settings a spec file may carry beside the space."""


def load_search_spec(path: str | Path) -> tuple[str | None, Space, dict[str, Any]]:
    """Read a search spec written by `Space.save` (or by hand): ``(task name or None, Space, search settings)``.

    Example:
        >>> p = workbench.Space(bits=[8, 4], prune=[0]).save("s.yaml", task="kws", n_trials=4)
        >>> task, space, settings = load_search_spec(p)
        >>> task, space.bits, settings
        ('kws', (8, 4), {'n_trials': 4})
    """
    from workbench.core.errors import WorkbenchError
    from workbench.core.paths import read_yaml_mapping

    p = Path(path)
    doc = read_yaml_mapping(p, "search spec", "'task', 'space' and 'search' entries")
    if not isinstance(doc.get("space", {}), dict) or not isinstance(doc.get("search") or {}, dict):
        raise WorkbenchError(f"search spec {p}: 'space' and 'search' must be mappings of fields")
    unknown = sorted(set(doc) - {"task", "space", "search"})
    if unknown:
        raise WorkbenchError(f"search spec {p}: unknown entries {unknown}; allowed: task, space, search")
    space_doc, search = dict(doc.get("space") or {}), dict(doc.get("search") or {})
    allowed = [f for f in Space.__dataclass_fields__ if not f.startswith("_")]
    bad = sorted(set(space_doc) - set(allowed)) + sorted(set(search) - set(SEARCH_FIELDS))
    if bad:
        raise WorkbenchError(f"search spec {p}: unknown field(s) {bad}; space: {', '.join(allowed)}; "
                             f"search: {', '.join(SEARCH_FIELDS)}")
    try:
        return doc.get("task"), Space(**space_doc), search
    except ValueError as e:
        raise WorkbenchError(f"search spec {p}: {e}") from None
