"""Center loss maths in keras.ops (the jax and tensorflow backends; torch calls the C++ op).

Same definitions as the C++ kernels (docs/center-loss-spec.md): sums of squared differences
(never ||x||^2 + ||c||^2 - 2x.c), float32 accumulation, per-class sums with segment_sum so that
no N x K matrix is formed. Everything is functional: the layer assigns the results.
"""
from __future__ import annotations

from keras import ops


def _accumulation_dtype(features) -> str:
    return "float64" if ops.dtype(features) == "float64" else "float32"


def labels_in_range(labels, num_classes: int):
    """[N] bool: label in [0, K). The run-time label check raises for any False, except under
    XLA on tensorflow, which drops assertions: there these masks keep the state and the loss
    honest instead (_checks.check_label_range)."""
    return ops.logical_and(labels >= 0, labels < num_classes)


def per_sample_loss(features, labels, centers, margin: float):
    """[N]: 1/2 * max(||x_i - c_{y_i}|| - margin, 0)^2, in float32 (float64 for float64).

    Differentiable in features and centers; the centers' gradient is 0 for a non-finite batch.
    A label outside [0, K) (possible only where the label check cannot raise) gives NaN."""
    acc = _accumulation_dtype(features)
    rows = ops.take(centers, labels, axis=0)
    # Spec section 3, for centers an optimizer moves: a non-finite batch gives them a zero
    # gradient, as the C++ op's backward does (the unselected branch of `where` gets 0, not NaN).
    # On the gathered [N, D] rows, not the [K, D] table.
    rows = ops.where(all_finite(features), rows, ops.stop_gradient(rows))
    diff = ops.cast(features, acc) - ops.cast(rows, acc)
    squared = ops.sum(diff * diff, axis=1)
    valid = labels_in_range(labels, centers.shape[0])
    if margin == 0.0:
        return ops.where(valid, 0.5 * squared, float("nan"))
    # sqrt has an infinite slope at 0: feed it 1 there and select 0 after, so that the gradient
    # is 0 (the spec's value where d <= margin) instead of 0 * inf = NaN.
    # A NaN squared distance stays NaN (a NaN feature must show in the loss, spec section 3):
    # it is neither > 0 nor <= margin, so it takes the `squared` and `distance - margin` branches.
    positive = squared > 0
    distance = ops.where(positive, ops.sqrt(ops.where(positive, squared, 1.0)), squared)
    hinge = ops.where(distance <= margin, 0.0, distance - margin)
    return ops.where(valid, 0.5 * hinge * hinge, float("nan"))


def reduce_loss(per_sample, reduction: str):
    """mean (s = 1/N; 0 for N = 0), sum (s = 1) or none (the [N] vector itself)."""
    if reduction == "none":
        return per_sample
    total = ops.sum(per_sample)
    if reduction == "sum":
        return total
    count = ops.cast(ops.shape(per_sample)[0], total.dtype)
    return total / ops.maximum(count, 1.0)


def all_finite(features):
    """Scalar bool: every feature is finite (the NaN guard of spec section 3)."""
    return ops.all(ops.isfinite(features))


def class_sums(values, labels, num_classes: int):
    """[K, ...] per-class sums of the rows of values; classes absent from the batch get 0."""
    return ops.segment_sum(values, labels, num_segments=num_classes, sorted=False)


def center_step(centers, features, labels, alpha: float, rule: str):
    """One step of rule "paper" (/(1 + n_j)) or "mean" (/n_j), in float32.

    Returns (new_centers, applied): when a feature is non-finite (or a label is outside [0, K),
    possible only where the label check cannot raise), new_centers is centers unchanged and
    applied is False. Classes absent from the batch keep their exact values (their delta is
    exactly 0). `applied` depends on the labels, so under tf.function the skip counter's update
    waits for the label check and does not run when it fails.
    """
    num_classes = centers.shape[0]
    x = ops.cast(features, "float32")
    c = ops.cast(centers, "float32")
    diff_sum = class_sums(ops.take(c, labels, axis=0) - x, labels, num_classes)
    counts = class_sums(ops.ones_like(labels, dtype="float32"), labels, num_classes)
    denominator = counts + 1.0 if rule == "paper" else ops.maximum(counts, 1.0)
    moved = c - alpha * diff_sum / ops.expand_dims(denominator, 1)
    applied = ops.logical_and(all_finite(features),
                              ops.all(labels_in_range(labels, num_classes)))
    return ops.cast(ops.where(applied, moved, c), centers.dtype), applied


def first_sight(centers, seen, features, labels):
    """Sets each unseen class present in the batch to the mean of its features; marks it seen.

    Returns (new_centers, new_seen); a non-finite batch changes nothing.
    """
    num_classes = centers.shape[0]
    x = ops.cast(features, "float32")
    counts = class_sums(ops.ones_like(labels, dtype="float32"), labels, num_classes)
    means = class_sums(x, labels, num_classes) / ops.expand_dims(ops.maximum(counts, 1.0), 1)
    fresh = ops.logical_and(counts > 0, ops.logical_not(seen))
    fresh = ops.logical_and(fresh, all_finite(features))
    fresh = ops.logical_and(fresh, ops.all(labels_in_range(labels, num_classes)))
    new_centers = ops.where(ops.expand_dims(fresh, 1), ops.cast(means, centers.dtype), centers)
    return new_centers, ops.logical_or(seen, fresh)
