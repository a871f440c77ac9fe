"""Which channels (or attention heads) channel pruning removes, given torch-pruning's importance scores.

The scores come from torch-pruning (`tp.importance.MagnitudeImportance`, see
`workbench.compression.channel_pruning`); only the choice of *which* units go is written here. torch-pruning's
own selection (`tp.pruner.MetaPruner` with ``pruning_ratio``, ``global_pruning`` and ``round_to``) would prune
different channels, and `Prune` documents this selection:

* per layer it removes ``floor(n * ratio)`` units (MetaPruner keeps ``int(n * (1 - ratio))``, so it removes
  one more of an odd width at 0.5 and differs at most other ratios);
* ``round_to`` keeps the *nearest* multiple (at least one), and leaves narrower groups alone; MetaPruner rounds
  the kept count *down* (to zero for a group narrower than ``round_to``);
* global ranking removes exactly ``int(total * ratio)`` units (MetaPruner removes every unit scoring at or
  below a threshold, so ties remove more) and refuses, with an error that names the layer, to empty a group;
* ties break by a stable sort (MetaPruner uses `torch.topk`), so a variant, and the sweep keys hashed from its
  weights, are the same on every run.

Checked against torch-pruning 1.6 on digits-cnn: at ratio 0.5, global, MetaPruner keeps the same channels;
with ``round_to=8`` it keeps 56/112/128 channels where this keeps 64/120/136, and per layer at 0.3 it keeps 22
of 32 where this keeps 23. A different choice would change every stored channel-pruned variant, so this stays.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.errors import WorkbenchError


@dataclass
class ChannelGroup:
    """One dependency group: channels pruned together, scored per unit (a channel, or a whole head).

    Attributes:
        root: the module torch-pruning's group starts from.
        handler: the pruning function of the root (its output channels).
        names: the layers whose output channels the group holds.
        scores: torch 1-D, one importance score per unit.
        unit: channels per unit (``head_dim`` for attention groups, else 1).
        remove: the unit indices chosen for removal (filled by `select_units`).
        ratio: the group's own ratio (a `Prune.per_layer` override): it removes ``floor(n * ratio)`` of its
            units whatever the scope; `None`: the config's ratio, per layer or by global rank.
    """

    root: Any
    handler: Any
    names: list[str]
    scores: Any
    unit: int = 1
    remove: list[int] = dataclasses.field(default_factory=list)
    ratio: float | None = None


def select_units(groups: list[ChannelGroup], *, ratio: float, per_layer: bool, round_to: int | None,
                 model: str) -> None:
    """Fill each group's `remove` (unit indices), per layer or by global rank; never empty a group.

    Args:
        groups: the dependency groups, with their scores; a group with its own `ChannelGroup.ratio` removes
            ``floor(n * ratio)`` of its n units, and is left out of the global ranking.
        ratio: fraction of units to remove from the other groups.
        per_layer: remove ``floor(n * ratio)`` of each group's n units; else rank all groups together (heads
            and channels in separate pools).
        round_to: keep a multiple of this many channels in each channel group (see `round_groups`); `None` or
            1: no rounding.
        model: the model's name, for the error message.

    Example:
        >>> import torch
        >>> g = ChannelGroup(None, None, ["conv"], torch.tensor([0.3, 0.1, 0.2, 0.4, 0.5]))
        >>> select_units([g], ratio=0.5, per_layer=True, round_to=None, model="net")
        >>> g.remove
        [1, 2]
        >>> own = ChannelGroup(None, None, ["fc"], torch.tensor([0.3, 0.1, 0.2, 0.4, 0.5]), ratio=0.2)
        >>> select_units([g, own], ratio=0.5, per_layer=False, round_to=None, model="net")
        >>> g.remove, own.remove
        ([1, 2], [1])
    """
    for g in groups:
        if g.ratio is not None:
            g.remove = _lowest(g, g.ratio)
    rest = [g for g in groups if g.ratio is None]
    if ratio > 0 and per_layer:
        for g in rest:
            g.remove = _lowest(g, ratio)
    elif ratio > 0:
        _rank_globally(rest, ratio, model)
    round_groups(groups, round_to)


def _lowest(g: ChannelGroup, ratio: float) -> list[int]:
    """The ``floor(n * ratio)`` lowest-scored of the group's n units (a stable sort), in index order."""
    return sorted(np.argsort(g.scores.numpy(), kind="stable")[: int(len(g.scores) * ratio)].tolist())


def _rank_globally(groups: list[ChannelGroup], ratio: float, model: str) -> None:
    for heads in (False, True):  # heads and channels are ranked in separate pools
        pool = [g for g in groups if (g.unit > 1) == heads]
        if not pool:
            continue
        scores = np.concatenate([g.scores.numpy() for g in pool])
        owner = np.concatenate([np.full(len(g.scores), i) for i, g in enumerate(pool)])
        local = np.concatenate([np.arange(len(g.scores)) for g in pool])
        lowest = np.argsort(scores, kind="stable")[: int(len(scores) * ratio)]
        for i, g in enumerate(pool):
            g.remove = sorted(local[lowest[owner[lowest] == i]].tolist())
            if len(g.remove) == len(g.scores):
                what = "head" if heads else "channel"
                raise WorkbenchError(
                    f"Prune: global {what} pruning at ratio {ratio} would remove every {what} of "
                    f"{', '.join(g.names)} in {model}. Lower the ratio, use scope='layer', give that layer its own ratio "
                    "(per_layer) or exclude it.")


def round_groups(groups: list[ChannelGroup], round_to: int | None) -> None:
    """Make each channel group keep a multiple of `round_to` channels (nearest, at least one multiple), removing
    the lowest-scored ones; groups narrower than `round_to`, and attention heads, are left as selected. `None`
    or 1: no rounding."""
    if not round_to or round_to == 1:
        return
    for g in groups:
        n = len(g.scores)
        if g.unit > 1 or n <= round_to or not g.remove:
            continue
        keep = min(n, max(round_to, int(round((n - len(g.remove)) / round_to)) * round_to))
        g.remove = sorted(np.argsort(g.scores.numpy(), kind="stable")[: n - keep].tolist())
