"""The collectives of data-parallel center steps on torch.distributed (spec section 5), for
centerloss.CenterLoss(process_group=..., shard_centers=...).

They are the C++ module's own (csrc/module/union_batch.h, sharded_centers.h), run through the
ops on the torch.distributed group itself (``group.boxed()``), so Python and C++ share one
implementation: every rank steps with the union of the ranks' batches (bitwise one process fed
their concatenation, in rank order), a bad batch on one rank raises on every rank, and a NaN on
any rank skips the step everywhere. See docs/distributed.md.
"""
from __future__ import annotations

import warnings

import torch
import torch.distributed as dist

from . import _ops


def _boxed(process_group):
    """The group as the C++ ops take it ("world": torch.distributed's default group)."""
    if isinstance(process_group, str):
        if process_group != "world":
            raise ValueError(f"CenterLoss: process_group must be a torch.distributed group or "
                             f"'world', got {process_group!r}")
        if not dist.is_initialized():
            raise RuntimeError("CenterLoss: process_group='world' needs torch.distributed."
                               "init_process_group first")
        process_group = dist.group.WORLD
    return process_group.boxed()


def shard_range(process_group, num_classes: int):
    """(k0, k1, world): this rank's block of classes, [r K / W, (r + 1) K / W)."""
    group = None if process_group == "world" else process_group
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    return rank * num_classes // world, (rank + 1) * num_classes // world, world


def warn_if_distributed_without_group(owner: str) -> None:
    """Warns when torch.distributed runs several processes but a module steps its centers
    without a process group: each rank's centers then follow its own batches only and drift
    apart (inside DistributedDataParallel, rank 0's replace the others' before every forward)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        warnings.warn(
            f"{owner}: torch.distributed runs {dist.get_world_size()} processes but this module "
            "has no process_group: each rank moves its centers with its own batches only, so "
            "they drift apart (inside DistributedDataParallel rank 0's replace the others' at "
            "every forward). Pass process_group='world' (or your data-parallel group) for the "
            "step of the union of the ranks' batches.", stacklevel=4)


def gather_batches(features: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor,
                   process_group, state=(), share_state: bool = False):
    """Concatenation, in rank order, of every rank's (features, labels); the same on every rank.

    Every rank first checks its batch against ``centers`` and shares its header: if any rank's
    batch is invalid, or the ranks disagree on D or the features' dtype, every rank raises
    (RuntimeError) before anything is gathered or moved, so no rank steps alone and none waits
    forever. If any rank asks for it (share_state: its first step, or its first after loading a
    state), every rank then takes the group's first rank's values of the ``state`` tensors (in
    place; the same tensors in the same order on every rank)."""
    return _ops.gather_batches(features, labels, centers, _boxed(process_group), state,
                               share_state)


def exchange_center_rows(module, features: torch.Tensor, labels: torch.Tensor, step: bool,
                         first_sight: bool) -> torch.Tensor:
    """The [N, D] centers of this rank's rows, from the ranks that own their classes, as the
    loss must see them (after first_sight, before the step); each owner applies its classes'
    step when ``step``. A collective of the whole group (sharded tables)."""
    return _ops.exchange_center_rows_(
        features, labels, module.centers, module.skipped_updates, getattr(module, "seen", None),
        _boxed(module.process_group), module.num_classes, step, first_sight, module.alpha,
        module.update)
