"""The torch backend's path: the project's C++ op (torch.ops.centerloss), no second copy of the
maths. Imported only when Keras runs on torch."""
from __future__ import annotations

import torch

from .. import functional


def center_loss(features, labels, centers, margin: float, reduction: str):
    return functional.center_loss(features, labels, centers, margin, reduction)


def update_centers_(centers, features, labels, alpha: float, rule: str):
    """In place on the variable's tensor; returns a 0-d bool tensor (False: skipped, non-finite)."""
    return functional.update_centers_(centers, features, labels, alpha, rule)


def init_centers_first_sight_(centers, seen, features, labels) -> None:
    functional.init_centers_first_sight_(centers, seen, features, labels)


def as_tensor(value) -> torch.Tensor:
    """The torch tensor behind a Keras variable (or a tensor itself)."""
    return value.value if hasattr(value, "value") else value
