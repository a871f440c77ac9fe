"""A tiny Hugging Face BERT for the transformer-fusion tests (a module, not conftest: see tiny_models.py)."""

from __future__ import annotations

import numpy as np
import torch

LAYERS, HIDDEN, HEADS, SEQ = 2, 32, 4, 16


class TinyBert(torch.nn.Module):
    """A 2-layer BertModel (hidden 32, 4 heads) returning its last hidden state; random weights."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        self.bert = BertModel(BertConfig(vocab_size=64, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                         num_attention_heads=HEADS, intermediate_size=64, max_position_embeddings=SEQ),
                              add_pooling_layer=False).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def tiny_bert_inputs() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 64, size=(2, SEQ)).astype(np.int64)
    mask = np.ones((2, SEQ), np.int64)
    mask[1, SEQ // 2:] = 0  # a padded row: the mask must reach the fused Attention
    return [ids, mask]
