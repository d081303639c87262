"""Fashion-MNIST from Debian's dataset-fashion-mnist IDX files, read with numpy (no downloads).
Shared by the examples in this folder."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

DATA_DIR = Path("/usr/share/datasets/fashion-mnist")


def read_idx_gz(path: Path) -> np.ndarray:
    """An IDX file (big-endian header: magic with the dimension count, then the sizes)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_split(data_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images [n, 28, 28, 1] float32 in [0, 1], labels [n] int32); split "train" or "t10k"."""
    images = read_idx_gz(data_dir / f"{split}-images-idx3-ubyte.gz")
    labels = read_idx_gz(data_dir / f"{split}-labels-idx1-ubyte.gz")
    return (images.astype("float32") / 255.0)[..., None], labels.astype("int32")
