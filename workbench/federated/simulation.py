"""`simulate`: federated averaging of a task's model over non-IID clients, one DataFrame row per round.

(The module is named `simulation` so that the function `workbench.federated.simulate` does not shadow it.)
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError

ENGINES = ("inprocess", "ray")
INITS = ("scratch", "model")


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise WorkbenchError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def simulate(task: Any = None, *, clients: int = 5, rounds: int = 8, update: Any = None, seed: int = 0,
             alpha: float = 0.5, local_steps: int = 10, batch_size: int = 32, lr: float = 1e-2,
             init: str = "scratch", eval_limit: int | None = None, engine: str = "inprocess",
             threads: int | None = 1) -> Any:
    """Train `task`'s model by FedAvg over `clients` non-IID shards of its training split, on Flower.

    Each round every client starts from the global weights, trains `local_steps` Adam steps on its shard
    (`workbench.Recover`, the workbench's fine-tune), and uploads its delta compressed by `update` (see
    `workbench.federated.updates`); the server decodes the deltas, averages them weighted by shard size
    (Flower's `FedAvg`) and adds the mean to the global weights, which are then scored on the task's held-out
    split by ``task.evaluate``. The task's model is never changed.

    Args:
        task: a `workbench.Task` with a PyTorch model and labelled training data; default ``zoo.load()`` (kws).
        clients: number of clients (all take part in every round).
        rounds: federated rounds.
        update: configs applied to every client delta: ``None`` (float32), ``Quantize(8)``, ``Prune(0.9)``
            (top-10 % by magnitude), ``[Prune(0.9), Quantize(8)]``, ``Quantize(dtype="fp16")``.
        seed: seeds the shards, the fresh initialisation and every client's minibatch order.
        alpha: Dirichlet concentration of the label split (small: each client sees few classes).
        local_steps / batch_size / lr: each client's training per round.
        init: ``"scratch"`` (re-initialised weights of the same architecture, seeded) or ``"model"`` (start
            from the task's trained weights: federated fine-tuning).
        eval_limit: score only the first `eval_limit` evaluation samples each round.
        engine: ``"inprocess"`` (Flower's apps and strategy, messages serialised, no Ray) or ``"ray"``
            (``flwr.simulation.run_simulation``); see `workbench.federated.flower` for why the default.
        threads: torch threads while it runs (restored after); ``None`` leaves torch's setting. One, because
            clients train one after another on small batches: measured on a shared 2-core VM, a DS-CNN step at
            batch 32 took 0.10 s on one thread and 2.5 s on two while other processes held the cores.

    Returns:
        One row per round: ``round``, ``accuracy`` (the task's metric, with ``accuracy_low``/``_high``),
        ``upload_bytes`` (the clients' serialised reply messages, summed), ``upload_bytes_cumulative``,
        ``payload_bytes`` (the compressed deltas alone), ``download_bytes``, ``client_upload_bytes`` (a list),
        ``train_loss``, ``update`` (label), ``clients``, ``seconds``. ``df.attrs`` holds ``initial_accuracy``,
        ``shard_sizes``, ``class_counts``, ``dense_bytes`` (float32 bytes of the weights) and ``engine``.

    Example:
        >>> df = workbench.federated.simulate(task, clients=2, rounds=1, local_steps=2, eval_limit=50)
        >>> list(df["round"]), bool(df["upload_bytes"].iloc[0] > 2 * df.attrs["dense_bytes"])
        ([1], True)
    """
    import dataclasses

    import pandas as pd
    import torch

    from workbench.compression import Recover, compress
    from workbench.compression.base import copy_module
    from workbench.federated import flower
    from workbench.federated.partition import class_counts, dirichlet_split
    from workbench.federated.updates import check_update, compress_delta, decode, encode, update_label
    from workbench.formats.loader import load
    from workbench.runtimes import runtime

    if task is None:
        from workbench import zoo

        task = zoo.load()
    clients, rounds = _positive("clients", clients), _positive("rounds", rounds)
    local_steps, batch_size = _positive("local_steps", local_steps), _positive("batch_size", batch_size)
    if engine not in ENGINES:
        raise WorkbenchError(f"engine must be one of {ENGINES}, got {engine!r}.")
    if init not in INITS:
        raise WorkbenchError(f"init must be one of {INITS}, got {init!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise WorkbenchError(f"seed must be an integer, got {seed!r}.")
    configs = check_update(update)
    handle = getattr(task, "model", None)
    if handle is None or handle.framework != "torch" or handle.module is None:
        raise WorkbenchError("simulate trains a PyTorch model: pass a Task whose model is an nn.Module "
                             "(e.g. workbench.zoo.load() or Task.from_model(module, ...)).")
    if task.train_inputs is None or task.train_labels is None or task.eval_labels is None:
        raise WorkbenchError(f"{task.name}: federated training needs labelled training and evaluation data "
                             "(Task.from_model(..., labels=..., train_inputs=..., train_labels=...)).")
    labels = np.asarray(task.train_labels)
    shards = dirichlet_split(labels, clients, alpha=alpha, seed=seed, min_size=2)

    template = copy_module(handle)
    if init == "scratch":
        torch.manual_seed(int(seed))
        for m in template.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
    state = template.state_dict()
    names = [k for k, v in state.items() if v.is_floating_point()]  # num_batches_tracked stays the server's
    shapes = {k: tuple(state[k].shape) for k in names}
    base = load(template, example_inputs=handle.example_inputs, name=f"{handle.name}-federated")

    def with_weights(arrays: list[np.ndarray]) -> Any:
        module = copy_module(base)
        sd = module.state_dict()
        sd.update({k: torch.from_numpy(np.array(a)) for k, a in zip(names, arrays)})
        module.load_state_dict(sd)
        return load(module, example_inputs=handle.example_inputs, name=base.name)

    def train(pid: int, server_round: int, arrays: list[np.ndarray]) -> tuple[bytes, int, float]:
        local = with_weights(arrays)
        idx = shards[pid]
        shard = dataclasses.replace(task, model=local, train_inputs=[x[idx] for x in task.train_inputs],
                                    train_labels=labels[idx], _reference=None)
        cfg = Recover(steps=local_steps, lr=lr, batch_size=min(batch_size, len(idx)),
                      seed=int(seed) * 100_003 + server_round * 1_009 + pid)
        trained = compress(local, cfg, task=shard)
        after = trained.module.state_dict()
        delta = {k: (after[k].detach().numpy() - a).astype(np.float32) for k, a in zip(names, arrays)}
        blob = encode(compress_delta(base, delta, configs), names)
        return blob, len(idx), float(trained.meta["recover"]["final_loss"])

    def evaluate(server_round: int, arrays: list[np.ndarray]) -> dict[str, float]:
        scores = task.evaluate(runtime(with_weights(arrays), "torch"), limit=eval_limit)
        return {k: scores[k] for k in (task.metric, f"{task.metric}_low", f"{task.metric}_high") if k in scores}

    log: list[dict[str, Any]] = []
    stamps: dict[int, float] = {}

    def timed_evaluate(server_round: int, arrays: list[np.ndarray]) -> dict[str, float]:
        stamps[server_round] = time.perf_counter()
        return evaluate(server_round, arrays)

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(_positive("threads", threads))
    try:
        with flower.offline_flower():
            strategy = flower.make_strategy(clients, shapes, lambda blob: decode(blob, shapes), log)
            scores = flower.run(engine, clients=clients, rounds=rounds, initial={k: state[k].numpy() for k in names},
                                client_app=flower.make_client_app(train), strategy=strategy, evaluate=timed_evaluate)
    finally:
        torch.set_num_threads(previous)
    label = update_label(configs)
    rows = []
    for entry in log:
        r = entry["round"]
        s = scores[r]
        rows.append({"round": r, "accuracy": s[task.metric], "accuracy_low": s.get(f"{task.metric}_low"),
                     "accuracy_high": s.get(f"{task.metric}_high"), "upload_bytes": entry["upload_bytes"],
                     "payload_bytes": entry["payload_bytes"], "download_bytes": entry["download_bytes"],
                     "client_upload_bytes": entry["client_upload_bytes"], "train_loss": entry["train_loss"],
                     "update": label, "clients": clients, "seconds": stamps[r] - stamps[r - 1]})
    df = pd.DataFrame(rows)
    df.insert(df.columns.get_loc("payload_bytes"), "upload_bytes_cumulative", df["upload_bytes"].cumsum())
    df.attrs.update(initial_accuracy=scores[0][task.metric], metric=task.metric, engine=engine,
                    shard_sizes=[len(s) for s in shards], class_counts=class_counts(labels, shards).tolist(),
                    dense_bytes=4 * sum(int(np.prod(s, dtype=np.int64)) for s in shapes.values()), alpha=alpha,
                    update=label)
    return df
