"""Several replicas of one model (tf.distribute.MirroredStrategy, Keras's multi-GPU path on the
tensorflow backend): each replica calls the layer on its slice of the global batch. A center
step from the slice alone would differ per replica, and each replica writes its own copy of the
(mirrored) centers, so the copies would drift apart, silently. Gathering the replicas' features
and labels first (in replica order: the global batch) makes every replica apply the step of the
global batch, the same step as one device (spec section 5). The loss stays per replica.

jax (keras.distribution.DataParallel) needs nothing: the layer sees the global batch as one
sharded array. torch has no Keras multi-device training (torch users have CenterLoss with a
process_group).
"""
from __future__ import annotations

from keras import backend


def global_batch(features, labels):
    """(features, labels) of every replica, concatenated in replica order; the inputs as they
    are outside a multi-replica tf.distribute step."""
    if backend.backend() != "tensorflow":
        return features, labels
    import tensorflow as tf

    if not tf.distribute.has_strategy() or tf.distribute.in_cross_replica_context():
        return features, labels
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return features, labels
    return context.all_gather(features, axis=0), context.all_gather(labels, axis=0)
