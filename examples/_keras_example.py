"""What the Keras examples share: their command-line options, choosing the backend (before keras
is imported), and training then scoring a [image, label] -> softmax model whose labels reach a
centerloss.keras.CenterLoss layer as the second input."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from _fashion_mnist import DATA_DIR, load_split


def parser(description: str, batch_size: int, lr: float, optimizer: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backend", choices=("torch", "jax", "tensorflow"),
                   help="Keras backend (default: $KERAS_BACKEND, else torch: the C++ op)")
    p.add_argument("--epochs", type=int, default=1, help="passes over the 60k training images")
    p.add_argument("--steps", type=int, default=None,
                   help="stop after this many training steps in all (short runs, tests)")
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--weight", type=float, default=0.2, help="center loss weight (lambda)")
    p.add_argument("--alpha", type=float, default=0.5, help="center step size (paper's alpha)")
    p.add_argument("--lr", type=float, default=lr, help=f"{optimizer} learning rate")
    p.add_argument("--eval-samples", type=int, default=10000, help="test images to score")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the backend")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, default=None, help="write the trained model (.keras)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def start_keras(args):
    """Fixes the backend (read when keras is first imported) and the threads; returns keras."""
    backend = args.backend or os.environ.get("KERAS_BACKEND") or "torch"
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
    import keras

    keras.utils.set_random_seed(args.seed)
    return keras


def fashion_mnist(args):
    """(x_train, y_train, x_test, y_test, num_classes), the test split cut to --eval-samples."""
    x_train, y_train = load_split(args.data_dir, "train")
    x_test, y_test = load_split(args.data_dir, "t10k")
    return (x_train, y_train, x_test[: args.eval_samples], y_test[: args.eval_samples],
            int(y_train.max()) + 1)


def schedule(args, train_size: int) -> tuple[int, int]:
    """(epochs, steps per epoch) of --epochs, cut short by --steps."""
    steps_per_epoch = int(np.ceil(train_size / args.batch_size))
    if args.steps is None:
        return args.epochs, steps_per_epoch
    steps_per_epoch = min(steps_per_epoch, args.steps)
    return max(1, int(np.ceil(args.steps / steps_per_epoch))), steps_per_epoch


def train_and_score(keras, args, train_model, predict_model, fit_data: dict, test_images,
                    test_labels, train_size: int) -> dict:
    """model.fit (fit_data: x, y and any other fit arguments), then the test accuracy of the
    label-free predict_model and the center loss of the test features (layer "features");
    test_images: an array or a keras.utils.PyDataset of image batches. Prints and returns the
    results."""
    from centerloss.keras import center_loss

    epochs, steps_per_epoch = schedule(args, train_size)
    print(f"backend {keras.backend.backend()}, {epochs} epoch(s) x {steps_per_epoch} steps of "
          f"{args.batch_size}")
    start = time.perf_counter()
    train_model.fit(**fit_data, epochs=epochs, steps_per_epoch=steps_per_epoch,
                    verbose=0 if args.quiet else 1)
    train_seconds = time.perf_counter() - start

    features_model = keras.Model(predict_model.input, [
        predict_model.output, predict_model.get_layer("features").output])
    batch = {"batch_size": 512} if isinstance(test_images, np.ndarray) else {}
    probs, features = features_model.predict(test_images, verbose=0, **batch)
    layer = train_model.get_layer("center_loss")
    results = {
        "backend": keras.backend.backend(),
        "steps": epochs * steps_per_epoch,
        "train_seconds": train_seconds,
        "test_accuracy": float(np.mean(np.argmax(probs, axis=1) == test_labels)),
        "test_center_loss": float(keras.ops.convert_to_numpy(
            center_loss(features, test_labels, layer.centers))),
        "skipped_center_updates": int(keras.ops.convert_to_numpy(layer.skipped_updates)),
        "test_images": int(len(test_labels)),
    }
    print(f"train time {train_seconds:.1f} s")
    print(f"center loss on the test images (mean 1/2 ||x - c_y||^2): "
          f"{results['test_center_loss']:.4f}")
    print(f"skipped center updates: {results['skipped_center_updates']}")
    print(f"test accuracy: {results['test_accuracy']:.4f} on {len(test_labels)} images")
    if args.save is not None:
        train_model.save(args.save)
        print(f"saved {args.save}")
    return results
