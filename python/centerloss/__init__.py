"""centerloss: center loss (Wen et al., ECCV 2016) for PyTorch and Keras 3, on one C++/CUDA op.

    import centerloss
    center_loss = centerloss.CenterLoss(num_classes=10, feature_dim=2)   # owns the centers
    logits, features = net(images)                                      # two outputs
    loss = F.cross_entropy(logits, labels) + 0.01 * center_loss(features, labels)
    loss.backward()                                                     # centers already moved

The PyTorch names below import torch and load the compiled library when first used, so that
`import centerloss.keras` on the jax and tensorflow backends needs neither (docs/keras.md).
See docs/center-loss-spec.md for the exact definitions.
"""
from __future__ import annotations

import importlib

from ._version import __version__  # (CMakeLists.txt project VERSION)

# Public name -> the submodule that defines it (loaded on first use).
_TORCH_NAMES = {
    "CenterLoss": "nn",
    "center_loss": "functional",
    "update_centers_": "functional",
    "init_centers_first_sight_": "functional",
}
_TORCH_SUBMODULES = ("nn", "functional", "distributed")

__all__ = ["CenterLoss", "center_loss", "update_centers_", "init_centers_first_sight_",
           "__version__"]


def __getattr__(name: str):
    if name in _TORCH_NAMES or name in _TORCH_SUBMODULES:
        importlib.import_module("._ops", __name__)  # torch and the library, or a clear error
    if name in _TORCH_NAMES:
        value = getattr(importlib.import_module(f".{_TORCH_NAMES[name]}", __name__), name)
    elif name in _TORCH_SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_TORCH_NAMES, *_TORCH_SUBMODULES})
