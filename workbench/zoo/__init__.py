"""Built-in offline tasks: models and data that ship with packages or this repository.

Nothing here downloads anything. `names()` lists the tasks and `load(name)` returns a `Task`; tasks are
cached per process (they are read-only: compression returns new models).
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from workbench.core.errors import WorkbenchError
from workbench.task import Task

DEFAULT = "kws"

_TASKS: dict[str, tuple[str, str]] = {
    "kws": ("workbench.zoo.kws", "MLPerf Tiny DS-CNN keyword spotting on espeak-ng speech in noise, accuracy"),
    "digits-cnn": ("workbench.zoo.digits", "MobileNet-style CNN on scikit-learn digits (32x32), accuracy"),
    "minilm": ("workbench.zoo.minilm", "MiniLM-L6 sentence embeddings, WordNet topic accuracy + cosine"),
    "silero-vad": ("workbench.zoo.vad", "Silero VAD v6 on synthesised speech, frame accuracy + F1"),
    "smollm2": ("workbench.zoo.smollm2", "SmolLM2-135M-Instruct language model: perplexity on Python docs, "
                                         "instruction pass rate"),
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
