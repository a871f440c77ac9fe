"""Built-in offline tasks: models and data that ship with packages or this repository.

Nothing here downloads anything. `names()` lists the tasks and `load(name)` returns a `Task`; tasks are
cached per process (they are read-only: compression returns new models). `student(task, width=0.5)` builds an
untrained, narrower copy of a task's CNN to distil into (`workbench.Distill`).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING

from workbench.core.errors import WorkbenchError
from workbench.task import Task

if TYPE_CHECKING:
    import torch

DEFAULT = "kws"

_TASKS: dict[str, tuple[str, str]] = {
    "kws": ("workbench.zoo.kws", "MLPerf Tiny DS-CNN keyword spotting on espeak-ng speech in noise, accuracy"),
    "digits-cnn": ("workbench.zoo.digits", "MobileNet-style CNN on scikit-learn digits (32x32), accuracy"),
    "minilm": ("workbench.zoo.minilm", "MiniLM-L6 sentence embeddings, WordNet topic accuracy + cosine"),
    "silero-vad": ("workbench.zoo.vad", "Silero VAD v6 on synthesised speech, frame accuracy + F1"),
    "smollm2": ("workbench.zoo.smollm2", "SmolLM2-135M-Instruct language model: perplexity on Python docs, "
                                         "instruction pass rate"),
}


# task name -> (module, builder taking `width`) of the CNNs that can be built narrower
_STUDENTS: dict[str, tuple[str, str]] = {
    "digits-cnn": ("workbench.zoo.digits_net", "build_digits_cnn"),
    "kws": ("workbench.zoo.kws_net", "build_kws_dscnn"),
}


def names() -> list[str]:
    """Names of the built-in tasks; the first is the default."""
    return list(_TASKS)


def describe() -> dict[str, str]:
    """One line per task, for listings."""
    return {n: d for n, (_, d) in _TASKS.items()}


@lru_cache(maxsize=None)
def load(name: str = DEFAULT) -> Task:
    """Load a built-in task by name.

    Example:
        >>> task = workbench.zoo.load("digits-cnn")
        >>> task.metric, task.model.framework
        ('accuracy', 'torch')
    """
    if name not in _TASKS:
        raise WorkbenchError(f"Unknown zoo task {name!r}. Available: {', '.join(_TASKS)}.")
    module = importlib.import_module(_TASKS[name][0])
    return module.load_task()


def student(task: str | Task = DEFAULT, *, width: float = 0.5, seed: int = 0) -> "torch.nn.Module":
    """An untrained copy of a zoo CNN with `width` times its channels: a student for `workbench.Distill`.

    The architecture is the task's own (same layers, same input and output), with every channel count scaled
    by `width` and rounded to a multiple of 8 (`workbench.nets.blocks.scaled_channels`, MobileNet's width
    multiplier). The weights are a fresh PyTorch default initialisation drawn with `seed` (the global torch
    random state is left as it was), so the same seed gives the same student.

    Args:
        task: a zoo task or its name; ``"digits-cnn"`` and ``"kws"`` have students.
        width: channel multiplier in (0, 16]; 0.5 is "half width" (about a quarter of the pointwise MACs).
        seed: seed of the initial weights.

    Returns:
        An ``nn.Module`` in eval mode, untrained.

    Raises:
        WorkbenchError: a task whose network cannot be built narrower.

    Example:
        >>> half = workbench.zoo.student("digits-cnn", width=0.5)
        >>> sum(p.numel() for p in half.parameters()) < task.model.num_params / 3
        True
    """
    import torch

    name = getattr(task, "name", task)
    if name not in _STUDENTS:
        raise WorkbenchError(f"zoo.student: no width-scalable network for task {name!r}; these have one: "
                             f"{', '.join(_STUDENTS)}. For another model, build your own smaller nn.Module and "
                             "pass it to Distill(student=...).")
    module_name, builder = _STUDENTS[name]
    build = getattr(importlib.import_module(module_name), builder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(width).eval()
