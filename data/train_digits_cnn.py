"""Trains the built-in "digits-cnn" demo model and writes its weights and metadata.

Run from the repository root::

    .venv/bin/python data/train_digits_cnn.py

Writes ``data/digits_cnn.safetensors`` (eval-mode ``state_dict``) and
``data/digits_cnn.json`` (metadata). Deterministic for a fixed seed.
"""

from __future__ import annotations

import importlib.util
import json
import random
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

SEED = 0
EPOCHS = 12
BATCH_SIZE = 64
LR = 3e-3
MAX_SHIFT = 2  # pixels, random translation augmentation

DATA_DIR = Path(__file__).resolve().parent
MODULE_PATH = DATA_DIR.parent / "workbench" / "zoo" / "digits_net.py"


def load_digits_net() -> ModuleType:
    """Imports ``digits_net.py`` by file path so the package need not be installed."""
    spec = importlib.util.spec_from_file_location("digits_net", MODULE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translates each image by up to ``max_shift`` pixels, filling with the background value."""
    n, _, h, w = x.shape
    padded = nn.functional.pad(x, (max_shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=gen).tolist()
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(n)])


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on ``(x, y)``."""
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def main() -> None:
    """Trains, evaluates and saves the model."""
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(SEED)

    digits_net = load_digits_net()
    splits = digits_net.digits_splits(SEED)
    x_train, y_train = (torch.from_numpy(a) for a in splits["train"])
    x_eval, y_eval = (torch.from_numpy(a) for a in splits["eval"])

    model = digits_net.build_digits_cnn()
    n_params = sum(p.numel() for p in model.parameters())
    steps_per_epoch = -(-len(x_train) // BATCH_SIZE)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=EPOCHS * steps_per_epoch)
    print(f"digits-cnn: {n_params} params, {len(x_train)} train / {len(x_eval)} eval samples")

    start = time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        model.train()
        total_loss = 0.0
        for idx in torch.randperm(len(x_train), generator=gen).split(BATCH_SIZE):
            xb = random_shift(x_train[idx], MAX_SHIFT, gen)
            loss = nn.functional.cross_entropy(model(xb), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(idx)
        acc = accuracy(model, x_eval, y_eval)
        elapsed = time.perf_counter() - start
        print(f"epoch {epoch:2d}/{EPOCHS}  loss {total_loss / len(x_train):.4f}  eval acc {acc:.4f}  {elapsed:.1f}s")
    seconds = time.perf_counter() - start

    model.eval()
    eval_acc = accuracy(model, x_eval, y_eval)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(DATA_DIR / digits_net.WEIGHTS_FILE))
    meta = {
        "model": "digits-cnn",
        "eval_accuracy": round(eval_acc, 4),
        "params": n_params,
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "seed": SEED,
        "seconds": round(seconds, 2),
        "torch_version": torch.__version__,
        "input_shape": [1, *digits_net.INPUT_SHAPE],
        "train_samples": len(x_train),
        "eval_samples": len(x_eval),
    }
    (DATA_DIR / "digits_cnn.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"saved {digits_net.WEIGHTS_FILE}: eval acc {eval_acc:.4f} in {seconds:.1f}s")


if __name__ == "__main__":
    main()
