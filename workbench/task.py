"""`Task`: a model together with the data and the metric that say whether it still works.

A task owns an evaluation split (with labels where the task has them), a calibration split for int8
quantisation, a training split for recovery fine-tuning, and `evaluate(runner) -> dict`. `metric` names the
primary key of that dict. Built-in tasks live in `workbench.zoo`; `Task.from_model` wraps a user's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle, as_arrays

Runner = Callable[..., list[np.ndarray]]


def predict(runner: Runner, inputs: Sequence[np.ndarray], *, batch_size: int = 64) -> list[np.ndarray]:
    """Run `inputs` (one array per model input, sharing the batch dimension) through a runner in batches."""
    n = inputs[0].shape[0]
    parts: list[list[np.ndarray]] = []
    for i in range(0, n, batch_size):
        parts.append(runner(*[a[i:i + batch_size] for a in inputs]))
    return [np.concatenate(p, axis=0) for p in zip(*parts)]


def eval_rows(limit: int | None) -> slice:
    """The evaluation rows a `limit` selects (all for `None`); a clear error for anything but a positive int."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise WorkbenchError(f"limit must be a positive number of samples or None, got {limit!r}.")
    return slice(0, limit)


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax equals the label."""
    return float(np.mean(np.argmax(logits.reshape(len(logits), -1), axis=1) == labels))


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-sample cosine similarity of two batches (flattened per sample)."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-30), np.where(np.all(a == b, axis=1), 1.0, 0.0))
    return float(np.mean(cos))


def is_classifier_output(out: np.ndarray) -> bool:
    """A 2-D output with several columns is read as class scores (top-1 is meaningful)."""
    return out.ndim == 2 and out.shape[1] > 1


@dataclass(eq=False)
class Task:
    """A model plus its data and metric.

    Attributes:
        name: the task's name (``"digits-cnn"``, ...).
        model: the original model's handle.
        metric: the primary key of `evaluate`'s result (``"accuracy"``, ``"fidelity"``, ...).
        example_inputs: a small batch (>= 2 where the data allows), one array per model input.
        calibration: calibration inputs for int8 quantisation, one array per model input.
        eval_inputs: evaluation inputs, one array per model input.
        eval_labels: evaluation labels, or `None`.
        train_inputs / train_labels: training split for recovery fine-tuning (may be `None`).
        description: one line for tables and dashboards.
    """

    # An embedding model's 2-D output is a vector, not class scores: its fidelity is cosine, never top-1.
    embedding_output: ClassVar[bool] = False

    name: str
    model: ModelHandle
    metric: str
    example_inputs: list[np.ndarray]
    calibration: list[np.ndarray]
    eval_inputs: list[np.ndarray]
    eval_labels: np.ndarray | None = None
    train_inputs: list[np.ndarray] | None = None
    train_labels: np.ndarray | None = None
    description: str = ""
    higher_is_better: bool = True
    _reference: list[np.ndarray] | None = field(default=None, repr=False)

    def evaluate(self, runner: Runner, *, limit: int | None = None) -> dict[str, float]:
        """Run the evaluation split through `runner` and score it.

        Args:
            runner: a `workbench.runtime(...)` runner (or any callable with the same contract).
            limit: score only the first `limit` evaluation samples (a quick preview); `None` for all.

        Returns:
            A dict of metrics; `self.metric` is the primary one.
        """
        outputs, rows = self.run(runner, limit=limit)
        return self.score(outputs, rows)

    def run(self, runner: Runner, *, limit: int | None = None) -> tuple[list[np.ndarray], slice]:
        """Outputs of `runner` on the evaluation split (or its first `limit` rows), and the rows used."""
        rows = eval_rows(limit)
        return predict(runner, [a[rows] for a in self.eval_inputs]), rows

    def score(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> dict[str, float]:
        """Score model outputs for the evaluation rows `rows` (subclasses override)."""
        first = outputs[0]
        if self.eval_labels is not None:
            return {"accuracy": top1_accuracy(first, self.eval_labels[rows])}
        return {"fidelity": self.fidelity(outputs, rows)}

    def reference_outputs(self) -> list[np.ndarray]:
        """The original model's outputs on the evaluation split, in its own runtime (computed once)."""
        if self._reference is None:
            from workbench.runtimes import NATIVE, runtime

            self._reference = predict(runtime(self.model, NATIVE[self.model.framework]), self.eval_inputs)
        return self._reference

    def fidelity(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> float:
        """Agreement with the original model: top-1 agreement for classifiers, mean cosine otherwise.

        Rounded to 6 decimals, so float round-off between runtimes reads as 1.0 for the unmodified model.
        """
        ref = self.reference_outputs()[0][rows]
        out = outputs[0]
        if is_classifier_output(ref) and not self.embedding_output:
            value = float(np.mean(np.argmax(out, axis=1) == np.argmax(ref, axis=1)))
        else:
            value = mean_cosine(out, ref)
        return round(value, 6)

    @classmethod
    def from_model(
        cls,
        handle: ModelHandle | Any,
        inputs: Any,
        labels: Any = None,
        *,
        name: str | None = None,
        train_inputs: Any = None,
        train_labels: Any = None,
    ) -> Task:
        """Wrap a user's model and data as a task.

        Args:
            handle: a `ModelHandle` (or anything `workbench.load` accepts).
            inputs: evaluation inputs: a list of arrays, one per model input, sharing the batch dimension.
            labels: class labels for the first output; with them the metric is ``"accuracy"``, without them
                it is ``"fidelity"`` to the original model (1.0 for the unmodified model on every runtime).
            name: task name (defaults to the model's name).
            train_inputs / train_labels: a separate training split for `Recover` (labels optional: without them
                it distils from the original model). Without `train_inputs`, `Recover` trains on `inputs` (and
                `labels`) themselves, so scores after recovery are optimistic; the description says so.

        Example:
            >>> import torch
            >>> x = np.random.default_rng(0).standard_normal((32, 4)).astype(np.float32)
            >>> y = (x[:, 0] > 0).astype(np.int64)
            >>> mine = workbench.Task.from_model(torch.nn.Linear(4, 2), [x], labels=y, name="mine")
            >>> mine.metric, 0.0 <= mine.evaluate(workbench.runtime(mine.model, "onnxruntime"))["accuracy"] <= 1.0
            ('accuracy', True)
        """
        from workbench.formats.loader import load

        arrays = as_arrays(inputs)
        if not arrays or any(a.ndim == 0 for a in arrays):
            raise WorkbenchError("Task.from_model needs inputs: a list of arrays with a batch dimension.")
        n = arrays[0].shape[0]
        if any(a.shape[0] != n for a in arrays):
            raise WorkbenchError(
                f"Task.from_model: inputs disagree on the batch size: {[a.shape[0] for a in arrays]}."
            )
        example = [a[: min(n, 2)] for a in arrays]
        handle = handle if isinstance(handle, ModelHandle) else load(handle, example_inputs=example)
        if handle.example_inputs is None:
            handle.example_inputs = example
        label_arr = None
        if labels is not None:
            label_arr = np.asarray(labels)
            if label_arr.shape[:1] != (n,):
                raise WorkbenchError(f"Task.from_model: {n} inputs but labels of shape {label_arr.shape}.")
        description = f"{handle.name} on {n} user-supplied samples"
        if train_inputs is None:
            train, train_y = arrays, label_arr
            description += " (Recover trains on these same samples)"
        else:
            train = as_arrays(train_inputs)
            train_y = None if train_labels is None else np.asarray(train_labels)
            if len(train) != len(arrays) or any(t.shape[1:] != a.shape[1:] for t, a in zip(train, arrays)):
                raise WorkbenchError("Task.from_model: train_inputs must have the same inputs and shapes as inputs.")
            if train_y is not None and train_y.shape[:1] != train[0].shape[:1]:
                raise WorkbenchError(f"Task.from_model: {train[0].shape[0]} train_inputs but train_labels of shape "
                                     f"{train_y.shape}.")
        return cls(
            name=name or handle.name,
            model=handle,
            metric="accuracy" if label_arr is not None else "fidelity",
            example_inputs=example,
            calibration=[a[:128] for a in (train if train_inputs is not None else arrays)],
            eval_inputs=arrays,
            eval_labels=label_arr,
            train_inputs=train,
            train_labels=train_y,
            description=description,
        )
