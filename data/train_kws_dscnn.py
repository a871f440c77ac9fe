"""Trains the built-in "kws" DS-CNN on data/kws_features.npz and writes its weights and metadata.

Run from the repository root (after ``python data/make_kws_data.py``)::

    .venv/bin/python data/train_kws_dscnn.py

Writes ``data/kws_dscnn.safetensors`` (eval-mode ``state_dict``) and ``data/kws_dscnn.json`` (metadata:
train and held-out accuracy, parameters, MACs). Deterministic for a fixed seed on the same torch build.
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
EPOCHS = 16
BATCH_SIZE = 64
LR = 3e-3
WEIGHT_DECAY = 1e-4
MAX_SHIFT = 3  # frames (20 ms each): random time shift augmentation of the MFCCs

DATA_DIR = Path(__file__).resolve().parent
MODULE_PATH = DATA_DIR.parent / "workbench" / "zoo" / "kws_net.py"


def load_kws_net() -> ModuleType:
    """Imports ``kws_net.py`` by file path so the package need not be installed."""
    spec = importlib.util.spec_from_file_location("kws_net", MODULE_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shifts each clip's MFCC frames by up to ``max_shift`` frames, repeating the edge frame."""
    n, _, t, _ = x.shape
    padded = torch.cat([x[:, :, :1].expand(-1, -1, max_shift, -1), x,
                        x[:, :, -1:].expand(-1, -1, max_shift, -1)], dim=2)
    d = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen).tolist()
    return torch.stack([padded[i, :, d[i]:d[i] + t] for i in range(n)])


def count_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one inference: convolutions and linear layers (forward hooks)."""
    total = 0

    def hook(module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.weight[0].numel()  # (in / groups) * kh * kw
            total += out.numel() * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *shape))
    for h in handles:
        h.remove()
    return total


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
    torch.set_num_threads(1)  # one thread: deterministic, and not slowed by a busy machine
    gen = torch.Generator().manual_seed(SEED)

    kws_net = load_kws_net()
    splits = kws_net.kws_splits(str(DATA_DIR / kws_net.FEATURES_FILE))
    x_train, y_train = (torch.from_numpy(a) for a in splits["train"])
    x_eval, y_eval = (torch.from_numpy(a) for a in splits["eval"])

    model = kws_net.build_kws_dscnn()
    n_params = sum(p.numel() for p in model.parameters())
    macs = count_macs(model, kws_net.INPUT_SHAPE)
    steps_per_epoch = -(-len(x_train) // BATCH_SIZE)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=EPOCHS * steps_per_epoch)
    print(f"kws: {n_params} params, {macs} MACs, {len(x_train)} train / {len(x_eval)} eval samples")

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
    train_acc = accuracy(model, x_train, y_train)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(DATA_DIR / kws_net.WEIGHTS_FILE))
    meta = {
        "model": "kws-dscnn (MLPerf Tiny keyword spotting reference)",
        "train_accuracy": round(train_acc, 4),
        "eval_accuracy": round(eval_acc, 4),
        "params": n_params,
        "macs": macs,
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "weight_decay": WEIGHT_DECAY,
        "max_shift_frames": MAX_SHIFT,
        "seed": SEED,
        "seconds": round(seconds, 2),
        "torch_version": torch.__version__,
        "input_shape": [1, *kws_net.INPUT_SHAPE],
        "classes": list(kws_net.CLASSES),
        "train_samples": len(x_train),
        "eval_samples": len(x_eval),
    }
    (DATA_DIR / "kws_dscnn.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"saved {kws_net.WEIGHTS_FILE}: train acc {train_acc:.4f}, eval acc {eval_acc:.4f} in {seconds:.1f}s")


if __name__ == "__main__":
    main()
