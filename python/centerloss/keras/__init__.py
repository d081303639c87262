"""centerloss.keras: center loss for Keras 3 (jax, tensorflow and torch backends).

    from centerloss.keras import CenterLoss
    labels = keras.Input(shape=(), dtype="int32")
    features = CenterLoss(num_classes=10, weight=0.2)([features, labels])  # holds the centers

See docs/keras.md. On the torch backend the maths is the project's C++ op; on jax and
tensorflow it is the same maths written in keras.ops.
"""
from __future__ import annotations

from .functional import center_loss, center_step
from .layer import CenterLoss

__all__ = ["CenterLoss", "center_loss", "center_step"]
