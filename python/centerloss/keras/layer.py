"""centerloss.keras.CenterLoss: a Keras 3 layer that owns the centers, adds the center loss to the
model's losses and moves the centers in training (spec sections 1-4)."""
from __future__ import annotations

import keras
from keras import backend, ops

from . import _checks, _math, _replicas, _state

_INITIALIZERS = {"zeros": "zeros", "first_sight": "zeros", "xavier": "glorot_uniform"}


@keras.saving.register_keras_serializable(package="centerloss")
class CenterLoss(keras.layers.Layer):
    """Center loss (Wen et al., ECCV 2016) with its K x D table of class centers.

    Call it on ``[features, labels]``: features [N, D] float (any float dtype; the maths runs in
    float32), labels [N] or [N, 1] integer class ids in [0, K). It returns ``features``
    unchanged, so models compose, and adds ``weight * L_C`` to the model's losses, where

        L_C = s * sum_i 1/2 * max(||x_i - c_{y_i}|| - margin, 0)^2,  s = 1/N ("mean") or 1 ("sum").

    With ``training=True`` (``model.fit``) and update "paper" or "mean", the centers of the
    classes in the batch then move by one step computed from the centers the loss used:

        paper: c_j -= alpha * sum_{y_i=j} (c_j - x_i) / (1 + n_j)   (Wen et al. 2016, Eq. 4)
        mean:  c_j -= alpha * sum_{y_i=j} (c_j - x_i) / n_j         (IJCV 2019)

    With update "gradient" the centers are a trainable weight that the model's optimizer moves.
    ``evaluate``/``predict`` (``training=False``) never change the centers. A batch with a NaN or
    an infinity leaves every center untouched and increments ``skipped_updates``.

    Weights: ``centers`` [K, D] float32 (non-trainable unless update="gradient"),
    ``skipped_updates`` int32 scalar, and ``seen`` [K] bool with init="first_sight"; they are
    saved in ``.keras`` files with the options (``get_config``).

    On the torch backend the loss and the step are the project's C++ op
    (``torch.ops.centerloss``); on jax and tensorflow they are the same maths in ``keras.ops``,
    reading and writing only the centers of the classes in the batch, and neither torch nor the
    compiled library is imported.
    """

    def __init__(
        self,
        num_classes: int,
        alpha: float = 0.5,
        weight: float = 1.0,
        reduction: str = "mean",
        update: str = "paper",
        margin: float = 0.0,
        init: str = "zeros",
        init_std: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        _checks.check_options(num_classes, alpha, weight, reduction, update, margin, init, init_std)
        if init == "first_sight" and update == "gradient":
            raise ValueError(
                "CenterLoss: init='first_sight' moves the centers in the forward pass, which a "
                "trainable (update='gradient') weight cannot do in Keras; use init='zeros'"
            )
        self.num_classes = int(num_classes)
        self.alpha = float(alpha)
        self.weight = float(weight)
        self.reduction = reduction
        self.update = update
        self.margin = float(margin)
        self.init = init
        self.init_std = float(init_std)

    def build(self, input_shape) -> None:
        _checks.check_pair(input_shape, "input shape")
        features_shape, labels_shape = input_shape
        _checks.check_shapes(tuple(features_shape), tuple(labels_shape))
        self.feature_dim = int(features_shape[1])
        initializer = _INITIALIZERS.get(self.init) or keras.initializers.RandomNormal(
            stddev=self.init_std
        )
        self.centers = self.add_weight(
            shape=(self.num_classes, self.feature_dim),
            initializer=initializer,
            dtype="float32",
            trainable=self.update == "gradient",
            autocast=False,  # float32 even under a mixed-precision policy (spec section 4)
            name="centers",
        )
        self.skipped_updates = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False, name="skipped_updates"
        )
        if self.init == "first_sight":
            self.seen = self.add_weight(
                shape=(self.num_classes,),
                initializer="zeros",
                dtype="bool",
                trainable=False,
                name="seen",
            )

    def call(self, inputs, training=False):
        _checks.check_pair(inputs, "inputs")
        features, labels = inputs
        labels = _checks.check_batch(features, labels, (self.num_classes, self.feature_dim))
        if backend.backend() == "torch":
            from . import _torch  # the C++ op; only this backend imports torch

            loss = _torch.layer_forward(self, features, labels, bool(training))
        else:
            loss = self._ops_forward(features, labels, bool(training))
        self.add_loss(self.weight * loss)
        return features

    def _ops_forward(self, features, labels, training: bool):
        """jax and tensorflow: the state maths of _math on the rows of the batch's classes only
        (_state reads and writes them); the loss from the rows after any first-sight
        initialisation, and the step from the same rows."""
        first_sight = training and self.init == "first_sight"
        stepping = training and self.update != "gradient"
        valid = _math.labels_in_range(labels, self.num_classes)
        rows_of_labels = None
        if first_sight or stepping:
            # The state moves with the global batch of every replica (MirroredStrategy), the
            # loss with this replica's slice. The state is not differentiated (as in the C++
            # op: the first-sight means and the step are no part of the loss's gradient),
            # which also keeps the gather out of the backward pass.
            state_features, state_labels = _replicas.global_batch(
                ops.stop_gradient(features), labels)
            state_valid = _math.labels_in_range(state_labels, self.num_classes)
            batch = _math.BatchClasses(_math.safe_labels(state_labels, self.num_classes))
            rows = _state.read_rows(self.centers, batch.classes)
            if first_sight:
                seen = _state.read_rows(self.seen, batch.classes)
                rows, seen = _math.first_sight_rows(rows, seen, state_features, batch,
                                                    state_valid)
                _state.write_rows(self.centers, *batch.write_back(rows))
                _state.write_rows(self.seen, *batch.write_back(seen))
            if state_labels is labels:
                # The loss reads the rows the step writes from, not the table: on jax the
                # table's only read then comes before its write, which XLA can do in place.
                rows_of_labels = ops.take(rows, batch.slot, axis=0)
        if rows_of_labels is None:
            rows_of_labels = _state.read_rows(self.centers,
                                              _math.safe_labels(labels, self.num_classes))
        per_sample = _math.per_sample_loss_of_rows(features, rows_of_labels, valid, self.margin)
        loss = _math.reduce_loss(per_sample, self.reduction)
        if stepping:
            rows, applied = _math.step_rows(rows, state_features, batch, state_valid, self.alpha,
                                            self.update)
            _state.write_rows(self.centers, *batch.write_back(rows))
            self.skipped_updates.assign_add(ops.cast(ops.logical_not(applied), "int32"))
        return loss

    def compute_output_spec(self, inputs, training=False):
        # The output is the features; no need to trace the loss while a model is being built.
        features = inputs[0]
        return keras.KerasTensor(features.shape, dtype=features.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            alpha=self.alpha,
            weight=self.weight,
            reduction=self.reduction,
            update=self.update,
            margin=self.margin,
            init=self.init,
            init_std=self.init_std,
        )
        return config
