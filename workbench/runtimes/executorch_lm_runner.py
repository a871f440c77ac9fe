"""The ExecuTorch language-model runner: a ``.pte`` with its KV cache inside (`workbench.formats.executorch_lm`),
run by ``executorch.runtime`` through its one ``forward`` method, greedy decoding driven from here.

* ``runner([input_ids])`` (int64, batch × tokens) returns ``[logits]`` (batch × tokens × vocab): each row is one
  call from position 0 (the program masks positions after the current one, so the previous row's cache needs no
  reset). What perplexity is computed from.
* ``runner.generate(prompt, max_new_tokens)``: greedy decoding with the chat template (optional), time to first
  token (tokenising + one prefill call + the first pick) and decode tokens/s (one call per token).

A PyTorch language-model handle is converted to float32 first (cached); quantised files come from the realiser.
Threads: ExecuTorch's process-wide thread pool (which XNNPACK uses) is set to `threads` before every call when it
has another size (`workbench.runtimes.executorch_runner.thread_pinner`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec
from workbench.runtimes.runner import Generation, Runner, decode_speed


class ExecutorchLM:
    """A loaded ExecuTorch LM program: its ``forward`` method and KV-cache length."""

    def __init__(self, path: Path, kv_len: int, method: str = "forward", pin: Callable[[], None] = lambda: None
                 ) -> None:
        from executorch.runtime import Runtime

        self.path = Path(path)
        self.pin = pin
        self.kv_len = int(kv_len)
        try:
            self.method = Runtime.get().load_program(str(path)).load_method(method)
        except Exception as e:  # noqa: BLE001 - the runtime raises RuntimeError for every load failure
            raise WorkbenchError(f"{path}: ExecuTorch cannot load this program ({first_line(e)}). Re-export it.") from e

    def run(self, ids: np.ndarray, start: int = 0) -> np.ndarray:
        """Feed `ids` (1-D) at positions ``start..``: logits ``(len, vocab)`` float32 (a copy)."""
        import torch

        n = len(ids)
        if n < 1 or start + n > self.kv_len:
            raise WorkbenchError(f"{self.path.name}: {start + n} tokens do not fit its KV cache of {self.kv_len}; "
                                 "use shorter sequences or convert with a longer kv_cache.")
        self.pin()
        tokens = torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).view(1, n)
        out = self.method.execute([tokens, torch.arange(start, start + n, dtype=torch.long)])[0]
        return out[0].numpy().copy()  # the output buffer is the program's own, overwritten by the next call

    def warm(self) -> None:
        """One prefill and one decode call: XNNPACK sets up its kernels for a shape on first use."""
        self.run(np.zeros(min(8, self.kv_len), np.int64))
        self.run(np.zeros(1, np.int64), 0)


def make_lm_runner(handle: ModelHandle, threads: int | None, name: str = "executorch") -> Runner:
    """A `Runner` for an ExecuTorch LM file (or a PyTorch language model, converted to float32 first)."""
    from importlib.metadata import version

    from workbench.core.lm import lm_spec
    from workbench.formats.executorch_lm import META, executorch_lm_file, read_meta
    from workbench.formats.lm_folder import tokenizer_of
    from workbench.runtimes.executorch_runner import thread_pinner
    from workbench.runtimes.torch_lm_runner import prompt_ids

    if name != "executorch":
        raise WorkbenchError(f"{handle.name}: language models run on ExecuTorch through 'executorch', not {name!r}.")
    spec = lm_spec(handle)
    if spec is None:
        raise WorkbenchError(f"{handle.name} is not a language model.")
    if handle.framework not in ("torch", "executorch"):
        raise WorkbenchError(f"{handle.name}: a {handle.framework} language model does not run on ExecuTorch; load "
                             "the Hugging Face folder or .gguf file instead.")
    path = executorch_lm_file(handle)
    meta = handle.meta.get(META) or read_meta(path)
    pin = thread_pinner(threads)
    pin()
    lm = ExecutorchLM(path, int(meta["kv_cache"]), str(meta.get("method") or "forward"), pin)
    lm.warm()
    tokenizer = tokenizer_of(handle)
    eos = set(meta.get("eos_token_ids") or [])
    if tokenizer.eos_token_id is not None:
        eos.add(int(tokenizer.eos_token_id))

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        (ids,) = arrays
        if ids.ndim != 2 or ids.shape[1] < 1:
            raise WorkbenchError(f"{handle.name}: input_ids must be (batch, tokens) with at least one token; got "
                                 f"shape {ids.shape}.")
        if ids.size and (ids.min() < 0 or ids.max() >= spec.vocab):
            raise WorkbenchError(f"{handle.name}: token ids must lie in [0, {spec.vocab}).")
        if not len(ids):
            return [np.zeros((0, ids.shape[1], spec.vocab), np.float32)]
        return [np.stack([lm.run(row) for row in ids])]

    def generate(prompt: str, max_new_tokens: int, chat: bool, stream: Callable[[str], None] | None) -> Generation:
        t0 = time.perf_counter()
        ids = prompt_ids(tokenizer, prompt, chat)
        if not ids:
            raise WorkbenchError("The prompt is empty after tokenising; give some text.")
        if len(ids) >= lm.kv_len:
            raise WorkbenchError(f"The prompt has {len(ids)} tokens; {path.name} holds {lm.kv_len} in its KV cache. "
                                 "Shorten the prompt or convert with a longer kv_cache.")
        token = int(np.argmax(lm.run(np.asarray(ids))[-1]))
        first_at = time.perf_counter()
        new = [token]
        if stream is not None:
            stream(tokenizer.decode(new, skip_special_tokens=True))
        pos = len(ids)
        while len(new) < max_new_tokens and token not in eos and pos < lm.kv_len:
            token = int(np.argmax(lm.run(np.asarray([token]), pos)[-1]))
            new.append(token)
            pos += 1
            if stream is not None:
                stream(tokenizer.decode(new, skip_special_tokens=True))
        end_at = time.perf_counter()
        return Generation(text=tokenizer.decode(new, skip_special_tokens=True), prompt_tokens=len(ids),
                          new_tokens=len(new), ttft_ms=(first_at - t0) * 1e3,
                          tokens_per_s=decode_speed(len(new), first_at, end_at), token_ids=tuple(new))

    spec_in = [TensorSpec("input_ids", (None, None), "int64")]
    return Runner(name, handle, path, threads, version("executorch"), spec_in, call, _generate=generate)

