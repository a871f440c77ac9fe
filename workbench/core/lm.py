"""`LMSpec`: the shape of a causal language model (layers, heads, KV heads, vocabulary, context), and its KV cache.

A language-model handle carries its spec in ``handle.meta["lm"]`` (JSON, like every `meta` entry); everything that
treats language models differently asks `is_language_model(handle)` and reads `lm_spec(handle)`.

Example:
    >>> spec = LMSpec("llama", layers=30, hidden=576, heads=9, kv_heads=3, head_dim=64, intermediate=1536,
    ...               vocab=49152, context=8192, tie_embeddings=True)
    >>> spec.kv_cache_bytes(2048) / 2**20     # K and V, 30 layers, 3 KV heads of 64, fp32, 2048 tokens
    90.0
    >>> LMSpec.from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from workbench.core.errors import WorkbenchError

META_KEY = "lm"


@dataclass(frozen=True)
class LMSpec:
    """Architecture facts of a decoder-only language model.

    Attributes:
        architecture: the family (``"llama"``, ...), from the config's ``model_type``.
        layers: decoder layers. hidden: model width. heads / kv_heads: attention and key-value heads (GQA when
        fewer KV heads). head_dim: width of one head. intermediate: MLP width. vocab: vocabulary size.
        context: the longest context the model was trained for. tie_embeddings: the LM head shares the
        embedding table.
    """

    architecture: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    context: int
    tie_embeddings: bool = False

    def __post_init__(self) -> None:
        for f in ("layers", "hidden", "heads", "kv_heads", "head_dim", "intermediate", "vocab", "context"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"LMSpec.{f} must be a positive integer, got {v!r}")

    def kv_cache_bytes(self, tokens: int, bytes_per_value: float = 4) -> int:
        """Bytes of the key and value cache for `tokens` positions (all layers), at `bytes_per_value` each."""
        return int(round(2 * self.layers * self.kv_heads * self.head_dim * tokens * bytes_per_value))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LMSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_hf_config(cls, cfg: Any) -> LMSpec:
        """From a transformers config object or its `config.json` dict (Llama-style key names)."""
        get = cfg.get if isinstance(cfg, Mapping) else (lambda k, d=None: getattr(cfg, k, d))
        try:
            hidden = int(get("hidden_size"))
            heads = int(get("num_attention_heads"))
            return cls(
                architecture=str(get("model_type") or "unknown"),
                layers=int(get("num_hidden_layers")),
                hidden=hidden,
                heads=heads,
                kv_heads=int(get("num_key_value_heads") or heads),
                head_dim=int(get("head_dim") or hidden // heads),
                intermediate=int(get("intermediate_size")),
                vocab=int(get("vocab_size")),
                context=int(get("max_position_embeddings") or 2048),
                tie_embeddings=bool(get("tie_word_embeddings", False)),
            )
        except (TypeError, ValueError) as e:
            raise WorkbenchError(
                f"The language-model config lacks or garbles a required field ({e}); it needs hidden_size, "
                "num_attention_heads, num_hidden_layers, intermediate_size and vocab_size."
            ) from e


def lm_spec(handle: Any) -> LMSpec | None:
    """The handle's `LMSpec`, or `None` for a model that is not a language model."""
    d = getattr(handle, "meta", {}).get(META_KEY)
    return LMSpec.from_dict(d) if d else None


def is_language_model(handle: Any) -> bool:
    """Whether `handle` is a causal language model (it carries an `LMSpec`)."""
    return bool(getattr(handle, "meta", {}).get(META_KEY))


__all__ = ["META_KEY", "LMSpec", "is_language_model", "lm_spec"]
