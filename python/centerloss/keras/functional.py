"""Stateless center loss functions for Keras tensors, on whichever backend Keras runs."""
from __future__ import annotations

from keras import backend, ops

from .. import functional as torch_functional  # the C++ ops, for the torch backend
from .._options import STEP_RULES
from . import _checks, _math


def center_loss(features, labels, centers, margin: float = 0.0, reduction: str = "mean"):
    """L_C = s * sum_i 1/2 * max(||x_i - c_{y_i}|| - margin, 0)^2 (spec section 1).

    features [N, D] float; labels [N] integer in [0, K); centers [K, D] float32. reduction
    "mean" (s = 1/N), "sum" (s = 1) or "none" (the [N] per-sample vector). Float32 result
    (float64 for float64 features). Differentiable in features and centers; changes nothing.
    """
    _checks.check_reduction(reduction)
    features, labels, centers = (ops.convert_to_tensor(t) for t in (features, labels, centers))
    labels = _checks.check_batch(features, labels, centers.shape)
    if backend.backend() == "torch":
        return torch_functional.center_loss(features, labels, centers, float(margin), reduction)
    return _math.reduce_loss(_math.per_sample_loss(features, labels, centers, margin), reduction)


def center_step(centers, features, labels, alpha: float = 0.5, rule: str = "paper"):
    """One center step by rule "paper" (/(1 + n_j)) or "mean" (/n_j), without side effects.

    Returns (new_centers [K, D], applied scalar bool); applied is False, and new_centers equals
    centers, when a feature is non-finite.
    """
    if rule not in STEP_RULES:
        raise ValueError(f"center_step: rule must be 'paper' or 'mean', got {rule!r}")
    features, labels, centers = (ops.convert_to_tensor(t) for t in (features, labels, centers))
    labels = _checks.check_batch(features, labels, centers.shape)
    if backend.backend() == "torch":
        moved = centers.detach().clone()
        applied = torch_functional.update_centers_(moved, features, labels, float(alpha), rule)
        return moved, applied
    return _math.center_step(centers, features, labels, alpha, rule)
