"""The OpenVINO runner for a language model: the stateful decoder of an OpenVINO LM folder on the CPU plugin, with
the key/value cache held in the infer request's state and a greedy loop here.

A loaded OpenVINO LM folder runs as it is; a PyTorch language model (original or variant) runs as the fp32 folder
converted from its weights (cached, `workbench.formats.openvino_lm`); `measure` realises a quantised variant first
(`workbench.realize.openvino_lm_realizer`). Prompts are tokenised by the model's Hugging Face tokenizer with the
same chat template as the PyTorch runner, so every runtime sees the same ids.

`__call__(input_ids (B, L))` resets the state and feeds the batch in one call: the logits of every position
(``(B, L, V)`` float32: perplexity). `generate` times the first new token (prefill and one pick) and the decode
steps after it. Plugin settings (`plugin_config`): ``INFERENCE_NUM_THREADS`` pinned, one stream, latency hint, and
fp32 arithmetic (``INFERENCE_PRECISION_HINT: f32``: on an AVX-512-BF16 CPU the default is bf16) with an fp32 KV
cache (the default is u8 on such CPUs); weight-compressed folders keep the plugin's dynamic int8 quantisation of
activations for their int4/int8 matrix products (its fast kernels); see `workbench.formats.openvino_lm.plugin_config`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle
from workbench.runtimes.runner import Generation, Runner, decode_speed


class OpenVINOLM:
    """A compiled stateful decoder and its one infer request: one sequence batch at a time."""

    def __init__(self, folder: Path, threads: int | None, weight_compressed: bool, name: str) -> None:
        import openvino as ov

        from workbench.formats.openvino_lm import MODEL_XML, plugin_config

        try:
            core = ov.Core()
            model = core.read_model(str(folder / MODEL_XML))
            self.compiled = core.compile_model(model, "CPU", plugin_config(threads, weight_compressed))
        except Exception as e:  # noqa: BLE001 - OpenVINO raises RuntimeError for every load failure
            raise WorkbenchError(f"{folder}: OpenVINO cannot load this language model: {first_line(e)}. Rebuild it "
                                 "(workbench.export(model, 'openvino', out, task=...)).") from e
        names = {n for port in self.compiled.inputs for n in port.get_names()}
        missing = {"input_ids", "attention_mask", "position_ids", "beam_idx"} - names
        if missing:
            raise WorkbenchError(f"{name}: the IR lacks input(s) {', '.join(sorted(missing))}; the OpenVINO LM runner "
                                 "needs a stateful decoder in optimum-intel's layout.")
        self.request = self.compiled.create_infer_request()

    def feed(self, ids: np.ndarray, start: int) -> np.ndarray:
        """Append `ids` (batch x tokens) at positions ``start..``; the logits of those positions."""
        b, n = ids.shape
        self.request.infer({
            "input_ids": ids.astype(np.int64, copy=False),
            "attention_mask": np.ones((b, start + n), np.int64),
            "position_ids": np.broadcast_to(np.arange(start, start + n, dtype=np.int64), (b, n)),
            "beam_idx": np.arange(b, dtype=np.int32),
        })
        return self.request.get_tensor("logits").data

    def reset(self) -> None:
        self.request.reset_state()


def make_lm_runner(handle: ModelHandle, threads: int | None, name: str = "openvino") -> Runner:
    from importlib.metadata import version

    from workbench.formats.lm_folder import tokenizer_of
    from workbench.formats.openvino_lm import compressed, openvino_lm_of
    from workbench.runtimes.torch_lm_runner import prompt_ids

    folder = openvino_lm_of(handle)  # a PyTorch model runs as its fp32 conversion
    lm = OpenVINOLM(folder, threads, handle.framework == "openvino" and compressed(handle), handle.name)
    tokenizer = tokenizer_of(handle)
    context = int(handle.meta["lm"]["context"])

    def call(arrays: list[np.ndarray]) -> list[np.ndarray]:
        ids = arrays[0]
        if ids.ndim != 2 or ids.shape[1] < 1:
            raise WorkbenchError(f"{handle.name}: input_ids must be (batch, tokens) with at least one token.")
        if ids.shape[1] > context:
            raise WorkbenchError(f"{handle.name}: {ids.shape[1]} tokens exceed the model's context of {context}.")
        lm.reset()
        out = np.array(lm.feed(ids, 0), dtype=np.float32)
        lm.reset()
        return [out]

    def generate(prompt: str, max_new_tokens: int, chat: bool, stream: Callable[[str], None] | None) -> Generation:
        start = time.perf_counter()
        ids = prompt_ids(tokenizer, prompt, chat)
        if len(ids) + max_new_tokens > context:
            raise WorkbenchError(f"{handle.name}: {len(ids)} prompt tokens + {max_new_tokens} new ones exceed the "
                                 f"context of {context}.")
        eos = set(_eos_ids(tokenizer))
        new: list[int] = []
        stamps: list[float] = []
        lm.reset()
        logits = lm.feed(np.asarray([ids], np.int64), 0)[0, -1]
        pos = len(ids)
        while True:
            token = int(np.argmax(logits))
            stamps.append(time.perf_counter())
            new.append(token)  # the end-of-sequence token counts, as in the PyTorch runner
            if stream is not None:
                stream(tokenizer.decode(new, skip_special_tokens=True))
            if token in eos or len(new) >= max_new_tokens:
                break
            logits = lm.feed(np.asarray([[token]], np.int64), pos)[0, -1]
            pos += 1
        lm.reset()
        return Generation(text=tokenizer.decode(new, skip_special_tokens=True), prompt_tokens=len(ids),
                          new_tokens=len(new), ttft_ms=(stamps[0] - start) * 1e3,
                          tokens_per_s=decode_speed(len(new), stamps[0], stamps[-1]), token_ids=tuple(new))

    return Runner(name, handle, folder, threads, version("openvino"), handle.inputs, call, _generate=generate)


def _eos_ids(tokenizer: Any) -> list[int]:
    eos = tokenizer.eos_token_id
    return [] if eos is None else ([int(e) for e in eos] if isinstance(eos, (list, tuple)) else [int(eos)])
