"""Run by test_keras_replicas.py in a fresh process (the device layout is fixed before the
backend starts): the Keras layer trained on one device and on two replicas (two logical CPU
devices: tensorflow's MirroredStrategy, or jax's keras.distribution.DataParallel) must end with
the same centers, on every replica copy. Prints one JSON line.

    KERAS_BACKEND=tensorflow python keras_replicas_worker.py

XLA (jit_compile) is not tried: tensorflow's MirroredStrategy over logical CPU devices cannot
run XLA-compiled steps at all (a variable on another device), with or without this layer.
"""
from __future__ import annotations

import json
import os

BACKEND = os.environ["KERAS_BACKEND"]
if BACKEND == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

if BACKEND == "tensorflow":
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from centerloss.keras import CenterLoss  # noqa: E402

# Samples in batches of 24. tensorflow: 73, so that the last batch is 1 row and one replica's
# slice of it is empty; jax: 70 (the last batch, 22 rows, is split 11 / 11; DataParallel wants
# a batch it can split evenly).
K = 5
N = 73 if BACKEND == "tensorflow" else 70


def build(init):
    keras.utils.set_random_seed(0)
    x = keras.Input((8,))
    y = keras.Input((), dtype="int32")
    f = keras.layers.Dense(3, name="features")(x)
    f = CenterLoss(K, alpha=0.5, weight=0.1, init=init, name="center_loss")([f, y])
    model = keras.Model([x, y], keras.layers.Dense(K)(f))
    model.compile(keras.optimizers.SGD(0.0), jit_compile=False,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def copies(variable):
    """Every replica's copy of a variable (one for a plain variable), as numpy arrays."""
    value = getattr(variable, "value", variable)
    if hasattr(value, "values"):  # a tf MirroredVariable
        return [np.asarray(v.numpy()) for v in value.values]
    return [np.asarray(keras.ops.convert_to_numpy(variable))]


_STRATEGY = []


def mirrored_strategy():
    """One strategy per process: a second MirroredStrategy restarts the collective instance
    keys, and its collectives can pair with the first one's (a shape-mismatch abort)."""
    if not _STRATEGY:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        _STRATEGY.append(tf.distribute.MirroredStrategy(devices))
    return _STRATEGY[0]


def train(init, x, y, replicas):
    if replicas and BACKEND == "jax":
        import jax

        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    if replicas and BACKEND == "tensorflow":
        with mirrored_strategy().scope():
            model = build(init)
    else:
        model = build(init)
    model.fit([x, y], y, batch_size=24, epochs=2, shuffle=False, verbose=0)
    layer = model.get_layer("center_loss")
    return copies(layer.centers), int(copies(layer.skipped_updates)[0])


def main():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 8)).astype("float32")
    y = rng.integers(0, K, size=N).astype("int32")

    out = {}
    for init in ("zeros", "first_sight"):
        single, skipped_single = train(init, x, y, replicas=False)
        multi, skipped_multi = train(init, x, y, replicas=True)
        out[init] = {
            "copies": len(multi),
            "max_difference": max(float(np.abs(c - single[0]).max()) for c in multi),
            "largest_center": float(np.abs(single[0]).max()),
            "skipped": [skipped_single, skipped_multi],
        }
        if BACKEND == "jax":
            keras.distribution.set_distribution(None)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
