"""Constructor options shared by the PyTorch module and the Keras layer (spec sections 1-3, 7).

Plain Python only (no torch, no keras), so either front end can use it.
"""
from __future__ import annotations

import math

# Names and the integer codes the ops take (centerloss::Reduction and UpdateRule in C++).
REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
STEP_RULES = {"paper": 0, "mean": 1}  # the rules a center step applies ("gradient": an optimizer)
UPDATES = ("paper", "mean", "gradient")
INITS = ("zeros", "normal", "xavier", "first_sight")


def check_common(num_classes, alpha, margin, update, init, init_std) -> None:
    """Raises ValueError naming the first bad option (the same rules as the C++ module)."""
    if int(num_classes) < 1:
        raise ValueError(f"CenterLoss: num_classes must be >= 1, got {num_classes}")
    check_alpha(alpha)
    check_margin(margin)
    if update not in UPDATES:
        raise ValueError(f"CenterLoss: update must be one of {UPDATES}, got {update!r}")
    if init not in INITS:
        raise ValueError(f"CenterLoss: init must be one of {INITS}, got {init!r}")
    if not (math.isfinite(float(init_std)) and float(init_std) > 0.0):
        raise ValueError(f"CenterLoss: init_std must be a finite number > 0, got {init_std}")


def check_alpha(alpha) -> float:
    if not 0.0 < float(alpha) <= 1.0:
        raise ValueError(f"CenterLoss: alpha must be in (0, 1], got {alpha}")
    return float(alpha)


def check_margin(margin) -> float:
    if not (math.isfinite(float(margin)) and float(margin) >= 0.0):
        raise ValueError(f"CenterLoss: margin must be a finite number >= 0, got {margin}")
    return float(margin)
