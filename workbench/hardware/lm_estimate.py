"""Language-model estimates for a device profile: decode tokens/s, time to first token, energy per token, fit.

Every figure is an estimate (hence ``_est``), from the profile's datasheet numbers and these formulas:

* **bytes per decoded token** = every weight of the decoder at its stored width (b-bit linear weights plus one
  16-bit scale per group, and a zero point per group when asymmetric; embeddings / LM head at 16 bits unless
  quantised; the tied LM head reads the whole table once per token) + the KV cache read at the context reached
  (K and V, all layers, fp32 as the CPU runtimes keep it; fp16 on devices whose fastest float is fp16).
* **decode** (one token) = max(bytes per token / memory bandwidth, 2 x parameters / (peak ops x efficiency))
  + layers x the profile's per-layer overhead. Decode is memory-bound on every profile here: a token reads
  every weight once and does only two operations with each.
* **prefill** (time to first token) = 2 x parameters x prompt tokens / (peak ops x efficiency) (compute-bound),
  at least one pass over the weights, plus one decode step.
* **energy per token** = (active - idle power) x decode time: what a token adds above idle.
* **fits**: weights + KV cache at the full context + runtime workspace (one layer's activations for the prompt
  and fp32 logits, `workbench.plan.llm`'s formula, plus 10 % for the runtime) <= 90 % of RAM.

Example:
    >>> from workbench.core.lm import LMSpec
    >>> spec = LMSpec("llama", 30, 576, 9, 3, 64, 1536, 49152, 8192, True)
    >>> e = estimate_lm_spec(spec, 134_515_008, "raspberry-pi-4", bits=4, group_size=32)
    >>> fp32 = estimate_lm_spec(spec, 134_515_008, "raspberry-pi-4")
    >>> e.fits, e.tokens_per_s_est > 3 * fp32.tokens_per_s_est, estimate_lm_spec(spec, 134_515_008, "esp32-s3").fits
    (True, True, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from workbench.core.lm import LMSpec
from workbench.hardware.profile import DeviceProfile, off_runtime

CONTEXT = 512
PROMPT_TOKENS = 64
USABLE_RAM = 0.9
FORMULA = ("decode: max(bytes per token / memory bandwidth, 2*params / (peak ops*efficiency)) + layers*overhead; "
           "prefill: 2*params*prompt / (peak ops*efficiency); energy/token: (active-idle W) * decode time; "
           "fit: weights + KV(context) + workspace <= 90% RAM")


@dataclass(frozen=True)
class LMEstimate:
    """Estimates for one language model on one device (see the module docstring for the formulas)."""

    device: str
    dtype: str
    tokens_per_s_est: float
    ttft_ms_est: float
    energy_mj_per_token_est: float
    power_w_est: float
    fits: bool
    deployable: bool
    reason: str
    weight_bytes: int
    kv_cache_bytes: int
    bytes_per_token: int
    context: int
    formula: str = FORMULA

    def to_row(self) -> dict[str, Any]:
        ms = 1e3 / self.tokens_per_s_est if self.tokens_per_s_est > 0 else math.nan
        return {"device": self.device, "dtype_est": self.dtype, "latency_ms_est": ms,
                "energy_mj_est": self.energy_mj_per_token_est, "power_w_est": self.power_w_est,
                "power_w_at_rate_est": math.nan, "battery_h_est": math.nan, "fits": self.fits,
                "deployable": self.deployable, "reason": self.reason, "formula": self.formula,
                "tokens_per_s_est": self.tokens_per_s_est, "ttft_ms_est": self.ttft_ms_est,
                "energy_mj_per_token_est": self.energy_mj_per_token_est}


def weight_bytes_lm(spec: LMSpec, params: int, bits: int = 32, group_size: int | None = None,
                    symmetric: bool = True, embeddings: bool = False) -> int:
    """Stored bytes of the weights: linear layers at `bits` (+ a 16-bit scale, and a `bits`-wide zero point when
    asymmetric, per group of `group_size`), embeddings at 32 bits for an fp32 model, else 16 unless quantised."""
    emb = spec.vocab * spec.hidden * (1 if spec.tie_embeddings else 2)
    per_layer = (spec.hidden * spec.head_dim * (2 * spec.heads + 2 * spec.kv_heads)
                 + 3 * spec.hidden * spec.intermediate)
    linear = spec.layers * per_layer
    rest = max(0, params - linear - emb)  # norms
    if bits >= 16:
        return int((linear + emb + rest) * bits / 8)
    g = group_size or spec.hidden
    overhead = (16 + (0 if symmetric else bits)) / g
    emb_bits = bits + overhead if embeddings else 16
    return int(linear * (bits + overhead) / 8 + emb * emb_bits / 8 + rest * 2)


def estimate_lm_spec(spec: LMSpec, params: int, device: str | DeviceProfile, *, bits: int = 32,
                     group_size: int | None = None, symmetric: bool = True, embeddings: bool = False,
                     context: int = CONTEXT, prompt_tokens: int = PROMPT_TOKENS) -> LMEstimate:
    """Estimates for an architecture at a weight width on a device (the module docstring has the formulas)."""
    from workbench.hardware import device as get_device

    prof = get_device(device) if isinstance(device, str) else device
    float_dtype = "fp32" if prof.supports("fp32") else "fp16"
    dtype = float_dtype if bits >= 16 else f"int{bits}-weights/{float_dtype}"
    deployable = prof.supports(float_dtype)
    kv_value = 4 if float_dtype == "fp32" else 2
    weights = weight_bytes_lm(spec, params, bits, group_size, symmetric, embeddings)
    if bits >= 16 and float_dtype == "fp16":
        weights = weight_bytes_lm(spec, params, 16)
    kv_full = spec.kv_cache_bytes(context, kv_value)
    per_token = int(weights + kv_full / 2)  # the cache is read up to the current position: half on average
    ops = max(prof.peak_ops.get(float_dtype, 0.0) * prof.efficiency.get(float_dtype, 1.0), 1.0)
    compute_s = 2 * params / ops
    decode_s = max(per_token / prof.memory_bandwidth_bytes_s, compute_s) + spec.layers * prof.layer_overhead_s
    prefill_s = max(2 * params * prompt_tokens / ops, weights / prof.memory_bandwidth_bytes_s)
    workspace = (3 * prompt_tokens * spec.hidden + prompt_tokens * spec.intermediate * 2) * 4 + spec.vocab * 4
    need = (weights + kv_full + workspace) * 1.1
    fits = need <= prof.ram_bytes * USABLE_RAM
    reason = "" if fits else (f"needs {need / 1e6:,.0f} MB (weights {weights / 1e6:,.0f} MB + KV cache at {context} "
                              f"tokens {kv_full / 1e6:,.0f} MB + workspace) of {prof.ram_bytes * USABLE_RAM / 1e6:,.0f}"
                              " MB usable RAM")
    if not deployable:
        reason = f"{prof.name} has no float kernels for a language model's activations"
    extra_w = max(prof.active_w - prof.idle_w, 0.0)
    runs = fits and deployable  # no speed for a model the device cannot hold: "does not fit" is the answer
    return LMEstimate(
        device=prof.name, dtype=dtype, tokens_per_s_est=1 / decode_s if runs else math.nan,
        ttft_ms_est=(prefill_s + decode_s) * 1e3 if runs else math.nan,
        energy_mj_per_token_est=extra_w * decode_s * 1e3 if runs else math.nan,
        power_w_est=prof.active_w, fits=bool(fits and deployable), deployable=deployable, reason=reason,
        weight_bytes=weights, kv_cache_bytes=kv_full, bytes_per_token=per_token, context=context)


def quant_settings(handle: Any) -> dict[str, Any]:
    """The weight width a language-model variant's quantisation recorded: bits, group_size, symmetric, embeddings
    (32-bit floats for an unquantised model)."""
    from workbench.core.quant import quant_record

    record = quant_record(handle)
    layers = [(name, lq) for name, lq in record.layers if lq.bits]
    if not layers:
        return {"bits": 32, "group_size": None, "symmetric": True, "embeddings": False}
    return {"bits": max(lq.bits for _, lq in layers), "group_size": layers[0][1].group_size,
            "symmetric": bool(layers[0][1].symmetric),
            "embeddings": any("embed" in name or "lm_head" in name for name, _ in layers)}


def lm_weight_bytes(handle: Any) -> int:
    """Stored weight bytes of a language-model handle at its recorded width (`weight_bytes_lm`)."""
    from workbench.core.lm import lm_spec

    return weight_bytes_lm(lm_spec(handle), handle.num_params, **quant_settings(handle))


def estimate_lm(handle: Any, device: str | DeviceProfile, *, context: int = CONTEXT,
                prompt_tokens: int = PROMPT_TOKENS, runtime: str | None = None) -> LMEstimate:
    """`estimate_lm_spec` for a language-model handle, at the weight width its quantisation recorded; `runtime`:
    not deployable on a device whose profile does not list that runtime (`DeviceProfile.runs`)."""
    from workbench.core.lm import lm_spec

    spec = lm_spec(handle)
    if spec is None:
        raise ValueError(f"{getattr(handle, 'name', handle)} is not a language model")
    from workbench.hardware import device as get_device

    prof = get_device(device) if isinstance(device, str) else device
    est = estimate_lm_spec(spec, handle.num_params, prof, context=context, prompt_tokens=prompt_tokens,
                           **quant_settings(handle))
    return off_runtime(est, prof, runtime)


__all__ = ["CONTEXT", "FORMULA", "LMEstimate", "PROMPT_TOKENS", "estimate_lm", "estimate_lm_spec", "lm_weight_bytes",
           "quant_settings", "weight_bytes_lm"]
