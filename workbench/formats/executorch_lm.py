"""ExecuTorch language-model files: a Hugging Face Llama folder in, a ``.pte`` program with its KV cache out.

Conversion wraps the folder's transformers model in `workbench.nets.llama_decoder.XnnpackDecoder` (the same
weights, ops XNNPACK delegates, one K and one V buffer per layer updated in place), exports it with
`torch.export` for 1 to ``kv_cache`` tokens per call, and lowers it with ExecuTorch's `XnnpackPartitioner`:

* one method, ``forward``: ``tokens`` int64 [1, T] and ``input_pos`` int64 [T] in, logits float32 [1, T, vocab]
  out. A prompt is prefilled in one call, each new token decoded in another; the cache persists between calls
  of one loaded method, and a new sequence simply starts again at position 0 (later positions are masked).

Weights stay float32 or are quantised with torchao before export, on every linear layer (the LM head included;
the embedding table stays float32, so a tied head is stored twice):

* ``int8``: int8 weights per output channel, activations quantised to int8 per token at run time (XNNPACK's
  dynamically quantised fully-connected kernels, "8da8w");
* ``int4``: int4 weights in groups of 32/64/128/256 along the input, same dynamic int8 activations ("8da4w").

Beside ``model.pte`` the converter writes ``model.tokenizer/``: the tokenizer files and ``executorch_lm.json``
(the `LMSpec`, the recipe, the KV-cache length, end-of-sequence ids, parameter count). `load_executorch_lm` reads
the pair back as a handle (``framework="executorch"``, ``source_format="pte"``, ``meta["executorch_lm"]``);
`artifact_files` lists every file of the pair (what an export manifest must cover).

Conversion runs in a child Python process by default (lowering 30 layers takes minutes and a few GB, which a
sweep holding model copies should not pay in its own process).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec, file_sha256
from workbench.core.lm import META_KEY, LMSpec
from workbench.formats.lm_sidecar import (
    copy_with_sidecar,
    find_sidecar,
    has_sidecar,
    read_sidecar_meta,
    sidecar_files,
)
from workbench.formats.lm_sidecar import tokenizer_dir as sidecar_dir

META_FILE = "executorch_lm.json"
META = "executorch_lm"
"""The handle's ``meta`` key of a loaded ExecuTorch language model (its recipe and KV-cache length)."""
FORMAT = "edge-workbench/executorch-lm/1"
WEIGHTS = ("fp32", "int8", "int4")
GROUP_SIZES = (32, 64, 128, 256)
DEFAULT_KV_CACHE = 512
CONVERT_TIMEOUT_S = 3600


# ------------------------------------------------------------------------------------------------ paths


def tokenizer_dir(path: Path | str) -> Path:
    """The folder beside the LM file that holds its tokenizer and metadata: ``<stem>.tokenizer/``."""
    return sidecar_dir(path)


def is_executorch_lm(path: Path | str) -> bool:
    """A ``.pte`` file with its ``<stem>.tokenizer/executorch_lm.json`` beside it (what `convert_lm` writes), or
    a folder holding exactly one such file (what the export targets write)."""
    p = Path(path)
    if p.is_dir():
        return find_executorch_lm(p) is not None
    return has_sidecar(p, ".pte", META_FILE)


def find_executorch_lm(folder: Path | str) -> Path | None:
    """The one ExecuTorch LM file in `folder` (``*.pte`` with its tokenizer folder), or `None`."""
    return find_sidecar(folder, ".pte", META_FILE)


def artifact_files(path: Path | str) -> list[Path]:
    """Every file of an ExecuTorch LM artefact: the ``.pte`` first, then the tokenizer folder's files (sorted)."""
    return sidecar_files(path)


def copy_executorch_lm(src: Path | str, dst: Path | str) -> Path:
    """Copy an ExecuTorch LM file and its tokenizer folder to `dst` (a ``.pte`` path); returns `dst`."""
    return copy_with_sidecar(src, dst)


def read_meta(path: Path | str) -> dict[str, Any]:
    """The ``executorch_lm.json`` of an ExecuTorch LM file."""
    return read_sidecar_meta(path, META_FILE, FORMAT, "an ExecuTorch language-model file")


# -------------------------------------------------------------------------------------------- config


def check_recipe(weights: str, group_size: int | None) -> int | None:
    """Validate a weight recipe; returns the int4 group size (32 when not given) or `None`.

    Example:
        >>> check_recipe("int4", None), check_recipe("int8", None)
        (32, None)
    """
    if weights not in WEIGHTS:
        raise WorkbenchError(f"ExecuTorch language models store weights as {', '.join(WEIGHTS)}; got {weights!r}.")
    if weights != "int4":
        return None
    group = 32 if group_size is None else group_size
    if group not in GROUP_SIZES:
        raise WorkbenchError(f"ExecuTorch int4 weights come in groups of {', '.join(map(str, GROUP_SIZES))}; "
                             f"got {group_size!r}.")
    return group


def check_config(config: dict[str, Any], kv_cache: int) -> float:
    """Check that `XnnpackDecoder` implements a Hugging Face ``config.json``; returns its RoPE base (theta).

    Raises:
        WorkbenchError: an architecture or option the decoder does not implement (another activation, scaled
            RoPE, sliding windows, heads that do not group), with what it found.
    """
    problems = []
    arch = config.get("model_type")
    if arch not in ("llama", "mistral"):
        problems.append(f"model_type {arch!r} (supported: llama, mistral)")
    if config.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {config.get('hidden_act')!r} (needs silu)")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in (None, "default"):
        problems.append(f"RoPE type {rope_type!r} (needs the default, unscaled RoPE)")
    if config.get("sliding_window"):
        problems.append("sliding-window attention")
    heads, kv = config.get("num_attention_heads"), config.get("num_key_value_heads") or config.get(
        "num_attention_heads")
    if isinstance(heads, int) and isinstance(kv, int) and heads % kv:
        problems.append(f"{heads} attention heads do not group over {kv} KV heads")
    if problems:
        raise WorkbenchError("ExecuTorch conversion handles Llama-style decoders only; this config has "
                             + "; ".join(problems) + ". Run this model with runtime 'torch' or 'onnxruntime'.")
    spec = LMSpec.from_hf_config(config)
    if kv_cache < 1 or kv_cache > spec.context:
        raise WorkbenchError(f"kv_cache must be between 1 and the model's context ({spec.context}); got {kv_cache}.")
    theta = rope.get("rope_theta") if isinstance(rope, dict) else None
    return float(theta or config.get("rope_theta") or 10000.0)


# ---------------------------------------------------------------------------------------------- convert


def convert_lm(folder: Path | str, out: Path | str, *, weights: str = "fp32", group_size: int | None = None,
               kv_cache: int | None = None, isolated: bool = True) -> Path:
    """Convert a Hugging Face Llama folder to an ExecuTorch language-model file at `out` (``.pte``) and its
    ``<stem>.tokenizer/`` folder; returns `out`.

    Args:
        folder: config.json + safetensors + tokenizer.json.
        out: the ``.pte`` path (its tokenizer folder goes beside it). Written atomically: the file appears last.
        weights: ``"fp32"``, ``"int8"`` (8da8w, per channel) or ``"int4"`` (8da4w, groups).
        group_size: int4 group size (32, 64, 128 or 256; default 32).
        kv_cache: KV-cache length in tokens (prompt + generated); default min(512, the model's context).
        isolated: convert in a child process.

    Raises:
        WorkbenchError: not a Llama-style folder, a bad recipe, or a conversion failure (with ExecuTorch's reason).
    """
    from workbench.formats.litert_lm import TOKENIZER_FILES, eos_ids, safetensors_params

    folder, out = Path(folder), Path(out)
    group = check_recipe(weights, group_size)
    if not (folder / "config.json").is_file() or not list(folder.glob("*.safetensors")):
        raise WorkbenchError(f"{folder}: ExecuTorch conversion needs a Hugging Face folder (config.json + "
                             "*.safetensors).")
    if not (folder / "tokenizer.json").is_file():
        raise WorkbenchError(f"{folder}: no tokenizer.json; save the tokenizer beside the model.")
    config = json.loads((folder / "config.json").read_text())
    spec = LMSpec.from_hf_config(config)
    kv = min(DEFAULT_KV_CACHE, spec.context) if kv_cache is None else int(kv_cache)
    check_config(config, kv)
    args = {"folder": str(folder), "weights": weights, "group_size": group, "kv_cache": kv}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}-") as tmp:
        tmp_file = Path(tmp) / "model.pte"
        args["out"] = str(tmp_file)
        if isolated:
            convert_in_child(args)
        else:
            convert_in_process(**args)
        weights_files = [folder / "config.json", *sorted(folder.glob("*.safetensors"))]
        meta = {"format": FORMAT, "lm": spec.to_dict(), "weights": weights, "group_size": group, "kv_cache": kv,
                "method": "forward", "float_linears": float_linears(spec, weights, group),
                "eos_token_ids": eos_ids(folder, config),
                "num_params": safetensors_params(folder), "source_fingerprint": file_sha256(weights_files),
                "converter": converter_version()}
        side = tokenizer_dir(tmp_file)
        side.mkdir()
        for name in TOKENIZER_FILES:
            if (folder / name).is_file():
                shutil.copy2(folder / name, side / name)
        (side / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        shutil.rmtree(tokenizer_dir(out), ignore_errors=True)
        out.unlink(missing_ok=True)
        os.replace(side, tokenizer_dir(out))
        os.replace(tmp_file, out)
    return out


def convert_in_child(args: dict[str, Any]) -> None:
    """`convert_in_process(**args)` in a child Python process; its failure comes back as a WorkbenchError."""
    from workbench.core.isolated import run_child

    code = ("import json, sys\nfrom workbench.formats.executorch_lm import convert_in_process\n"
            "from workbench.core.errors import WorkbenchError\n"
            "try:\n    convert_in_process(**json.loads(sys.argv[1]))\n"
            "except WorkbenchError as e:\n    sys.exit('WorkbenchError: ' + str(e))\n")
    result = run_child(code, json.dumps(args), timeout=CONVERT_TIMEOUT_S)
    if result.status == "ok" and Path(args["out"]).is_file():
        return
    detail = result.detail.removeprefix("WorkbenchError: ") if result.status == "error" else result.status
    if result.status == "crash":
        detail = f"the converter crashed ({result.detail}); a memory limit is the usual cause"
    elif result.status == "timeout":
        detail = f"the conversion took longer than {CONVERT_TIMEOUT_S} s"
    raise WorkbenchError(f"{args['folder']}: ExecuTorch conversion ({args['weights']}) failed: {detail}")


def convert_in_process(folder: str, out: str, weights: str, group_size: int | None, kv_cache: int) -> None:
    """Wrap, quantise, export, lower to XNNPACK and write the ``.pte`` (no tokenizer folder) in this process."""
    import torch

    from workbench.formats.convert import quiet_conversion
    from workbench.formats.lm_folder import hf_model
    from workbench.nets.llama_decoder import XnnpackDecoder

    config = json.loads((Path(folder) / "config.json").read_text())
    theta = check_config(config, kv_cache)
    decoder = XnnpackDecoder(hf_model(Path(folder)), kv_cache, theta).eval()
    if weights != "fp32":
        quantize_linears(decoder, weights, group_size)
    try:
        with quiet_conversion(), torch.no_grad():
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

            n = torch.export.Dim("tokens", min=1, max=kv_cache)
            sample = (torch.zeros((1, min(16, kv_cache)), dtype=torch.long), torch.arange(min(16, kv_cache)))
            # non-strict: torchao's quantised weights are tensor subclasses, which strict (dynamo) tracing rejects
            ep = torch.export.export(decoder, sample, dynamic_shapes=({1: n}, {0: n}), strict=False)
            program = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
        Path(out).write_bytes(program.buffer)
    except WorkbenchError:
        raise
    except Exception as e:
        raise WorkbenchError(f"ExecuTorch could not export or lower the decoder: {type(e).__name__}: "
                             f"{first_line(e)}") from e


def quantize_linears(decoder: Any, weights: str, group_size: int | None) -> None:
    """Quantise every ``nn.Linear`` of `decoder` in place with torchao (8da8w per channel or 8da4w in groups);
    an int4 layer whose input width the group does not divide stays float32."""
    import torch
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, quantize_
    from torchao.quantization.granularity import PerAxis, PerGroup

    if weights == "int8":
        config = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int8, weight_granularity=PerAxis(0))
    else:
        config = Int8DynamicActivationIntxWeightConfig(weight_dtype=torch.int4,
                                                       weight_granularity=PerGroup(int(group_size or 32)))

    def chosen(module: Any, fqn: str) -> bool:
        return isinstance(module, torch.nn.Linear) and (weights == "int8"
                                                        or module.in_features % int(group_size or 32) == 0)

    quantize_(decoder, config, filter_fn=chosen)  # a tied LM head gets its own quantised weight; the table stays


def float_linears(spec: LMSpec, weights: str, group_size: int | None) -> list[str]:
    """The linear layers `quantize_linears` leaves float32: those whose input width the int4 group does not divide.

    Example:
        >>> spec = LMSpec("llama", layers=30, hidden=576, heads=9, kv_heads=3, head_dim=64, intermediate=1536,
        ...               vocab=49152, context=8192, tie_embeddings=True)
        >>> float_linears(spec, "int4", 128), float_linears(spec, "int4", 32)
        (['q_proj', 'k_proj', 'v_proj', 'gate_proj', 'up_proj', 'lm_head', 'o_proj'], [])
    """
    if weights != "int4":
        return []
    width = {name: spec.hidden for name in ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj", "lm_head")}
    width.update(o_proj=spec.heads * spec.head_dim, down_proj=spec.intermediate)
    return [name for name, w in width.items() if w % int(group_size or 32)]


def converter_version() -> str:
    from importlib.metadata import version

    return f"executorch {version('executorch')}, torchao {version('torchao')}"


# ------------------------------------------------------------------------------------------------- load


def load_executorch_lm(path: Path | str, name: str | None = None) -> ModelHandle:
    """An ExecuTorch language-model file (with its ``<stem>.tokenizer/`` folder), or a folder holding one, as a
    handle.

    The handle has ``framework="executorch"``, ``source_format="pte"``, input ``input_ids`` int64 (batch ×
    tokens), output ``logits``, ``meta["lm"]`` (the `LMSpec`), ``meta["tokenizer"]`` (the folder) and
    ``meta["executorch_lm"]`` (recipe, KV-cache length, end-of-sequence ids).

    The program is opened by the runtime in a child process first (`workbench.formats.pte_file.probe`), so a
    damaged file is refused without crashing this one.

    Raises:
        WorkbenchError: no such file, no tokenizer folder or metadata beside it, or a file that is not a loadable
            ExecuTorch program taking (tokens, input_pos).
    """
    import numpy as np

    path = Path(path)
    if path.is_dir():
        inner = find_executorch_lm(path)
        if inner is None:
            raise WorkbenchError(f"{path}: no ExecuTorch language-model file (a .pte with its <stem>.tokenizer/ "
                                 "folder) inside.")
        name, path = name or path.name, inner
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such file.")
    meta = read_meta(path)
    side = tokenizer_dir(path)
    if not (side / "tokenizer.json").is_file():
        raise WorkbenchError(f"{side}: no tokenizer.json; the language model cannot read text without it. "
                             "Copy the whole exported folder.")
    from workbench.formats.pte_file import is_pte, probe

    if not is_pte(path):
        raise WorkbenchError(f"{path}: not an ExecuTorch program (no 'ET' file identifier at bytes 4-8). The file "
                             "is corrupt or another format; re-export it.")
    fingerprint = file_sha256([path, side / META_FILE])
    info = probe(str(path), fingerprint)  # the runtime opens it in a child process first: a damaged file fails there
    if len(info.get("inputs") or []) != 2:
        raise WorkbenchError(f"{path}: its forward method takes {len(info.get('inputs') or [])} inputs, not the "
                             "(tokens, input_pos) of an ExecuTorch language model. Re-export it.")
    spec = LMSpec.from_dict(meta["lm"])
    example = np.asarray([list(range(1, 17)), list(range(17, 33))], dtype=np.int64) % spec.vocab
    return ModelHandle(
        framework="executorch",
        inputs=[TensorSpec("input_ids", (None, None), "int64")],
        outputs=[TensorSpec("logits", (None, None, spec.vocab), "float32")],
        num_params=int(meta.get("num_params") or 0),
        fingerprint=fingerprint,
        source_format="pte",
        name=name or path.stem,
        path=path,
        example_inputs=[example],
        meta={META_KEY: spec.to_dict(), "tokenizer": str(side),
              META: {k: meta[k] for k in ("weights", "group_size", "kv_cache", "method", "float_linears",
                                          "eos_token_ids", "converter") if k in meta},
              **quant_meta_of(meta)},
    )


def quant_meta_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The ``meta["quant"]`` of a loaded file: its whole-model weight recipe (empty for fp32)."""
    from workbench.core.quant import LayerQuant, QuantRecord, quant_meta

    w = meta.get("weights")
    if w == "int8":
        entry = LayerQuant(bits=8, granularity="channel", symmetric=True)
    elif w == "int4":
        entry = LayerQuant(bits=4, granularity="group", group_size=int(meta.get("group_size") or 32), symmetric=True)
    else:
        return {}
    return quant_meta(QuantRecord(whole_model=entry))


# ------------------------------------------------------------------------------------------------ cache


def executorch_lm_file(handle: ModelHandle, *, weights: str = "fp32", group_size: int | None = None,
                       kv_cache: int | None = None) -> Path:
    """The ExecuTorch LM file of a language-model handle: its own file when it is one, else a conversion of its
    Hugging Face folder (`lm_folder_of`) made once and cached by fingerprint, recipe and converter version."""
    import hashlib

    from workbench.core.paths import cache_dir
    from workbench.formats.lm_folder import lm_folder_of

    if META in handle.meta and handle.path is not None:
        return Path(handle.path)
    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name}: only a PyTorch language model (a Hugging Face folder or .gguf) "
                             "converts to an ExecuTorch language model.")
    group = check_recipe(weights, group_size)
    key = hashlib.sha256(json.dumps([handle.fingerprint, weights, group, kv_cache, converter_version(),
                                     FORMAT]).encode()).hexdigest()[:20]
    tag = weights if group is None else f"{weights}-g{group}"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in handle.name.split("|", 1)[0])[:60]
    out = cache_dir() / "executorch_lm" / f"{safe}-{tag}-{key}" / "model.pte"  # a folder: what export ships
    if not is_executorch_lm(out):
        convert_lm(lm_folder_of(handle), out, weights=weights, group_size=group, kv_cache=kv_cache)
    return out
