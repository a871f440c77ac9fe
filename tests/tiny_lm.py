"""A tiny causal language model the tests build themselves: a 2-layer Llama with its own byte-level BPE tokenizer,
trained for a few seconds on Python's documentation prose (`pydoc_data.topics`, shipped with CPython), saved as a
Hugging Face folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json).

Hidden size 64 and MLP width 128 are multiples of 32, so 4-bit blocks of 32 tile every linear layer, as in
SmolLM2. Briefly trained rather than random, so that quantisation and pruning change its perplexity measurably.
"""

from __future__ import annotations

from pathlib import Path

TINY_LM_VOCAB = 384
TINY_LM_LAYERS = 2


def tiny_lm_texts(n: int = 80) -> list[str]:
    """`n` paragraphs of Python's documentation prose (deterministic: topics in sorted order)."""
    import pydoc_data.topics as topics

    paras: list[str] = []
    for key in sorted(topics.topics):
        for p in topics.topics[key].split("\n\n"):
            p = " ".join(p.split())
            if len(p) > 80 and not p.startswith(("*", ">>>", "|")):
                paras.append(p)
    return paras[:n]


def build_tiny_lm(out: Path, *, steps: int = 60, seed: int = 0) -> Path:
    """Write the tiny language model's Hugging Face folder to `out` and return it (a few seconds)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts = tiny_lm_texts(200)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=TINY_LM_VOCAB, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                                           "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    fast.save_pretrained(out)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=TINY_LM_LAYERS, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, tie_word_embeddings=True, rms_norm_eps=1e-5,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    ids = torch.tensor(fast("\n".join(texts))["input_ids"], dtype=torch.long)
    seq = 64
    chunks = ids[: (len(ids) // seq) * seq].view(-1, seq)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        batch = chunks[torch.randint(len(chunks), (16,), generator=gen)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.generation_config.pad_token_id = fast.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    return out


def held_out_ids(handle, rows: int, length: int):
    """`rows` x `length` token ids of held-out tiny-LM text (texts 200-240, which training never sees), int64."""
    import numpy as np

    from workbench.formats.lm_folder import tokenizer_of

    stream = tokenizer_of(handle)(" ".join(tiny_lm_texts(240)[200:240]))["input_ids"][: rows * length]
    return np.asarray(stream, dtype=np.int64).reshape(rows, length)
