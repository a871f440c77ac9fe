"""The PyTorch runner for a language model: the transformers model itself, greedy `generate` with its KV cache.

`__call__(input_ids)` returns the logits of every position (what perplexity is computed from); `generate` times
the first new token (prefill + one step) and the decode steps after it, through a streamer that transformers
calls once per new token.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from workbench.core.errors import WorkbenchError
from workbench.core.handle import ModelHandle
from workbench.runtimes.runner import Generation, Runner, decode_speed
from workbench.runtimes.torch_runner import torch_threads


def prompt_ids(tokenizer: Any, prompt: str, chat: bool) -> list[int]:
    """The token ids every runtime feeds for `prompt`: wrapped as one user turn in the tokenizer's chat template
    (with the assistant's turn opened) when `chat` and the tokenizer has a template, else the plain text."""
    if chat and getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # some versions return a BatchEncoding
            ids = ids["input_ids"]
        return [int(i) for i in ids]
    return [int(i) for i in tokenizer(prompt)["input_ids"]]


def make_lm_runner(handle: ModelHandle, threads: int | None, name: str = "torch") -> Runner:
    import torch

    from workbench.formats.lm_folder import tokenizer_of

    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name} is a {handle.source_format} language model; it runs in its own "
                             "runtime, not 'torch'. Load the Hugging Face folder or .gguf file for torch.")
    model = handle.module
    tokenizer = tokenizer_of(handle)

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        with torch_threads(threads), torch.no_grad():
            out = model(input_ids=torch.from_numpy(arrays[0]), use_cache=False)
        return [out.logits.float().numpy()]

    def generate(prompt: str, max_new_tokens: int, chat: bool, stream: Callable[[str], None] | None) -> Generation:
        from transformers.generation.streamers import BaseStreamer

        start = time.perf_counter()
        ids = prompt_ids(tokenizer, prompt, chat)
        stamps: list[float] = []
        new: list[int] = []

        class Clock(BaseStreamer):  # transformers calls put() with the prompt once, then with each new token
            def put(self, value: Any) -> None:
                tokens = value.reshape(-1).tolist()
                if not getattr(self, "seen_prompt", False):
                    self.seen_prompt = True
                    return
                stamps.append(time.perf_counter())
                new.extend(int(t) for t in tokens)
                if stream is not None:
                    stream(tokenizer.decode(new, skip_special_tokens=True))

            def end(self) -> None:
                pass

        eos = tokenizer.eos_token_id
        with torch_threads(threads), torch.no_grad():
            model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                           max_new_tokens=max_new_tokens, do_sample=False, use_cache=True, streamer=Clock(),
                           eos_token_id=eos, pad_token_id=tokenizer.pad_token_id or eos,
                           temperature=None, top_p=None, top_k=None)
        if not stamps:
            raise WorkbenchError(f"{handle.name} generated no token.")
        text = tokenizer.decode(new, skip_special_tokens=True)
        return Generation(text=text, prompt_tokens=len(ids), new_tokens=len(new),
                          ttft_ms=(stamps[0] - start) * 1e3, tokens_per_s=decode_speed(len(new), stamps[0],
                                                                                       stamps[-1]),
                          token_ids=tuple(new))

    return Runner(name, handle, handle.path, threads, torch.__version__, handle.inputs, call, _generate=generate)
