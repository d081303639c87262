"""Typed functional wrappers around torch.ops.centerloss (no maths here: it is all in C++)."""
from __future__ import annotations

import torch

from ._options import REDUCTIONS, STEP_RULES


def _reduction_code(reduction: str) -> int:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {sorted(REDUCTIONS)}, got {reduction!r}")
    return REDUCTIONS[reduction]


def _rule_code(rule: str) -> int:
    if rule not in STEP_RULES:
        raise ValueError(
            f"rule must be one of {sorted(STEP_RULES)} for an explicit center step, got {rule!r}"
        )
    return STEP_RULES[rule]


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
    return torch.ops.centerloss.center_loss(
        features, labels, centers, float(margin), _reduction_code(reduction)
    )


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
    with torch.no_grad():
        return torch.ops.centerloss.update_centers_(
            centers, features.detach(), labels, float(alpha), _rule_code(rule)
        )


def _center_loss_step(features, labels, centers, skipped, margin, reduction, alpha, rule):
    """The modules' training step in one op (torch.ops.centerloss._center_loss_step_): the loss
    of center_loss (differentiable in features), then the paper/mean step of `centers` in place;
    a non-finite batch moves nothing and adds 1 to `skipped` (int64, on the device, no sync).
    Internal: for nn.CenterLoss and the Keras layer on torch."""
    return torch.ops.centerloss._center_loss_step_(
        features, labels, centers, skipped, float(margin), _reduction_code(reduction),
        float(alpha), _rule_code(rule),
    )


def init_centers_first_sight_(
    centers: torch.Tensor, seen: torch.Tensor, features: torch.Tensor, labels: torch.Tensor
) -> int:
    """Sets each unseen class's center to the mean of its features in this batch; marks it seen.

    seen: [K] bool. Returns how many classes were initialised. A non-finite batch changes nothing.
    """
    with torch.no_grad():
        return int(
            torch.ops.centerloss.init_centers_first_sight_(centers, seen, features.detach(), labels)
        )
