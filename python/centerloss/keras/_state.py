"""Reads and writes rows of the layer's state variables (centers, seen) on the jax and
tensorflow backends, touching only the rows named, so that a center step costs O(N * D) and
not O(K * D).

- tensorflow: the tf.Variable's own sparse ops (ResourceGather, ResourceScatterUpdate). A dense
  read of the variable would share its buffer and make the scatter copy the whole table first.
- jax: `.at[rows].set` on the variable's value, assigned back. Inside `model.fit` Keras's jitted
  train step donates its state, so XLA writes those rows in place; an eager call (outside a
  jitted function) copies the table.
"""
from __future__ import annotations

from keras import backend, ops


def _tf_variable(variable):
    """(tensorflow, the tf.Variable behind a Keras variable), or (None, None) on the other
    backends and inside a keras.StatelessScope, where the value is a plain tensor."""
    if backend.backend() != "tensorflow":
        return None, None
    import tensorflow as tf

    value = variable.value
    return (tf, value) if isinstance(value, tf.Variable) else (None, None)


def read_rows(variable, indices):
    """variable[indices] ([len(indices), ...]); differentiable where the variable is trainable."""
    tf, tf_variable = _tf_variable(variable)
    if tf_variable is not None:
        return tf.gather(tf_variable, indices)  # ResourceGather (on a MirroredVariable: a read)
    return ops.take(variable.value, indices, axis=0)


def write_rows(variable, indices, rows) -> None:
    """variable[indices] = rows. A repeated index must come with the same row each time."""
    tf, tf_variable = _tf_variable(variable)
    if tf_variable is not None:
        tf_variable.scatter_update(tf.IndexedSlices(rows, indices))
    else:
        variable.assign(ops.scatter_update(variable.value, ops.expand_dims(indices, 1), rows))
