"""How bench_step.py times a step: synchronised wall-clock medians, recipes taking turns in shuffled
rounds (this VM has bursts of outside load), and the GPU kernel time from the profiler."""
from __future__ import annotations

import random
import statistics

import torch

from _common import calibrated_iters, wall_times



def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(fn, device, target_s, min_iters, max_iters, warmup):
    """Median seconds per call of fn() after warm-up; iterations sized to about target_s."""
    iters = calibrated_iters(fn, target_s, min_iters, max_iters, warmup, lambda: sync(device))
    if device.type != "cuda":
        return statistics.median(wall_times(fn, iters)), iters
    pairs = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
             for _ in range(iters)]
    for start, end in pairs:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize(device)
    return statistics.median(start.elapsed_time(end) * 1e-3 for start, end in pairs), iters


def time_interleaved(fns, target_s, rounds, min_iters, max_iters, warmup):
    """CPU: median seconds per call of each fn, the recipes taking turns in `rounds` blocks.

    A shared VM has short bursts of outside load that stall a step; timing each recipe in its
    own window lets a burst land on one recipe only and skew its ratio to the others. Taking
    turns spreads every burst over all of them;
    the order of the turns is shuffled each round, so that no recipe always runs after the copy
    (which flushes the L2 cache) or after the same other recipe.
    Returns {name: (median seconds, iterations)}.
    """
    per_block = {name: max(1, -(-calibrated_iters(fn, target_s, min_iters, max_iters, warmup)
                                // rounds))
                 for name, fn in fns.items()}
    times = {name: [] for name in fns}
    order = list(fns)
    shuffle = random.Random(0).shuffle  # a recipe does not always follow the same other one
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            times[name] += wall_times(fns[name], per_block[name])
    return {name: (statistics.median(t), len(t)) for name, t in times.items()}


def gpu_kernel_seconds(fn, device, steps=20):
    """GPU time per step: the sum of the kernels' (and memcpys') durations, from the profiler,
    and what makes it up: {"device_ops_per_step", "top_us": [[name, us per step], ...]}."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    sync(device)
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        sync(device)
    by_name, ops = {}, 0
    for evt in prof.events():
        if evt.device_type == DeviceType.CUDA:
            by_name[evt.name] = by_name.get(evt.name, 0.0) + evt.time_range.elapsed_us() / steps
            ops += 1
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:12]
    return sum(by_name.values()) * 1e-6, {"device_ops_per_step": ops / steps,
                                     "top_us": [[name[:120], us] for name, us in top]}
