"""centerloss: center loss (Wen et al., ECCV 2016) for PyTorch, on one fused C++/CUDA op.

    import centerloss
    center_loss = centerloss.CenterLoss(num_classes=10, feature_dim=2)   # owns the centers
    logits, features = net(images)                                      # two outputs
    loss = F.cross_entropy(logits, labels) + 0.01 * center_loss(features, labels)
    loss.backward()                                                     # centers already moved

See docs/center-loss-spec.md for the exact definitions.
"""
from __future__ import annotations

from . import _library

_library.load()

from .functional import center_loss, init_centers_first_sight_, update_centers_  # noqa: E402
from .nn import CenterLoss  # noqa: E402

from ._version import __version__  # noqa: E402  (CMakeLists.txt project VERSION)

__all__ = [
    "CenterLoss",
    "center_loss",
    "update_centers_",
    "init_centers_first_sight_",
    "__version__",
]
