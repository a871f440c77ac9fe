"""How much memory a transformer needs at each bit-width, and which hardware (how many of it) holds it.

The parameter count comes from the architecture, matrix by matrix: token (+ learned position and token-type)
embeddings; per layer the Q, K, V and output projections (K and V with ``num_kv_heads`` heads: grouped-query /
multi-query attention), the feed-forward block (two matrices, three when gated: SwiGLU / GeGLU), biases and norms;
a final norm, an optional pooler (BERT) and an LM head unless it is tied to the embeddings.

Memory (GB = 1e9 bytes):

* **weights** at b bits: the linear layers' weights at b bits plus one ``scale_bits`` scale per group of
  ``group_size`` weights of a row (per output channel with ``group_size=None``); embeddings, LM head, norms and
  biases stay at 16 bits unless ``quantize_embeddings`` (as GPTQ / AWQ / GLM-130B's INT4 leave them). b >= 16 is
  a float format: every parameter at b bits, no scales.
* **KV cache** = 2 (K and V) x layers x batch x context x kv_heads x head_dim x ``kv_bits`` / 8.
* **activation workspace**: the transient tensors of one layer while a whole context of ``max_seq_len`` tokens
  is pre-filled (layers run one after another, nothing kept for backward): residual, normalised input and
  attention output (3 x seq x hidden), Q/K/V (seq x (heads + 2 kv_heads) x head_dim), the FFN intermediate
  (seq x ffn, twice when gated), all x batch at ``act_bits``, plus fp32 logits for one token (batch x vocab x
  4 B). Attention runs tiled (flash / memory-efficient attention, as vLLM, TensorRT-LLM and llama.cpp do); with
  ``flash_attention=False`` (eager attention) the heads x seq x seq score matrix is added, which dominates at long
  contexts.

A device holds the model when total <= its memory x ``usable_fraction`` (default 0.9: the CUDA context,
allocator fragmentation and the runtime take the rest; vLLM's default ``gpu_memory_utilization`` is the same
0.9). For the accelerators (`GPUS`) the number needed is ceil(total / usable memory per device): a lower bound
that assumes tensor/pipeline parallelism splits every part evenly. A device profile (a board, a phone, an MCU)
holds the model alone or it "does not fit", with what it needs against what the device has: nobody splits a 7B
model over hundreds of ESP32s. Profiles whose weights stay in flash (MCUs) need the weights in storage and the
KV cache + activations in RAM.

Example:
    >>> df, fig = llm_memory(num_layers=70, hidden_size=12288, num_attention_heads=96, vocab_size=150528,
    ...                      ffn_hidden_size=32768, gated_ffn=True)
    >>> int(df.set_index("bits").loc[4, "n_gpu-24gb"])
    4
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from workbench.core.errors import WorkbenchError

GB = 1e9

GPUS: dict[str, tuple[float, str]] = {
    # name: (memory in bytes, what it stands for and the source of the figure)
    "gpu-24gb": (24e9, "consumer GPU, 24 GB (NVIDIA RTX 3090 / RTX 4090: 24 GB GDDR6X, NVIDIA product pages)"),
    "gpu-40gb": (40e9, "data-centre GPU, 40 GB (NVIDIA A100 40GB: 40 GB HBM2, A100 datasheet)"),
    "gpu-80gb": (80e9, "data-centre GPU, 80 GB (NVIDIA A100 80GB / H100: 80 GB HBM2e / HBM3, datasheets)"),
}
"""Common accelerators the planner always lists beside the device profiles."""

USABLE_FRACTION = 0.9

# Model families whose FFN is gated (SwiGLU / GeGLU: gate, up and down matrices) and that use RMSNorm without
# biases; and encoder families (BERT-style: learned positions, token types, biases, LayerNorm, a pooler, no LM
# head in the bare model).
_GATED = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi3", "chatglm", "glm",
          "internlm", "internlm2", "baichuan", "yi", "deepseek", "deepseek_v2", "olmo", "olmo2", "granite", "cohere",
          "starcoder2_gated", "smollm3"}
_ENCODERS = {"bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert", "mpnet", "ernie"}

PRESETS: dict[str, dict[str, Any]] = {
    # Shapes from each model's published config.json (Hugging Face hub) or paper.
    "MiniLM-L6 (22.7M)": dict(num_layers=6, hidden_size=384, num_attention_heads=12, vocab_size=30522,
                              ffn_hidden_size=1536, family="bert", position_embeddings=512, token_types=2),
    "TinyLlama-1.1B": dict(num_layers=22, hidden_size=2048, num_attention_heads=32, num_kv_heads=4,
                           vocab_size=32000, ffn_hidden_size=5632, family="llama", tie_word_embeddings=False),
    "Llama-2-7B": dict(num_layers=32, hidden_size=4096, num_attention_heads=32, vocab_size=32000,
                       ffn_hidden_size=11008, family="llama", tie_word_embeddings=False),
    "Mistral-7B": dict(num_layers=32, hidden_size=4096, num_attention_heads=32, num_kv_heads=8, vocab_size=32000,
                       ffn_hidden_size=14336, family="llama", tie_word_embeddings=False),
    "Llama-2-13B": dict(num_layers=40, hidden_size=5120, num_attention_heads=40, vocab_size=32000,
                        ffn_hidden_size=13824, family="llama", tie_word_embeddings=False),
    "Llama-2-70B": dict(num_layers=80, hidden_size=8192, num_attention_heads=64, num_kv_heads=8, vocab_size=32000,
                        ffn_hidden_size=28672, family="llama", tie_word_embeddings=False),
    # GLM-130B (Zeng et al., ICLR 2023): 70 layers, hidden 12288, 96 heads, GeGLU FFN 32768, vocab 150528.
    "GLM-130B": dict(num_layers=70, hidden_size=12288, num_attention_heads=96, vocab_size=150528,
                     ffn_hidden_size=32768, gated_ffn=True, tie_word_embeddings=True),
}
"""Named model shapes for the dashboard and the notebook (keyword arguments of `llm_memory`)."""


@dataclass(frozen=True)
class TransformerShape:
    """The architecture facts the parameter and memory counts need (validated).

    Attributes:
        num_layers, hidden_size, num_attention_heads, vocab_size: the basic shape.
        num_kv_heads: key/value heads (grouped-query attention); equals the attention heads for plain MHA.
        head_dim: per-head width (hidden / heads unless the config says otherwise).
        ffn_hidden_size: feed-forward width (4 x hidden if the config gives none).
        gated_ffn: three FFN matrices (gate, up, down) instead of two.
        bias: linear layers carry biases.
        norm: ``"layernorm"`` (weight + bias) or ``"rmsnorm"`` (weight only).
        position_embeddings: rows of a learned position table (0 for rotary / ALiBi).
        token_types: rows of a token-type table (BERT: 2).
        pooler: a hidden x hidden pooler (BERT's bare model has one).
        final_norm: a norm after the last layer (decoders).
        embedding_norm: a norm right after the embeddings (BERT).
        lm_head: the model has an output projection to the vocabulary.
        tie_word_embeddings: that projection is the embedding matrix (no extra parameters).
    """

    num_layers: int
    hidden_size: int
    num_attention_heads: int
    vocab_size: int
    num_kv_heads: int
    head_dim: int
    ffn_hidden_size: int
    gated_ffn: bool = False
    bias: bool = True
    norm: str = "layernorm"
    position_embeddings: int = 0
    token_types: int = 0
    pooler: bool = False
    final_norm: bool = True
    embedding_norm: bool = False
    lm_head: bool = True
    tie_word_embeddings: bool = True

    def __post_init__(self) -> None:
        for name in ("num_layers", "hidden_size", "num_attention_heads", "vocab_size", "num_kv_heads", "head_dim",
                     "ffn_hidden_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise WorkbenchError(f"{name} must be a positive integer, got {v!r}.")
        for name in ("position_embeddings", "token_types"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise WorkbenchError(f"{name} must be an integer >= 0, got {v!r}.")
        if self.num_attention_heads % self.num_kv_heads:
            raise WorkbenchError(f"num_kv_heads ({self.num_kv_heads}) must divide num_attention_heads "
                                 f"({self.num_attention_heads}): each KV head serves a whole group of query heads.")
        if self.norm not in ("layernorm", "rmsnorm"):
            raise WorkbenchError(f"norm must be 'layernorm' or 'rmsnorm', got {self.norm!r}.")

    def matrices(self) -> list[tuple[str, int, int, int]]:
        """Quantisable weight matrices as ``(name, in_features, out_features, count)``."""
        h, q, kv, f, n = (self.hidden_size, self.num_attention_heads * self.head_dim,
                          self.num_kv_heads * self.head_dim, self.ffn_hidden_size, self.num_layers)
        out = [("attn.q", h, q, n), ("attn.k", h, kv, n), ("attn.v", h, kv, n), ("attn.o", q, h, n),
               ("ffn.up", h, f, n), ("ffn.down", f, h, n)]
        if self.gated_ffn:
            out.append(("ffn.gate", h, f, n))
        if self.pooler:
            out.append(("pooler", h, h, 1))
        return out

    def embedding_matrices(self) -> list[tuple[str, int, int, int]]:
        """Embedding tables and an untied LM head as ``(name, in_features, out_features, count)``."""
        h = self.hidden_size
        out = [("embed.tokens", h, self.vocab_size, 1)]
        if self.position_embeddings:
            out.append(("embed.positions", h, self.position_embeddings, 1))
        if self.token_types:
            out.append(("embed.token_types", h, self.token_types, 1))
        if self.lm_head and not self.tie_word_embeddings:
            out.append(("lm_head", h, self.vocab_size, 1))
        return out

    def small_params(self) -> int:
        """Biases and norm weights (kept in float at every bit-width)."""
        per_norm = self.hidden_size * (2 if self.norm == "layernorm" else 1)
        norms = 2 * self.num_layers + int(self.final_norm) + int(self.embedding_norm)
        biases = sum(o * c for _, _, o, c in self.matrices()) if self.bias else 0
        return norms * per_norm + biases

    def params(self) -> dict[str, int]:
        """Parameter count by part: ``linear``, ``embedding``, ``small`` (norms + biases), ``total``."""
        linear = sum(i * o * c for _, i, o, c in self.matrices())
        emb = sum(i * o * c for _, i, o, c in self.embedding_matrices())
        small = self.small_params()
        return {"linear": linear, "embedding": emb, "small": small, "total": linear + emb + small}


# ------------------------------------------------------------------------------------------ config reading


def _first(cfg: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    return None


def read_config(config: Any) -> dict[str, Any]:
    """A config as a plain dict: a ``config.json`` path (or its folder), a mapping, or a `transformers` config."""
    if config is None:
        return {}
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if path.is_dir():
            path = path / "config.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise WorkbenchError(f"{path}: cannot read the model config ({e.strerror}). Pass the path of a "
                                 "Hugging Face config.json, a dict, or the explicit fields.") from e
        except json.JSONDecodeError as e:
            raise WorkbenchError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}).") from e
    elif isinstance(config, Mapping):
        data = dict(config)
    elif hasattr(config, "to_dict"):
        data = config.to_dict()
    else:
        raise WorkbenchError(f"config must be a config.json path, a dict or a transformers config object, got "
                             f"{type(config).__name__}.")
    if not isinstance(data, dict):
        raise WorkbenchError(f"The model config must be a JSON object, got {type(data).__name__}.")
    # Multimodal wrappers keep the language model's shape in a nested text config.
    if _first(data, "hidden_size", "n_embd", "d_model") is None and isinstance(data.get("text_config"), dict):
        data = {**data["text_config"], "model_type": data["text_config"].get("model_type", data.get("model_type"))}
    return data


def shape_from(config: Any = None, **fields_: Any) -> TransformerShape:
    """Resolve a `TransformerShape` from a config and/or explicit fields (explicit values win).

    Explicit keywords: the `llm_memory` shape arguments, plus ``family`` (a Hugging Face ``model_type`` such as
    ``"llama"`` or ``"bert"``, which sets the family defaults) and any `TransformerShape` attribute.
    """
    cfg = read_config(config)
    given = {k: v for k, v in fields_.items() if v is not None}
    family = str(given.pop("family", None) or cfg.get("model_type") or "").lower()
    encoder = family in _ENCODERS
    gated_family = family in _GATED

    def pick(name: str, *keys: str, default: Any = None) -> Any:
        if name in given:
            return given.pop(name)
        v = _first(cfg, *keys)
        return default if v is None else v

    hidden = pick("hidden_size", "hidden_size", "n_embd", "d_model")
    if hidden is None:
        where = "the config" if cfg else "the arguments"
        raise WorkbenchError(f"No hidden size in {where} (looked for hidden_size, n_embd, d_model). Pass "
                             "hidden_size=... or a complete Hugging Face config.json.")
    layers = pick("num_layers", "num_hidden_layers", "n_layer", "num_layers")
    heads = pick("num_attention_heads", "num_attention_heads", "n_head", "num_heads")
    vocab = pick("vocab_size", "vocab_size", "padded_vocab_size")
    for name, v in (("num_layers", layers), ("num_attention_heads", heads), ("vocab_size", vocab)):
        if v is None:
            raise WorkbenchError(f"No {name} in the config or the arguments; pass {name}=....")
    kv_default = heads
    if cfg.get("multi_query_attention"):
        kv_default = cfg.get("multi_query_group_num", 1)
    kv = pick("num_kv_heads", "num_key_value_heads", "n_head_kv", "num_kv_heads", default=kv_default)
    head_dim = pick("head_dim", "head_dim", "kv_channels", default=None)
    ffn = pick("ffn_hidden_size", "intermediate_size", "ffn_hidden_size", "n_inner", "ffn_dim", default=None)
    has_rms = "rms_norm_eps" in cfg or bool(cfg.get("rmsnorm"))
    pos_default = 0
    if family in ("gpt2",):
        pos_default = cfg.get("n_positions", 0)
    elif encoder and cfg.get("position_embedding_type", "absolute") == "absolute":
        pos_default = cfg.get("max_position_embeddings", 0)
    ints = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (hidden, heads))
    if head_dim is None and ints:
        if hidden % heads:
            raise WorkbenchError(f"hidden_size {hidden} is not a multiple of num_attention_heads {heads}; pass "
                                 "head_dim=... explicitly.")
        head_dim = hidden // heads
    values = dict(
        num_layers=layers, hidden_size=hidden, num_attention_heads=heads, vocab_size=vocab, num_kv_heads=kv,
        head_dim=head_dim if head_dim is not None else hidden,
        ffn_hidden_size=ffn if ffn is not None else (4 * hidden if ints else hidden),
        gated_ffn=pick("gated_ffn", "gated_ffn", default=gated_family),
        bias=pick("bias", "attention_bias", default=not gated_family),
        norm=pick("norm", default="rmsnorm" if has_rms or gated_family else "layernorm"),
        position_embeddings=pick("position_embeddings", default=pos_default),
        token_types=pick("token_types", "type_vocab_size", default=0),
        pooler=pick("pooler", default=encoder),
        final_norm=pick("final_norm", default=not encoder),
        embedding_norm=pick("embedding_norm", default=encoder),
        lm_head=pick("lm_head", default=not encoder),
        tie_word_embeddings=pick("tie_word_embeddings", "tie_word_embeddings", default=True),
    )
    if given:
        known = ", ".join(f.name for f in fields(TransformerShape))
        raise WorkbenchError(f"Unknown shape argument(s) {sorted(given)}; known: {known}, family.")
    return TransformerShape(**values)


# ------------------------------------------------------------------------------------------ memory


def _weight_bytes(shape: TransformerShape, bits: int, group_size: int | None, scale_bits: int,
                  quantize_embeddings: bool) -> tuple[float, float]:
    """(weight bytes, effective bits per parameter) at `bits`."""
    p = shape.params()
    if bits >= 16:
        return p["total"] * bits / 8, float(bits)
    float_bits = 16

    def packed(mats: Iterable[tuple[str, int, int, int]]) -> float:
        total = 0.0
        for _, i, o, c in mats:
            groups = o * (math.ceil(i / group_size) if group_size else 1)
            total += c * (i * o * bits + groups * scale_bits)
        return total

    qbits = packed(shape.matrices())
    if quantize_embeddings:
        qbits += packed(shape.embedding_matrices())
        rest = p["small"]
    else:
        rest = p["embedding"] + p["small"]
    total_bits = qbits + rest * float_bits
    return total_bits / 8, total_bits / p["total"]


def _kv_bytes(shape: TransformerShape, batch: int, seq: int, kv_bits: int) -> float:
    return 2 * shape.num_layers * batch * seq * shape.num_kv_heads * shape.head_dim * kv_bits / 8


def _activation_bytes(shape: TransformerShape, batch: int, seq: int, act_bits: int, flash_attention: bool) -> float:
    h, f = shape.hidden_size, shape.ffn_hidden_size
    per_token = 3 * h + (shape.num_attention_heads + 2 * shape.num_kv_heads) * shape.head_dim
    per_token += f * (2 if shape.gated_ffn else 1)
    scores = 0 if flash_attention else shape.num_attention_heads * seq * seq
    return batch * (seq * per_token + scores) * act_bits / 8 + batch * shape.vocab_size * 4


def _hardware(devices: Sequence[Any] | None, gpus: Mapping[str, float] | None) -> list[tuple[str, float, float, str, bool]]:
    """(name, memory for weights, memory for KV + activations, note, splits) per device; MCUs split flash / RAM.

    ``splits``: the model may be split across several of them (the accelerators of `GPUS`, tensor / pipeline
    parallel); a device profile (a board, a phone, an MCU) holds it alone or not at all.
    """
    from workbench.hardware import device as get_device
    from workbench.hardware import devices as all_devices

    gpu_table = {k: v[0] for k, v in GPUS.items()} if gpus is None else dict(gpus)
    out = []
    for name, mem in gpu_table.items():
        if not (isinstance(mem, (int, float)) and mem > 0):
            raise WorkbenchError(f"gpus[{name!r}] must be a memory size in bytes > 0, got {mem!r}.")
        out.append((name, float(mem), float(mem), GPUS.get(name, (0, "user-given accelerator"))[1], True))
    profiles = list(all_devices().values()) if devices is None else [get_device(d) for d in devices]
    for p in profiles:
        if p.weights_in_storage:
            out.append((p.name, float(p.storage_bytes), float(p.ram_bytes),
                        f"{p.display_name}: weights in flash, KV cache + activations in RAM", False))
        else:
            out.append((p.name, float(p.ram_bytes), float(p.ram_bytes), p.display_name, False))
    return out


def _units(weights: float, rest: float, hw: Sequence[Any], usable: float) -> int:
    name, w_mem, r_mem = hw[:3]
    if w_mem == r_mem:
        return max(1, math.ceil((weights + rest) / (w_mem * usable)))
    return max(1, math.ceil(weights / (w_mem * usable)), math.ceil(rest / (r_mem * usable)))


def bytes_text(n: float) -> str:
    """A memory size in words: ``"3.9 GB"``, ``"7.5 MB"``, ``"470 KB"`` (1 GB = 1e9 bytes).

    Example:
        >>> bytes_text(3.9e9), bytes_text(7_549_747), bytes_text(471_859)
        ('3.9 GB', '7.55 MB', '472 KB')
    """
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def fit_text(weights: float, rest: float, hw: Sequence[Any], usable: float) -> str:
    """Whether a model of `weights` + `rest` (KV cache and workspace) bytes fits on `hw` (a `_hardware` entry):
    ``"fits"``, ``"4 needed (split evenly)"`` for accelerators, or ``"does not fit: needs 3.86 GB of flash for the
    weights (has 7.55 MB usable)"``: what it needs against what the device offers.

    Example:
        >>> fit_text(3.86e9, 1.26e9, ("raspberry-pi-4", 4.29e9, 4.29e9, "", False), 0.9)
        'does not fit: needs 5.12 GB of memory (has 3.86 GB usable)'
    """
    name, w_mem, r_mem, _, splits = hw
    n = _units(weights, rest, hw, usable)
    if n == 1:
        return "fits"
    if splits:
        return f"{n} needed (split evenly)"
    if w_mem == r_mem:
        return f"does not fit: needs {bytes_text(weights + rest)} of memory (has {bytes_text(w_mem * usable)} usable)"
    why = []
    if weights > w_mem * usable:
        why.append(f"{bytes_text(weights)} of flash for the weights (has {bytes_text(w_mem * usable)} usable)")
    if rest > r_mem * usable:
        why.append(f"{bytes_text(rest)} of RAM for the KV cache and workspace (has {bytes_text(r_mem * usable)} "
                   "usable)")
    return "does not fit: needs " + " and ".join(why)


def llm_memory(
    config: Any = None,
    *,
    num_layers: int | None = None,
    hidden_size: int | None = None,
    num_attention_heads: int | None = None,
    num_kv_heads: int | None = None,
    vocab_size: int | None = None,
    ffn_hidden_size: int | None = None,
    gated_ffn: bool | None = None,
    tie_word_embeddings: bool | None = None,
    max_seq_len: int = 2048,
    batch: int = 1,
    bits: Sequence[int] = (16, 8, 4),
    group_size: int | None = 128,
    scale_bits: int = 16,
    kv_bits: int = 16,
    act_bits: int = 16,
    quantize_embeddings: bool = False,
    flash_attention: bool = True,
    usable_fraction: float = USABLE_FRACTION,
    devices: Sequence[Any] | None = None,
    gpus: Mapping[str, float] | None = None,
    **shape: Any,
) -> tuple[pd.DataFrame, Any]:
    """Memory of a transformer at each bit-width and the hardware that holds it.

    Args:
        config: a Hugging Face ``config.json`` path (or its folder), a dict, or a `transformers` config object
            (``model.config``). Explicit fields below override it; without a config they are required.
        num_layers, hidden_size, num_attention_heads, vocab_size: the basic shape.
        num_kv_heads: key/value heads (GQA / MQA; default: the attention heads).
        ffn_hidden_size: feed-forward width (default 4 x hidden).
        gated_ffn: gated FFN with three matrices (default: from the model family, else False).
        tie_word_embeddings: LM head shares the embedding matrix (default: the config's value, else True).
        max_seq_len: context length the KV cache and the workspace are sized for.
        batch: sequences held at once.
        bits: weight bit-widths to tabulate (32 and 16 are float formats; 2-8 are integer).
        group_size: weights per quantisation scale along a row (``None``: one scale per output channel).
        scale_bits: bits of each scale (fp16 scales: 16).
        kv_bits, act_bits: bits of the KV cache and of activations.
        quantize_embeddings: quantise embeddings and an untied LM head too (default: they stay 16-bit).
        flash_attention: attention runs tiled (default); False adds the materialised score matrix (eager).
        usable_fraction: share of each device's memory a model may use.
        devices: device profile names (default: every profile).
        gpus: accelerators by name -> memory in bytes (default: `GPUS`: 24, 40 and 80 GB cards).
        **shape: further `TransformerShape` fields (``head_dim``, ``bias``, ``norm``, ``pooler``, ``lm_head``,
            ``position_embeddings``, ``token_types``, ``final_norm``, ``embedding_norm``, ``family``).

    Returns:
        ``(table, figure)``: one row per bit-width with ``bits``, ``params``, ``bits_per_param``, ``weight_gb``,
        ``kv_cache_gb``, ``activation_gb``, ``total_gb``, ``fits_on`` (devices that hold it alone),
        ``does_not_fit`` (device profiles that cannot hold it), ``n_<device>`` (devices needed: for the
        accelerators of `gpus` the count to split it over; for a device profile 1, or None where it does not fit,
        since a model is not split over boards) and ``fit_<device>`` (``"fits"``, ``"4 needed (split evenly)"``
        or ``"does not fit: needs 3.86 GB of flash for the weights (has 7.55 MB usable)"``); the figure stacks the
        memory per bit-width and maps the units needed.
        ``table.attrs`` holds the resolved ``shape`` and the ``assumptions``.

    Raises:
        WorkbenchError: a config without a hidden size, non-positive sizes, unknown bit-widths, ...

    Example:
        >>> import json
        >>> _ = open("config.json", "w").write(json.dumps({"num_hidden_layers": 30, "hidden_size": 576,
        ...     "num_attention_heads": 9, "num_key_value_heads": 3, "intermediate_size": 1536,
        ...     "vocab_size": 49152, "tie_word_embeddings": True}))   # SmolLM2-135M's shape
        >>> df, fig = llm_memory("config.json", bits=(16, 4), max_seq_len=4096)
        >>> df["bits"].tolist(), bool(df["weight_gb"].iloc[0] > df["weight_gb"].iloc[1])
        ([16, 4], True)
    """
    s = shape_from(config, num_layers=num_layers, hidden_size=hidden_size, num_attention_heads=num_attention_heads,
                   num_kv_heads=num_kv_heads, vocab_size=vocab_size, ffn_hidden_size=ffn_hidden_size,
                   gated_ffn=gated_ffn, tie_word_embeddings=tie_word_embeddings, **shape)
    for name, v in (("max_seq_len", max_seq_len), ("batch", batch)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise WorkbenchError(f"{name} must be a positive integer, got {v!r}.")
    bits = tuple(bits)
    if not bits or any(isinstance(b, bool) or b not in (2, 3, 4, 5, 6, 8, 16, 32) for b in bits):
        raise WorkbenchError(f"bits must be a non-empty list of 2, 3, 4, 5, 6, 8, 16 or 32, got {bits!r}.")
    if group_size is not None and (isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1):
        raise WorkbenchError(f"group_size must be a positive integer or None, got {group_size!r}.")
    for name, v in (("scale_bits", scale_bits), ("kv_bits", kv_bits), ("act_bits", act_bits)):
        if isinstance(v, bool) or v not in (4, 8, 16, 32):
            raise WorkbenchError(f"{name} must be 4, 8, 16 or 32, got {v!r}.")
    if not (isinstance(usable_fraction, (int, float)) and 0 < usable_fraction <= 1):
        raise WorkbenchError(f"usable_fraction must be in (0, 1], got {usable_fraction!r}.")
    hardware = _hardware(devices, gpus)
    params = s.params()
    kv = _kv_bytes(s, batch, max_seq_len, kv_bits)
    act = _activation_bytes(s, batch, max_seq_len, act_bits, flash_attention)
    rows = []
    for b in sorted(set(bits), reverse=True):
        w, bpp = _weight_bytes(s, b, group_size, scale_bits, quantize_embeddings)
        row: dict[str, Any] = {"bits": b, "params": params["total"], "bits_per_param": bpp, "weight_gb": w / GB,
                               "kv_cache_gb": kv / GB, "activation_gb": act / GB, "total_gb": (w + kv + act) / GB}
        fit = {hw[0]: fit_text(w, kv + act, hw, usable_fraction) for hw in hardware}
        counts = {hw[0]: _units(w, kv + act, hw, usable_fraction) if hw[4] or fit[hw[0]] == "fits" else None
                  for hw in hardware}
        row["fits_on"] = ", ".join(n for n, c in counts.items() if c == 1)
        row["does_not_fit"] = ", ".join(n for n, f in fit.items() if f.startswith("does not fit"))
        row.update({f"n_{n}": c for n, c in counts.items()})
        row.update({f"fit_{n}": f for n, f in fit.items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    for hw in hardware:
        df[f"n_{hw[0]}"] = df[f"n_{hw[0]}"].astype("Int64")  # <NA>: does not fit (a board is not split)
    df.attrs["shape"] = s
    df.attrs["params"] = params
    df.attrs["assumptions"] = (
        f"GB = 1e9 bytes; integer weights with one {scale_bits}-bit scale per "
        f"{'output channel' if group_size is None else f'{group_size} weights'}; embeddings, LM head, norms and "
        f"biases at 16 bits{' (embeddings quantised too)' if quantize_embeddings else ''}; KV cache at {kv_bits} "
        f"bits for batch {batch} x {max_seq_len} tokens; workspace = one layer's prefill tensors"
        f"{' (flash attention)' if flash_attention else ' incl. the attention-score matrix'}; a device holds "
        f"{usable_fraction:.0%} of its memory; several devices split the model evenly (a lower bound).")
    df.attrs["hardware"] = {hw[0]: hw[3] for hw in hardware}
    from workbench.viz.planning import llm_memory_figure

    return df, llm_memory_figure(df, hardware, usable=usable_fraction, gpus=GPUS)


def preset(name: str) -> dict[str, Any]:
    """The keyword arguments of a named model shape in `PRESETS`."""
    if name not in PRESETS:
        raise WorkbenchError(f"Unknown model preset {name!r}; known: {', '.join(PRESETS)}.")
    return dict(PRESETS[name])


__all__ = ["GPUS", "PRESETS", "TransformerShape", "bytes_text", "fit_text", "llm_memory", "preset", "read_config",
           "shape_from"]
