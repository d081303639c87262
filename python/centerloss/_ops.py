"""The one place that calls torch.ops.centerloss: typed wrappers that take option names
(centerloss._options) and pass the ops their integer codes. Importing it imports torch and
loads the compiled library; the PyTorch module, the functions and the Keras layer on the torch
backend all go through it.
"""
from __future__ import annotations

try:
    import torch
except ModuleNotFoundError as err:  # a pure-Python install (Keras on jax/tensorflow) has no torch
    if err.name != "torch":
        raise
    raise ImportError(
        "centerloss: the PyTorch API (centerloss.CenterLoss, centerloss.center_loss, and "
        "centerloss.keras on the torch backend) needs torch and the compiled library: install "
        "torch, then `pip install --no-build-isolation centerloss`. centerloss.keras on the jax "
        "and tensorflow backends needs neither."
    ) from err

from . import _library
from ._options import reduction_code, rule_code

_library.load()
_registered = torch.ops.centerloss


def center_loss(features, labels, centers, margin: float, reduction: str) -> torch.Tensor:
    return _registered.center_loss(features, labels, centers, float(margin),
                                   reduction_code(reduction))


def update_centers_(centers, features, labels, alpha: float, rule: str) -> torch.Tensor:
    """One center step in place; a 0-d bool tensor, False when the batch was skipped."""
    with torch.no_grad():
        return _registered.update_centers_(centers, features.detach(), labels, float(alpha),
                                           rule_code(rule))


def center_loss_step_(features, labels, centers, skipped, margin: float, reduction: str,
                      alpha: float, rule: str) -> torch.Tensor:
    """The modules' training step in one op: the loss (differentiable in features), then the
    step of `centers` in place; a non-finite batch moves nothing and adds 1 to `skipped` (int64,
    on the device, no sync)."""
    return _registered._center_loss_step_(features, labels, centers, skipped, float(margin),
                                          reduction_code(reduction), float(alpha),
                                          rule_code(rule, "CenterLoss"))


def init_centers_first_sight_(centers, seen, features, labels) -> torch.Tensor:
    """Unseen classes of the batch take their features' mean; a 0-d count of those set."""
    with torch.no_grad():
        return _registered.init_centers_first_sight_(centers, seen, features.detach(), labels)


def advise_huge_pages(table: torch.Tensor) -> None:
    """Asks for huge pages for a large CPU table before it is first written (fewer TLB misses
    on its random rows)."""
    _registered._advise_huge_pages(table)


def gather_batches(features, labels, centers, group, state, share_state: bool):
    """Every rank's (features, labels) in rank order (csrc/module/union_batch.h); `group` is
    the boxed c10d group. See centerloss._collectives.gather_batches."""
    return _registered._gather_batches(features, labels, centers, group, list(state),
                                       bool(share_state))


def exchange_center_rows_(features, labels, centers, skipped, seen, group, num_classes: int,
                          step: bool, first_sight: bool, alpha: float, rule: str):
    """The [N, D] center rows of this rank's labels from their owners' shards
    (csrc/module/sharded_centers.h); each owner steps its classes when `step`."""
    return _registered._exchange_center_rows_(features, labels, centers, skipped, seen, group,
                                              int(num_classes), bool(step), bool(first_sight),
                                              float(alpha), rule_code(rule, "CenterLoss"))
