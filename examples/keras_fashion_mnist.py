"""The Keras model people ask for, with center loss: Fashion-MNIST, a small conv net, Dense(100)
features, a softmax head; crossentropy (weight 1) plus center loss (weight 0.2).

The labels reach the center-loss layer as a second model input, because a Keras loss function
cannot own the centers (docs/keras.md explains why). Data: Debian's dataset-fashion-mnist IDX
files, read with numpy (no downloads).

    python examples/keras_fashion_mnist.py --backend tensorflow --epochs 3   # full run
    python examples/keras_fashion_mnist.py --steps 5 --eval-samples 512    # smoke run (seconds)
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _keras_example import fashion_mnist, parser, start_keras, train_and_score  # noqa: E402


def parse_args(argv=None):
    return parser(__doc__, batch_size=128, lr=1e-3, optimizer="Adam").parse_args(argv)


def build_models(keras, num_classes: int, weight: float, alpha: float):
    """(train_model [image, label] -> softmax, predict_model image -> softmax), sharing layers."""
    from centerloss.keras import CenterLoss

    layers = keras.layers
    image = keras.Input(shape=(28, 28, 1), name="image")
    label = keras.Input(shape=(), dtype="int32", name="label")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(image)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    fc = layers.Dense(100, activation="relu", name="features")(x)
    center_loss = CenterLoss(num_classes, alpha=alpha, weight=weight, name="center_loss")
    head = layers.Dense(num_classes, activation="softmax", name="softmax")
    train_model = keras.Model([image, label], head(center_loss([fc, label])), name="train")
    predict_model = keras.Model(image, head(fc), name="predict")
    return train_model, predict_model


def main(argv=None) -> int:
    args = parse_args(argv)
    keras = start_keras(args)
    x_train, y_train, x_test, y_test, num_classes = fashion_mnist(args)

    train_model, predict_model = build_models(keras, num_classes, args.weight, args.alpha)
    # Crossentropy with weight 1 here; the center loss (weight 0.2) is added by the layer.
    train_model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    fit_data = dict(x=[x_train, y_train], y=keras.utils.to_categorical(y_train, num_classes),
                    batch_size=args.batch_size, shuffle=True)
    train_and_score(keras, args, train_model, predict_model, fit_data, x_test, y_test,
                    len(x_train))
    return 0


if __name__ == "__main__":
    sys.exit(main())
