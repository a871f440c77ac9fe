"""LiteRT language-model files: a Hugging Face Llama folder in, a ``.tflite`` with prefill/decode signatures out.

Conversion re-authors the model with `litert_torch.generative` (its `DecoderOnlyModel`, the layers its SmolLM and
TinyLlama examples use) from the folder's ``config.json`` and safetensors, for any Llama-style configuration
(GQA, tied or separate LM head, RMSNorm, SwiGLU, default RoPE), then converts it with litert_torch's multi-signature
converter:

* ``prefill_<n>`` (one per prefill length): ``tokens`` int32 [1, n], ``input_pos`` int32 [n] and the KV cache
  (``kv_cache_k_<i>`` / ``kv_cache_v_<i>`` float32 [1, kv_cache, kv_heads, head_dim]) in; logits [1, n, vocab]
  and the updated cache out;
* ``decode``: the same for one token.

Weights stay float32 or are quantised by litert_torch's generative recipes (ai_edge_quantizer underneath):
``fp16`` weights, ``int8`` (dynamic range, per channel) or ``int4`` (dynamic range, blocks of 32/64/128/256), on
every supported op, the embedding table (which a tied LM head shares) included. litert-torch 0.10's per-layer
recipe fields (attention / feedforward / embedding) match no tensor name of the files it writes (its regexes
expect ``transformer_block/...``, the names are ``TransformerBlock_0/...``), so only the model-wide recipe works.

Beside ``model.tflite`` the converter writes ``model.tokenizer/``: the tokenizer files and ``litert_lm.json`` (the
`LMSpec`, the recipe, the KV-cache length, prefill lengths, end-of-sequence ids, parameter count). `load` reads
the pair back as a handle (``framework="tflite"``, ``source_format="litert_lm"``); `artifact_files` lists every
file of the pair (what an export manifest must cover).

Conversion runs in a child Python process by default: litert_torch peaks at ~7x the fp32 weights in memory
(SmolLM2-135M: 3.4-4.1 GB; 2-2.5 min on an idle 2-core machine, 15-17 min on a busy one), which a sweep holding
model copies cannot afford in its own process.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
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

META_FILE = "litert_lm.json"
FORMAT = "edge-workbench/litert-lm/1"
WEIGHTS = ("fp32", "fp16", "int8", "int4")
BLOCK_SIZES = (32, 64, 128, 256)
DEFAULT_KV_CACHE = 512
DEFAULT_PREFILL = (32, 128)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json", "tokenizer.model")
CONVERT_TIMEOUT_S = 3600


# ------------------------------------------------------------------------------------------------ paths


def tokenizer_dir(path: Path | str) -> Path:
    """The folder beside the LM file that holds its tokenizer and metadata: ``<stem>.tokenizer/``."""
    return sidecar_dir(path)


def is_litert_lm(path: Path | str) -> bool:
    """A ``.tflite`` file with its ``<stem>.tokenizer/litert_lm.json`` beside it (what `convert_lm` writes), or a
    folder holding exactly one such file (what the export targets write)."""
    p = Path(path)
    if p.is_dir():
        return find_litert_lm(p) is not None
    return has_sidecar(p, ".tflite", META_FILE)


def find_litert_lm(folder: Path | str) -> Path | None:
    """The one LiteRT LM file in `folder` (``*.tflite`` with its tokenizer folder), or `None`."""
    return find_sidecar(folder, ".tflite", META_FILE)


def artifact_files(path: Path | str) -> list[Path]:
    """Every file of a LiteRT LM artefact: the ``.tflite`` first, then the tokenizer folder's files (sorted)."""
    return sidecar_files(path)


def copy_litert_lm(src: Path | str, dst: Path | str) -> Path:
    """Copy a LiteRT LM file and its tokenizer folder to `dst` (a ``.tflite`` path); returns `dst`."""
    return copy_with_sidecar(src, dst)


def read_meta(path: Path | str) -> dict[str, Any]:
    """The ``litert_lm.json`` of a LiteRT LM file."""
    return read_sidecar_meta(path, META_FILE, FORMAT, "a LiteRT language-model file")


# -------------------------------------------------------------------------------------------- config


def check_recipe(weights: str, block_size: int | None) -> int | None:
    """Validate a weight recipe; returns the int4 block size (32 when not given) or `None`."""
    if weights not in WEIGHTS:
        raise WorkbenchError(f"LiteRT language models store weights as {', '.join(WEIGHTS)}; got {weights!r}.")
    if weights != "int4":
        return None
    block = 32 if block_size is None else block_size
    if block not in BLOCK_SIZES:
        raise WorkbenchError(f"LiteRT int4 weights come in blocks of {', '.join(map(str, BLOCK_SIZES))}; "
                             f"got {block_size!r}.")
    return block


def litert_model_config(config: dict[str, Any], kv_cache: int) -> Any:
    """The `litert_torch.generative` ModelConfig of a Hugging Face Llama-style ``config.json`` dict.

    Raises:
        WorkbenchError: an architecture or option the re-authored Llama does not implement (biases, another
            activation, scaled RoPE, sliding windows), with what it found.
    """
    gen = generative()
    cfg = gen["cfg"]
    arch = config.get("model_type")
    problems = []
    if arch not in ("llama", "mistral"):
        problems.append(f"model_type {arch!r} (supported: llama, mistral)")
    if config.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {config.get('hidden_act')!r} (needs silu)")
    if config.get("attention_bias") or config.get("mlp_bias"):
        problems.append("attention or MLP biases")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else "default"
    if rope_type not in (None, "default"):
        problems.append(f"RoPE type {rope_type!r} (needs the default, unscaled RoPE)")
    if config.get("sliding_window"):
        problems.append("sliding-window attention")
    if problems:
        raise WorkbenchError("LiteRT conversion re-authors Llama-style decoders only; this config has "
                             + "; ".join(problems) + ". Run this model with runtime 'torch' or 'onnxruntime'.")
    spec = LMSpec.from_hf_config(config)
    if kv_cache < 1 or kv_cache > spec.context:
        raise WorkbenchError(f"kv_cache must be between 1 and the model's context ({spec.context}); got {kv_cache}.")
    theta = rope.get("rope_theta") if isinstance(rope, dict) else None
    theta = float(theta or config.get("rope_theta") or 10000.0)
    attn = cfg.AttentionConfig(num_heads=spec.heads, head_dim=spec.head_dim, num_query_groups=spec.kv_heads,
                               rotary_base=theta, rotary_percentage=1.0)
    ff = cfg.FeedForwardConfig(type=cfg.FeedForwardType.GATED, activation=cfg.ActivationConfig(cfg.ActivationType.SILU),
                               intermediate_size=spec.intermediate)
    norm = cfg.NormalizationConfig(type=cfg.NormalizationType.RMS_NORM,
                                   epsilon=float(config.get("rms_norm_eps", 1e-6)))
    block = cfg.TransformerBlockConfig(attn_config=attn, ff_config=ff, pre_attention_norm_config=norm,
                                       post_attention_norm_config=norm)
    return cfg.ModelConfig(vocab_size=spec.vocab, num_layers=spec.layers, max_seq_len=spec.context,
                           embedding_dim=spec.hidden, block_configs=block, final_norm_config=norm,
                           lm_head_share_weight_with_embedding=spec.tie_embeddings)


def generative() -> dict[str, Any]:
    """The litert_torch.generative modules conversion uses (imported once, ~5 s).

    Its LoRA module imports TensorFlow's flatbuffer schema only to read LoRA weights, and TensorFlow is not a
    dependency here: while it is imported, ``tensorflow.lite.python.schema_py_generated`` resolves to the same
    generated schema that ai_edge_litert ships; nothing named ``tensorflow`` stays in `sys.modules` after.
    """
    import importlib.util
    import types

    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")
    lora = "litert_torch.generative.layers.lora"
    if lora not in sys.modules and importlib.util.find_spec("tensorflow") is None:
        # everything the LoRA module imports is imported first, so only its own body runs beside the stand-in
        import ai_edge_litert.schema_py_generated as schema
        import flatbuffers  # noqa: F401
        import litert_torch  # noqa: F401
        import litert_torch.generative.layers.model_config  # noqa: F401
        import safetensors  # noqa: F401
        import torch._dynamo  # noqa: F401
        import torch.utils._pytree  # noqa: F401

        stand_in: dict[str, Any] = {n: types.ModuleType(n) for n in
                                    ("tensorflow", "tensorflow.lite", "tensorflow.lite.python")}
        stand_in["tensorflow.lite.python.schema_py_generated"] = schema
        sys.modules.update(stand_in)
        try:
            importlib.import_module(lora)
        finally:
            for n in stand_in:
                sys.modules.pop(n, None)
    import litert_torch.generative.layers.model_config as cfg
    from litert_torch.generative.layers import kv_cache
    from litert_torch.generative.quantize import quant_attrs, quant_recipe, quant_recipe_utils
    from litert_torch.generative.utilities import converter, export_config, model_builder

    return {"cfg": cfg, "kv_cache": kv_cache, "converter": converter, "export_config": export_config,
            "model_builder": model_builder, "quant_attrs": quant_attrs, "quant_recipe": quant_recipe,
            "quant_recipe_utils": quant_recipe_utils}


def build_model(folder: Path | str, kv_cache: int = DEFAULT_KV_CACHE) -> tuple[Any, Any]:
    """The re-authored litert_torch model of a Hugging Face Llama folder, weights loaded: ``(model, config)``."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    gen = generative()
    mcfg = litert_model_config(config, kv_cache)
    mb = gen["model_builder"]
    names = mb.TENSOR_NAMES if mcfg.lm_head_share_weight_with_embedding else mb.TENSOR_NAMES_WITH_SEPARATE_LM_HEAD
    try:
        model = mb.build_decoder_only_model(str(folder), mcfg, names, mask_cache_size=kv_cache)
    except (KeyError, ValueError, RuntimeError) as e:
        raise WorkbenchError(f"{folder}: the weights do not map onto a Llama decoder ({first_line(e)}). Check that "
                             "config.json belongs to these safetensors.") from e
    return model, mcfg


def quant_config(weights: str, block_size: int | None, mcfg: Any) -> Any:
    """litert_torch's model-wide QuantConfig for a weight recipe (`None` for fp32)."""
    if weights == "fp32":
        return None
    gen = generative()
    attrs, utils = gen["quant_attrs"], gen["quant_recipe_utils"]
    if weights == "fp16":
        layer = utils.create_layer_quant_fp16()
    else:
        dtype = attrs.Dtype.INT8 if weights == "int8" else attrs.Dtype.INT4
        gran = attrs.Granularity.CHANNELWISE if weights == "int8" else getattr(attrs.Granularity, f"BLOCKWISE_{block_size}")
        layer = utils.create_layer_quant_dynamic(dtype, gran)
    from litert_torch.quantize.quant_config import QuantConfig

    return QuantConfig(generative_recipe=gen["quant_recipe"].GenerativeQuantRecipe(default=layer, _model_config=mcfg))


# ---------------------------------------------------------------------------------------------- convert


def convert_lm(folder: Path | str, out: Path | str, *, weights: str = "fp32", block_size: int | None = None,
               kv_cache: int | None = None, prefill: tuple[int, ...] = DEFAULT_PREFILL,
               isolated: bool = True) -> Path:
    """Convert a Hugging Face Llama folder to a LiteRT language-model file at `out` (``.tflite``) and its
    ``<stem>.tokenizer/`` folder; returns `out`.

    Args:
        folder: config.json + safetensors + tokenizer.json.
        out: the ``.tflite`` path (its tokenizer folder goes beside it). Written atomically: the file appears last.
        weights: ``"fp32"``, ``"fp16"``, ``"int8"`` (dynamic range, per channel) or ``"int4"`` (dynamic range).
        block_size: int4 block size (32, 64, 128 or 256; default 32).
        kv_cache: KV-cache length in tokens (prompt + generated); default min(512, the model's context).
        prefill: prefill signature lengths (longer prompts are prefilled in chunks).
        isolated: convert in a child process (keeps litert_torch's memory peak out of this one).

    Raises:
        WorkbenchError: not a Llama-style folder, a bad recipe, or a conversion failure (with litert_torch's reason).
    """
    folder, out = Path(folder), Path(out)
    block = check_recipe(weights, block_size)
    if not (folder / "config.json").is_file() or not list(folder.glob("*.safetensors")):
        raise WorkbenchError(f"{folder}: LiteRT conversion needs a Hugging Face folder (config.json + *.safetensors).")
    if not (folder / "tokenizer.json").is_file():
        raise WorkbenchError(f"{folder}: no tokenizer.json; save the tokenizer beside the model.")
    config = json.loads((folder / "config.json").read_text())
    spec = LMSpec.from_hf_config(config)
    kv = min(DEFAULT_KV_CACHE, spec.context) if kv_cache is None else int(kv_cache)
    lengths = tuple(sorted({int(n) for n in prefill if 0 < int(n) <= kv})) or (min(kv, DEFAULT_PREFILL[-1]),)
    args = {"folder": str(folder), "weights": weights, "block_size": block, "kv_cache": kv, "prefill": list(lengths)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.stem}-") as tmp:
        tmp_file = Path(tmp) / "model.tflite"
        args["out"] = str(tmp_file)
        if isolated:
            convert_in_child(args)
        else:
            convert_in_process(**args)
        weights_files = [folder / "config.json", *sorted(folder.glob("*.safetensors"))]
        meta = {"format": FORMAT, "lm": spec.to_dict(), "weights": weights, "block_size": block, "kv_cache": kv,
                "prefill": list(lengths), "eos_token_ids": eos_ids(folder, config),
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

    code = ("import json, sys\nfrom workbench.formats.litert_lm import convert_in_process\n"
            "from workbench.core.errors import WorkbenchError\n"
            "try:\n    convert_in_process(**json.loads(sys.argv[1]))\n"
            "except WorkbenchError as e:\n    sys.exit('WorkbenchError: ' + str(e))\n")
    result = run_child(code, json.dumps(args), timeout=CONVERT_TIMEOUT_S,
                       env={"LITERT_TORCH_SHOW_PROGRESS": "n", "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.status == "ok" and Path(args["out"]).is_file():
        return
    detail = result.detail.removeprefix("WorkbenchError: ") if result.status == "error" else result.status
    if result.status == "crash":
        detail = f"the converter crashed ({result.detail}); a memory limit is the usual cause"
    elif result.status == "timeout":
        detail = f"the conversion took longer than {CONVERT_TIMEOUT_S} s"
    raise WorkbenchError(f"{args['folder']}: LiteRT conversion ({args['weights']}) failed: {detail}")


def convert_in_process(folder: str, out: str, weights: str, block_size: int | None, kv_cache: int,
                       prefill: list[int]) -> None:
    """Re-author, convert and write the ``.tflite`` (no tokenizer folder) in this process."""
    from workbench.formats.convert import quiet_conversion

    gen = generative()
    model, mcfg = build_model(folder, kv_cache)
    qcfg = quant_config(weights, block_size, mcfg)
    conv = gen["converter"]
    export = gen["export_config"].ExportConfig(output_logits_on_prefill=True)
    import torch

    kv = gen["kv_cache"].KVCache
    module = conv.ExportableModule(model, export_config=export).eval()
    try:
        with quiet_conversion():
            import litert_torch

            torch._dynamo.config.cache_size_limit = max(64, torch._dynamo.config.cache_size_limit)
            c = litert_torch.Converter()
            for n in prefill:  # the signatures litert_torch's generative converter writes, logits on prefill too
                c.add_signature(f"prefill_{n}", module, sample_kwargs={
                    "tokens": torch.zeros((1, n), dtype=torch.int), "input_pos": torch.arange(n, dtype=torch.int),
                    "kv_cache": kv.from_model_config(kv_cache, mcfg)})
            c.add_signature("decode", module, sample_kwargs={
                "tokens": torch.zeros((1, 1), dtype=torch.int), "input_pos": torch.zeros((1,), dtype=torch.int),
                "kv_cache": kv.from_model_config(kv_cache, mcfg)})
            c.convert(quant_config=qcfg).export(out)
    except WorkbenchError:
        raise
    except Exception as e:
        raise WorkbenchError(f"litert_torch could not convert the re-authored model: {type(e).__name__}: "
                             f"{first_line(e)}") from e


def eos_ids(folder: Path, config: dict[str, Any]) -> list[int]:
    """End-of-sequence token ids from generation_config.json and config.json."""
    ids: list[int] = []
    sources = [config]
    gen = folder / "generation_config.json"
    if gen.is_file():
        try:
            sources.insert(0, json.loads(gen.read_text()))
        except ValueError:
            pass
    for src in sources:
        v = src.get("eos_token_id")
        for i in v if isinstance(v, list) else [v]:
            if isinstance(i, int) and i not in ids:
                ids.append(i)
    return ids


def safetensors_params(folder: Path) -> int:
    """Number of weights stored in a folder's safetensors (a tied LM head is stored, and counted, once)."""
    total = 0
    for f in sorted(folder.glob("*.safetensors")):
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        total += sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    return total


def converter_version() -> str:
    from importlib.metadata import version

    return f"litert-torch {version('litert-torch')}"


# ------------------------------------------------------------------------------------------------- load


def load_litert_lm(path: Path | str, name: str | None = None) -> ModelHandle:
    """A LiteRT language-model file (with its ``<stem>.tokenizer/`` folder), or a folder holding one, as a handle.

    The handle has ``framework="tflite"``, ``source_format="litert_lm"``, input ``input_ids`` int64 (batch ×
    tokens), output ``logits``, ``meta["lm"]`` (the `LMSpec`), ``meta["tokenizer"]`` (the folder) and
    ``meta["litert_lm"]`` (recipe, KV-cache length, prefill lengths, end-of-sequence ids).

    Raises:
        WorkbenchError: no such file, no tokenizer folder or metadata beside it, or a file without prefill and
            decode signatures.
    """
    import numpy as np

    path = Path(path)
    if path.is_dir():
        inner = find_litert_lm(path)
        if inner is None:
            raise WorkbenchError(f"{path}: no LiteRT language-model file (a .tflite with its <stem>.tokenizer/ "
                                 "folder) inside.")
        name, path = name or path.name, inner
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such file.")
    meta = read_meta(path)
    side = tokenizer_dir(path)
    if not (side / "tokenizer.json").is_file():
        raise WorkbenchError(f"{side}: no tokenizer.json; the language model cannot read text without it. "
                             "Copy the whole exported folder.")
    signatures = signature_names(path)
    if "decode" not in signatures or not any(s.startswith("prefill") for s in signatures):
        raise WorkbenchError(f"{path}: a LiteRT language model needs prefill and decode signatures; this file has "
                             f"{sorted(signatures) or 'none'}. Re-export it.")
    spec = LMSpec.from_dict(meta["lm"])
    quant = quant_meta_of(meta)
    example = np.asarray([list(range(1, 17)), list(range(17, 33))], dtype=np.int64) % spec.vocab
    return ModelHandle(
        framework="tflite",
        inputs=[TensorSpec("input_ids", (None, None), "int64")],
        outputs=[TensorSpec("logits", (None, None, spec.vocab), "float32")],
        num_params=int(meta.get("num_params") or 0),
        fingerprint=file_sha256([path, side / META_FILE]),
        source_format="litert_lm",
        name=name or path.stem,
        path=path,
        example_inputs=[example],
        meta={META_KEY: spec.to_dict(), "tokenizer": str(side),
              "litert_lm": {k: meta[k] for k in ("weights", "block_size", "kv_cache",
                                                 "prefill", "eos_token_ids", "converter") if k in meta},
              **quant},
    )


def signature_names(path: Path) -> list[str]:
    """The signature keys of a ``.tflite`` file, read from its flatbuffer (no interpreter)."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAsModel(path.read_bytes(), 0)
        return [model.SignatureDefs(i).SignatureKey().decode() for i in range(model.SignatureDefsLength())]
    except Exception as e:  # noqa: BLE001 - any parse failure means a damaged file
        raise WorkbenchError(f"{path}: not a readable TFLite flatbuffer ({first_line(e)}).") from e


def quant_meta_of(meta: dict[str, Any]) -> dict[str, Any]:
    """The ``meta["quant"]`` of a loaded file: its whole-model weight recipe (empty for fp32)."""
    from workbench.core.quant import FP16, LayerQuant, QuantRecord, quant_meta

    w = meta.get("weights")
    if w == "fp16":
        return quant_meta(FP16)
    if w == "int8":
        entry = LayerQuant(bits=8, granularity="channel", symmetric=True)
    elif w == "int4":
        entry = LayerQuant(bits=4, granularity="group", group_size=int(meta.get("block_size") or 32), symmetric=True)
    else:
        return {}
    return quant_meta(QuantRecord(whole_model=entry))


# ------------------------------------------------------------------------------------------------ cache


def litert_lm_file(handle: ModelHandle, *, weights: str = "fp32", block_size: int | None = None,
                   kv_cache: int | None = None) -> Path:
    """The LiteRT LM file of a language-model handle: its own file when it is one, else a conversion of its Hugging
    Face folder (`lm_folder_of`) made once and cached by fingerprint, recipe and converter version."""
    import hashlib

    from workbench.core.paths import cache_dir
    from workbench.formats.lm_folder import lm_folder_of

    if handle.source_format == "litert_lm":
        return Path(handle.path)
    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name}: only a PyTorch language model (a Hugging Face folder or .gguf) "
                             "converts to a LiteRT language model.")
    block = check_recipe(weights, block_size)
    key = hashlib.sha256(json.dumps([handle.fingerprint, weights, block, kv_cache,
                                     list(DEFAULT_PREFILL), converter_version(), FORMAT]).encode()).hexdigest()[:20]
    tag = weights if block is None else f"{weights}-b{block}"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in handle.name.split("|", 1)[0])[:60]
    out = cache_dir() / "litert_lm" / f"{safe}-{tag}-{key}" / "model.tflite"  # a folder: what export ships
    if not is_litert_lm(out):
        convert_lm(lm_folder_of(handle), out, weights=weights, block_size=block, kv_cache=kv_cache)
    return out
