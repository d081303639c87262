"""The collectives of data-parallel center steps on torch.distributed (spec section 5), for
centerloss.CenterLoss(process_group=...).

Every rank must apply the same step, equal to the step of one process that saw the union of the
ranks' batches. We gather the ranks' (features, labels) batches, padded to the largest N, and
let each rank run the same deterministic op on the same concatenation (rank order). Compared
with all-reducing per-class sums and counts, this moves world * N * D values instead of
needing a K x D (or union-of-classes) buffer, and it makes every rank's centers bitwise equal to
the single-process result, with no broadcast per step (one at the first step, and after each
load_state_dict, makes the ranks' starting state identical). The NaN guard is collective for
free: a non-finite row on any rank is in every rank's concatenation, so every rank skips the
step.
"""
from __future__ import annotations

import warnings

import torch
import torch.distributed as dist


def _group(process_group):
    return None if process_group in ("world", dist.group.WORLD) else process_group


def _broadcast_(tensors, group) -> None:
    """Copies the group's first rank's values of `tensors` (in place, same order on every
    rank) to every rank of the group."""
    src = 0 if group is None else dist.get_global_rank(group, 0)
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t, src=src, group=group)


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


_FEATURE_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _is_integer(dtype: torch.dtype) -> bool:
    # The op's rule (checks.cpp: at::isIntegralType without bool).
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _local_problem(features: torch.Tensor, labels: torch.Tensor):
    """Why this rank's batch cannot be gathered, or None. Checked before any collective, so that
    every rank learns of it and raises, instead of the others stepping on a converted union."""
    if features.dim() != 2:
        return f"features must be 2-D [N, D], got shape {tuple(features.shape)}"
    if features.dtype not in _FEATURE_DTYPES:
        return f"features must be float16/bfloat16/float32/float64, got {features.dtype}"
    if labels.dim() != 1 or not _is_integer(labels.dtype):
        return f"labels must be a 1-D integer tensor, got {labels.dtype} of shape {tuple(labels.shape)}"
    if labels.shape[0] != features.shape[0]:
        return f"labels have {labels.shape[0]} entries but features have {features.shape[0]} rows"
    return None


def gather_batches(features: torch.Tensor, labels: torch.Tensor, process_group,
                   state=(), share_state: bool = False):
    """Concatenation, in rank order, of every rank's (features, labels); the same on every rank.

    Every rank first shares (valid, N, D, dtype, share_state) of its batch: if any rank's batch
    is invalid, or the ranks disagree on D or the features' dtype, every rank raises
    (RuntimeError) before anything is gathered or moved, so no rank steps alone and none waits
    forever. If any rank asks for it (share_state: its first step, or its first after loading a
    state), every rank then takes the group's first rank's values of the `state` tensors (in
    place; the same tensors in the same order on every rank), so ranks seeded differently
    (init="normal") or loaded differently start the step from the same centers. Deciding this
    from the shared header keeps every rank in the same sequence of collectives, whichever
    ranks loaded a state."""
    group = _group(process_group)
    world = dist.get_world_size(group)
    if world == 1:
        return features, labels
    problem = _local_problem(features, labels)
    valid = problem is None
    header = torch.tensor(
        [int(valid), features.shape[0] if valid else 0, features.shape[1] if valid else 0,
         _FEATURE_DTYPES.index(features.dtype) if valid else -1, int(share_state)],
        dtype=torch.int64, device=features.device)
    headers = [torch.empty_like(header) for _ in range(world)]
    dist.all_gather(headers, header, group=group)
    headers = [h.tolist() for h in headers]
    if any(h[4] for h in headers):
        _broadcast_(state, group)
    if problem is not None:
        raise RuntimeError(f"centerloss.distributed: this rank's batch is invalid: {problem}")
    bad = [r for r, h in enumerate(headers) if not h[0]]
    if bad:
        raise RuntimeError(f"centerloss.distributed: the batch of rank(s) {bad} is invalid (see "
                           "the error on those ranks); no rank moves its centers")
    shapes = {(h[2], _FEATURE_DTYPES[h[3]]) for h in headers}
    if len(shapes) > 1:
        per_rank = ", ".join(f"rank {r}: D = {h[2]}, {_FEATURE_DTYPES[h[3]]}"
                             for r, h in enumerate(headers))
        raise RuntimeError("centerloss.distributed: the ranks' features differ in D or dtype "
                           f"({per_rank}); no rank moves its centers")
    features = features.detach().contiguous()
    labels = labels.to(torch.int64).contiguous()
    counts = [h[1] for h in headers]
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
