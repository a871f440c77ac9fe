"""The LiteRT language-model runner: a prefill/decode ``.tflite`` (`workbench.formats.litert_lm`) run by
``ai-edge-litert``'s interpreter through its signature runners, with the KV cache held here between calls.

* ``runner([input_ids])`` (int64, batch × tokens) returns ``[logits]`` (batch × tokens × vocab): each row is
  prefilled from an empty cache in chunks of the file's prefill lengths (the last chunk padded; padding sits at
  later positions, which the causal mask hides from the real tokens), or decoded token by token when the prefill
  signatures return no logits. What perplexity is computed from.
* ``runner.generate(prompt, max_new_tokens)``: greedy decoding with the chat template (optional), time to first
  token (tokenising + prefill + the first pick) and decode tokens/s.

A PyTorch language-model handle is converted to float32 first (cached); quantised files come from the realiser.
Every signature is invoked once when the runner is made (XNNPACK prepares each on first use, seconds for SmolLM2),
so the first generation's time to first token is not that set-up. Each signature holds its own packed weights:
SmolLM2 with three signatures peaks at 2.7 GB resident in fp32, 1.2 GB in int8. Every call copies the whole KV
cache in and out of the interpreter (the signature runner's interface): for SmolLM2 at a 512-token cache that is
23.6 MB each way per decoded token, part of what the measured tokens/s include.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle, TensorSpec
from workbench.runtimes.runner import Generation, Runner, decode_speed


class LiteRTLM:
    """A loaded prefill/decode file: its signature runners, cache shapes and the logic of one sequence."""

    def __init__(self, path: Path, threads: int | None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        self.interp = Interpreter(model_path=str(path), **({"num_threads": threads} if threads else {}))
        sigs = self.interp.get_signature_list()
        if "decode" not in sigs:
            raise WorkbenchError(f"{path}: no 'decode' signature; not a LiteRT language-model file.")
        self.decode_runner = self.interp.get_signature_runner("decode")
        self.prefill: dict[int, Any] = {}
        logits = []
        for key in sigs:
            if key.startswith("prefill"):
                r = self.interp.get_signature_runner(key)
                self.prefill[int(r.get_input_details()["tokens"]["shape"][1])] = r
                logits.append("logits" in sigs[key]["outputs"])
        self.prefill_logits = bool(self.prefill) and all(logits)
        details = self.decode_runner.get_input_details()
        self.kv_names = sorted(k for k in details if k.startswith("kv_cache"))
        self.kv_shapes = {k: tuple(int(d) for d in details[k]["shape"]) for k in self.kv_names}
        self.kv_len = self.kv_shapes[self.kv_names[0]][1]

    def warm(self) -> None:
        """Invoke every signature once: the interpreter prepares each (XNNPACK packs its weights) on first use, which
        would otherwise land in the first measured time to first token (tens of seconds for SmolLM2)."""
        for n, runner in self.prefill.items():
            runner(tokens=np.zeros((1, n), np.int32), input_pos=np.arange(n, dtype=np.int32), **self.empty_cache())
        self.step(0, 0, self.empty_cache())

    def empty_cache(self) -> dict[str, np.ndarray]:
        return {k: np.zeros(s, np.float32) for k, s in self.kv_shapes.items()}

    def step(self, token: int, pos: int, kv: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Decode one token at `pos`: ``(logits (vocab,), cache)``."""
        out = self.decode_runner(tokens=np.array([[token]], np.int32), input_pos=np.array([pos], np.int32), **kv)
        return out["logits"][0, -1], {k: out[k] for k in self.kv_names}

    def run(self, ids: np.ndarray, kv: dict[str, np.ndarray], start: int = 0,
            all_logits: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Feed `ids` (1-D) at positions ``start..``: ``(logits (len, vocab) or (1, vocab) of the last, cache)``."""
        n = len(ids)
        if start + n > self.kv_len:
            raise WorkbenchError(f"{self.path.name}: {start + n} tokens do not fit its KV cache of {self.kv_len}; "
                                 f"use shorter sequences or convert with a longer kv_cache.")
        rows: list[np.ndarray] = []
        i = 0
        while i < n:
            left = n - i
            # prefill without logits outputs only serves tokens whose logits are not wanted (all but the last)
            usable = self.prefill_logits or (not all_logits and left > 1)
            length = self.chunk(start + i, left) if usable else 0
            if length:
                take = min(left if self.prefill_logits else left - 1, length)
                tokens = np.zeros((1, length), np.int32)
                tokens[0, :take] = ids[i:i + take]
                pos = np.arange(start + i, start + i + length, dtype=np.int32)
                out = self.prefill[length](tokens=tokens, input_pos=pos, **kv)
                kv = {k: out[k] for k in self.kv_names}
                if self.prefill_logits and (all_logits or i + take == n):
                    rows.append(out["logits"][0, :take])
                i += take
                continue
            logits, kv = self.step(int(ids[i]), start + i, kv)
            if all_logits or i == n - 1:
                rows.append(logits[None])
            i += 1
        out_logits = np.concatenate(rows, axis=0) if rows else np.zeros((0, 0), np.float32)
        return (out_logits if all_logits else out_logits[-1:]), kv

    def chunk(self, pos: int, left: int) -> int:
        """The prefill length for `left` tokens at `pos`: the shortest that holds them, else the longest; never
        one whose padding would run past the cache (the cache update writes the whole chunk). 0: none fits."""
        fits = [n for n in sorted(self.prefill) if pos + n <= self.kv_len]
        holding = [n for n in fits if n >= left]
        return holding[0] if holding else (fits[-1] if fits else 0)


def make_lm_runner(handle: ModelHandle, threads: int | None, name: str = "litert") -> Runner:
    """A `Runner` for a LiteRT LM file (or a PyTorch language model, converted to float32 first)."""
    from importlib.metadata import version

    from workbench.core.lm import lm_spec
    from workbench.formats.litert_lm import litert_lm_file
    from workbench.formats.lm_folder import tokenizer_of

    if name != "litert":
        raise WorkbenchError(f"{handle.name}: language models run on LiteRT through 'litert', not {name!r}.")
    spec = lm_spec(handle)
    if spec is None:
        raise WorkbenchError(f"{handle.name} is not a language model.")
    path = litert_lm_file(handle)
    lm = LiteRTLM(path, threads)
    lm.warm()
    tokenizer = tokenizer_of(handle)
    eos = set(handle.meta.get("litert_lm", {}).get("eos_token_ids") or [])
    if tokenizer.eos_token_id is not None:
        eos.add(int(tokenizer.eos_token_id))

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        (ids,) = arrays
        if ids.ndim != 2:
            raise WorkbenchError(f"{handle.name}: input_ids must be (batch, tokens); got shape {ids.shape}.")
        if ids.size and (ids.min() < 0 or ids.max() >= spec.vocab):
            raise WorkbenchError(f"{handle.name}: token ids must lie in [0, {spec.vocab}).")
        rows = [lm.run(row, lm.empty_cache())[0] for row in ids]
        if not rows:
            return [np.zeros((0, ids.shape[1], spec.vocab), np.float32)]
        return [np.stack(rows).astype(np.float32, copy=False)]

    def generate(prompt: str, max_new_tokens: int, chat: bool, stream: Callable[[str], None] | None) -> Generation:
        t0 = time.perf_counter()
        ids = prompt_ids(tokenizer, prompt, chat)
        if not ids:
            raise WorkbenchError("The prompt is empty after tokenising; give some text.")
        if len(ids) >= lm.kv_len:
            raise WorkbenchError(f"The prompt has {len(ids)} tokens; {path.name} holds {lm.kv_len} in its KV cache. "
                                 "Shorten the prompt or convert with a longer kv_cache.")
        logits, kv = lm.run(np.asarray(ids), lm.empty_cache(), all_logits=False)
        token = int(np.argmax(logits[-1]))
        first_at = time.perf_counter()
        new = [token]
        if stream is not None:
            stream(tokenizer.decode(new, skip_special_tokens=True))
        pos = len(ids)
        while len(new) < max_new_tokens and token not in eos and pos < lm.kv_len:
            step_logits, kv = lm.step(token, pos, kv)
            token = int(np.argmax(step_logits))
            new.append(token)
            pos += 1
            if stream is not None:
                stream(tokenizer.decode(new, skip_special_tokens=True))
        end_at = time.perf_counter()
        return Generation(text=tokenizer.decode(new, skip_special_tokens=True), prompt_tokens=len(ids),
                          new_tokens=len(new), ttft_ms=(first_at - t0) * 1e3,
                          tokens_per_s=decode_speed(len(new), first_at, end_at), token_ids=tuple(new))

    spec_in = [TensorSpec("input_ids", (None, None), "int64")]
    return Runner(name, handle, path, threads, version("ai-edge-litert"), spec_in, call, _generate=generate)


def prompt_ids(tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    """Token ids of `prompt`: as a user turn in the tokenizer's chat template when `chat` and it has one."""
    if chat and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return list(tokenizer(prompt)["input_ids"])
