"""A Llama-style decoder written for `torch.export` and ExecuTorch's XNNPACK delegate, with its KV cache inside.

`XnnpackDecoder` wraps the layers of a transformers Llama model (it shares their weights, copies nothing) and
runs them with ops XNNPACK delegates under a dynamic number of tokens: RMSNorm's mean as a linear layer against a
constant row of ``1/hidden``, rotate-half of RoPE as a linear layer against a signed permutation, SiLU as
``x * sigmoid(x)``, attention as ``bmm`` with the query heads of one KV head stacked (GQA without repeating K/V).
The cache is one ``[kv_cache, kv_heads, head_dim]`` buffer per layer for K and one for V, written in place at
``input_pos`` (``index_put``: the only per-layer op left to ExecuTorch's portable kernels). Positions past the
current one are masked, so a new sequence starting at position 0 needs no cache reset.

``forward(tokens [1, T] int64, input_pos [T] int64) -> logits [1, T, vocab]``, ``1 <= T <= kv_cache``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class XnnpackDecoder(nn.Module):
    """The decoder of a transformers ``LlamaForCausalLM`` (or a config-compatible model) with a static KV cache."""

    def __init__(self, hf_model: Any, kv_cache: int, rope_theta: float) -> None:
        super().__init__()
        config = hf_model.config
        self.hidden = int(config.hidden_size)
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(config.num_key_value_heads or self.heads)
        self.head_dim = int(getattr(config, "head_dim", None) or self.hidden // self.heads)
        self.groups = self.heads // self.kv_heads
        self.kv_cache = int(kv_cache)
        self.eps = float(config.rms_norm_eps)
        base = hf_model.model
        self.embed_tokens = base.embed_tokens
        self.layers = base.layers
        self.norm = base.norm
        self.lm_head = hf_model.lm_head
        d, half = self.head_dim, self.head_dim // 2
        inv = 1.0 / (float(rope_theta) ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        angles = torch.outer(torch.arange(self.kv_cache, dtype=torch.float64), inv)
        angles = torch.cat([angles, angles], dim=-1)
        self.register_buffer("cos_table", angles.cos().float(), persistent=False)
        self.register_buffer("sin_table", angles.sin().float(), persistent=False)
        rot = torch.zeros(d, d)  # linear(x, rot) == cat(-x[..., half:], x[..., :half])
        idx = torch.arange(half)
        rot[idx, idx + half] = -1.0
        rot[idx + half, idx] = 1.0
        self.register_buffer("rotate_half", rot, persistent=False)
        self.register_buffer("mean_row", torch.full((1, self.hidden), 1.0 / self.hidden), persistent=False)
        self.register_buffer("cache_pos", torch.arange(self.kv_cache), persistent=False)
        for i in range(len(self.layers)):
            self.register_buffer(f"k_cache_{i}", torch.zeros(self.kv_cache, self.kv_heads, d), persistent=False)
            self.register_buffer(f"v_cache_{i}", torch.zeros(self.kv_cache, self.kv_heads, d), persistent=False)

    def rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(nn.functional.linear(x * x, self.mean_row) + self.eps) * weight

    def rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return x * cos + nn.functional.linear(x, self.rotate_half) * sin

    def forward(self, tokens: torch.Tensor, input_pos: torch.Tensor) -> torch.Tensor:
        h, d, kvh, g = self.hidden, self.head_dim, self.kv_heads, self.groups
        x = self.embed_tokens(tokens).view(-1, h)                                   # [T, hidden]
        cos = nn.functional.embedding(input_pos, self.cos_table).unsqueeze(1)       # [T, 1, head_dim]
        sin = nn.functional.embedding(input_pos, self.sin_table).unsqueeze(1)
        rows = input_pos.unsqueeze(1).expand(-1, g).reshape(-1)                     # [T * groups]
        mask = torch.where(self.cache_pos.unsqueeze(0) <= rows.unsqueeze(1), 0.0, float("-inf"))
        scale = 1.0 / math.sqrt(d)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            xn = self.rms_norm(x, layer.input_layernorm.weight)
            q = self.rope(attn.q_proj(xn).view(-1, self.heads, d), cos, sin)
            k = self.rope(attn.k_proj(xn).view(-1, kvh, d), cos, sin)
            v = attn.v_proj(xn).view(-1, kvh, d)
            k_cache, v_cache = getattr(self, f"k_cache_{i}"), getattr(self, f"v_cache_{i}")
            k_cache.index_copy_(0, input_pos, k)
            v_cache.index_copy_(0, input_pos, v)
            q = q.view(-1, kvh, g, d).permute(1, 0, 2, 3).reshape(kvh, -1, d)       # [kv_heads, T * groups, d]
            scores = torch.bmm(q, k_cache.permute(1, 2, 0)) * scale + mask
            o = torch.bmm(torch.softmax(scores, dim=-1), v_cache.permute(1, 0, 2))
            o = o.view(kvh, -1, g, d).permute(1, 0, 2, 3).reshape(-1, self.heads * d)
            x = x + attn.o_proj(o)
            mlp = layer.mlp
            xn = self.rms_norm(x, layer.post_attention_layernorm.weight)
            gate = mlp.gate_proj(xn)
            x = x + mlp.down_proj(gate * torch.sigmoid(gate) * mlp.up_proj(xn))
        x = self.rms_norm(x, self.norm.weight)
        return self.lm_head(x).view(1, -1, self.lm_head.out_features)
