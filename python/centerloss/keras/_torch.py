"""centerloss.keras on the torch backend: the project's C++ op, through centerloss._ops.
Imported only when Keras runs on torch (layer.py and functional.py import it lazily), so that
the jax and tensorflow backends never import torch nor load the compiled library."""
from __future__ import annotations

import torch

from .. import _ops


def center_loss(features, labels, centers, margin: float, reduction: str):
    return _ops.center_loss(features, labels, centers, margin, reduction)


def center_step(centers, features, labels, alpha: float, rule: str):
    """(new_centers, applied) without touching `centers`."""
    moved = centers.detach().clone()
    return moved, _ops.update_centers_(moved, features, labels, alpha, rule)


def layer_forward(layer, features, labels, training: bool):
    """The layer's loss; in training also its first-sight initialisation and center step, in
    place on the variables' torch tensors. The ops check the label values themselves
    (RuntimeError for a label outside [0, K)) before they change anything."""
    centers = layer.centers.value
    if training and layer.init == "first_sight":
        _ops.init_centers_first_sight_(centers, layer.seen.value, features, labels)
    if not (training and layer.update != "gradient"):
        return _ops.center_loss(features, labels, centers, layer.margin, layer.reduction)
    # As centerloss.CenterLoss does: loss and step in one op (labels checked once, no sync on
    # CUDA, a non-finite batch counted on the device). The op's counter is int64; the saved
    # weight stays int32.
    skipped = torch.zeros((), dtype=torch.int64, device=centers.device)
    loss = _ops.center_loss_step_(features, labels, centers, skipped, layer.margin,
                                  layer.reduction, layer.alpha, layer.update)
    layer.skipped_updates.assign_add(skipped.to(torch.int32))
    return loss
