"""`prune_plan`: what a `Prune` config does to each layer, as a table, without changing the model.

The plan runs the same code as ``compress(handle, cfg)`` on a copy, then compares the layers before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench.compression.base import compress, covered
from workbench.compression.prune import Prune, Structure
from workbench.compression.prune_onnx import prunable_weights
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def prune_plan(handle: ModelHandle, cfg: Prune, *, task: Any = None) -> pd.DataFrame:
    """Preview what `cfg` does to each layer, without changing `handle` (it prunes a copy).

    Args:
        handle: the model (a `ModelHandle`, or a `Task` whose model is used).
        cfg: the `Prune` config.
        task: passed on to the technique (pruning itself needs no data).

    Returns:
        One row per layer with weights or compute: ``layer``, ``type``, ``shape_before``, ``shape_after``,
        ``params_before``, ``params_after``, ``macs_before``, ``macs_after`` (batch 1; `None` for ONNX and
        TFLite models),
        ``sparsity_after`` (fraction of zero weights) and ``note`` (``"pruned"``, ``"excluded"``,
        ``"protected"``, ``"head: outputs kept"``, ``"skipped: inputs not a multiple of 4"`` or ``""``; with
        `Prune.per_layer`, ``"pruned at 0.8 (per_layer)"`` and ``"per_layer 0: not pruned"`` (channel:
        ``"per_layer 0: outputs kept"``) for the layers an override applied to).
        Totals are in ``df.attrs["totals"]`` (params, MACs and the variant's ``sparsity``), so every row
        stays a layer. The plan is exactly what ``compress(handle, cfg)`` produces (it runs the same code).

    Example:
        >>> plan = prune_plan(task.model, Prune(0.5, structure="2:4"))
        >>> plan[plan.note.str.startswith("skipped")].layer.tolist()
        ['stem.conv', 'blocks.0.dw.conv', ...]

        Per-layer ratios (a 0 keeps the outputs of ``blocks.1``'s layers and of those coupled to them):

        >>> plan = prune_plan(task.model, Prune(0.5, structure="channel", per_layer={"blocks.4.pw": 0.25,
        ...                                                                          "blocks.1": 0.0}))
        >>> rows = plan.set_index("layer").loc[["blocks.1.pw.conv", "blocks.4.pw.conv"]]
        >>> rows.shape_after.tolist(), rows.note.tolist()
        ([(128, 64, 1, 1), (192, 120, 1, 1)], ['per_layer 0: outputs kept', 'pruned at 0.25 (per_layer)'])
    """
    if not isinstance(cfg, Prune):
        raise WorkbenchError(f"prune_plan() takes a Prune config, got {cfg!r}.")
    if not isinstance(handle, ModelHandle) and isinstance(getattr(handle, "model", None), ModelHandle):
        task, handle = task if task is not None else handle, handle.model
    from workbench.compression.base import BRIDGED
    from workbench.formats.normalize import normalized

    if handle.source_format in BRIDGED or (handle.framework == "onnx" and cfg.structure is Structure.CHANNEL):
        # the layers are rewritten on the file's nn.Module form: plan that step (the same code compress runs)
        from workbench.formats.onnx_module import module_of

        source = module_of(normalized(handle))
        variant = compress(source, cfg, task=task)
        df = _torch_plan(source, variant)
    else:
        source = normalized(handle)  # a foreign graph's weights, as the in-place technique sees them
        variant = compress(handle, cfg, task=task)
        plans = {"torch": _torch_plan, "onnx": _onnx_plan, "tflite": _tflite_plan}
        df = plans[handle.framework](source, variant)
    notes = []
    own = variant.meta.get("prune_per_layer", {})
    for row in df.itertuples():
        if row.layer in variant.meta.get("prune_skipped", []):
            notes.append("skipped: inputs not a multiple of 4")
        elif covered(row.layer, cfg.exclude):
            notes.append("excluded")
        elif covered(row.layer, variant.meta.get("prune_protected", [])):
            notes.append("protected")
        elif cfg.structure is Structure.CHANNEL and row.layer == variant.meta.get("prune_head"):
            notes.append("head: outputs kept")
        elif own.get(row.layer) == 0:
            notes.append("per_layer 0: outputs kept" if cfg.structure is Structure.CHANNEL else "per_layer 0: not pruned")
        elif row.layer in variant.meta.get("pruned_layers", []):
            notes.append(f"pruned at {own[row.layer]:g} (per_layer)" if row.layer in own else "pruned")
        else:
            notes.append("")
    df["note"] = notes
    if cfg.structure is Structure.CHANNEL:
        df.loc[(df.note == "") & (df.shape_before != df.shape_after), "note"] = "pruned (coupled)"
    macs = df.macs_before.notna().all()
    df.attrs["totals"] = {
        "params_before": handle.num_params, "params_after": variant.num_params,
        "macs_before": int(df.macs_before.sum()) if macs else None,
        "macs_after": int(df.macs_after.sum()) if macs else None,
        "sparsity": variant.meta.get("sparsity", 0.0),
    }
    return df


_PLAN_COLUMNS = ["layer", "type", "shape_before", "shape_after", "params_before", "params_after", "macs_before",
                 "macs_after", "sparsity_after"]


def _torch_plan(handle: ModelHandle, variant: ModelHandle) -> pd.DataFrame:
    import pandas as pd

    from workbench.core.layers import profile_layers

    before = profile_layers(handle).set_index("layer")
    after = profile_layers(variant).set_index("layer")
    mods = dict(variant.module.named_modules())
    rows = []
    for layer in before.index:
        b, a = before.loc[layer], after.loc[layer]
        w = getattr(mods[layer], "weight", None)
        rows.append([layer, b["type"], b["weight_shape"], a["weight_shape"], int(b["params"]), int(a["params"]),
                     int(b["macs"]), int(a["macs"]), float((w == 0).float().mean()) if w is not None else 0.0])
    return pd.DataFrame(rows, columns=_PLAN_COLUMNS)


def _onnx_plan(handle: ModelHandle, variant: ModelHandle) -> pd.DataFrame:
    import onnx
    import pandas as pd
    from onnx import numpy_helper

    def weights(path: Path) -> dict[str, tuple[str, np.ndarray]]:
        proto = onnx.load(str(path))
        inits = {i.name: i for i in proto.graph.initializer}
        return {name: (op, numpy_helper.to_array(inits[name])) for name, _, op, _ in prunable_weights(proto)}

    after = weights(variant.path)
    rows = [[name, op, w.shape, after[name][1].shape, w.size, after[name][1].size, None, None,
             float(np.mean(after[name][1] == 0))] for name, (op, w) in weights(handle.path).items()]
    return pd.DataFrame(rows, columns=_PLAN_COLUMNS)


def _tflite_plan(handle: ModelHandle, variant: ModelHandle) -> pd.DataFrame:
    import pandas as pd

    from workbench.formats.tflite_graph import tflite_weights

    after = {w.layer: w for w in tflite_weights(variant.path)}
    rows = [[w.layer, w.op_type, w.shape, after[w.layer].shape, w.array.size, after[w.layer].array.size, None, None,
             float(np.mean(after[w.layer].array == 0))]
            for w in tflite_weights(handle.path) if w.array is not None and w.layer in after]
    return pd.DataFrame(rows, columns=_PLAN_COLUMNS)
