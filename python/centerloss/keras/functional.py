"""Stateless center loss functions for Keras tensors, on whichever backend Keras runs."""
from __future__ import annotations

from keras import backend, ops

from .._options import REDUCTIONS, STEP_RULES, check_choice
from . import _checks, _math


def center_loss(features, labels, centers, margin: float = 0.0, reduction: str = "mean"):
    """L_C = s * sum_i 1/2 * max(||x_i - c_{y_i}|| - margin, 0)^2 (spec section 1).

    features [N, D] float; labels [N] integer in [0, K); centers [K, D] float32. reduction
    "mean" (s = 1/N), "sum" (s = 1) or "none" (the [N] per-sample vector). Float32 result
    (float64 for float64 features). Differentiable in features and centers; changes nothing.
    """
    check_choice("center_loss", "reduction", reduction, REDUCTIONS)
    features, labels, centers = (ops.convert_to_tensor(t) for t in (features, labels, centers))
    labels = _checks.check_batch(features, labels, centers.shape)
    if backend.backend() == "torch":
        from . import _torch

        return _torch.center_loss(features, labels, centers, float(margin), reduction)
    return _math.reduce_loss(_math.per_sample_loss(features, labels, centers, margin), reduction)


def center_step(centers, features, labels, alpha: float = 0.5, rule: str = "paper"):
    """One center step by rule "paper" (/(1 + n_j)) or "mean" (/n_j), without side effects.

    Returns (new_centers [K, D], applied scalar bool); applied is False, and new_centers equals
    centers, when a feature is non-finite.
    """
    check_choice("center_step", "rule", rule, STEP_RULES)
    features, labels, centers = (ops.convert_to_tensor(t) for t in (features, labels, centers))
    labels = _checks.check_batch(features, labels, centers.shape)
    if backend.backend() == "torch":
        from . import _torch

        return _torch.center_step(centers, features, labels, float(alpha), rule)
    num_classes = centers.shape[0]
    batch = _math.BatchClasses(_math.safe_labels(labels, num_classes))
    rows = ops.take(centers, batch.classes, axis=0)
    rows, applied = _math.step_rows(rows, features, batch,
                                    _math.labels_in_range(labels, num_classes), alpha, rule)
    classes, rows = batch.write_back(rows)
    return ops.scatter_update(centers, ops.expand_dims(classes, 1), rows), applied
