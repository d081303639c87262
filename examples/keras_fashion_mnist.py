"""The Keras model people ask for, with center loss: Fashion-MNIST, a small conv net, Dense(100)
features, a softmax head; crossentropy (weight 1) plus center loss (weight 0.2).

The labels reach the center-loss layer as a second model input, because a Keras loss function
cannot own the centers (docs/keras.md explains why). Data: Debian's dataset-fashion-mnist IDX
files, read with numpy (no downloads).

    python examples/keras_fashion_mnist.py --backend tensorflow --epochs 3   # full run
    python examples/keras_fashion_mnist.py --steps 5 --eval-samples 512    # smoke run (seconds)
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fashion_mnist import DATA_DIR, load_split  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=("torch", "jax", "tensorflow"),
                   help="Keras backend (default: $KERAS_BACKEND, else torch: the C++ op)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the 60k training images")
    p.add_argument("--steps", type=int, default=None,
                   help="stop after this many training steps in all (short runs, tests)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--weight", type=float, default=0.2, help="center loss weight (lambda)")
    p.add_argument("--alpha", type=float, default=0.5, help="center step size (paper's alpha)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--eval-samples", type=int, default=10000, help="test images to score")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the backend")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, default=None, help="write the trained model (.keras)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


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
    backend = args.backend or os.environ.get("KERAS_BACKEND") or "torch"
    os.environ["KERAS_BACKEND"] = backend  # fixed when keras is first imported
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
    import keras

    from centerloss.keras import center_loss

    keras.utils.set_random_seed(args.seed)
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    x_test, y_test = x_test[: args.eval_samples], y_test[: args.eval_samples]
    num_classes = int(y_train.max()) + 1

    train_model, predict_model = build_models(keras, num_classes, args.weight, args.alpha)
    # Crossentropy with weight 1 here; the center loss (weight 0.2) is added by the layer.
    train_model.compile(
        optimizer=keras.optimizers.Adam(args.lr),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    steps_per_epoch = int(np.ceil(len(x_train) / args.batch_size))
    epochs = args.epochs
    if args.steps is not None:
        steps_per_epoch = min(steps_per_epoch, args.steps)
        epochs = max(1, int(np.ceil(args.steps / steps_per_epoch)))
    print(f"backend {backend}, {epochs} epoch(s) x {steps_per_epoch} steps of {args.batch_size}")
    start = time.perf_counter()
    train_model.fit(
        [x_train, y_train],
        keras.utils.to_categorical(y_train, num_classes),
        batch_size=args.batch_size,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        shuffle=True,
        verbose=0 if args.quiet else 1,
    )
    train_seconds = time.perf_counter() - start

    probs = predict_model.predict(x_test, batch_size=512, verbose=0)
    accuracy = float(np.mean(np.argmax(probs, axis=1) == y_test))
    layer = train_model.get_layer("center_loss")
    features = keras.Model(predict_model.input, predict_model.get_layer("features").output)
    f = features.predict(x_test, batch_size=512, verbose=0)
    intra = float(keras.ops.convert_to_numpy(center_loss(f, y_test, layer.centers)))
    print(f"train time {train_seconds:.1f} s")
    print(f"center loss on the test images (mean 1/2 ||x - c_y||^2): {intra:.4f}")
    print(f"skipped center updates: {int(keras.ops.convert_to_numpy(layer.skipped_updates))}")
    print(f"test accuracy: {accuracy:.4f} on {len(y_test)} images")
    if args.save is not None:
        train_model.save(args.save)
        print(f"saved {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
