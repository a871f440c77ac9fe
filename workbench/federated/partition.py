"""Non-IID client shards: a Dirichlet split of a labelled training set (Hsu et al., 2019, arXiv:1909.06335).

For every class, the shares its samples are dealt to the clients in come from Dirichlet(alpha, ..., alpha): a
small `alpha` (0.1) gives each client a few classes, a large one (100) nearly the same mix on every client.
"""

from __future__ import annotations

import numpy as np

from workbench.core.errors import WorkbenchError


def dirichlet_split(labels: np.ndarray, clients: int, *, alpha: float = 0.5, seed: int = 0,
                    min_size: int = 1) -> list[np.ndarray]:
    """Indices of `labels` dealt to `clients` shards with Dirichlet(`alpha`) class shares per client.

    The split is redrawn (from the same seeded generator) until every shard holds at least `min_size` samples,
    so the same arguments always give the same shards.

    Args:
        labels: class ids, one per sample.
        clients: number of shards, >= 1.
        alpha: Dirichlet concentration, > 0: smaller is more skewed.
        seed: seed of the draw.
        min_size: the fewest samples any shard may get.

    Returns:
        One sorted int64 index array per client; together they partition ``range(len(labels))``.

    Example:
        >>> shards = dirichlet_split(np.repeat(np.arange(4), 25), 3, alpha=0.3, seed=1)
        >>> sum(len(s) for s in shards), sorted(np.concatenate(shards).tolist()) == list(range(100))
        (100, True)
    """
    labels = np.asarray(labels)
    if isinstance(clients, bool) or not isinstance(clients, (int, np.integer)) or clients < 1:
        raise WorkbenchError(f"clients must be a positive integer, got {clients!r}.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not np.isfinite(alpha) or alpha <= 0:
        raise WorkbenchError(f"alpha (the Dirichlet concentration) must be a number > 0, e.g. 0.5, got {alpha!r}.")
    if labels.ndim != 1 or len(labels) < clients * min_size:
        raise WorkbenchError(f"{len(labels)} labelled samples cannot give {clients} clients {min_size} sample(s) "
                             "each; use fewer clients.")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        parts: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(clients, float(alpha)))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for k, piece in enumerate(np.split(idx, cuts)):
                parts[k].append(piece)
        shards = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if min(len(s) for s in shards) >= min_size:
            return shards
    raise WorkbenchError(f"could not deal {len(labels)} samples to {clients} clients with at least {min_size} each "
                         f"at alpha={alpha}; raise alpha or use fewer clients.")


def class_counts(labels: np.ndarray, shards: list[np.ndarray]) -> np.ndarray:
    """(clients, classes) sample counts per shard and class."""
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if len(labels) else 0
    return np.stack([np.bincount(labels[s], minlength=k) for s in shards])
