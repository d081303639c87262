"""The model of the Keras center-loss question, verbatim, made to work: a 100x100x3 input, a
conv trunk, Dense(100) features, a softmax head, crossentropy with weight 1 and center loss with
weight 0.2, the centers updated at every iteration, optimizer 'sgd'.

The question compiled a two-output model with loss=['categorical_crossentropy', center_loss]
and loss_weights=[1, 0.2], which cannot hold the centers (docs/keras.md says why). Here the
labels are a second input and centerloss.keras.CenterLoss holds and moves the centers; the
compiled loss is the crossentropy alone. Data: Fashion-MNIST (Debian's dataset-fashion-mnist)
made 100x100x3: each 28x28 image scaled up by nearest neighbour, its grey copied to 3 channels,
batch by batch (the whole set at that size would not fit in memory).

    python examples/keras_question_model.py --backend jax --epochs 1     # full run
    python examples/keras_question_model.py --quick                      # a few steps (tests)
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _keras_example import fashion_mnist, parser, start_keras, train_and_score  # noqa: E402

SIZE = 100
QUICK = ["--steps", "3", "--eval-samples", "128", "--quiet"]


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--quick" in argv:  # its options first, so that any given after it win
        argv = [*QUICK, *argv]
    p = parser(__doc__, batch_size=64, lr=0.01, optimizer="SGD (the question's 'sgd')")
    p.add_argument("--quick", action="store_true", help=f"the same as {' '.join(QUICK)}")
    return p.parse_args(argv)


def question_model(keras, num_classes: int, weight: float, alpha: float):
    """The question's model, with the lines that make center loss work marked 1-3 (docs/keras.md
    shows the question's version). Returns (model [image, label] -> softmax, for fit;
    predictor image -> softmax, the same layers without labels)."""
    from centerloss.keras import CenterLoss

    layers = keras.layers
    inputs = keras.Input(shape=(SIZE, SIZE, 3), name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(inputs)  # the trunk
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    fc = layers.Dense(100, name="features")(layers.Flatten()(x))
    softmax = layers.Dense(num_classes, activation="softmax", name="softmax")
    labels = keras.Input(shape=(), dtype="int32", name="label")  # 1: the class ids, an input
    centered = CenterLoss(num_classes, alpha, weight=weight, name="center_loss")([fc, labels])  # 2
    model = keras.Model([inputs, labels], softmax(centered))  # 3: one output (one loss, below)
    return model, keras.Model(inputs, softmax(fc))


def batches(keras, images, labels, batch_size: int, num_classes: int, with_labels: bool,
            shuffle_seed=None):
    """A keras.utils.PyDataset of 100x100x3 float32 batches made from 28x28 images on the fly:
    ((image, label), one-hot) for training, image alone otherwise."""
    pick = (np.arange(SIZE) * images.shape[1]) // SIZE  # nearest neighbour, 28 -> 100

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.order = np.arange(len(images))

        def __len__(self):
            return int(np.ceil(len(images) / batch_size))

        def __getitem__(self, index):
            rows = self.order[index * batch_size:(index + 1) * batch_size]
            big = images[rows][:, pick][:, :, pick]
            x = np.repeat(big, 3, axis=-1)
            if not with_labels:
                return (x,)
            return (x, labels[rows]), keras.utils.to_categorical(labels[rows], num_classes)

        def on_epoch_end(self):
            if shuffle_seed is not None:
                np.random.default_rng(shuffle_seed).shuffle(self.order)

    data = Batches()
    data.on_epoch_end()
    return data


def main(argv=None) -> dict:
    args = parse_args(argv)
    keras = start_keras(args)
    x_train, y_train, x_test, y_test, num_classes = fashion_mnist(args)

    train_model, predict_model = question_model(keras, num_classes, args.weight, args.alpha)
    # 3: one compiled loss (weight 1); the layer adds weight * center loss.
    train_model.compile(optimizer=keras.optimizers.SGD(args.lr),
                        loss="categorical_crossentropy", metrics=["accuracy"])
    train = batches(keras, x_train, y_train, args.batch_size, num_classes, True, args.seed)
    test = batches(keras, x_test, y_test, 256, num_classes, False)
    return train_and_score(keras, args, train_model, predict_model, {"x": train}, test, y_test,
                           len(x_train))


if __name__ == "__main__":
    main()
