"""Federated learning: FedAvg over non-IID clients on Flower, with client updates compressed by the workbench's
own techniques and their upload bytes measured on the wire.

`simulate(task, clients=, rounds=, update=)` returns one row per round (accuracy on the task's held-out split,
bytes uploaded); `dirichlet_split` deals a training set to clients; `workbench.federated.updates` turns a delta
compressed by `Quantize` / `Prune` into the bytes a client sends. Flower (flwr) is imported only by `simulate`.

Example:
    >>> shards = workbench.federated.dirichlet_split(task.train_labels, 4, alpha=0.1, seed=0)
    >>> len(shards), sum(map(len, shards)) == len(task.train_labels)
    (4, True)
"""

from __future__ import annotations

from workbench.federated.partition import class_counts, dirichlet_split
from workbench.federated.simulation import simulate

__all__ = ["class_counts", "dirichlet_split", "simulate"]
