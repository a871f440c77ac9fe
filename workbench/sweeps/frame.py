"""The results frame: the one owner of what a sweep's DataFrame holds and how it is read.

Every reader of results (the sweep itself, the store, `best` / `pareto`, the report, viz, the UI, the fleet
plan) goes through these functions: column order (`FIRST`, `frame`), which rows succeeded (`error_mask`,
`ok_rows`), the task-metric columns (`metric_columns`, `primary_metric`, `LOWER_IS_BETTER`) and their 95 % intervals
(`interval_columns`), the baseline join (`with_baseline`), and the grid point
of a row (`spec_columns` writes a `VariantSpec` into a row, `spec_of_row` reads it back; `spec_of_lineage` /
`config_columns` read it from a variant's compression lineage). `results_frame` (in `workbench.sweeps.measured`)
builds the same layout without a sweep.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from workbench.sweeps.spec import SCOPES, VariantSpec

FIRST = ["task", "variant", "prune", "structure", "bits", "recover", "runtime", "device"]

# Columns of a results frame that are never task metrics, besides the measurement and device-estimate columns
# (`workbench.measurement.record.COLUMNS` / `DEVICE_COLUMNS`): configs and bookkeeping.
NOT_METRICS = ("task", "lineage", "artifact", "versions", "key", "unit", "created", "prune", "structure", "bits",
               "recover", "seconds", "power_w_at_rate_est", "pareto")

LOWER_IS_BETTER = frozenset({"perplexity"})
"""Quality metrics where a lower value is better (a language model's perplexity): `pareto` minimises them even
when they are listed under `maximize`, `best` / `within_budget` read their threshold as the highest acceptable
value, and `workbench.sweeps.noise` words a difference the right way round."""


def frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Rows to a DataFrame with the config columns first and missing values as NaN/None.

    Example:
        >>> list(frame([{"bits": 8, "variant": "q8", "accuracy": 0.98}]).columns)
        ['variant', 'bits', 'accuracy']
    """
    df = pd.DataFrame(list(rows))
    if df.empty:
        return df
    first = [c for c in FIRST if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


def error_mask(df: pd.DataFrame) -> pd.Series:
    """Per row: True where the variant failed, i.e. its ``error`` is a non-empty message.

    Missing, ``None``, NaN and blank values are successes. A *numeric* ``error`` column is not a failure column
    at all (a calibration table's relative error, for instance): no row of it failed.

    Example:
        >>> error_mask(pd.DataFrame({"error": [None, "boom", "", float("nan")]})).tolist()
        [False, True, False, False]
    """
    if "error" not in df or pd.api.types.is_numeric_dtype(df["error"]):
        return pd.Series(False, index=df.index)
    e = df["error"]
    text = e.astype(str).str.strip()
    return e.notna() & (text != "") & (text != "None")


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that ran without error (`error_mask` is False); the frame itself when it has no ``error``.

    Example:
        >>> ok_rows(pd.DataFrame({"variant": ["a", "b"], "error": [None, "boom"]}))["variant"].tolist()
        ['a']
    """
    if "error" not in df:
        return df
    return df[~error_mask(df)]


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The task-metric columns of a results frame, in column order.

    The rule (one for the report, `best`, the baseline join and the UI): a column is a task metric when

    * it has a ``baseline_<name>`` partner (the baseline join made one for every metric it found, so a metric
      that is empty because every row failed still counts), or
    * it holds numbers (not booleans) and is none of the frame's known columns: measurements
      (`workbench.measurement.record.COLUMNS`, ``fidelity`` included), device estimates (``DEVICE_COLUMNS``),
      configs and bookkeeping (`NOT_METRICS`), ``baseline_*``,

    and it is not the interval of another column (``accuracy_low`` / ``accuracy_high`` beside ``accuracy``).

    A frame with neither (a sweep of a task whose metric is ``fidelity``, a model file without labels) has no
    task metric; `primary_metric` then falls back to ``fidelity``.

    Example:
        >>> metric_columns(df)
        ['accuracy']
    """
    from workbench.core.intervals import interval_of
    from workbench.measurement.record import COLUMNS, DEVICE_COLUMNS

    known = set(COLUMNS) | set(DEVICE_COLUMNS) | set(NOT_METRICS)
    partnered = {c[len("baseline_"):] for c in df.columns if c.startswith("baseline_")}
    columns = set(df.columns)
    out = []
    for c in df.columns:
        if not isinstance(c, str) or c.startswith("baseline_") or interval_of(c, columns):
            continue
        if c in partnered or (c not in known and pd.api.types.is_numeric_dtype(df[c])
                              and not pd.api.types.is_bool_dtype(df[c])):
            out.append(c)
    return out


def interval_columns(df: pd.DataFrame | Any, metric: str) -> tuple[str, str] | None:
    """The ``(<metric>_low, <metric>_high)`` columns of `metric` when the frame (or row) has both, else None.

    Latency's spread is an interval too: ``latency_ms_p50`` is bounded by ``latency_ms_p10`` .. ``latency_ms_p90``.

    Example:
        >>> d = pd.DataFrame({"accuracy": [0.9], "accuracy_low": [0.85], "accuracy_high": [0.94]})
        >>> interval_columns(d, "accuracy"), interval_columns(d, "size_bytes")
        (('accuracy_low', 'accuracy_high'), None)
    """
    from workbench.core.intervals import interval_names

    names = ("latency_ms_p10", "latency_ms_p90") if metric == "latency_ms_p50" else interval_names(metric)
    have = df.columns if isinstance(df, pd.DataFrame) else getattr(df, "index", df)
    return names if all(n in have for n in names) else None


def primary_metric(df: pd.DataFrame) -> str | None:
    """The quality column to show and rank by: ``accuracy`` when it is a metric column, else the first of
    `metric_columns`, else ``fidelity`` (agreement with the original model) when the frame has it, else None.

    Example:
        >>> primary_metric(df), primary_metric(pd.DataFrame({"variant": ["a"], "fidelity": [1.0]}))
        ('accuracy', 'fidelity')
    """
    metrics = metric_columns(df)
    if "accuracy" in metrics:
        return "accuracy"
    if metrics:
        return metrics[0]
    return "fidelity" if "fidelity" in df else None


def with_baseline(df: pd.DataFrame) -> pd.DataFrame:
    """Add `baseline_<metric>` columns: the unpruned float model's metrics, same task and runtime.

    Example:
        >>> base = with_baseline(df)
        >>> bool((base["baseline_accuracy"] == base.loc[base.variant == "baseline", "accuracy"].iloc[0]).all())
        True
    """
    if df.empty or "variant" not in df:
        return df
    df = df.drop(columns=[c for c in df.columns if c.startswith("baseline_")])
    base = df[(df["variant"] == "baseline") & ~error_mask(df)].drop_duplicates(["task", "runtime"])
    base = base.set_index(["task", "runtime"])
    keys = pd.MultiIndex.from_frame(df[["task", "runtime"]])
    for m in metric_columns(df):
        df[f"baseline_{m}"] = base[m].reindex(keys).to_numpy() if m in base else float("nan")
    return df


# ------------------------------------------------------------------------------ grid point <-> row


def spec_columns(spec: VariantSpec) -> dict[str, Any]:
    """The config columns a sweep writes for a grid point: ``variant`` (its label) and ``spec.to_dict()``.

    Example:
        >>> spec_columns(VariantSpec(0.5, "channel", 8))
        {'variant': 'channel-0.50+q8', 'prune': 0.5, 'structure': 'channel', 'bits': 8, 'recover': None}
    """
    return {"variant": spec.label, **spec.to_dict()}


def scope_of_lineage(lineage: str | Sequence[str] | None) -> str:
    """The pruning scope recorded in a lineage (a row's ``"a + b"`` text, or the config labels).

    `workbench.Prune`'s label ends its ``prune-<structure>-<ratio>`` head with ``-layer`` for the per-layer
    scope and says nothing for the global one; ``2:4`` and unpruned lineages have no scope: ``"layer"``, the
    grid's default.

    Example:
        >>> scope_of_lineage("prune-channel-0.50 + quantize-int8"), scope_of_lineage("prune-channel-0.50-layer")
        ('global', 'layer')
    """
    labels = lineage.split(" + ") if isinstance(lineage, str) else list(lineage or ())
    for label in labels:
        parts = str(label).strip().split("-")
        if parts[0] == "prune" and len(parts) >= 3 and parts[1] != "2:4":
            return "layer" if "layer" in parts[3:] else "global"
    return "layer"


def spec_of_row(row: Mapping[str, Any] | pd.Series) -> VariantSpec:
    """The grid point of a results row, read from its config columns (`prune`, `structure`, `bits`, `recover`)
    and its scope (a ``scope`` column where the frame has one, else the scope its ``lineage`` records).

    Example:
        >>> spec_of_row({"prune": 0.5, "structure": "channel", "bits": 8.0, "recover": None,
        ...              "lineage": "prune-channel-0.50-layer + quantize-int8"})
        VariantSpec(prune=0.5, structure='channel', bits=8, recover=None, scope='layer')
    """

    def num(col: str, default: Any) -> Any:
        v = pd.to_numeric(pd.Series([row.get(col)]), errors="coerce").iloc[0]
        return default if pd.isna(v) else v

    prune = float(num("prune", 0.0))
    structure = row.get("structure")
    structure = None if structure is None or (isinstance(structure, float) and pd.isna(structure)) or not prune \
        else str(structure)
    recover = num("recover", None)
    scope = row.get("scope")
    if scope not in SCOPES:
        scope = scope_of_lineage(row.get("lineage") if isinstance(row.get("lineage"), str) else None)
    group = num("group_size", None)
    sym = row.get("symmetric")
    method = row.get("method")
    lowrank = row.get("lowrank")
    return VariantSpec(prune, structure, int(num("bits", 32)), int(recover) if recover else None, scope=scope,
                       group_size=int(group) if group else None,
                       symmetric=bool(sym) if isinstance(sym, (bool, np.bool_)) else True,
                       method=method if isinstance(method, str) else "rtn",
                       lowrank=lowrank if isinstance(lowrank, str) and lowrank else None)


def spec_of_lineage(lineage: Sequence[Any]) -> VariantSpec:
    """The grid point of a variant from its compression configs (`ModelHandle.lineage`).

    `bits` is 32 for float, 16 for fp16, else the `Quantize` bit-width (the widest layer's for mixed precision);
    `recover` sums the `Recover` steps.

    Example:
        >>> from workbench.compression import Prune, Quantize
        >>> spec_of_lineage([Prune(0.5, structure="channel", scope="layer"), Quantize(8)])
        VariantSpec(prune=0.5, structure='channel', bits=8, recover=None, scope='layer')
    """
    prune, structure, bits, recover, scope = 0.0, None, 32, None, "layer"
    quant: dict[str, Any] = {}
    lowrank = None
    for cfg in lineage:
        kind = getattr(cfg, "kind", "")
        if kind == "lowrank":
            lowrank = f"{cfg.method}-{cfg.rank_ratio:g}"
        elif kind == "prune":
            prune, structure = float(cfg.ratio), str(cfg.structure)
            scope = str(getattr(cfg, "scope", "layer"))
        elif kind == "quantize":
            bits = 16 if getattr(cfg, "dtype", None) == "fp16" else int(cfg.bits)
            if bits < 16:
                quant = {"group_size": cfg.group_size if cfg.granularity == "group" else None,
                         "symmetric": bool(cfg.symmetric), "method": getattr(cfg, "method", "rtn")}
        elif kind == "recover":
            recover = (recover or 0) + int(cfg.steps)
    return VariantSpec(prune, structure, bits, recover, scope=scope, lowrank=lowrank, **quant)


def config_columns(handle: Any) -> dict[str, Any]:
    """The sweep contract's config columns from a variant's lineage: `prune`, `structure`, `bits`, `recover`.

    The same columns a sweep writes for the grid point (`spec_columns`), read with `spec_of_lineage`.

    Example:
        >>> from workbench.compression import Prune, Quantize
        >>> config_columns(workbench.compress(task.model, Prune(0.5, structure="channel"), Quantize(8)))
        {'prune': 0.5, 'structure': 'channel', 'bits': 8, 'recover': None}
    """
    return spec_of_lineage(getattr(handle, "lineage", ())).to_dict()


__all__ = ["FIRST", "LOWER_IS_BETTER", "NOT_METRICS", "config_columns", "error_mask", "frame", "interval_columns",
           "metric_columns", "ok_rows", "primary_metric", "scope_of_lineage", "spec_columns", "spec_of_lineage", "spec_of_row", "with_baseline"]
