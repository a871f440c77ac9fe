"""Recovery of a compressed language model: a short distillation (or fine-tune) on text.

`Recover(method=..., steps=N)` on a language-model variant trains a copy for N Adam steps on the task's training
text (``task.train_inputs``: token-id chunks (n, L) int64):

* ``method="distill"``: ``KL(softmax(teacher / T) || softmax(student / T)) * T**2`` per token, where the teacher
  is the uncompressed model (``handle.origin``), whose logits are computed once per chunk and kept (in float16:
  a chunk of L tokens costs ``L * vocab * 2`` bytes);
* ``method="finetune"``: next-token cross-entropy on the text itself.

What compression did stays done, as for every model (`workbench.compression.recover`): pruned zeros are held at
zero, layers recorded in ``meta["quant"]`` train through a straight-through estimator on float shadows and come
back on their grid (the language-model grid of `workbench.compression.lm_quantize`, RTN or HQQ as recorded), and
dropped layers or channels simply stay gone. Dropout is off.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from workbench.compression.base import copy_module, technique, torch_variant
from workbench.compression.recover import Recover, constrained_step
from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.core.quant import quant_record


def _text(handle: ModelHandle, task: Any) -> np.ndarray:
    inputs = getattr(task, "train_inputs", None) if task is not None else None
    if not inputs:
        raise WorkbenchError(
            f"{handle.name}: Recover trains on the task's training text; pass a language task: "
            "compress(handle, ..., Recover(method='distill', steps=50), task=task) (workbench.zoo.load('smollm2') or "
            "Task.from_text(handle, texts))."
        )
    ids = np.asarray(inputs[0])
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer) or ids.shape[1] < 2:
        raise WorkbenchError(f"{handle.name}: a language model's training split must be token-id chunks (n, L) with "
                             f"L >= 2; got {ids.dtype} {ids.shape}.")
    return ids.astype(np.int64)


def _grids(params: dict[str, Any], handle: ModelHandle) -> dict[str, Any]:
    """{parameter: function putting a float tensor back on its recorded grid}."""
    record = quant_record(handle)
    if not record:
        return {}
    if record.is_fp16:
        return {n: (lambda t: t.half().to(t.dtype)) for n, p in params.items() if p.is_floating_point()}
    from workbench.compression.lm_quantize import quantise_linear_weight

    method = handle.meta.get("lm_quant", {}).get("method", "rtn")
    out = {}
    for entry in record.entries():
        if entry.param in params and entry.bits is not None and entry.granularity == "group":
            def grid(t: Any, e: Any = entry) -> Any:
                return quantise_linear_weight(t, e.bits, e.group_size, e.symmetric, method)
            out[entry.param] = grid
    return out


@technique(Recover, "lm")
def recover_lm(handle: ModelHandle, cfg: Recover, task: Any) -> ModelHandle:
    """Distil or fine-tune a language-model variant on text; see the module docstring."""
    import torch
    import torch.nn.functional as F

    ids = torch.from_numpy(_text(handle, task))
    n = len(ids)
    student = copy_module(handle)
    teacher = (handle.origin if handle.origin is not None else handle).module
    distill = cfg.method.value == "distill"
    params = dict(student.named_parameters())
    was = {k: p.requires_grad for k, p in params.items()}
    for p in params.values():
        p.requires_grad_(p.is_floating_point())
    grids = _grids(params, handle)
    zeros = {k: p == 0 for k, p in params.items()
             if p.dim() >= 2 and k not in grids and bool((p == 0).any())}
    shadows = {k: params[k].detach().clone() for k in grids}
    cache: dict[int, Any] = {}
    optimizer = torch.optim.Adam([p for p in params.values() if p.requires_grad], lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    size = min(cfg.batch_size, n)
    t = cfg.temperature
    losses: list[float] = []
    start = time.perf_counter()
    student.eval()  # dropout off
    order, pos = torch.randperm(n, generator=gen), 0
    for step in range(cfg.steps):
        if pos + size > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos:pos + size]
        pos += size
        batch = ids[idx]
        logits = student(input_ids=batch, use_cache=False).logits
        if distill:
            missing = [int(i) for i in idx if int(i) not in cache]
            if missing:
                with torch.no_grad():
                    out = teacher(input_ids=ids[missing], use_cache=False).logits
                for i, row in zip(missing, out):
                    cache[i] = row.half()
            target = torch.stack([cache[int(i)] for i in idx]).float()
            s_log = F.log_softmax(logits / t, dim=-1).flatten(0, 1)
            t_log = F.log_softmax(target / t, dim=-1).flatten(0, 1)
            loss = F.kl_div(s_log, t_log, log_target=True, reduction="batchmean") * t * t
        else:
            loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten())
        constrained_step(optimizer, loss, params, zeros, shadows, grids)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise WorkbenchError(f"{handle.name}: the recovery loss became {losses[-1]} at step {step + 1}; lower lr "
                                 f"(now {cfg.lr:g}), e.g. Recover(lr={cfg.lr / 10:g}).")
    for k, p in params.items():
        p.requires_grad_(was[k])
        p.grad = None
    student.eval()
    tail = losses[-max(1, len(losses) // 10):]
    meta = {"recover": {
        "method": cfg.method.value,
        "loss": "kl" if distill else "cross_entropy",
        "steps": cfg.steps,
        "initial_loss": losses[0],
        "final_loss": float(np.mean(tail)),
        "kept_zero_weights": int(sum(int(m.sum()) for m in zeros.values())),
        "quantised_params": sorted(grids),
        "seconds": round(time.perf_counter() - start, 3),
    }}
    return torch_variant(handle, student, cfg, meta=meta)
