"""The ONNX Runtime GenAI runner for a language model: ``og.Model`` on a GenAI folder, KV cache and greedy search.

A loaded GenAI folder runs as it is; a PyTorch language model (original or variant) runs as the fp32 folder the
builder makes of its weights (cached), as the ONNX Runtime runner runs a CNN's float conversion; `measure`
realises a quantised variant first (`workbench.realize.genai_realizer`). Prompts are tokenised by the model's
Hugging Face tokenizer with the same chat template as the PyTorch runner, so every runtime sees the same ids.

`__call__(input_ids (B, L))` appends each row to a fresh generator and returns the logits of every position
(``(B, L, V)`` float32: perplexity); `generate` times the first new token (prefill and one step) and the decode
steps after it. Threads: the decoder's ``intra_op_num_threads`` through ``og.Config.overlay``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle
from workbench.runtimes.runner import Generation, Runner, decode_speed


def genai_model(folder: Path, threads: int | None) -> Any:
    """``og.Model`` of a GenAI folder with `threads` intra-op threads (`None`: ONNX Runtime's default)."""
    import onnxruntime_genai as og

    try:
        config = og.Config(str(folder))
        if threads:
            config.overlay(json.dumps({"model": {"decoder": {"session_options": {
                "intra_op_num_threads": int(threads), "inter_op_num_threads": 1}}}}))
        return og.Model(config)
    except Exception as e:  # noqa: BLE001 - og raises RuntimeError for every load failure
        raise WorkbenchError(f"{folder}: ONNX Runtime GenAI cannot load this folder: {first_line(e)}. Rebuild it "
                             "(workbench.export(model, 'onnx-int4', out)).") from e


def make_lm_runner(handle: ModelHandle, threads: int | None, name: str = "onnxruntime") -> Runner:
    from importlib.metadata import version

    import onnxruntime_genai as og

    from workbench.formats.genai_folder import genai_folder_of
    from workbench.formats.lm_folder import tokenizer_of
    from workbench.runtimes.torch_lm_runner import prompt_ids

    folder = genai_folder_of(handle)
    model = genai_model(folder, threads)
    tokenizer = tokenizer_of(handle)
    context = int(handle.meta["lm"]["context"])

    def generator(max_length: int) -> Any:
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=max_length, do_sample=False)
        return og.Generator(model, params)

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        ids = arrays[0]
        if ids.ndim != 2 or ids.shape[1] < 1:
            raise WorkbenchError(f"{handle.name}: input_ids must be (batch, tokens) with at least one token.")
        if ids.shape[1] >= context:
            raise WorkbenchError(f"{handle.name}: {ids.shape[1]} tokens exceed the model's context of {context}.")
        rows = []
        for row in ids:  # one sequence per generator: logits are tokens x vocabulary
            gen = generator(ids.shape[1] + 1)
            gen.append_tokens(row[None, :].astype(np.int64))
            rows.append(np.asarray(gen.get_output("logits"), dtype=np.float32)[0])
        return [np.stack(rows)]

    def generate(prompt: str, max_new_tokens: int, chat: bool, stream: Callable[[str], None] | None) -> Generation:
        start = time.perf_counter()
        ids = prompt_ids(tokenizer, prompt, chat)
        if len(ids) + max_new_tokens > context:
            raise WorkbenchError(f"{handle.name}: {len(ids)} prompt tokens + {max_new_tokens} new ones exceed the "
                                 f"context of {context}.")
        gen = generator(len(ids) + max_new_tokens)
        gen.append_tokens(np.asarray([ids], dtype=np.int64))
        eos = set(_eos_ids(tokenizer))
        new: list[int] = []
        stamps: list[float] = []
        while not gen.is_done() and len(new) < max_new_tokens:
            gen.generate_next_token()
            token = int(gen.get_next_tokens()[0])
            stamps.append(time.perf_counter())
            new.append(token)  # the end-of-sequence token counts, as in the PyTorch runner
            if token in eos:
                break
            if stream is not None:
                stream(tokenizer.decode(new, skip_special_tokens=True))
        if not stamps:
            raise WorkbenchError(f"{handle.name} generated no token.")
        return Generation(text=tokenizer.decode(new, skip_special_tokens=True), prompt_tokens=len(ids),
                          new_tokens=len(new), ttft_ms=(stamps[0] - start) * 1e3,
                          tokens_per_s=decode_speed(len(new), stamps[0], stamps[-1]), token_ids=tuple(new))

    return Runner(name, handle, folder, threads, version("onnxruntime-genai"), handle.inputs, call,
                  _generate=generate)


def _eos_ids(tokenizer: Any) -> list[int]:
    eos = tokenizer.eos_token_id
    return [] if eos is None else ([int(e) for e in eos] if isinstance(eos, (list, tuple)) else [int(eos)])
