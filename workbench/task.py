"""`Task`: a model together with the data and the metric that say whether it still works.

A task owns an evaluation split (with labels where the task has them), a calibration split for int8
quantisation, a training split for recovery fine-tuning, and `evaluate(runner) -> dict`. `metric` names the
primary key of that dict. Built-in tasks live in `workbench.zoo`; `Task.from_model` wraps a user's model.

Every metric measured on the sample comes with its 95 % interval, ``<metric>_low`` / ``<metric>_high``
(`workbench.measurement.intervals`): Wilson for rates (accuracy, agreement, pass rate), a bootstrap otherwise
(cosine, F1, perplexity). The figures themselves are exactly what they were without intervals.
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


def top1_correct(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row: whether its argmax equals the label (booleans)."""
    return np.argmax(logits.reshape(len(logits), -1), axis=1) == labels


def top1_accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose argmax equals the label."""
    return float(np.mean(top1_correct(logits, labels)))


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample cosine similarity of two batches (flattened per sample; 1 for two zero vectors)."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.where(den > 0, num / np.maximum(den, 1e-30), np.where(np.all(a == b, axis=1), 1.0, 0.0))


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean per-sample cosine similarity of two batches (flattened per sample)."""
    return float(np.mean(cosines(a, b)))


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
        """Score model outputs for the evaluation rows `rows` (subclasses override).

        With labels: ``accuracy`` (top-1) and its Wilson interval ``accuracy_low`` / ``accuracy_high``; without:
        ``fidelity`` and its interval (`fidelity_scores`).

        Example:
            >>> s = task.score(*task.run(workbench.runtime(task.model, "onnxruntime"), limit=200))
            >>> s["accuracy_low"] <= s["accuracy"] <= s["accuracy_high"], round(s["accuracy_high"] - s["accuracy_low"], 3)
            (True, 0.027)
        """
        from workbench.core.intervals import with_interval

        first = outputs[0]
        if self.eval_labels is not None:
            labels = self.eval_labels[rows]
            return with_interval("accuracy", top1_correct(first, labels), value=top1_accuracy(first, labels))
        return self.fidelity_scores(outputs, rows)

    def reference_outputs(self) -> list[np.ndarray]:
        """The original model's outputs on the evaluation split, in its own runtime (computed once)."""
        if self._reference is None:
            from workbench.runtimes import NATIVE, runtime

            self._reference = predict(runtime(self.model, NATIVE[self.model.framework]), self.eval_inputs)
        return self._reference

    def agreement_samples(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> np.ndarray:
        """Per evaluated sample, its agreement with the original model: booleans (top-1 agreement) for a
        classifier, cosines otherwise. `fidelity` is their mean; `fidelity_scores` adds the interval."""
        ref = self.reference_outputs()[0][rows]
        out = outputs[0]
        if is_classifier_output(ref) and not self.embedding_output:
            return np.argmax(out, axis=1) == np.argmax(ref, axis=1)
        return cosines(out, ref)

    def fidelity(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> float:
        """Agreement with the original model: top-1 agreement for classifiers, mean cosine otherwise.

        Rounded to 6 decimals, so float round-off between runtimes reads as 1.0 for the unmodified model.
        """
        return round(float(np.mean(self.agreement_samples(outputs, rows))), 6)

    def fidelity_scores(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> dict[str, float]:
        """``fidelity`` with its 95 % interval ``fidelity_low`` / ``fidelity_high``: Wilson for an agreement rate
        (booleans from `agreement_samples`), a bootstrap of the mean for cosines.

        A subclass that overrides `fidelity` but not `agreement_samples` gets no interval (NaNs): the samples
        would not be the ones its figure averages.
        """
        from workbench.core.intervals import with_interval

        value = self.fidelity(outputs, rows)
        if type(self).fidelity is not Task.fidelity and type(self).agreement_samples is Task.agreement_samples:
            return {"fidelity": value, "fidelity_low": float("nan"), "fidelity_high": float("nan")}
        return with_interval("fidelity", self.agreement_samples(outputs, rows), value=value)

    @classmethod
    def from_text(cls, handle: ModelHandle | Any, texts: Sequence[str], *,
                  instructions: Sequence[tuple[str, str]] = (), seq_len: int = 128, name: str | None = None) -> Task:
        """A language-model task for a user's own causal LM and text.

        Args:
            handle: a language-model handle (or a path `workbench.load` reads: .gguf, a Hugging Face folder).
            texts: held-out prose; it is tokenised, joined and cut into `seq_len`-token chunks, of which every
                fourth is held out for perplexity and agreement and the rest trains `Recover` and calibrates.
            instructions: ``(prompt, regex)`` pairs: an answer passes when the regex matches it (any case).
            seq_len: tokens per chunk.

        Returns:
            A `LanguageTask` (``metric == "perplexity"``, lower is better).
        """
        from workbench.formats.loader import load

        handle = handle if isinstance(handle, ModelHandle) else load(handle)
        return language_task(handle, texts, instructions=instructions, seq_len=seq_len, name=name)

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


def next_token_scores(logits: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position of one sequence: the negative log-likelihood of the next token and the greedy prediction.

    `logits` (L, V) for token ids `ids` (L,); returns `(nll, argmax)`, each of length L - 1 (float64, int64).
    """
    z = logits[:-1].astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    target = ids[1:]
    return -logp[np.arange(len(target)), target], np.argmax(logits[:-1], axis=1).astype(np.int64)


@dataclass(eq=False)
class LanguageTask(Task):
    """A causal language model with held-out text and instructions: perplexity (lower is better), greedy
    next-token agreement with the original, and the share of instructions answered right.

    `eval_inputs` is one int64 array of token-id chunks (n, L); `instructions` pairs a prompt with a regular
    expression the answer must match (case-insensitive). `evaluate(runner)` returns ``perplexity``,
    ``agreement`` (1.0 for the original model) and, when the runner can generate and there are instructions,
    ``pass_rate``, each with its 95 % interval (``_low`` / ``_high``): perplexity by a bootstrap over the
    held-out chunks (exp of the mean chunk NLL), agreement and pass rate by Wilson. The agreement interval
    treats every token position as independent, which tokens of one text are not: it is optimistic.
    `limit` takes the first `limit` chunks and instructions.
    """

    instructions: tuple[tuple[str, str], ...] = ()
    max_new_tokens: int = 24
    higher_is_better: bool = False

    def run(self, runner: Runner, *, limit: int | None = None) -> tuple[list[np.ndarray], slice]:
        """Per chunk and position: NLL and greedy next token; then a pass (1) / fail (0) per instruction."""
        import re

        rows = eval_rows(limit)
        ids = self.eval_inputs[0][rows]
        nll, top = [], []
        for row in ids:  # one sequence at a time: logits are tokens x vocabulary, large for a real model
            logits = runner(row[None, :])[0][0]
            a, b = next_token_scores(logits, row)
            nll.append(a)
            top.append(b)
        outputs = [np.asarray(nll), np.asarray(top)]
        if self.instructions and getattr(runner, "generates", False):
            passes = [bool(re.search(rx, runner.generate(p, self.max_new_tokens).text, re.I | re.S))
                      for p, rx in self.instructions[rows]]
            outputs.append(np.asarray(passes, dtype=np.float64))
        return outputs, rows

    def score(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> dict[str, float]:
        from workbench.core.intervals import exp_mean, with_interval

        nll = np.asarray(outputs[0], dtype=np.float64)
        chunks = nll.reshape(len(nll), -1).mean(axis=1)  # chunks are equally long: exp(mean) of these = perplexity
        out = with_interval("perplexity", chunks, value=float(np.exp(np.mean(outputs[0]))), statistic=exp_mean)
        out.update(with_interval("agreement", self.agreement_samples(outputs, rows),
                                 value=self.fidelity(outputs, rows)))
        if len(outputs) > 2:
            passes = np.asarray(outputs[2]) > 0.5
            out.update(with_interval("pass_rate", passes, value=float(np.mean(outputs[2])) if len(outputs[2])
                                     else float("nan")))
        return out

    def reference_outputs(self) -> list[np.ndarray]:
        """The original model's greedy next tokens on the evaluation text (PyTorch, computed once)."""
        if self._reference is None:
            from workbench.runtimes import runtime

            self._reference = LanguageTask.run(dataclass_copy(self, instructions=()), runtime(self.model, "torch"))[0]
        return self._reference

    def agreement_samples(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> np.ndarray:
        """Per evaluated position: whether the greedy next token matches the original model's."""
        return np.asarray(outputs[1] == self.reference_outputs()[1][rows]).reshape(-1)

    def fidelity(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> float:
        """Greedy next-token agreement with the original model, over every evaluated position."""
        return round(float(np.mean(self.agreement_samples(outputs, rows))), 6)


def dataclass_copy(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


def text_chunks(tokenizer: Any, texts: Sequence[str], seq_len: int) -> np.ndarray:
    """Token-id chunks (n, seq_len) int64 of `texts` joined by the end-of-sequence token (a partial tail dropped)."""
    sep = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    ids: list[int] = []
    for t in texts:
        ids += list(tokenizer(t)["input_ids"]) + sep
    n = len(ids) // seq_len
    return np.asarray(ids[: n * seq_len], dtype=np.int64).reshape(n, seq_len)


def language_task(handle: ModelHandle, texts: Sequence[str], *, instructions: Sequence[tuple[str, str]] = (),
                  seq_len: int = 128, eval_share: float = 0.25, name: str | None = None,
                  description: str = "") -> LanguageTask:
    """A `LanguageTask` for a language-model handle and its text (see `Task.from_text`)."""
    from workbench.core.lm import lm_spec
    from workbench.formats.lm_folder import tokenizer_of

    if lm_spec(handle) is None:
        raise WorkbenchError(f"Task.from_text needs a language model (a .gguf file or a Hugging Face folder); "
                             f"{handle.name} is not one. Use Task.from_model for other models.")
    if isinstance(texts, str) or not texts or not all(isinstance(t, str) for t in texts):
        raise WorkbenchError("Task.from_text takes a list of texts (strings), e.g. paragraphs of held-out prose.")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 8:
        raise WorkbenchError(f"seq_len must be an integer of at least 8 tokens, got {seq_len!r}.")
    if not 0 < eval_share < 1:
        raise WorkbenchError(f"eval_share must lie between 0 and 1, got {eval_share!r}.")
    for pair in instructions:
        if len(pair) != 2 or not all(isinstance(x, str) for x in pair):
            raise WorkbenchError(f"instructions are (prompt, regex) pairs of strings; got {pair!r}.")
    chunks = text_chunks(tokenizer_of(handle), texts, seq_len)
    if len(chunks) < 2:
        raise WorkbenchError(f"Task.from_text: the texts make {len(chunks)} chunk(s) of {seq_len} tokens; give more "
                             "text or a smaller seq_len (at least two chunks: one to evaluate, one to train on).")
    # a fixed split: every k-th chunk is held out for evaluation, the rest trains Recover and calibrates
    k = max(2, round(1 / eval_share))
    held = np.arange(len(chunks)) % k == 0
    train = chunks[~held]
    return LanguageTask(
        name=name or handle.name, model=handle, metric="perplexity", example_inputs=[chunks[:2]],
        calibration=[train[:16]], eval_inputs=[chunks[held]], train_inputs=[train],
        description=description or f"{handle.name}: perplexity on {int(held.sum())} held-out chunks of {seq_len} "
                                   f"tokens, {len(instructions)} instructions",
        instructions=tuple((str(p), str(r)) for p, r in instructions),
    )
