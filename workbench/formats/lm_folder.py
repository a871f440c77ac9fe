"""Causal language models: a Hugging Face folder or a `.gguf` file in, a `ModelHandle` out, and a folder back.

What loads:
    * a Hugging Face model folder: ``config.json`` + ``*.safetensors`` (one file or shards with their index) +
      ``tokenizer.json``. Weights stored as pickles (``pytorch_model.bin``, ``*.pt``) are refused: unpickling
      runs code from the file. Remote code (``auto_map``) is never run.
    * a GGUF file (llama.cpp's format, e.g. ``SmolLM2-135M-Instruct.Q4_1.gguf``): transformers reads it through
      the `gguf` package and dequantises every tensor to float32. The result is materialised once as a Hugging
      Face folder in the workbench cache (keyed by the file's sha256), so the next load takes a second, not 20.

The handle is a PyTorch model (``framework="torch"``): its `module` is the transformers model, its single input
``input_ids`` (int64, batch × tokens) and its output ``logits``. ``meta["lm"]`` holds the `LMSpec`
(`workbench.core.lm`), ``meta["tokenizer"]`` the folder that holds ``tokenizer.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, file_sha256, module_fingerprint
from workbench.core.lm import META_KEY, LMSpec, lm_spec
from workbench.core.paths import cache_dir

PICKLED_WEIGHTS = ("pytorch_model.bin", "*.bin", "*.pt", "*.pth", "*.ckpt")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")
GGUF_MAGIC = b"GGUF"


def is_lm_folder(path: Path) -> bool:
    """A folder that holds a Hugging Face model (`config.json`)."""
    return path.is_dir() and (path / "config.json").is_file()


def load_lm(path: Path | str, name: str | None = None) -> ModelHandle:
    """Load a Hugging Face causal-LM folder or a `.gguf` file as a language-model handle.

    Raises:
        WorkbenchError: pickled weights, no weights, no tokenizer, a config that does not match the weights, a
            truncated or corrupt GGUF file, or an architecture transformers does not know.
    """
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".gguf":
        return load_gguf(path, name)
    if not path.is_dir():
        raise WorkbenchError(f"{path}: not a model folder or .gguf file.")
    return load_hf_folder(path, name or path.name)


def load_hf_folder(folder: Path, name: str) -> ModelHandle:
    """A Hugging Face folder (config.json + safetensors + tokenizer.json) as a handle; see `load_lm`."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise WorkbenchError(f"{folder}: no config.json, so this is not a Hugging Face model folder.")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as e:
        raise WorkbenchError(f"{config_path}: not valid JSON ({first_line(e)}). Re-save the model.") from e
    if config.get("auto_map"):
        raise WorkbenchError(f"{folder}: its config asks for custom Python code (auto_map); the workbench never runs "
                             "code from a model folder. Use a model of an architecture transformers ships.")
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickled = sorted({p.name for pattern in PICKLED_WEIGHTS for p in folder.glob(pattern)})
        if pickled:
            raise WorkbenchError(
                f"{folder}: the weights are pickles ({', '.join(pickled)}); loading a pickle runs code from the "
                "file, so the workbench refuses it. Convert them to safetensors where you trust the file "
                "(model.save_pretrained(dir, safe_serialization=True)).")
        raise WorkbenchError(f"{folder}: no weights (*.safetensors) beside config.json. Copy the model's "
                             "model.safetensors (or its shards and model.safetensors.index.json) into the folder.")
    if not (folder / "tokenizer.json").is_file():
        raise WorkbenchError(f"{folder}: no tokenizer.json. Save the tokenizer beside the model "
                             "(tokenizer.save_pretrained(dir)).")
    spec = LMSpec.from_hf_config(config)
    module = hf_model(folder)
    return lm_handle(module, spec, folder, folder, name, file_sha256([config_path, *weights]))


def hf_model(folder: Path) -> Any:
    """The transformers model in `folder`, fp32, eval mode; a clear error when weights and config disagree."""
    from transformers import AutoModelForCausalLM

    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            folder, dtype="float32", use_safetensors=True, trust_remote_code=False, local_files_only=True,
            output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        raise WorkbenchError(f"{folder}: transformers could not load this model: {first_line(e)}. Check that "
                             "config.json belongs to these weights and names an architecture transformers "
                             "ships.") from e
    missing = [k for k in info.get("missing_keys", []) if "lm_head" not in k or not model.config.tie_word_embeddings]
    bad = [*missing, *info.get("mismatched_keys", [])]
    if bad:
        raise WorkbenchError(
            f"{folder}: config.json does not match the weights: {len(bad)} tensor(s) missing or of another "
            f"shape (e.g. {bad[0]}). Use the config.json saved with these weights.")
    return model.eval()


def lm_handle(module: Any, spec: LMSpec, path: Path | None, tokenizer_dir: Path, name: str,
              fingerprint: str | None = None) -> ModelHandle:
    """The handle of a transformers causal LM (see the module docstring for its fields)."""
    import numpy as np

    params = sum(p.numel() for p in module.parameters())  # tied tensors are counted once by parameters()
    example = np.asarray([list(range(1, 17)), list(range(17, 33))], dtype=np.int64) % spec.vocab
    return ModelHandle(
        framework="torch",
        inputs=[TensorSpec("input_ids", (None, None), "int64")],
        outputs=[TensorSpec("logits", (None, None, spec.vocab), "float32")],
        num_params=params,
        fingerprint=fingerprint or module_fingerprint(module),
        source_format="module",
        name=name,
        module=module,
        path=path,
        example_inputs=[example],
        meta={META_KEY: spec.to_dict(), "tokenizer": str(tokenizer_dir)},
    )


def load_gguf(path: Path, name: str | None = None) -> ModelHandle:
    """A `.gguf` file as a handle, through a Hugging Face folder materialised once in the cache."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise WorkbenchError(f"{path}: cannot read the file ({e.strerror}).") from e
    if magic != GGUF_MAGIC:
        raise WorkbenchError(f"{path}: not a GGUF file (it does not start with 'GGUF'). Re-download or re-convert it.")
    digest = file_sha256([path])
    folder = cache_dir() / "lm" / f"gguf-{digest[:20]}"
    if not is_lm_folder(folder):
        write_folder(folder, lambda tmp: materialise_gguf(path, tmp))
    handle = load_hf_folder(folder, name or path.stem)
    handle.meta["source_file"] = str(path)
    return handle


def materialise_gguf(path: Path, out: Path) -> None:
    """Dequantise a GGUF file into a float32 Hugging Face folder at `out` (model + tokenizer)."""
    import gguf
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        gguf.GGUFReader(str(path))  # parses the header and every tensor's extent: a truncated file fails here
    except Exception as e:  # noqa: BLE001 - any parse failure means a damaged file
        raise WorkbenchError(f"{path}: the GGUF file is damaged or truncated ({type(e).__name__}: {first_line(e)}). "
                             "Re-download it and check its size.") from e
    kw = dict(gguf_file=path.name, local_files_only=True, trust_remote_code=False)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, **kw)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, dtype="float32", **kw)
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
        raise WorkbenchError(f"{path}: transformers could not read this GGUF file: {first_line(e)}.") from e
    # save_pretrained refuses a GGUF-loaded model: copy its float weights into a plain model of the same config
    config = AutoConfig.for_model(**{k: v for k, v in loaded.config.to_dict().items()
                                     if k not in ("quantization_config", "model_type")},
                                  model_type=loaded.config.model_type)
    plain = type(loaded)(config)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def write_folder(folder: Path, write: Any) -> Path:
    """Call `write(tmp_dir)`, then rename the directory to `folder`: an interrupted write leaves no half folder."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        write(tmp)
        if folder.exists():  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def save_lm_folder(handle: ModelHandle, out: Path) -> Path:
    """Write a language-model handle (original or variant) as a Hugging Face folder: config, fp32 safetensors,
    tokenizer files. What the ONNX Runtime GenAI and LiteRT builders read."""
    if handle.module is None or lm_spec(handle) is None:
        raise WorkbenchError(f"{handle.name}: save_lm_folder needs a PyTorch language model.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    handle.module.save_pretrained(out, safe_serialization=True)
    src = Path(handle.meta["tokenizer"])
    for f in TOKENIZER_FILES:
        if (src / f).is_file() and not (out / f).exists():
            shutil.copy2(src / f, out / f)
    return out


def lm_folder_of(handle: ModelHandle) -> Path:
    """A Hugging Face folder holding exactly this handle's weights: its own for a loaded original, else one
    written once to the cache (keyed by the weights' fingerprint)."""
    if handle.path is not None and is_lm_folder(Path(handle.path)) and not handle.lineage:
        return Path(handle.path)
    folder = cache_dir() / "lm" / f"variant-{handle.fingerprint[:20]}"
    if not is_lm_folder(folder):
        write_folder(folder, lambda tmp: save_lm_folder(handle, tmp))
    return folder


def tokenizer_of(handle: ModelHandle) -> Any:
    """The handle's tokenizer (a transformers fast tokenizer from `meta["tokenizer"]`), cached per folder."""
    folder = handle.meta.get("tokenizer")
    if not folder:
        raise WorkbenchError(f"{handle.name} has no tokenizer; load the model from a folder with tokenizer.json.")
    return cached_tokenizer(str(folder))


@lru_cache(maxsize=8)
def cached_tokenizer(folder: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise WorkbenchError(f"{folder}: cannot load the tokenizer: {first_line(e)}.") from e
