"""centerloss.CenterLoss: an nn.Module that owns the centers and moves them (spec section 3)."""
from __future__ import annotations

import torch
from torch import nn

from . import _ops
from ._collectives import (
    exchange_center_rows,
    gather_batches,
    shard_range,
    warn_if_distributed_without_group,
)
from ._options import REDUCTIONS, check_alpha, check_choice, check_common, check_margin


def _checked_reduction(reduction: str) -> str:
    return check_choice("CenterLoss", "reduction", reduction, REDUCTIONS)


class _CheckedOption:
    """An option attribute whose value passes `check` (which returns it) when it is set."""

    def __init__(self, check):
        self.check = check

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, module, owner=None):
        return self if module is None else getattr(module, self.slot)

    def __set__(self, module, value):
        setattr(module, self.slot, self.check(value))


class CenterLoss(nn.Module):
    """Center loss with its K x D table of class centers.

    forward(features [N, D], labels [N]) returns the loss (see ``centerloss.center_loss``). In
    training mode with update "paper" or "mean" it then moves the centers of the classes in the
    batch by one step, computed from the same centers the loss used:

        paper: c_j -= alpha * sum_{y_i=j} (c_j - x_i) / (1 + n_j)   (Wen et al. 2016, Eq. 4)
        mean:  c_j -= alpha * sum_{y_i=j} (c_j - x_i) / n_j         (IJCV 2019)

    With update "gradient" the centers are an ``nn.Parameter`` for your optimizer. In eval mode,
    or with ``update_in_forward=False``, centers never change in forward; ``update_centers``
    applies one step explicitly. A batch with a NaN or infinity leaves every center untouched
    and increments the ``skipped_updates`` buffer.

    State in ``state_dict()``: ``centers`` [K, D] float32, ``skipped_updates`` (int64), and
    ``seen`` [K] bool with ``init="first_sight"``. Loading a state of another shape raises.

    Data parallel: pass ``process_group`` (a ``torch.distributed`` group, or ``"world"``) and
    every rank applies the step of the union of the ranks' batches (spec section 5), so the
    centers stay identical without a broadcast; the loss and its gradient stay local. See
    ``centerloss.distributed``. With ``shard_centers=True`` (rules "paper" and "mean") rank r of
    W holds only the classes [r K // W, (r + 1) K // W) (``centers`` is that block; the
    ``shard`` buffer records [k0, k1, K, W]); each forward sends the rows to the ranks that own
    their classes, a collective in eval mode too, with results bitwise those of the unsharded
    module. Both paths run the C++ module's code (docs/distributed.md).
    """

    def __init__(
        self,
        num_classes: int,
        feature_dim: int,
        alpha: float = 0.5,
        reduction: str = "mean",
        update: str = "paper",
        margin: float = 0.0,
        init: str = "zeros",
        init_std: float = 1.0,
        update_in_forward: bool = True,
        process_group=None,
        shard_centers: bool = False,
    ) -> None:
        super().__init__()
        check_common(num_classes, alpha, margin, update, init, init_std)
        if int(feature_dim) < 1:
            raise ValueError(f"CenterLoss: feature_dim must be >= 1, got {feature_dim}")
        self.num_classes = int(num_classes)
        self.feature_dim = int(feature_dim)
        self.alpha = alpha
        self.reduction = reduction
        self.update = update
        self.margin = margin
        self.init = init
        self.init_std = float(init_std)
        self.update_in_forward = bool(update_in_forward)
        self.process_group = process_group
        self.shard_centers = bool(shard_centers)
        rows = self.num_classes
        if self.shard_centers:
            if process_group is None or update == "gradient":
                raise ValueError("CenterLoss: shard_centers needs a process_group and update "
                                 f"'paper' or 'mean', got {process_group!r} and {update!r}")
            k0, k1, world = shard_range(process_group, self.num_classes)
            if self.num_classes < world:
                raise ValueError("CenterLoss: shard_centers needs at least one class per rank, "
                                 f"got num_classes={self.num_classes} for {world} ranks")
            rows = k1 - k0

        # Large CPU tables get huge pages (advised before the initialisation faults the pages
        # in): the random center rows of each step then cost fewer TLB misses
        # (csrc/memory/huge_pages.h).
        centers = torch.empty(rows, self.feature_dim)
        _ops.advise_huge_pages(centers)
        if init == "normal":
            nn.init.normal_(centers, 0.0, self.init_std)
        elif init == "xavier" and self.shard_centers:  # the whole table's bound (fans K and D)
            bound = (6.0 / (self.num_classes + self.feature_dim)) ** 0.5
            nn.init.uniform_(centers, -bound, bound)
        elif init == "xavier":
            nn.init.xavier_uniform_(centers)
        else:  # zeros, and first_sight's not-yet-seen classes
            centers.zero_()
        if update == "gradient":
            self.centers = nn.Parameter(centers)
        else:
            self.register_buffer("centers", centers)
        self.register_buffer("skipped_updates", torch.zeros((), dtype=torch.int64))
        if init == "first_sight":
            self.register_buffer("seen", torch.zeros(rows, dtype=torch.bool))
        if self.shard_centers:
            self.register_buffer("shard", torch.tensor([k0, k1, self.num_classes, world]))

    # With a process group: whether this rank's state has been made the group's (at its first
    # step, and again after each load_state_dict). Without one: whether the first stepping
    # forward has looked for an unused torch.distributed. Class defaults, so that modules pickled whole by an
    # older version still run.
    _state_shared = False
    _world_checked = False
    shard_centers = False

    # The step options may be changed between steps (a schedule for alpha, say); a bad value is
    # refused when it is set, not in a later forward after first_sight has changed the state.
    alpha = _CheckedOption(check_alpha)
    margin = _CheckedOption(check_margin)
    reduction = _CheckedOption(_checked_reduction)

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, feature_dim={self.feature_dim}, alpha={self.alpha}, "
            f"reduction={self.reduction!r}, update={self.update!r}, margin={self.margin}, "
            f"init={self.init!r}"
        )

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        stepping = self.training and self.update_in_forward and self.update != "gradient"
        first_sight = self.training and self.init == "first_sight"
        if ((stepping or first_sight) and not torch.compiler.is_compiling()
                and torch._C._current_graph_task_id() != -1):
            # A forward inside a backward pass is a recomputation (torch.utils.checkpoint): it
            # would move the centers a second time and take the gradient from moved centers.
            # (Not traceable: under torch.compile the partitioner never recomputes a mutation.)
            raise RuntimeError(
                "CenterLoss: a training forward ran inside a backward pass (torch.utils."
                "checkpoint recomputing it?); it would step the centers twice and take the "
                "gradient from moved centers. Keep CenterLoss outside checkpointed regions: "
                "checkpoint the network and call CenterLoss on its features."
            )
        if self.shard_centers:
            rows = exchange_center_rows(self, features, labels, stepping, first_sight)
            own = torch.arange(features.shape[0], device=features.device)
            return _ops.center_loss(features, own, rows, self.margin, self.reduction)
        # With a process group, gather first: a rank with bad input then raises in the loss
        # while the others raise on the same bad rows in the step; no rank waits forever.
        state_batch = (features, labels)
        if self.process_group is not None and (stepping or first_sight):
            state_batch = self._gather(features, labels)
        elif (stepping or first_sight) and not self._world_checked:
            self._check_world()
        if first_sight:
            _ops.init_centers_first_sight_(self.centers, self.seen, *state_batch)
        if stepping and self.process_group is None:
            # Loss and step in one op: labels checked once, no sync on CUDA, a non-finite batch
            # counted on the device; on the CPU one pass over the batch where that is faster.
            return _ops.center_loss_step_(features, labels, self.centers, self.skipped_updates,
                                          self.margin, self.reduction, self.alpha, self.update)
        loss = _ops.center_loss(features, labels, self.centers, self.margin, self.reduction)
        if stepping:
            self._apply_step(*state_batch)
        return loss

    def _gather(self, features: torch.Tensor, labels: torch.Tensor):
        """The union of the ranks' batches; at a rank's first step (or first after
        load_state_dict) every rank also takes the group's first rank's state (buffers sorted by
        name, and the centers parameter with update="gradient")."""
        state = [b for _, b in sorted(self.named_buffers(recurse=False))]
        if isinstance(self.centers, nn.Parameter):
            state.append(self.centers)
        batch = gather_batches(features, labels, self.centers, self.process_group, state,
                               share_state=not self._state_shared)
        self._state_shared = True
        return batch

    def _check_world(self) -> None:
        """Warns if torch.distributed runs several processes but this module steps its centers
        alone; looked at once, at the first stepping forward (not traced by torch.compile)."""
        if not torch.compiler.is_compiling():
            self._world_checked = True
            warn_if_distributed_without_group("CenterLoss")

    def _apply_step(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        applied = _ops.update_centers_(self.centers, features, labels, self.alpha, self.update)
        self.skipped_updates.add_(applied.logical_not())  # on the device: no host sync
        return applied

    def update_centers(self, features: torch.Tensor, labels: torch.Tensor) -> bool:
        """One explicit center step (for gradient accumulation or skipped AMP steps).

        Returns False when the batch was non-finite and was skipped. Syncs on CUDA.
        """
        if self.update == "gradient":
            raise RuntimeError(
                "CenterLoss.update_centers: update='gradient' centers are moved by the optimizer"
            )
        if self.shard_centers:
            before = int(self.skipped_updates)
            exchange_center_rows(self, features, labels, True, False)
            return int(self.skipped_updates) == before
        if self.process_group is not None:
            features, labels = self._gather(features, labels)
        return bool(self._apply_step(features, labels))

    def _apply(self, fn, recurse=True):
        # .half() / .bfloat16() / .to(float16) on a model holding this module: the centers keep
        # their dtype and values (spec section 4: float32 under mixed precision; the op takes
        # float32 or float64 centers), as the C++ module's to() does; float32/float64 are
        # followed, and devices always.
        before = self.centers.data
        super()._apply(fn, recurse)
        if self.centers.dtype not in (torch.float32, torch.float64):
            self.centers.data = before.to(self.centers.device)
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.shard_centers:
            self._take_own_rows(state_dict, prefix)
        for name in ("centers", "seen"):
            key = prefix + name
            if key in state_dict and hasattr(self, name):
                expected = tuple(getattr(self, name).shape)
                found = tuple(state_dict[key].shape)
                if found != expected:
                    raise RuntimeError(
                        f"CenterLoss: '{key}' has shape {found} in the state but this module "
                        f"expects {expected} (num_classes={self.num_classes}, "
                        f"feature_dim={self.feature_dim})"
                    )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._state_shared = False  # ranks may have loaded different states

    def _take_own_rows(self, state_dict, prefix) -> None:
        """A sharded module loads its own shard, or its rows of a whole table (an unsharded
        module's state: how a table moves to another world size); another shard raises."""
        mine = self.shard.tolist()
        stored = state_dict.get(prefix + "shard")
        if stored is None:  # a whole table: keep this rank's rows
            for name in ("centers", "seen"):
                key = prefix + name
                if key in state_dict and state_dict[key].shape[:1] == (self.num_classes,):
                    state_dict[key] = state_dict[key][mine[0]:mine[1]]
            state_dict[prefix + "shard"] = self.shard.clone()
        elif stored.tolist() != mine:
            def describe(s):
                return f"rows [{s[0]}, {s[1]}) of {s[2]} classes sharded over {s[3]} ranks"
            raise RuntimeError(
                f"CenterLoss: '{prefix}shard' holds {describe(stored.tolist())} but this module "
                f"owns {describe(mine)}: load each rank's own shard, saved with the same number "
                "of classes and ranks")
