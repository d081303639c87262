"""The PyTorch functions of center loss (the maths is all in the C++ op, called through _ops)."""
from __future__ import annotations

import torch

from . import _ops


def center_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    centers: torch.Tensor,
    margin: float = 0.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Center loss L = s * sum_i 1/2 * max(||x_i - c_{y_i}|| - margin, 0)^2.

    features: [N, D] float32/float64/float16/bfloat16; labels: [N] integer in [0, K);
    centers: [K, D] float32/float64, same device. reduction "mean" (s = 1/N, default), "sum"
    (s = 1) or "none" (the [N] per-sample vector). The result is float32 (float64 for float64
    inputs). Differentiable in features, and in centers when they require grad (the "gradient"
    rule). Does not modify the centers. On the CPU the features' gradient reuses the tensor the
    forward saved when the graph is freed after it (as it is for a loss gradient of 1, else
    scaled in place); with retain_graph it is a new tensor. create_graph=True (double backward)
    is exact for margin 0 and raises for a margin > 0.
    """
    return _ops.center_loss(features, labels, centers, margin, reduction)


def update_centers_(
    centers: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    alpha: float = 0.5,
    rule: str = "paper",
) -> torch.Tensor:
    """One center step, in place: c_j -= alpha * sum_{y_i=j} (c_j - x_i) / (1 + n_j) ("paper")
    or / n_j ("mean"), for the classes present in the batch only.

    Returns a 0-d bool tensor on the centers' device: False when a feature row was non-finite and
    nothing changed. No autograd.
    """
    return _ops.update_centers_(centers, features, labels, alpha, rule)


def init_centers_first_sight_(
    centers: torch.Tensor, seen: torch.Tensor, features: torch.Tensor, labels: torch.Tensor
) -> int:
    """Sets each unseen class's center to the mean of its features in this batch; marks it seen.

    seen: [K] bool. Returns how many classes were initialised. A non-finite batch changes nothing.
    """
    return int(_ops.init_centers_first_sight_(centers, seen, features, labels))
