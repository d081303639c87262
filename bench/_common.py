"""What the benchmark scripts share: how a step is timed, and the centers table they time on."""
from __future__ import annotations

import statistics
import time

import torch

import centerloss.functional  # noqa: F401  (loads torch.ops.centerloss)


def calibrated_iters(fn, target_s: float, min_iters: int, max_iters: int, warmup: int,
                     sync=lambda: None) -> int:
    """Warms fn up, times one call, and returns how many calls fill about target_s."""
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    once = max(time.perf_counter() - t0, 1e-7)
    return int(min(max(target_s / once, min_iters), max_iters))


def wall_times(fn, iters: int) -> list[float]:
    """Wall-clock seconds of each of `iters` calls of fn (CPU work: the call returns when done)."""
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median_seconds(fn, iters: int, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    return statistics.median(wall_times(fn, iters))


def centers_table(k: int, d: int, device, generator: torch.Generator) -> torch.Tensor:
    """A K x D float32 table with N(0, 1) rows, allocated as centerloss.CenterLoss allocates its
    own (huge pages for large CPU tables, advised before the pages are touched)."""
    centers = torch.empty(k, d, device=device)
    torch.ops.centerloss._advise_huge_pages(centers)
    return centers.normal_(generator=generator)
