"""Knowledge distillation into a smaller student: train a given architecture from the model's soft targets.

`Distill(student=...)` trains a *copy* of `student` (any ``nn.Module`` that maps the task's inputs to the
teacher's output shape, typically a narrower network: `workbench.zoo.student(task, width=0.5)`) on the task's
training split, with the model being compressed as the teacher. The loss is Hinton, Vinyals & Dean's
("Distilling the Knowledge in a Neural Network", 2015)::

    loss = alpha * T**2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

* the *soft targets* ``softmax(teacher / T)`` carry what the teacher knows beyond the label (which wrong classes
  look alike); a temperature ``T > 1`` flattens them so those small probabilities matter;
* the ``T**2`` keeps the soft term's gradients at the scale of the hard term's whatever ``T`` is;
* ``alpha=1`` trains on the teacher alone (no labels needed); ``alpha=0`` on the labels alone, the same
  student, steps and minibatches as any other alpha: the baseline that says what the teacher adds.

The training loop, minibatches and Adam step are `Recover`'s (`workbench.compression.training`): seeded shuffled
minibatches, Dropout off, BatchNorm statistics re-estimated at batch >= 16, channels-last convolutions on CPU.
The teacher's logits are computed once per training sample (under ``no_grad``) and reused across epochs.

What comes back is a new `ModelHandle` around the trained student: its `lineage` is ``(Distill(...),)`` (the
student's own history: none of the teacher's pruning or quantisation applies to it), its `origin` the
uncompressed teacher (the fidelity reference, and the teacher of a later ``Recover(method="distill")``), and
``meta["distill"]`` says which student, from which teacher, and how it was trained. The student passed in and
the teacher are left exactly as they were.

Scope: classifiers (the first output ``(N, C)`` with integer labels ``0..C-1``), CNNs included. Language models
(`workbench.core.lm.is_language_model`, a `LanguageTask`) are refused with a `WorkbenchError`: distilling a
decoder into a smaller one needs a student architecture and tokenizer the workbench does not build; use
``Recover(method="distill")`` to distil a compressed copy of a language model from its original.

Example:
    >>> student = workbench.zoo.student(task, width=0.5)
    >>> small = workbench.compress(task.model, workbench.Distill(student=student, steps=5), task=task)
    >>> [c.label for c in small.lineage], small.num_params < task.model.num_params / 3
    (['distill-digitscnn-37k-a0.9-t4-5'], True)
    >>> small.meta["distill"]["student"], small.meta["distill"]["teacher"]
    ('DigitsCNN', 'digits-cnn')
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import time
from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

import numpy as np

from workbench.compression.base import LANGUAGE_MODEL, CompressionConfig, copy_module, technique, torch_variant
from workbench.compression.recover import constrained_step
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
from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, module_fingerprint


def _is_module(value: Any) -> bool:
    torch = sys.modules.get("torch")  # no nn.Module can exist unless torch is imported: no import needed here
    return torch is not None and isinstance(value, torch.nn.Module)


def _params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True, repr=False)
class Distill(CompressionConfig):
    """Train a copy of `student` from the compressed model's soft targets (knowledge distillation).

    Args:
        student: the architecture to train, an ``nn.Module`` with the teacher's output shape on the task's inputs
            (e.g. ``workbench.zoo.student(task, width=0.5)``); it is copied, never changed. Its current weights
            are the starting point (a fresh init for "train from scratch").
        steps: Adam steps (shuffled minibatches, cycling through epochs), >= 1.
        temperature: softmax temperature T of the soft targets, > 0 (Hinton et al. used 1-20; 4 is common).
        alpha: weight of the soft-target term in [0, 1]; ``1 - alpha`` weighs the cross-entropy on the labels.
            0 trains on labels alone (the baseline), 1 on the teacher alone.
        lr: Adam learning rate, > 0 (3e-3 suits a small CNN trained from scratch).
        batch_size: samples per step, >= 1 (capped at the size of the training split).
        seed: seed of the minibatch order; the same seed (and student) gives the same model.

    The config's JSON (`to_dict`) describes the student by class, parameter count and weight fingerprint, so its
    `digest` is stable; a module cannot be rebuilt from JSON, so `config_from_dict` refuses a Distill.

    Example:
        >>> d = workbench.Distill(student=workbench.zoo.student("digits-cnn"), steps=300)
        >>> d.label, workbench.Distill(student=d.student, alpha=0).label
        ('distill-digitscnn-37k-a0.9-t4-300', 'distill-digitscnn-37k-a0-t4-300')
    """

    kind: ClassVar[str] = "distill"

    student: Any
    steps: int = 300
    temperature: float = 4.0
    alpha: float = 0.9
    lr: float = 3e-3
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if not _is_module(self.student):
            raise ValueError(
                f"Distill: student must be a torch nn.Module (e.g. workbench.zoo.student(task, width=0.5)), got "
                f"{type(self.student).__name__}; for a ModelHandle pass handle.module. (A Distill config cannot "
                "be rebuilt from JSON: its student is a module, not data.)"
            )
        validate_training(self, "Distill", positive=("temperature", "lr"))
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, Real) or not 0.0 <= a <= 1.0:
            raise ValueError(f"Distill: alpha must be a number in [0, 1] (the soft targets' weight), got {a!r}")
        object.__setattr__(self, "alpha", float(a))

    @property
    def student_name(self) -> str:
        """The student's class name and size, e.g. ``DigitsCNN(36,874 params)``."""
        return f"{type(self.student).__name__}({_params(self.student):,} params)"

    def __repr__(self) -> str:  # the dataclass repr would print the whole module
        return (f"Distill(student={self.student_name}, steps={self.steps}, temperature={self.temperature:g}, "
                f"alpha={self.alpha:g}, lr={self.lr:g}, batch_size={self.batch_size}, seed={self.seed})")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        cls = type(self.student)
        d["student"] = {"class": f"{cls.__module__}.{cls.__qualname__}", "params": _params(self.student),
                        "fingerprint": module_fingerprint(self.student)}
        return d

    @property
    def label(self) -> str:
        k = _params(self.student) / 1000
        size = f"{k:.0f}k" if k >= 1 else str(_params(self.student))
        return f"distill-{type(self.student).__name__.lower()}-{size}-a{self.alpha:g}-t{self.temperature:g}-{self.steps}"


# ------------------------------------------------------------------------------------------------ torch


def _checked_outputs(handle: ModelHandle, teacher: Any, student: Any, xs: list[Any], labels: Any,
                     cfg: Distill) -> None:
    """One forward of both on two training samples: same output shape, and a classifier's, or a clear error."""
    import torch

    probe = [x[:2] for x in xs]
    with torch.no_grad():
        t_out = first_output(teacher(*probe))
        try:
            s_out = first_output(student(*probe))
        except Exception as e:  # noqa: BLE001 - any failure of the user's module on the task's input: say what to do
            raise WorkbenchError(
                f"Distill: the student {cfg.student_name} cannot run on {handle.name}'s input, of shape "
                f"{', '.join(str(tuple(x.shape[1:])) for x in xs)} per sample: {type(e).__name__}: {first_line(e)}."
                " Give it the teacher's input layout (e.g. workbench.zoo.student(task, width=0.5))."
            ) from e
    if tuple(s_out.shape) != tuple(t_out.shape):
        raise WorkbenchError(
            f"Distill: the student {cfg.student_name} outputs {tuple(s_out.shape[1:])} per sample, the teacher "
            f"{handle.name} {tuple(t_out.shape[1:])}; make the student's last layer produce the teacher's shape "
            f"(e.g. nn.Linear(..., {t_out.shape[-1]}) for {t_out.shape[-1]} classes)."
        )
    classes = t_out.shape[1] if t_out.dim() == 2 else 0
    ok = (labels is not None and classes > 1 and np.issubdtype(np.asarray(labels).dtype, np.integer)
          and int(np.min(labels)) >= 0 and int(np.max(labels)) < classes)
    if t_out.dim() != 2 or classes < 2 or (cfg.alpha < 1 and not ok):
        raise WorkbenchError(
            f"Distill trains classifiers (soft targets over classes, cross-entropy on class labels); "
            f"{handle.name}'s first output is {tuple(t_out.shape[1:])} per sample"
            f"{'' if labels is None else ' with labels that are not class ids'}. Use Recover(method='distill') "
            "to distil a compressed copy of this model from its original instead."
        )


@technique(Distill, "torch")
def distill_torch(handle: ModelHandle, cfg: Distill, task: Any) -> ModelHandle:
    """Train a copy of `cfg.student` from `handle`'s soft targets; see the module docstring."""
    inputs, labels = training_split(handle, task, owner="Distill", example="Distill(student=...)")
    if labels is None and cfg.alpha < 1:
        raise WorkbenchError(f"Distill: {getattr(task, 'name', task)!r} has no training labels, so only the soft "
                             "targets can teach: use Distill(..., alpha=1).")
    import torch
    import torch.nn.functional as F

    teacher = copy_module(handle).eval()  # a copy: nothing the loop does can reach the caller's teacher
    student = copy.deepcopy(cfg.student).eval()
    xs = [torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]
    _checked_outputs(handle, teacher, student, xs, labels, cfg)
    nhwc = channels_last(student, xs)
    if nhwc:
        xs = to_channels_last(student, xs)
        to_channels_last(teacher, [])  # the teacher's copy too: its forward passes take the faster kernels
    mask_at = next((i for i, spec in enumerate(handle.inputs) if spec.name == "attention_mask"), None)
    soft = TeacherCache(teacher, xs, mask_at) if cfg.alpha > 0 else None  # alpha=0: the teacher is never run
    ys = torch.from_numpy(np.asarray(labels)).long() if cfg.alpha < 1 else None
    params = dict(student.named_parameters())
    for p in params.values():
        p.requires_grad_(p.is_floating_point())
    optimizer = torch.optim.Adam([p for p in params.values() if p.requires_grad], lr=cfg.lr)
    start = time.perf_counter()

    def loss_of(idx: Any) -> Any:
        out = first_output(student(*take(xs, idx, mask_at)))
        loss = cfg.alpha * soft_target_loss(out, soft(idx), cfg.temperature) if soft is not None else 0.0
        return loss + (1 - cfg.alpha) * F.cross_entropy(out, ys[idx]) if ys is not None else loss

    def step(loss: Any) -> None:  # Recover's step with nothing to constrain: a plain Adam step
        constrained_step(optimizer, loss, params, {}, {}, {})

    losses = train_steps(student, len(xs[0]), loss_of, step, steps=cfg.steps, batch_size=cfg.batch_size,
                         seed=cfg.seed, lr=cfg.lr, owner="Distill", name=handle.name,
                         desc=cfg.label, what="distillation")
    if nhwc:
        student.to(memory_format=torch.contiguous_format)
    for p in params.values():
        p.requires_grad_(True)
        p.grad = None
    tail = losses[-max(1, len(losses) // 10):]
    meta = {"distill": {
        "student": type(cfg.student).__name__,
        "student_params": _params(student),
        "teacher": handle.name,
        "teacher_params": handle.num_params,
        "teacher_lineage": [c.label for c in handle.lineage],
        "loss": "alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross_entropy",
        "alpha": cfg.alpha, "temperature": cfg.temperature, "steps": cfg.steps, "lr": cfg.lr,
        "batch_size": cfg.batch_size, "seed": cfg.seed,
        "initial_loss": losses[0], "final_loss": float(np.mean(tail)),
        "seconds": round(time.perf_counter() - start, 3),
    }}
    # The student's history starts here: none of the teacher's compression (lineage, quantisation record) is its.
    fresh = dataclasses.replace(handle, lineage=(), meta={},
                                origin=handle.origin if handle.origin is not None else handle)
    return torch_variant(fresh, student, cfg, meta=meta)  # named "<teacher's base name>|<this label>"


@technique(Distill, LANGUAGE_MODEL)
def distill_language_model(handle: ModelHandle, cfg: Distill, task: Any) -> ModelHandle:
    """Refused: see the module docstring."""
    raise WorkbenchError(
        f"Distill does not train language-model students ({handle.name}): a smaller decoder needs an architecture "
        "and tokenizer the workbench does not build. To distil a compressed copy from its original, use "
        "compress(handle, Prune(...), Recover(method='distill', steps=50), task=task)."
    )
