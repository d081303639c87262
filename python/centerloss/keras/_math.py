"""Center loss maths in keras.ops (the jax and tensorflow backends; torch calls the C++ op).

Same definitions as the C++ kernels (docs/center-loss-spec.md): sums of squared differences
(never ||x||^2 + ||c||^2 - 2x.c), float32 accumulation, per-class sums with segment_sum. Like
the C++ kernels, the state maths works on the rows of the classes in the batch only (one slot
per class, see batch_classes): a step costs O(N * D) whatever K is. Everything is functional:
the layer reads and writes the rows (_state.py).
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


def safe_labels(labels, num_classes: int):
    """Labels with any outside [0, K) replaced by 0, for indexing only (see labels_in_range)."""
    return ops.where(labels_in_range(labels, num_classes), labels, ops.zeros_like(labels))


def per_sample_loss(features, labels, centers, margin: float):
    """[N]: 1/2 * max(||x_i - c_{y_i}|| - margin, 0)^2, from the [K, D] centers."""
    num_classes = centers.shape[0]
    rows = ops.take(centers, safe_labels(labels, num_classes), axis=0)
    return per_sample_loss_of_rows(features, rows, labels_in_range(labels, num_classes), margin)


def per_sample_loss_of_rows(features, rows, valid, margin: float):
    """[N]: 1/2 * max(||x_i - r_i|| - margin, 0)^2 with r_i = c_{y_i} (rows [N, D]), in float32
    (float64 for float64). Differentiable in features and rows; the rows' gradient is 0 for a
    non-finite batch. Where valid (label in [0, K)) is False the loss is NaN."""
    acc = _accumulation_dtype(features)
    # Spec section 3, for centers an optimizer moves: a non-finite batch gives them a zero
    # gradient, as the C++ op's backward does (the unselected branch of `where` gets 0, not NaN).
    rows = ops.where(all_finite(features), rows, ops.stop_gradient(rows))
    diff = ops.cast(features, acc) - ops.cast(rows, acc)
    squared = ops.sum(diff * diff, axis=1)
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


class BatchClasses:
    """The distinct classes of a batch of N labels (in [0, K)), one slot each, in N slots (a
    static shape; the slots past the batch's U classes are padding).

    classes [N]: the class of each slot (0 in padding); slot [N]: each row's slot; counts [N]
    float32: rows per slot (0 in padding); writer [N]: the slot whose value each slot writes
    back (itself, or slot 0 for padding, so that a scatter of take(values, writer) at
    take(classes, writer) writes every repeated index with one value)."""

    def __init__(self, labels):
        n = ops.shape(labels)[0]
        position = ops.arange(n, dtype="int32")
        order = ops.cast(ops.argsort(labels), "int32")
        sorted_labels = ops.take(labels, order)
        starts = ops.logical_or(position == 0, sorted_labels != ops.roll(sorted_labels, 1))
        run = ops.cumsum(ops.cast(starts, "int32")) - 1  # the slot of each sorted row
        self.slot = ops.scatter(ops.expand_dims(order, 1), run, (n,))
        self.classes = ops.scatter(ops.expand_dims(run, 1),
                                   ops.where(starts, sorted_labels, 0), (n,))
        self.counts = ops.segment_sum(ops.ones((n,), "float32"), run, num_segments=n)
        self.writer = ops.where(self.counts > 0, position, 0)
        self.size = n

    def sums(self, values):
        """[N, ...]: per-slot sums of the rows of values."""
        return ops.segment_sum(values, self.slot, num_segments=self.size)

    def write_back(self, values):
        """(classes, values) to scatter: padding repeats slot 0's index and value."""
        return ops.take(self.classes, self.writer), ops.take(values, self.writer, axis=0)


def step_rows(rows, features, batch: BatchClasses, labels_valid, alpha: float, rule: str):
    """One step of rule "paper" (/(1 + n_j)) or "mean" (/n_j) of the batch's classes' rows
    (rows [N, D]: the centers of batch.classes), in float32.

    Returns (new_rows, applied): when a feature is non-finite (or a label is outside [0, K),
    possible only where the label check cannot raise), new_rows is rows unchanged and applied
    is False. `applied` depends on the labels, so under tf.function the skip counter's update
    waits for the label check and does not run when it fails.
    """
    x = ops.cast(features, "float32")
    r = ops.cast(rows, "float32")
    diff_sum = batch.sums(ops.take(r, batch.slot, axis=0) - x)
    denominator = batch.counts + 1.0 if rule == "paper" else ops.maximum(batch.counts, 1.0)
    moved = r - alpha * diff_sum / ops.expand_dims(denominator, 1)
    applied = ops.logical_and(all_finite(features), ops.all(labels_valid))
    return ops.cast(ops.where(applied, moved, r), rows.dtype), applied


def first_sight_rows(rows, seen, features, batch: BatchClasses, labels_valid):
    """Each unseen class of the batch (rows [N, D], seen [N]: of batch.classes) takes the mean
    of its features and is marked seen. Returns (new_rows, new_seen); a non-finite batch changes
    nothing."""
    means = batch.sums(ops.cast(features, "float32")) / ops.expand_dims(
        ops.maximum(batch.counts, 1.0), 1)
    fresh = ops.logical_and(batch.counts > 0, ops.logical_not(seen))
    fresh = ops.logical_and(fresh, all_finite(features))
    fresh = ops.logical_and(fresh, ops.all(labels_valid))
    new_rows = ops.where(ops.expand_dims(fresh, 1), ops.cast(means, rows.dtype), rows)
    return new_rows, ops.logical_or(seen, fresh)
