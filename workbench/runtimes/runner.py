"""`Runner`: a model bound to one runtime, called with numpy arrays; the input check every runner shares."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, describe_signature

NATIVE = {"torch": "torch", "onnx": "onnxruntime", "tflite": "litert", "openvino": "openvino", "executorch": "executorch"}


@dataclass(frozen=True)
class Generation:
    """One greedy generation by a language-model runner, with its timings.

    Attributes:
        text: the new text (the prompt not repeated).
        prompt_tokens: tokens in the prompt (after the chat template, when one was applied).
        new_tokens: tokens generated (stops early at the end-of-sequence token).
        ttft_ms: time to first token: from the call to the first new token (tokenising, prefill, one step).
        tokens_per_s: decode speed: new tokens after the first, per second of their generation (`None` when
            fewer than two were generated).
        token_ids: the new token ids.
    """

    text: str
    prompt_tokens: int
    new_tokens: int
    ttft_ms: float
    tokens_per_s: float | None
    token_ids: tuple[int, ...] = ()


def decode_speed(new_tokens: int, first_at: float, end_at: float) -> float | None:
    """Tokens per second after the first token (the decode phase), from monotonic clock readings in seconds."""
    if new_tokens < 2 or end_at <= first_at:
        return None
    return (new_tokens - 1) / (end_at - first_at)


@dataclass(eq=False)
class Runner:
    """A model bound to one runtime. Call it with numpy arrays, one per input; get a list of arrays back.

    Attributes:
        runtime: ``"torch"``, ``"onnxruntime"``, ``"litert"`` or ``"tflite_runtime"``.
        handle: the model it runs.
        artifact: the file the runtime executes (`None` for an in-memory torch module).
        threads: intra-op threads (`None`: the runtime's default).
        version: the runtime library's version.
        fixed_batch: the batch size the model was exported for when it takes no other (many foreign files are
            fixed at 1): any number of samples is then fed through it batch by batch. `None`: any batch.
    """

    runtime: str
    handle: ModelHandle
    artifact: Path | None
    threads: int | None
    version: str
    inputs: list[TensorSpec]
    _call: Callable[[list[np.ndarray]], list[np.ndarray]] = field(repr=False)
    fixed_batch: int | None = None
    _generate: Callable[..., Generation] | None = field(default=None, repr=False)

    @property
    def generates(self) -> bool:
        """Whether this runner runs a language model (it has `generate`)."""
        return self._generate is not None

    def generate(self, prompt: str, max_new_tokens: int = 32, *, chat: bool = True,
                 stream: Callable[[str], None] | None = None) -> Generation:
        """Greedy generation from `prompt`: at most `max_new_tokens` new tokens, with time to first token and
        decode tokens/s. `chat`: wrap the prompt in the model's chat template (a user turn) when it has one.
        `stream`: called with the text so far after each new token (a chat box shows it as it grows).

        Raises:
            WorkbenchError: this runner's model is not a language model, or `max_new_tokens` is not positive.
        """
        if self._generate is None:
            raise WorkbenchError(f"{self.handle.name} is not a language model; generate() needs one "
                                 "(workbench.load a .gguf file or a Hugging Face model folder).")
        if not isinstance(prompt, str):
            raise WorkbenchError(f"generate() takes the prompt as a string, got {type(prompt).__name__}.")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise WorkbenchError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}.")
        try:
            return self._generate(prompt, max_new_tokens, chat, stream)
        except WorkbenchError:
            raise
        except Exception as e:
            raise WorkbenchError(f"{self.handle.name} failed to generate in {self.runtime}: {first_line(e)}.") from e

    def __call__(self, *arrays: Any) -> list[np.ndarray]:
        if len(arrays) == 1 and isinstance(arrays[0], (list, tuple)):
            arrays = tuple(arrays[0])
        checked = check_inputs(self.handle.name, self.inputs, arrays)
        try:
            if self.fixed_batch and checked and checked[0].ndim and checked[0].shape[0] != self.fixed_batch:
                return in_fixed_batches(self._call, checked, self.fixed_batch)
            return self._call(checked)
        except WorkbenchError:
            raise
        except Exception as e:
            raise WorkbenchError(
                f"{self.handle.name} failed in {self.runtime}: {first_line(e)}. "
                f"Expected inputs {describe_signature(self.inputs)}."
            ) from e


def renamed_specs(specs: list[TensorSpec], names: list[str]) -> list[TensorSpec]:
    """`specs` under the input names a converted file uses (shapes and dtypes kept); unchanged when the counts
    differ."""
    if len(specs) != len(names):
        return specs
    return [TensorSpec(n, s.shape, s.dtype) for s, n in zip(specs, names)]


def in_fixed_batches(call: Callable[[list[np.ndarray]], list[np.ndarray]], arrays: list[np.ndarray],
                     batch: int) -> list[np.ndarray]:
    """Run `call` on `arrays` `batch` rows at a time and concatenate; a short last chunk is padded (its padding's
    outputs dropped), an empty input runs one padding batch to learn the output shapes and returns none of it."""
    n = arrays[0].shape[0]
    if n == 0:
        return [o[:0] for o in call([np.zeros((batch, *a.shape[1:]), a.dtype) for a in arrays])]
    parts = []
    for i in range(0, n, batch):
        chunk = [a[i:i + batch] for a in arrays]
        short = batch - chunk[0].shape[0]
        if short:  # repeat the last row: real data, so no op sees values it would not (e.g. log of 0)
            chunk = [np.concatenate([c, np.repeat(c[-1:], short, axis=0)]) for c in chunk]
        outs = call(chunk)
        parts.append([o[:batch - short] if short and o.ndim and o.shape[0] == batch else o for o in outs])
    return [np.concatenate(p, axis=0) for p in zip(*parts)]


def check_inputs(
    model_name: str, specs: Sequence[TensorSpec], arrays: Sequence[Any]
) -> list[np.ndarray]:
    """Validate arrays against a signature; raise a `WorkbenchError` naming the expected signature.

    This runs on every call, so the happy path stays cheap (measured ~11 us per call before: the signature's
    text was built eagerly and numpy 2's ``dtype.name`` is a slow property): the text is built only for an error,
    and dtypes are compared as `np.dtype` objects.
    """
    if specs and len(arrays) != len(specs):
        raise WorkbenchError(f"{model_name} takes {len(specs)} input(s) {describe_signature(specs)}; got {len(arrays)}.")
    out = []
    for i, a in enumerate(arrays):
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        if not isinstance(a, np.ndarray):
            raise WorkbenchError(f"{model_name}: input {i} is a {type(a).__name__}; pass numpy arrays "
                                 f"{describe_signature(specs)}.")
        if i < len(specs):
            s = specs[i]
            if s.dtype is not None and a.dtype != _dtype(s.dtype):
                if _lossless_int(a, s.dtype):
                    a = a.astype(s.dtype)  # token ids: int64 from tokenizers, int32 in TFLite files
                else:
                    raise WorkbenchError(
                        f"{model_name}: input {s.name!r} has dtype {a.dtype.name}, expected {s.dtype} "
                        f"(signature {describe_signature(specs)}); convert with arr.astype(np.{s.dtype})."
                    )
            if s.shape is not None:
                ok = a.ndim == len(s.shape) and all(
                    d is None or d == n or j == 0 for j, (d, n) in enumerate(zip(s.shape, a.shape))
                )
                if not ok:
                    raise WorkbenchError(
                        f"{model_name}: input {s.name!r} has shape {tuple(a.shape)}, expected {s.describe()} "
                        f"(N = any batch size; signature {describe_signature(specs)})."
                    )
        out.append(a if a.flags.c_contiguous else np.ascontiguousarray(a))
    return out


@functools.lru_cache(maxsize=64)
def _dtype(name: str) -> np.dtype:
    return np.dtype(name)


def _lossless_int(a: np.ndarray, dtype: str) -> bool:
    """True when integer `a` converts to integer `dtype` without changing any value."""
    target = np.dtype(dtype)
    if a.dtype.kind not in "iu" or target.kind not in "iu":
        return False
    if a.size == 0:
        return True
    info = np.iinfo(target)
    return bool(a.min() >= info.min and a.max() <= info.max)
