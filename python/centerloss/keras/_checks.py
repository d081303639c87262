"""Input checks for the Keras front end (spec section 7): shapes and dtypes when the layer is
built or called, and label values at run time on every backend, before any state changes."""
from __future__ import annotations

import functools

import numpy as np
from keras import backend, ops

from .._options import check_common


def check_options(num_classes, alpha, weight, reduction, update, margin, init, init_std) -> None:
    check_common(num_classes, alpha, margin, update, init, init_std)
    if not np.isfinite(float(weight)):
        raise ValueError(f"CenterLoss: weight must be a finite number, got {weight}")
    if reduction not in ("mean", "sum"):
        raise ValueError(
            f"CenterLoss: reduction must be 'mean' or 'sum' (add_loss needs a scalar; for the "
            f"per-sample vector use centerloss.keras.center_loss(..., reduction='none')), "
            f"got {reduction!r}"
        )


def check_pair(inputs, what: str) -> None:
    """The layer takes [features, labels]; a bare tensor or shape is the usual mistake."""
    pair = isinstance(inputs, (list, tuple)) and len(inputs) == 2
    if not pair or any(isinstance(item, int) or item is None for item in inputs):
        raise ValueError(
            f"CenterLoss: call the layer on [features, labels] (a list of two tensors), got "
            f"{what} {inputs!r:.200}"
        )


def check_shapes(features_shape, labels_shape) -> None:
    """features [N, D]; labels [N] or [N, 1] (N may be None while building a model)."""
    if len(features_shape) != 2:
        raise ValueError(
            f"CenterLoss: features must be 2-D [N, D], got shape {tuple(features_shape)}"
        )
    if features_shape[1] is None:
        raise ValueError("CenterLoss: the feature dimension D of features [N, D] must be known")
    if not (len(labels_shape) == 1 or (len(labels_shape) == 2 and labels_shape[1] == 1)):
        raise ValueError(
            f"CenterLoss: labels must be integer class ids of shape [N] or [N, 1], got shape "
            f"{tuple(labels_shape)} (one-hot labels are not accepted: pass the class ids)"
        )
    n_f, n_l = features_shape[0], labels_shape[0]
    if n_f is not None and n_l is not None and n_f != n_l:
        raise ValueError(f"CenterLoss: features has N = {n_f} rows but labels has {n_l} entries")


def check_labels_dtype(labels) -> None:
    dtype = backend.standardize_dtype(labels.dtype)
    if "int" not in dtype or dtype == "bool":
        raise TypeError(
            f"CenterLoss: labels must have an integer dtype (class ids), got {dtype}; declare the "
            f"labels input as keras.Input(shape=(), dtype='int32')"
        )


def labels_message(value, position, num_classes) -> str:
    # Same wording as the C++ op's check, so errors read alike on every backend.
    return (
        f"CenterLoss: labels must be in [0, K) with K = {num_classes}; found label {value} at "
        f"position {position}"
    )


def _raise_on_bad_labels(labels, num_classes: int) -> None:
    labels = np.asarray(labels).reshape(-1)  # host numpy only (see check_label_range)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ValueError(labels_message(labels[bad[0]], bad[0], num_classes))


def check_label_range(labels, num_classes: int):
    """Raises if a label is outside [0, K). Returns labels (under tf.function, with the check as
    a control dependency). Eager values are checked on the host; traced ones at run time."""
    name = backend.backend()
    if name == "torch":
        return labels  # the C++ op checks the values itself, before it changes anything
    if name == "jax":
        import jax

        if isinstance(labels, jax.core.Tracer):
            # The callback runs on the host at run time; its exception aborts the jitted step.
            # num_classes is bound here, not passed: jax would make it a device array, and a jax
            # op inside a host callback can deadlock the runtime.
            jax.debug.callback(functools.partial(_raise_on_bad_labels, num_classes=num_classes),
                               labels)
            return labels
    elif name == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            # XLA (jit_compile, Keras's default for tensorflow on a GPU) drops this assertion:
            # there a bad label cannot raise, and the maths masks it instead (_math: NaN loss,
            # no step, counted as skipped).
            bad = tf.logical_or(labels < 0, labels >= num_classes)
            # A sentinel row, so that an empty batch (a replica's empty slice of a last batch
            # under MirroredStrategy) has a position to report: argmax of nothing fails.
            position = tf.argmax(tf.concat([tf.cast(bad, tf.int32), [1]], 0),
                                 output_type=tf.int32)
            value = tf.gather(tf.concat([labels, tf.constant([-1], labels.dtype)], 0), position)
            message = f"CenterLoss: labels must be in [0, K) with K = {num_classes}; found label"
            check = tf.debugging.Assert(
                tf.logical_not(tf.reduce_any(bad)),
                [message, value, "at position", position],
            )
            with tf.control_dependencies([check]):
                return tf.identity(labels)
    _raise_on_bad_labels(ops.convert_to_numpy(labels), num_classes)
    return labels


def check_batch(features, labels, centers_shape):
    """The checks of one batch against centers of shape [K, D] (spec section 7), shared by the
    layer and the functions so their errors match. Returns the labels as [N] (see
    check_label_range for what it returns under tf.function)."""
    num_classes, feature_dim = (int(n) for n in centers_shape)
    check_shapes(tuple(features.shape), tuple(labels.shape))
    if features.shape[1] != feature_dim:
        raise ValueError(
            f"CenterLoss: features has D = {features.shape[1]} but the centers have D = "
            f"{feature_dim} (centers shape {(num_classes, feature_dim)})"
        )
    check_labels_dtype(labels)
    labels = check_label_range(ops.reshape(labels, (-1,)), num_classes)
    if backend.backend() == "tensorflow" and backend.standardize_dtype(labels.dtype) not in (
            "int32", "int64"):
        # tensorflow's gather and segment_sum take int32/int64 indices only; the values are
        # in [0, K) here (checked above on the original dtype), so int32 holds them.
        labels = ops.cast(labels, "int32")
    return labels
