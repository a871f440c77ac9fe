"""OpenVINO language-model folders: build one from a PyTorch language model, read one back.

An OpenVINO LM folder holds a *stateful* decoder IR in optimum-intel's layout, ``openvino_model.xml`` +
``openvino_model.bin`` (inputs ``input_ids``, ``attention_mask``, ``position_ids``, ``beam_idx``; output
``logits``; the key/value cache lives in the model's state between calls), the Hugging Face ``config.json`` and
tokenizer files, and ``openvino_lm.json`` (what the weights are and how they were made).

How it is made (no network, no optimum-intel, which would replace the environment's torch and transformers):
    * ``ov.convert_model`` traces the transformers model wrapped so that the cache is explicit: one
      ``past_key_values.<i>.key/value`` input and ``present.<i>.key/value`` output per layer; the causal mask is
      built inside the graph from ``attention_mask`` and the cache length, so one IR serves prefill and decode at
      any length; ``beam_idx`` reorders the cache rows (beam search; greedy feeds ``[0]``).
    * OpenVINO's MakeStateful transformation turns each past/present pair into a model state, initialised to
      zeros of the batch of ``input_ids`` (what optimum-intel does), so a decode step copies no cache in or out.
    * Weights: fp32 as converted, or ``nncf.compress_weights`` (`OVLMOptions`): int8 per output channel,
      int4 in groups along the input dimension, symmetric (``INT4_SYM``, signed [-8, 7]) or asymmetric
      (``INT4_ASYM``, unsigned with zero points). In int4, the embedding table and the LM head (one tensor when
      tied, as in SmolLM2) stay float (``backup="none"``), take int8 (``backup="int8_asym"``, NNCF's default) or
      go to int4 with the rest (``all_layers=True``).

Builds are cached in ``cache_dir()/openvino_lm``, keyed by the handle's fingerprint, the options and the library
versions, so a second call is instant. A loaded folder is a handle with ``framework="openvino"``,
``source_format="openvino_ir"`` and ``meta["lm"]`` (so it runs through `workbench.runtimes.openvino_lm_runner`).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import WorkbenchError, first_line
from workbench.core.handle import ModelHandle, TensorSpec
from workbench.core.lm import META_KEY, LMSpec

MODEL_XML = "openvino_model.xml"
MODEL_BIN = "openvino_model.bin"
META_FILE = "openvino_lm.json"
WEIGHTS = ("fp32", "int8_sym", "int8_asym", "int4_sym", "int4_asym")
GROUP_SIZES = (16, 32, 64, 128, 256)
BACKUPS = ("none", "int8_asym", "int8_sym")
RECIPE_VERSION = 1
"""Part of every cached build's key; raised when what a set of options builds changes."""


@dataclass(frozen=True)
class OVLMOptions:
    """How an OpenVINO LM folder's weights are stored.

    Attributes:
        weights: ``"fp32"``, ``"int8_sym"`` / ``"int8_asym"`` (per output channel) or ``"int4_sym"`` /
            ``"int4_asym"`` (groups of `group_size` along the input dimension), NNCF's `CompressWeightsMode`.
        group_size: weights per scale for int4 (16..256); ignored otherwise.
        all_layers: int4 only: the embedding table and the LM head are int4 too.
        backup: int4 only, when not `all_layers`: what the embedding and LM head become, ``"none"`` (float),
            ``"int8_asym"`` (NNCF's default) or ``"int8_sym"``.

    Example:
        >>> OVLMOptions("int4_asym", 32, backup="none").describe()
        'int4 asymmetric, group 32, embedding and LM head float (NNCF compress_weights)'
    """

    weights: str = "fp32"
    group_size: int = 32
    all_layers: bool = False
    backup: str = "int8_asym"

    def __post_init__(self) -> None:
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {WEIGHTS}, got {self.weights!r}")
        if self.group_size not in GROUP_SIZES:
            raise ValueError(f"group_size must be one of {GROUP_SIZES}, got {self.group_size!r}")
        if self.backup not in BACKUPS:
            raise ValueError(f"backup must be one of {BACKUPS}, got {self.backup!r}")

    @property
    def bits(self) -> int | None:
        return None if self.weights == "fp32" else int(self.weights[3])

    @property
    def symmetric(self) -> bool:
        return self.weights.endswith("_sym")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """In words: what the folder's weights are."""
        if self.bits is None:
            return "fp32 (OpenVINO IR)"
        sym = "symmetric" if self.symmetric else "asymmetric"
        if self.bits == 8:
            return f"int8 {sym} per channel, embedding and LM head int8 too (NNCF compress_weights)"
        rest = ("embedding and LM head int4 too" if self.all_layers else
                {"none": "embedding and LM head float", "int8_asym": "embedding and LM head int8 asymmetric",
                 "int8_sym": "embedding and LM head int8 symmetric"}[self.backup])
        return f"int4 {sym}, group {self.group_size}, {rest} (NNCF compress_weights)"

    def label(self) -> str:
        if self.bits is None:
            return "fp32"
        if self.bits == 8:
            return self.weights
        return f"{self.weights}-g{self.group_size}-{'all' if self.all_layers else self.backup}"


# ---------------------------------------------------------------------------------------- plugin settings


DYNAMIC_QUANT_GROUP = 32
"""Activation group size of the CPU plugin's dynamic int8 quantisation for weight-compressed matrix products."""


def compressed(handle: ModelHandle) -> bool:
    """Whether the handle's folder stores integer weights (int4/int8)."""
    info = handle.meta.get("openvino_lm") or {}
    types = info.get("weight_types") or {}
    return info.get("weights", "fp32") != "fp32" or any(t in types for t in ("u4", "i4", "u8", "i8"))


def plugin_config(threads: int | None, weight_compressed: bool) -> dict[str, Any]:
    """The CPU plugin settings of a language model (see the module docstring).

    Example:
        >>> plugin_config(2, False)["DYNAMIC_QUANTIZATION_GROUP_SIZE"], plugin_config(None, True)["KV_CACHE_PRECISION"]
        ('0', 'f32')
    """
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "KV_CACHE_PRECISION": "f32", "NUM_STREAMS": "1",
                              "PERFORMANCE_HINT": "LATENCY",
                              "DYNAMIC_QUANTIZATION_GROUP_SIZE": str(DYNAMIC_QUANT_GROUP if weight_compressed else 0)}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def activation_note(weight_compressed: bool) -> str:
    """What the plugin computes in, in words (part of a realised row's note)."""
    if weight_compressed:
        return (f"activations quantised to int8 at run time in groups of {DYNAMIC_QUANT_GROUP} (OpenVINO CPU dynamic "
                "quantisation), fp32 KV cache")
    return "fp32 arithmetic (INFERENCE_PRECISION_HINT f32), fp32 KV cache"


# ------------------------------------------------------------------------------------------------ building


def _versions() -> list[str]:
    from importlib.metadata import version

    out = [f"recipe={RECIPE_VERSION}"]
    for lib in ("openvino", "nncf", "transformers", "torch"):
        try:
            out.append(f"{lib}={version(lib)}")
        except Exception:  # noqa: BLE001 - absent: not part of the key
            continue
    return out


def build_openvino_lm(handle: ModelHandle, out: Path | str | None = None, **options: Any) -> Path:
    """The OpenVINO LM folder of a PyTorch language model (original or variant), built offline and cached.

    Args:
        handle: a PyTorch language-model handle (`workbench.load` of a ``.gguf`` file or Hugging Face folder).
        out: where to put the folder; `None` returns the cached build itself (do not modify it).
        **options: `OVLMOptions` fields (``weights``, ``group_size``, ``all_layers``, ``backup``).

    Raises:
        WorkbenchError: not a PyTorch language model, bad options, or a conversion / compression failure.
    """
    try:
        opts = OVLMOptions(**options)
    except (TypeError, ValueError) as e:
        raise WorkbenchError(f"build_openvino_lm: {e}.") from None
    if handle.framework != "torch" or handle.module is None or not handle.meta.get(META_KEY):
        raise WorkbenchError(f"{handle.name}: an OpenVINO LM folder is built from a PyTorch language model (load a "
                             ".gguf file or a Hugging Face folder), not a {handle.source_format} file.")
    from workbench.core.paths import cache_dir
    from workbench.formats.lm_folder import write_folder

    key = hashlib.sha256(json.dumps([handle.fingerprint, opts.to_dict(), _versions()]).encode()).hexdigest()[:20]
    cached = cache_dir() / "openvino_lm" / f"{opts.label()}-{key}"
    if not is_openvino_lm_folder(cached):
        write_folder(cached, lambda tmp: _write(handle, tmp, opts))
    if out is None:
        return cached
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    return write_folder(out, lambda tmp: shutil.copytree(cached, tmp, dirs_exist_ok=True))


def _write(handle: ModelHandle, tmp: Path, opts: OVLMOptions) -> None:
    import openvino as ov

    try:
        model = convert_lm(handle.module)
        if opts.bits is not None:
            model = compress_lm(model, opts)
        ov.save_model(model, str(tmp / MODEL_XML), compress_to_fp16=False)
    except WorkbenchError:
        raise
    except Exception as e:  # noqa: BLE001 - any converter/compressor failure is reported with its reason
        raise WorkbenchError(f"{handle.name}: OpenVINO conversion failed ({opts.describe()}): "
                             f"{type(e).__name__}: {first_line(e)}") from e
    handle.module.config.to_json_file(str(tmp / "config.json"))
    from workbench.formats.lm_folder import TOKENIZER_FILES

    src = Path(handle.meta["tokenizer"])
    for f in TOKENIZER_FILES:
        if (src / f).is_file():
            shutil.copy2(src / f, tmp / f)
    meta = {"converter": "openvino.convert_model (stateful, workbench)", **opts.to_dict(),
            "description": opts.describe(), "layers": int(handle.module.config.num_hidden_layers),
            "versions": _versions()}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=1))


def cache_explicit(module: Any) -> Any:
    """A torch wrapper of a transformers causal LM whose forward takes and returns the key/value cache as plain
    tensors, and builds the causal mask from ``attention_mask`` and the cache length (what is traced)."""
    import inspect

    import torch
    from transformers import DynamicCache

    layers = int(module.config.num_hidden_layers)
    cache_kw = "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"

    class CacheExplicit(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = module

        def forward(self, input_ids, attention_mask, position_ids, beam_idx, *past):  # noqa: ANN001
            cache = DynamicCache(config=self.model.config)
            for i, layer in enumerate(cache.layers):  # set, not update(): no empty-tensor concatenation
                layer.device = input_ids.device
                layer.keys = past[2 * i].index_select(0, beam_idx)
                layer.values = past[2 * i + 1].index_select(0, beam_idx)
                layer.is_initialized = True
            q = input_ids.shape[1]
            total = attention_mask.shape[1]
            key_pos = torch.arange(total).view(1, 1, 1, -1)
            query_pos = (torch.arange(q) + (total - q)).view(1, 1, -1, 1)
            allowed = (key_pos <= query_pos) & (attention_mask[:, None, None, :] > 0)
            mask = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                             **{cache_kw: cache})
            flat = []
            for layer in out.past_key_values.layers[:layers]:
                flat += [layer.keys, layer.values]
            return (out.logits, *flat)

    return CacheExplicit().eval()


def convert_lm(module: Any) -> Any:
    """A transformers causal LM as a stateful ``ov.Model`` (see the module docstring); `module` is not changed."""
    import warnings

    import openvino as ov
    import torch
    from openvino._offline_transformations import apply_make_stateful_transformation

    cfg = module.config
    layers = int(cfg.num_hidden_layers)
    kv_heads = int(getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    batch, q, p = 2, 5, 3  # more than one query (the traced attention must not take the single-token path)
    vocab = int(cfg.vocab_size)
    example = (torch.arange(batch * q).view(batch, q) % vocab, torch.ones(batch, p + q, dtype=torch.long),
               (torch.arange(q) + p).expand(batch, q).contiguous(), torch.arange(batch, dtype=torch.int32),
               *[torch.zeros(batch, kv_heads, p, head_dim) for _ in range(2 * layers)])
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    names = ["input_ids", "attention_mask", "position_ids", "beam_idx", *past]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        model = ov.convert_model(cache_explicit(module), example_input=example)
    for port, name in zip(model.inputs, names):
        port.get_tensor().set_names({name})
    present = ["logits", *[n.replace("past_key_values", "present") for n in past]]
    for port, name in zip(model.outputs, present):
        port.get_tensor().set_names({name})
    model.reshape({name: ov.PartialShape([-1, kv_heads, -1, head_dim]) for name in past})
    apply_make_stateful_transformation(model, dict(zip(past, present[1:])))
    _zero_state_of_batch(model, kv_heads, head_dim)
    return model


def _zero_state_of_batch(model: Any, kv_heads: int, head_dim: int) -> None:
    """Initialise every cache state to zeros of shape (batch of ``input_ids``, kv_heads, 0, head_dim): a fresh
    sequence. Without it the CPU plugin starts from an empty batch."""
    import numpy as np
    from openvino import opset13 as ops

    shape = ops.shape_of(model.input("input_ids"), output_type="i64")
    batch = ops.gather(shape, ops.constant(np.array([0], np.int64)), ops.constant(np.int64(0)))
    rest = ops.constant(np.array([kv_heads, 0, head_dim], np.int64))
    for op in model.get_ops():
        if op.get_type_name() == "ReadValue":
            op.set_arguments([ops.broadcast(ops.constant(np.float32(0)), ops.concat([batch, rest], axis=0))])
    model.validate_nodes_and_infer_types()


def compress_lm(model: Any, opts: OVLMOptions) -> Any:
    """``nncf.compress_weights`` of an OpenVINO LM at `opts` (data-free, round to nearest)."""
    import logging

    import nncf

    mode = nncf.CompressWeightsMode(opts.weights)
    kwargs: dict[str, Any] = {"mode": mode}
    if opts.bits == 4:
        kwargs.update(group_size=opts.group_size, ratio=1.0, all_layers=opts.all_layers,
                      backup_mode=nncf.BackupMode(opts.backup))
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)
    try:  # NNCF draws a progress bar on stdout
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return nncf.compress_weights(model, **kwargs)
    finally:
        nncf_log.setLevel(level)


# ------------------------------------------------------------------------------------------------- reading


def is_openvino_lm_folder(path: Path | str) -> bool:
    """A folder with ``openvino_model.xml`` beside a Hugging Face ``config.json`` (this module's or optimum-intel's
    layout)."""
    p = Path(path)
    return p.is_dir() and (p / MODEL_XML).is_file() and (p / "config.json").is_file()


def ir_weight_types(xml: Path) -> dict[str, int]:
    """Element counts of the IR's weight constants by type (``{"u4": .., "f32": ..}``), read from the XML only."""
    import xml.etree.ElementTree as ET

    counts: dict[str, int] = {}
    try:
        root = ET.parse(xml).getroot()
    except (ET.ParseError, OSError) as e:
        raise WorkbenchError(f"{xml}: not a readable OpenVINO IR ({first_line(e)}). Rebuild the folder.") from None
    for layer in root.iter("layer"):
        if layer.get("type") != "Const":
            continue
        data = layer.find("data")
        if data is None:
            continue
        shape = [int(d) for d in (data.get("shape") or "").split(",") if d.strip()]
        n = 1
        for d in shape:
            n *= d
        if n >= 256:  # weights, not scalars and shape constants
            kind = data.get("element_type", "?")
            counts[kind] = counts.get(kind, 0) + n
    return counts


def load_openvino_lm(path: Path | str, name: str | None = None) -> ModelHandle:
    """Read an OpenVINO LM folder as a language-model handle (``framework="openvino"``).

    ``meta["lm"]`` comes from config.json, ``meta["tokenizer"]`` is the folder, ``meta["openvino_lm"]`` says
    what the weights are (from ``openvino_lm.json`` when the workbench built the folder, else from the IR's
    constant types) and ``meta["realised"]`` says so in words.

    Raises:
        WorkbenchError: no or a broken config.json, a missing weights file, no tokenizer.json, an IR that is not
            a stateful decoder with ``input_ids``.
    """
    import numpy as np

    folder = Path(path)
    if not is_openvino_lm_folder(folder):
        raise WorkbenchError(f"{folder}: not an OpenVINO LM folder (it needs {MODEL_XML} beside config.json). Build "
                             "one with workbench.export(model, 'openvino', out, task=...).")
    if not (folder / MODEL_BIN).is_file():
        raise WorkbenchError(f"{folder}: {MODEL_BIN} (the weights) is missing beside {MODEL_XML}. Copy the whole "
                             "folder.")
    if not (folder / "tokenizer.json").is_file():
        raise WorkbenchError(f"{folder}: no tokenizer.json; the OpenVINO LM runner tokenises with it.")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise WorkbenchError(f"{folder / 'config.json'}: not valid JSON ({first_line(e)}).") from None
    spec = LMSpec.from_hf_config(config)
    types = ir_weight_types(folder / MODEL_XML)
    text = (folder / MODEL_XML).read_text(errors="replace")
    if 'name="input_ids"' not in text or "ReadValue" not in text:
        raise WorkbenchError(f"{folder / MODEL_XML}: not a stateful decoder (no input_ids input or no cache state). "
                             "Export it with workbench.export(model, 'openvino', out, task=...) or optimum-intel.")
    info: dict[str, Any] = {"weight_types": types}
    meta_path = folder / META_FILE
    if meta_path.is_file():
        try:
            info.update(json.loads(meta_path.read_text()))
        except ValueError:
            raise WorkbenchError(f"{meta_path}: not valid JSON. Rebuild the folder.") from None
    else:
        info["description"] = describe_types(types)
    meta: dict[str, Any] = {META_KEY: spec.to_dict(), "tokenizer": str(folder), "openvino_lm": info}
    if info.get("weights", "fp32") != "fp32" or any(t in types for t in ("u4", "i4", "u8", "i8")):
        meta["realised"] = info["description"]
    from workbench.formats.genai_folder import folder_digest

    example = np.asarray([list(range(1, 17)), list(range(17, 33))], dtype=np.int64) % spec.vocab
    return ModelHandle(
        framework="openvino",
        inputs=[TensorSpec("input_ids", (None, None), "int64")],
        outputs=[TensorSpec("logits", (None, None, spec.vocab), "float32")],
        num_params=int(sum(types.values())),
        fingerprint=folder_digest(folder),
        source_format="openvino_ir",
        name=name or folder.name,
        path=folder,
        example_inputs=[example],
        meta=meta,
    )


def describe_types(types: dict[str, int]) -> str:
    """What a foreign IR's weights are, from its constant types (e.g. ``"u4/u8 weights (OpenVINO IR)"``)."""
    ints = sorted(t for t in types if t in ("u4", "i4", "u8", "i8"))
    return f"{'/'.join(ints)} weights (OpenVINO IR)" if ints else "fp32 (OpenVINO IR)"


def openvino_lm_of(handle: ModelHandle, **options: Any) -> Path:
    """The OpenVINO LM folder of a language-model handle: its own when it was loaded from one, else the (cached)
    build of its PyTorch model with `options` (see `build_openvino_lm`)."""
    if handle.framework == "openvino" and handle.path is not None and is_openvino_lm_folder(handle.path):
        return Path(handle.path)
    if handle.framework != "torch" or handle.module is None:
        raise WorkbenchError(f"{handle.name}: OpenVINO runs a PyTorch language model or an OpenVINO LM folder, not "
                             f"a {handle.source_format} file.")
    return build_openvino_lm(handle, **options)
