"""The option names of both front ends, in one table, spelled as in C++ and the CLI (spec
sections 1-3, 7), with their checks.

Plain Python only (no torch, no keras), so either front end can use it.
"""
from __future__ import annotations

import math

# Name -> the integer code of the registered ops (centerloss::Reduction, centerloss::UpdateRule
# in include/centerloss/types.h).
REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}
UPDATES = {"paper": 0, "mean": 1, "gradient": 2}
# The rules a center step applies; "gradient" leaves the centers to an optimizer.
STEP_RULES = {name: code for name, code in UPDATES.items() if name != "gradient"}
# How the centers start (centerloss::Init).
INITS = ("zeros", "normal", "xavier", "first_sight")


def check_choice(owner: str, option: str, value, choices) -> str:
    """Returns value if it is one of choices, else raises ValueError naming the option."""
    if value not in choices:
        raise ValueError(f"{owner}: {option} must be one of {tuple(choices)}, got {value!r}")
    return value


def reduction_code(reduction: str, owner: str = "center_loss") -> int:
    return REDUCTIONS[check_choice(owner, "reduction", reduction, REDUCTIONS)]


def rule_code(rule: str, owner: str = "update_centers_") -> int:
    """The code of a center step's rule ("gradient" is refused: an optimizer applies it)."""
    return STEP_RULES[check_choice(owner, "rule", rule, STEP_RULES)]


def check_common(num_classes, alpha, margin, update, init, init_std) -> None:
    """Raises ValueError naming the first bad option (the same rules as the C++ module)."""
    if int(num_classes) < 1:
        raise ValueError(f"CenterLoss: num_classes must be >= 1, got {num_classes}")
    check_alpha(alpha)
    check_margin(margin)
    check_choice("CenterLoss", "update", update, UPDATES)
    check_choice("CenterLoss", "init", init, INITS)
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
