"""Plain, obviously-correct center loss written with torch primitives (spec section 8).

Used only by the tests, as the yardstick for the C++ and CUDA kernels; below it, what the op
tests on every device share: dtypes, shapes, tolerances, seeded cases.
"""
from __future__ import annotations

import torch


def acc_dtype(features: torch.Tensor, centers: torch.Tensor) -> torch.dtype:
    return torch.float64 if torch.float64 in (features.dtype, centers.dtype) else torch.float32


def loss(features, labels, centers, margin=0.0, reduction="mean"):
    """Differentiable in features and centers (autograd of the primitives)."""
    dtype = acc_dtype(features, centers)
    diff = features.to(dtype) - centers.to(dtype).index_select(0, labels.long())
    sq = (diff * diff).sum(dim=1)
    if margin == 0.0:
        per_sample = 0.5 * sq
    else:
        per_sample = 0.5 * torch.clamp(torch.sqrt(sq) - margin, min=0.0) ** 2
    if reduction == "none":
        return per_sample
    if reduction == "sum":
        return per_sample.sum()
    return per_sample.sum() / max(features.shape[0], 1)


def updated_centers(centers, features, labels, alpha=0.5, rule="paper"):
    """Centers after one step of rule "paper" (/(1+n_j)) or "mean" (/n_j); a new tensor."""
    dtype = centers.dtype
    labels = labels.long()
    num_classes = centers.shape[0]
    x = features.to(dtype)
    sums = torch.zeros_like(centers).index_add_(0, labels, centers.index_select(0, labels) - x)
    counts = torch.bincount(labels, minlength=num_classes).to(dtype)
    present = counts > 0
    denom = counts + 1 if rule == "paper" else counts
    out = centers.clone()
    out[present] -= alpha * sums[present] / denom[present].unsqueeze(1)
    return out


# Shared by the tests on every device: the spec's dtypes, the random cases and their generator.
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
SHAPES = [  # (N, D, K)
    (1, 1, 1),
    (7, 3, 5),
    (64, 1, 10),
    (256, 2, 10),
    (300, 17, 1000),
    (513, 128, 100),
    (2048, 512, 37),
    (3000, 16, 100000),
]
# Shapes that take the CUDA kernels' other paths (one-block sort up to 1024 and up to 4096 rows,
# device-wide sort above), added to SHAPES on that device.
CUDA_SHAPES = [(4096, 40, 3), (6000, 24, 500)]


# (loss rtol, loss atol, gradient atol relative to the largest gradient) per device and feature
# dtype: half types carry ~3 significant digits; CUDA sums in another order.
TOL = {
    "cpu": {
        torch.float32: (1e-5, 1e-6, 1e-6),
        torch.float64: (1e-12, 1e-12, 1e-12),
        torch.float16: (1e-5, 1e-6, 2e-3),
        torch.bfloat16: (1e-5, 1e-6, 1.6e-2),
    },
    "cuda": {
        torch.float32: (1e-5, 1e-6, 1e-5),
        torch.float64: (1e-12, 1e-6, 1e-12),
        torch.float16: (1e-5, 1e-6, 2e-3),
        torch.bfloat16: (1e-5, 1e-6, 1.6e-2),
    },
}


def per_device(cpu_cases, cuda_cases):
    """Rows ("cpu", *case) and ("cuda", *case) for a parametrize that starts with "device", for
    tests whose cases differ by device (tests/python/conftest.py marks the cuda rows)."""
    return [("cpu", *case) for case in cpu_cases] + [("cuda", *case) for case in cuda_cases]


def make_case(n, d, k, dtype, seed, centers_dtype=torch.float32):
    """Seeded features [n, d] of `dtype`, labels [n] in [0, k), centers [k, d]."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)
    labels = torch.randint(0, k, (n,), generator=g)
    centers = torch.randn(k, d, generator=g, dtype=torch.float64).to(centers_dtype)
    return features, labels, centers


def max_abs_diff(a, b):
    """Largest absolute difference of two tensors on any devices, in float64 (0 when empty)."""
    return (a.cpu().double() - b.cpu().double()).abs().max().item() if a.numel() else 0.0


class deterministic:
    """Context manager: torch.use_deterministic_algorithms(on), restored on exit."""

    def __init__(self, on):
        self.on = on

    def __enter__(self):
        self.before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(self.on)

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.before)
