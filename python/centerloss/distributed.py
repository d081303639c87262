"""Data-parallel center steps on torch.distributed (spec section 5).

Every rank must apply the same step, equal to the step of one process that saw the union of the
ranks' batches. We gather the ranks' (features, labels) batches, padded to the largest N, and
let each rank run the same deterministic op on the same concatenation (rank order). Compared
with all-reducing per-class sums and counts, this moves world * N * D values instead of
needing a K x D (or union-of-classes) buffer, and it makes every rank's centers bitwise equal to
the single-process result, with no broadcast. The NaN guard is collective for free: a non-finite
row on any rank is in every rank's concatenation, so every rank skips the step.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def _group(process_group):
    return None if process_group in ("world", dist.group.WORLD) else process_group


def gather_batches(features: torch.Tensor, labels: torch.Tensor, process_group):
    """Concatenation, in rank order, of every rank's (features, labels); the same on every rank."""
    group = _group(process_group)
    world = dist.get_world_size(group)
    if world == 1:
        return features, labels
    features = features.detach().contiguous()
    labels = labels.to(torch.int64).contiguous()
    sizes = torch.tensor([features.shape[0]], dtype=torch.int64, device=features.device)
    all_sizes = [torch.empty_like(sizes) for _ in range(world)]
    dist.all_gather(all_sizes, sizes, group=group)
    counts = [int(s) for s in all_sizes]
    longest = max(counts)
    pad = longest - features.shape[0]
    padded_x = torch.nn.functional.pad(features, (0, 0, 0, pad))
    padded_y = torch.nn.functional.pad(labels, (0, pad))
    xs = [torch.empty_like(padded_x) for _ in range(world)]
    ys = [torch.empty_like(padded_y) for _ in range(world)]
    dist.all_gather(xs, padded_x, group=group)
    dist.all_gather(ys, padded_y, group=group)
    union_x = torch.cat([x[:n] for x, n in zip(xs, counts)])
    union_y = torch.cat([y[:n] for y, n in zip(ys, counts)])
    return union_x, union_y
