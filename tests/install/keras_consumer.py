"""What a Keras user runs after `pip install`: a model with centerloss.keras.CenterLoss, one
`fit` step on whichever backend KERAS_BACKEND names. Prints one JSON line (the tests read it):
the backend, where the package was loaded from, whether torch and the compiled library were
loaded, and the centers after the step next to the paper rule's step computed here in numpy."""
import json
import sys

import numpy as np

import keras
from centerloss.keras import CenterLoss

K, D, N, ALPHA = 4, 3, 16, 0.5
rng = np.random.default_rng(0)
x = rng.normal(size=(N, D)).astype("float32")
y = (np.arange(N) % (K - 1)).astype("int32")  # class K - 1 absent: its center must not move

features_in = keras.Input((D,))
labels_in = keras.Input((), dtype="int32")
features = keras.layers.Identity()(features_in)
layer = CenterLoss(K, alpha=ALPHA, weight=0.2, init="normal", name="center_loss")
out = layer([features, labels_in])
model = keras.Model([features_in, labels_in], keras.layers.Dense(K)(out))
model.compile(keras.optimizers.SGD(0.1),
              keras.losses.SparseCategoricalCrossentropy(from_logits=True))

before = keras.ops.convert_to_numpy(layer.centers).astype(np.float64)
model.fit([x, y], y, batch_size=N, epochs=1, verbose=0)

expected = before.copy()
for j in range(K):
    rows = x[y == j]
    if len(rows):
        expected[j] -= ALPHA * np.sum(before[j] - rows, axis=0) / (len(rows) + 1)
after = keras.ops.convert_to_numpy(layer.centers)
torch = sys.modules.get("torch")
print(json.dumps({
    "backend": keras.backend.backend(),
    "package": sys.modules["centerloss"].__file__,
    "torch_imported": torch is not None,
    "library_loaded": torch is not None and hasattr(torch.ops.centerloss, "forward"),
    "max_error": float(np.max(np.abs(after - expected))),
    "skipped": int(keras.ops.convert_to_numpy(layer.skipped_updates)),
}))
