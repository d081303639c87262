"""Plain, obviously-correct center loss written with torch primitives (spec section 8).

Used only by the tests, as the yardstick for the C++ and CUDA kernels.
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


# Shared by the CPU and CUDA tests: the spec's dtypes, the random cases and their generator.
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


def make_case(n, d, k, dtype, seed, centers_dtype=torch.float32):
    """Seeded features [n, d] of `dtype`, labels [n] in [0, k), centers [k, d]."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)
    labels = torch.randint(0, k, (n,), generator=g)
    centers = torch.randn(k, d, generator=g, dtype=torch.float64).to(centers_dtype)
    return features, labels, centers
