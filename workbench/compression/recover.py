"""Recovery: a short fine-tune (or distillation from the uncompressed model) that wins back lost accuracy.

`Recover` trains a compressed variant for a few hundred optimizer steps on the task's training split, without
undoing its compression:

* **Zeros stay zero.** Every exactly-zero entry of a weight matrix or kernel (any parameter with two or more
  dimensions: Conv, Linear, Embedding) is read as pruned: its gradient is zeroed before each Adam step and the
  weight is zeroed again after it. The one exception is a quantised variant whose lineage has no unstructured
  or 2:4 `Prune`: there the zeros of the quantised layers are rounding results, and they may move.
* **Quantised stays quantised.** Layers that `Quantize` rounded (listed in ``handle.meta["quant"]``) are
  trained quantisation-aware with a straight-through estimator: the forward pass sees the weights on their
  b-bit grid, Adam updates float shadow copies, and the grid is recomputed from the shadows after every step.
  The variant that comes back holds grid values again (at most ``2**bits`` distinct values per channel or
  group, or float16-representable values after ``Quantize(dtype="fp16")``). Activation ranges calibrated by
  ``Quantize(activations=8)`` stay as they were.
* **Smaller layers** (channel pruning, `LowRank` factors) simply train.

With an input named ``attention_mask`` (the Hugging Face convention), each minibatch is cut after its last
non-padding position, which changes no output of a masked model and makes short-text batches cheaper.

Everything is plain tensor arithmetic in the training loop; nothing (masks, hooks, parametrisations) is left
attached to the module. Dropout is off. BatchNorm layers train normally (batch statistics in the forward pass,
running statistics re-estimated) when a minibatch holds at least `BATCHNORM_MIN_BATCH` samples, and are
frozen (eval mode, only their affine weights train) with smaller batches, whose statistics are too noisy (the
loop and that constant live in `workbench.compression.training`, shared with `Distill`).
Pruning shifts every activation distribution, and re-estimating the statistics is much of the cure: on
digits-cnn, 60 steps at batch 64 after 90 % magnitude pruning reach 0.98 accuracy with BatchNorm training
and 0.93 with it frozen (0.998 / 0.987 after 80 %).

Losses (the first model output is the one trained):

* ``method="finetune"`` on a classifier (the first output is ``(N, C)`` and the training labels are class ids
  ``0..C-1``): cross-entropy on the labels.
* ``method="distill"`` on a classifier: ``KL(softmax(teacher / T) || softmax(student / T)) * T**2``, where the
  teacher is the uncompressed model (``handle.origin``, or the handle itself when it is an original).
* Any other output (MiniLM's sentence embedding, whose labels are topic ids that its 384 columns do not
  predict): ``1 - cosine`` to the teacher's output, for both methods (``(N, 1)`` outputs: mean squared error).
  ``finetune`` has no label loss to use there, so it falls back to distillation; ``meta["recover"]["loss"]``
  records which loss ran.

Example:
    >>> task = workbench.zoo.load("digits-cnn")
    >>> small = workbench.compress(task.model, Prune(0.8), Recover(steps=100), task=task)
    >>> small.meta["recover"]["loss"]
    'cross_entropy'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Callable, ClassVar

import numpy as np

from workbench.compression.base import CompressionConfig, copy_module, technique, torch_variant
from workbench.compression.training import (
    TeacherCache,
    channels_last,
    first_output,
    soft_target_loss,
    take,
    to_channels_last,
    train_steps,
    training_split,
    validate_training,
)
from workbench.core.handle import ModelHandle
from workbench.core.quant import LayerQuant, QuantRecord, quant_record


class Method(StrEnum):
    FINETUNE = "finetune"
    DISTILL = "distill"

    def __repr__(self) -> str:
        return repr(self.value)


@dataclass(frozen=True)
class Recover(CompressionConfig):
    """Fine-tune or distil a compressed variant on the task's training split, keeping its compression.

    Args:
        steps: Adam steps (shuffled minibatches, cycling through epochs), >= 1.
        lr: Adam learning rate, > 0. 1e-3 suits small CNNs; pretrained transformers want about 1e-4 (MiniLM
            after ``LowRank(0.5)``, 50 distillation steps: cosine to fp32 0.81 at 1e-3, 0.89 at 1e-4).
        method: ``"finetune"`` (cross-entropy on labels) or ``"distill"`` (match the uncompressed model).
        temperature: softmax temperature of classifier distillation, > 0.
        batch_size: samples per step, >= 1 (capped at the size of the training split).
        seed: seed of the minibatch order; the same seed gives the same variant.

    Example:
        >>> Recover(steps=300).label, Recover(method="distill").label
        ('recover-finetune-300', 'recover-distill-200')
    """

    kind: ClassVar[str] = "recover"

    steps: int = 200
    lr: float = 1e-3
    method: Method = Method.FINETUNE
    temperature: float = 2.0
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        validate_training(self, "Recover")
        try:
            object.__setattr__(self, "method", Method(self.method))
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in Method)
            raise ValueError(f"Recover: method must be one of {allowed}, got {self.method!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return {k: v.value if isinstance(v, StrEnum) else v for k, v in super().to_dict().items()}

    @property
    def label(self) -> str:
        return f"recover-{self.method.value}-{self.steps}"


# ------------------------------------------------------------------------------------------------ torch


@technique(Recover, "torch")
def recover_torch(handle: ModelHandle, cfg: Recover, task: Any) -> ModelHandle:
    """Train a copy of `handle` for `cfg.steps` steps; see the module docstring for what is kept."""
    inputs, labels = training_split(handle, task)
    import torch

    student = copy_module(handle)
    teacher = (handle.origin if handle.origin is not None else handle).module  # only ever run under no_grad
    xs = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
    nhwc = channels_last(student, xs)
    if nhwc:
        xs = to_channels_last(student, xs)
    n = len(xs[0])
    with torch.no_grad():
        probe = first_output(student(*[x[:2] for x in xs]))
    loss_kind = _loss_kind(cfg.method, probe, labels)
    loss_fn = _LOSSES[loss_kind]
    ys = torch.from_numpy(np.asarray(labels)).long() if loss_kind == "cross_entropy" else None
    mask_at = next((i for i, spec in enumerate(handle.inputs) if spec.name == "attention_mask"), None)
    teacher_out = None if loss_kind == "cross_entropy" else TeacherCache(teacher, xs, mask_at)

    params = dict(student.named_parameters())
    was_trainable = {name: p.requires_grad for name, p in params.items()}
    trainable = [p for p in params.values() if p.is_floating_point()]
    for p in trainable:
        p.requires_grad_(True)
    quantisers = _quantisers(params, quant_record(handle))
    pruned = any(getattr(c, "kind", None) == "prune" and getattr(c, "structure", None) != "channel"
                 for c in handle.lineage)  # channel pruning removes weights instead of zeroing them
    zeros = {
        name: p == 0
        for name, p in params.items()
        if p.dim() >= 2 and p.is_floating_point() and (pruned or name not in quantisers) and bool((p == 0).any())
    }
    shadows = {name: params[name].detach().clone() for name in quantisers}

    optimizer = torch.optim.Adam(trainable, lr=cfg.lr)
    start = time.perf_counter()

    def loss_of(idx: Any) -> Any:
        out = first_output(student(*take(xs, idx, mask_at)))
        target = ys[idx] if ys is not None else teacher_out(idx)
        return loss_fn(out, target, cfg.temperature)

    def step(loss: Any) -> None:  # `constrained_step` is looked up at every call, so a test can wrap it
        constrained_step(optimizer, loss, params, zeros, shadows, quantisers)

    losses = train_steps(student, n, loss_of, step, steps=cfg.steps, batch_size=cfg.batch_size, seed=cfg.seed,
                         lr=cfg.lr, owner="Recover", name=handle.name, desc=f"{cfg.label} ({loss_kind})",
                         what="recovery")
    if nhwc:
        student.to(memory_format=torch.contiguous_format)  # the variant's tensors in the usual layout again
    for name, p in params.items():
        p.requires_grad_(was_trainable[name])
        p.grad = None
    tail = losses[-max(1, len(losses) // 10):]
    meta = {
        "recover": {
            "method": cfg.method.value,
            "loss": loss_kind,
            "steps": cfg.steps,
            "initial_loss": losses[0],
            "final_loss": float(np.mean(tail)),
            "kept_zero_weights": int(sum(int(m.sum()) for m in zeros.values())),
            "quantised_params": sorted(quantisers),
            "seconds": round(time.perf_counter() - start, 3),
        }
    }
    return torch_variant(handle, student, cfg, meta=meta)


def _loss_kind(method: Method, probe: Any, labels: np.ndarray | None) -> str:
    """``cross_entropy`` / ``kl`` for classifiers, ``cosine`` for vectors, ``mse`` for scalars per sample."""
    classifier = (
        labels is not None
        and probe.dim() == 2
        and probe.shape[1] > 1
        and np.issubdtype(np.asarray(labels).dtype, np.integer)
        and int(np.min(labels)) >= 0
        and int(np.max(labels)) + 1 == probe.shape[1]
    )
    if classifier:
        return "cross_entropy" if method is Method.FINETUNE else "kl"
    return "cosine" if probe[0].numel() > 1 else "mse"


def _cross_entropy(out: Any, target: Any, temperature: float) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(out, target)


def _cosine(out: Any, target: Any, temperature: float) -> Any:
    import torch.nn.functional as F

    return 1.0 - F.cosine_similarity(out.flatten(1), target.flatten(1), dim=1).mean()


def _mse(out: Any, target: Any, temperature: float) -> Any:
    import torch.nn.functional as F

    return F.mse_loss(out, target)


_LOSSES: dict[str, Callable[[Any, Any, float], Any]] = {
    "cross_entropy": _cross_entropy, "kl": soft_target_loss, "cosine": _cosine, "mse": _mse,
}


def _quantisers(params: dict[str, Any], quant: QuantRecord) -> dict[str, Callable[[Any], Any]]:
    """{parameter name: function that puts a float tensor back on its quantisation grid} from the variant's
    `QuantRecord`."""
    if not quant:
        return {}
    if quant.is_fp16:
        return {name: _to_fp16 for name, p in params.items() if p.is_floating_point()}
    # Only a variant made by `Quantize` carries a quantisation record, so the module exists whenever this runs.
    from workbench.compression.quantize import fake_quantize

    out: dict[str, Callable[[Any], Any]] = {}
    for entry in quant.entries():
        name = entry.param
        if name not in params or entry.bits is None:
            continue  # a layer replaced after quantisation (e.g. by LowRank) is float again

        def grid(t: Any, e: LayerQuant = entry) -> Any:
            return fake_quantize(t, e.bits, granularity=e.granularity, group_size=e.group_size,
                                 symmetric=e.symmetric)

        out[name] = grid
    return out


def _to_fp16(t: Any) -> Any:
    return t.half().to(t.dtype)


def constrained_step(optimizer: Any, loss: Any, params: dict[str, Any], zeros: dict[str, Any],
                     shadows: dict[str, Any], quantisers: dict[str, Any]) -> None:
    """One optimiser step that keeps a compressed model compressed: pruned weights (`zeros`: name -> mask) get no
    gradient and stay zero; quantised weights train as float `shadows` (straight-through) and are put back on
    their grid (`quantisers`: name -> shadow -> grid values) after the step."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        for name, mask in zeros.items():
            if params[name].grad is not None:
                params[name].grad.masked_fill_(mask, 0.0)
        for name, shadow in shadows.items():  # straight-through: step the float shadow, not the grid
            params[name].copy_(shadow)
        optimizer.step()
        for name, mask in zeros.items():
            params[name].masked_fill_(mask, 0.0)
        for name, shadow in shadows.items():
            shadow.copy_(params[name])
            params[name].copy_(quantisers[name](shadow))
