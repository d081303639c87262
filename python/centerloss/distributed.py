"""Helpers for training centerloss.CenterLoss(process_group=...) under torch.distributed
(spec section 5; the collectives themselves are in _collectives.py)."""
from __future__ import annotations

import torch
from torch.nn.parallel import DistributedDataParallel

from .nn import CenterLoss


def skip_ddp_buffer_sync(model: torch.nn.Module) -> list:
    """Tells DistributedDataParallel not to broadcast the buffers of the CenterLoss modules in
    `model` that have a process group (their centers are identical on every rank already: each
    rank applies the step of the same union). Without it DDP (broadcast_buffers=True, its
    default) sends the whole K x D table from rank 0 before every forward. Call it on the
    unwrapped model, before DistributedDataParallel(model). Returns the buffer names it added.
    Parameters (update="gradient": DDP averages their gradients) are left alone, and so is a
    gradient-rule module without a process group (its only buffer is the skip counter). Any
    other CenterLoss without a process group raises: only DDP's broadcast keeps its centers
    equal. Required with shard_centers=True: each rank's buffers are then its own shard, which
    a broadcast from rank 0 would overwrite."""
    names = []
    for prefix, module in model.named_modules():
        if not isinstance(module, CenterLoss):
            continue
        if module.process_group is None:
            if module.update == "gradient" and module.init != "first_sight":
                continue
            raise ValueError(
                f"skip_ddp_buffer_sync: the CenterLoss at '{prefix}' has no process_group; its "
                "centers stay equal across ranks only through DDP's buffer broadcast")
        for name, _ in module.named_buffers(recurse=False):
            names.append(f"{prefix}.{name}" if prefix else name)
    ignored = list(getattr(model, "_ddp_params_and_buffers_to_ignore", []))
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        model, ignored + [n for n in names if n not in ignored])
    return names
