"""The training pieces `Recover` and `Distill` share: the training split, minibatches, the loop, soft targets.

Both train an ``nn.Module`` for a fixed number of Adam steps on a task's training split: seeded shuffled
minibatches cycling through epochs (`minibatches`), Dropout off and BatchNorm statistics re-estimated when
batches are big enough (`training_mode`), a clear error when the loss stops being finite (`train_steps`). What
each loss is, and what each step must keep (pruned zeros, quantisation grids), stays with the technique.

The loop is written here rather than taken from a trainer library (Lightning, HF Trainer, ignite) because what
a step does differs per technique (`Recover`'s constrained step keeps zeros zero and weights on their grid), and
a few dozen lines of plain torch keep every step visible and deterministic.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle, flatten_outputs


def validate_training(cfg: Any, owner: str, *, positive: tuple[str, ...] = ("lr", "temperature")) -> None:
    """Check and normalise a frozen training config's shared fields in place (``steps`` and ``batch_size``
    positive integers, the `positive` names finite floats > 0, ``seed`` an integer), raising ``ValueError`` that
    names `owner` (``Recover``, ``Distill``)."""
    from numbers import Integral, Real

    for name in ("steps", "batch_size"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {v!r}")
        object.__setattr__(cfg, name, int(v))
    for name in positive:
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{owner}: {name} must be a finite number > 0, got {v!r}")
        object.__setattr__(cfg, name, float(v))
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, Integral):
        raise ValueError(f"{owner}: seed must be an integer, got {cfg.seed!r}")
    object.__setattr__(cfg, "seed", int(cfg.seed))


BATCHNORM_MIN_BATCH = 16
"""Smallest minibatch with which BatchNorm layers update their statistics during training (else frozen)."""


def training_split(handle: ModelHandle, task: Any, *, owner: str = "Recover",
                   example: str = "Recover()") -> tuple[list[np.ndarray], np.ndarray | None]:
    """The task's training inputs and labels, checked before any work starts (`owner` names the technique)."""
    if task is None:
        raise WorkbenchError(
            f"{owner} trains on a task's training split; pass the task: "
            f"workbench.compress(handle, ..., {example}, task=task). (Model: {handle.name}.)"
        )
    inputs = getattr(task, "train_inputs", None)
    if not inputs:
        raise WorkbenchError(
            f"{owner}: this task has no training split ({getattr(task, 'name', task)!r} has no train_inputs), so "
            f"there is nothing to train on. Compress without {owner}, or build a Task with training data."
        )
    if handle.inputs and len(inputs) != len(handle.inputs):
        raise WorkbenchError(
            f"{owner}: {handle.name} takes {len(handle.inputs)} input(s) but the task's training split has "
            f"{len(inputs)} array(s); pass the task this model belongs to."
        )
    labels = getattr(task, "train_labels", None)
    if labels is not None and len(labels) != len(inputs[0]):
        raise WorkbenchError(f"{owner}: {len(inputs[0])} training inputs but {len(labels)} training labels.")
    return list(inputs), labels


def channels_last(module: Any, xs: list[Any]) -> bool:
    """Whether to train in the channels-last (NHWC) layout: the model has a 2-D convolution and a 4-D input.

    oneDNN's NHWC convolution kernels, forward and backward, are faster on CPU than the NCHW ones: a DS-CNN step
    (kws, batch 64, one thread) took 41 ms instead of 63 ms of CPU time. The layout changes no value beyond float
    round-off; the variant comes back in the usual (contiguous) layout.
    """
    from torch import nn

    return any(x.dim() == 4 for x in xs) and any(isinstance(m, nn.Conv2d) for m in module.modules())


def to_channels_last(module: Any, xs: list[Any]) -> list[Any]:
    """`module` (in place) and the 4-D tensors of `xs` in the channels-last layout."""
    import torch

    module.to(memory_format=torch.channels_last)
    return [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in xs]


def training_mode(module: Any, batch: int) -> None:
    """Dropout off; BatchNorm re-estimates its statistics when batches are big enough to estimate them."""
    from torch import nn

    module.eval()
    if batch >= BATCHNORM_MIN_BATCH:
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train()


def first_output(result: Any) -> Any:
    """A model's first output tensor (the one trained), whatever container its forward returns."""
    return flatten_outputs(result)[0][1]


def take(xs: list[Any], idx: Any, mask_at: int | None = None) -> list[Any]:
    """The rows `idx` of every input; with an ``attention_mask`` input (the Hugging Face convention), the
    trailing positions that are padding in every row are cut from every (N, L) input, which changes no
    output of a masked model and makes short-text batches several times cheaper to train on."""
    batch = [x[idx] for x in xs]
    if mask_at is None or batch[mask_at].dim() != 2:
        return batch
    mask = batch[mask_at]
    used = mask.any(dim=0).nonzero()
    length = int(used.max()) + 1 if len(used) else 1
    return [b[:, :length] if b.dim() >= 2 and b.shape[:2] == mask.shape else b for b in batch]


def minibatches(n: int, batch_size: int, steps: int, seed: int) -> Any:
    """`steps` index batches from seeded shuffles of range(n); a short tail is dropped and a new epoch begins."""
    import torch

    g = torch.Generator().manual_seed(seed)
    size = min(batch_size, n)
    order, pos = torch.randperm(n, generator=g), 0
    for _ in range(steps):
        if pos + size > n:
            order, pos = torch.randperm(n, generator=g), 0
        yield order[pos:pos + size]
        pos += size


def soft_target_loss(out: Any, target: Any, temperature: float) -> Any:
    """Hinton et al.'s soft-target loss: ``KL(softmax(target / T) || softmax(out / T)) * T**2`` per sample.

    The ``T**2`` keeps the gradient's scale independent of the temperature (the soft targets' gradients
    shrink as ``1 / T**2``), so the term can be mixed with a hard-label cross-entropy at any T.
    """
    import torch.nn.functional as F

    t = temperature
    student = F.log_softmax(out / t, dim=1)
    teacher = F.log_softmax(target / t, dim=1)
    return F.kl_div(student, teacher, log_target=True, reduction="batchmean") * t * t


class TeacherCache:
    """The teacher's first output per training sample, computed on first use (epochs reuse it)."""

    def __init__(self, teacher: Any, xs: list[Any], mask_at: int | None = None) -> None:
        import torch

        self.teacher, self.xs, self.mask_at = teacher, xs, mask_at
        self.values: Any = None
        self.done = torch.zeros(len(xs[0]), dtype=torch.bool)

    def __call__(self, idx: Any) -> Any:
        import torch

        missing = idx[~self.done[idx]]
        if len(missing):
            with torch.no_grad():
                out = first_output(self.teacher(*take(self.xs, missing, self.mask_at))).float()
            if self.values is None:
                self.values = out.new_zeros((len(self.xs[0]), *out.shape[1:]))
            self.values[missing] = out
            self.done[missing] = True
        return self.values[idx]


def train_steps(module: Any, n: int, loss_of: Callable[[Any], Any], step: Callable[[Any], None], *, steps: int,
                batch_size: int, seed: int, lr: float, owner: str, name: str, desc: str,
                what: str = "training") -> list[float]:
    """Run `steps` optimiser steps on `module` and return the loss of each; the module ends in eval mode.

    Args:
        module: the model being trained (`training_mode` is applied: Dropout off, BatchNorm by batch size).
        n: training samples; `minibatches` draws index batches from ``range(n)``.
        loss_of: minibatch indices -> loss tensor.
        step: loss -> None, one optimiser step (backward included).
        steps, batch_size, seed, lr: the config's; `lr` only for the message when the loss stops being finite.
        owner: the config's class name, for that message; name: the model's name; desc: the progress bar's text.
        what: the loss's name in that message (``"recovery"``, ``"distillation"``).
    """
    from tqdm.auto import tqdm

    training_mode(module, min(batch_size, n))
    losses: list[float] = []
    batches = minibatches(n, batch_size, steps, seed)
    with tqdm(batches, total=steps, disable=None, leave=False, desc=desc) as bar:
        for i, idx in enumerate(bar):
            loss = loss_of(idx)
            step(loss)
            losses.append(float(loss.detach()))
            if not math.isfinite(losses[-1]):
                raise WorkbenchError(
                    f"{name}: the {what} loss became {losses[-1]} at step {i + 1}; lower lr "
                    f"(now {lr:g}), e.g. {owner}(lr={lr / 10:g})."
                )
            if i % 10 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
    module.eval()
    return losses


__all__ = ["BATCHNORM_MIN_BATCH", "TeacherCache", "channels_last", "first_output", "minibatches",
           "soft_target_loss", "take", "to_channels_last", "train_steps", "training_mode", "training_split"]
