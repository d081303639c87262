#!/usr/bin/env python3
"""Times one center-loss training step: this project's op against what users would pick instead.

One step = loss forward + gradient of the loss with respect to the features + center update.
On the same inputs, in one run, for every (N, D, K, dtype) of the sweep:

  op        centerloss.CenterLoss, as users call it: module forward (loss with autograd and the
            paper-rule center step) + torch.autograd.grad
  op_raw    the registered ops it runs, called directly (no module, no autograd bookkeeping)
  op_graph  the op step captured once in a CUDA graph (torch.cuda.graph); per step the labels
            are copied into the graph's input and the graph replayed (CUDA only: what a user who
            captures the training step pays, without Python, dispatcher or launch costs)
  gather    eager PyTorch: index_select, subtract, autograd, torch.unique + index_add_ update
            (sparse: only the classes in the batch are touched)
  compile   torch.compile of the gather recipe (CUDA only; dynamic shapes, compiled once per dtype)
  distmat   the widely copied recipe: N x K matrix ||x||^2 + ||c||^2 - 2 x c^T masked by the
            labels, centers moved by a second optimizer (SGD on the dense K x D gradient)
  copy      a plain copy of the bytes a fused step must move (read x and the centers' rows,
            write the gradient and the centers' rows): the memory roofline

Every recipe is first checked against the op (loss, feature gradient, moved centers), then
warmed up and timed over many steps that cycle through --label-batches label batches; the
median is reported (CPU: wall clock per step, the recipes other than distmat taking turns in
--rounds rounds; CUDA: torch.cuda.Event per step, plus GPU kernel time, device ops per step and
the largest kernels from the profiler at N = D = 512).
Writes JSON (machine, versions, commit, every timing), a markdown table and a figure of time
against K. Example:

    .venv/bin/python bench/bench_step.py --device cpu --out-dir bench/results/local
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import centerloss.functional  # loads torch.ops.centerloss
from _common import calibrated_iters, centers_table, wall_times

ALPHA = 0.5  # center step of the paper rule, and SGD learning rate of the distmat recipe
SWEEP = {"N": (128, 512, 4096), "D": (2, 128, 512), "K": (10, 1000, 100_000, 1_000_000)}
QUICK = {"N": (512,), "D": (2, 512), "K": (10, 1000, 1_000_000)}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- the recipes (one step each)

def module_on(centers):
    """nn.CenterLoss in training mode on the benchmark's centers table (shared, not copied)."""
    with torch.device("meta"):  # no K x D allocation: the state is assigned below
        module = centerloss.CenterLoss(centers.shape[0], centers.shape[1], alpha=ALPHA)
    # strict: a buffer the module gains later fails here instead of staying on the meta device
    module.load_state_dict({"centers": centers, "skipped_updates": torch.zeros(
        (), dtype=torch.long, device=centers.device)}, strict=True, assign=True)
    assert module.centers.data_ptr() == centers.data_ptr()
    return module


def make_op_step(centers):
    """This project as users call it: nn.CenterLoss in training mode (loss with autograd, center
    step inside forward)."""
    module = module_on(centers)

    def step(x, y, _c):
        loss = module(x, y)
        (gx,) = torch.autograd.grad(loss, x)
        return loss, gx

    return step


def make_op_graph_step(centers, x, y):
    """make_op_step's step on features x, captured once in a CUDA graph after PyTorch's warm-up
    recipe (three steps on a side stream: they move the centers, before the reference step is
    taken). A step copies its labels into the graph's label tensor and replays the graph."""
    module = module_on(centers)
    static_y = y.clone()

    def eager():
        loss = module(x, static_y)
        (gx,) = torch.autograd.grad(loss, x)
        return loss, gx

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            eager()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss, static_gx = eager()

    def step(features, labels, _c):
        assert features is x, "the graph was captured on another features tensor"
        static_y.copy_(labels)
        graph.replay()
        return static_loss, static_gx

    step.module = module  # the graph writes to its skip counter: keep it alive
    return step


def make_op_raw_step(device):
    """The registered kernels the module runs, without module or autograd."""
    skipped = torch.zeros((), dtype=torch.long, device=device)
    one = torch.ones((), device=device)

    def step(x, y, c):
        loss, basis = torch.ops.centerloss._forward_step_(x.detach(), y, c, skipped, 0.0, 1,
                                                          ALPHA, 0)
        if device.type == "cpu":  # a unit loss gradient: autograd returns the basis itself
            return loss, basis
        return loss, torch.ops.centerloss.backward(one, basis)

    return step


def gather_loss(x, y, c):
    diff = x.float() - c.index_select(0, y)
    return 0.5 * diff.pow(2).sum() / x.shape[0], diff


def gather_update(diff, y, c):
    """Paper rule, sparse: c_j += alpha * sum_{y_i=j} (x_i - c_j) / (1 + n_j) for present j."""
    classes, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
    sums = torch.zeros(classes.shape[0], diff.shape[1], device=diff.device, dtype=diff.dtype)
    sums.index_add_(0, inverse, diff)
    c.index_add_(0, classes, sums * (ALPHA / (counts + 1).to(sums.dtype)).unsqueeze(1))


def make_gather_step(loss_fn, update_fn):
    def step(x, y, c):
        loss, diff = loss_fn(x, y, c)
        (gx,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            update_fn(diff.detach(), y, c)
        return loss, gx

    return step


def distmat_loss(x, y, centers):
    """KaiyangZhou/pytorch-center-loss, with the paper's 1/2 so its numbers match the op's."""
    xf = x.float()
    n, k = xf.shape[0], centers.shape[0]
    distmat = xf.pow(2).sum(1, keepdim=True).expand(n, k) + centers.pow(2).sum(
        1, keepdim=True
    ).expand(k, n).t()
    distmat = torch.addmm(distmat, xf, centers.t(), beta=1, alpha=-2)
    classes = torch.arange(k, device=x.device)
    mask = y.unsqueeze(1).expand(n, k).eq(classes.expand(n, k))
    dist = distmat * mask.float()
    return 0.5 * dist.clamp(min=1e-12, max=1e12).sum() / n


def make_distmat_step(centers_param):
    optimizer = torch.optim.SGD([centers_param], lr=ALPHA)

    def step(x, y, _c):
        loss = distmat_loss(x, y, centers_param)
        gx, gc = torch.autograd.grad(loss, (x, centers_param))
        centers_param.grad = gc
        optimizer.step()
        centers_param.grad = None
        return loss, gx

    return step


# ---------------------------------------------------------------- timing

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

    This 2-vCPU VM has bursts of outside load lasting 0.1-1 s that stall a 2-thread step by up
    to 3x; timing each recipe in its own 50 ms window let a burst land on one recipe only and
    skew its ratio to the others by up to 2x. Taking turns spreads every burst over all of them;
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


# ---------------------------------------------------------------- one configuration

def check_against_op(name, step, x, y, c_param, rows, expected, dtype):
    """Runs one step of a recipe and compares loss, feature gradient and moved rows."""
    c = c_param.detach()
    saved = c[rows].clone()
    loss, gx = step(x, y, c)
    moved = c[rows].clone()
    c[rows] = saved
    loss_ref, gx_ref, moved_ref = expected
    bf16 = dtype == torch.bfloat16
    tol = dict(rtol=2e-2, atol=1e-2 / x.shape[0]) if bf16 else dict(rtol=1e-4, atol=1e-6)
    try:
        torch.testing.assert_close(loss.float(), loss_ref.float(), rtol=1e-3, atol=1e-6)
        torch.testing.assert_close(gx.float(), gx_ref.float(), **tol)
        # bfloat16: the op's gradient-rule center gradient sums bfloat16 feature gradients
        torch.testing.assert_close(moved, moved_ref, rtol=1e-3 if bf16 else 1e-4,
                                   atol=2e-3 if bf16 else 1e-4)
    except AssertionError as err:
        raise SystemExit(f"correctness check failed: {name} differs from the op\n{err}") from err


def distmat_budget(n, k, d, device, args):
    """Why the distmat recipe is not run (memory or time), or None to run it."""
    mem = n * k * (6 * 4 + 1) + 2 * k * d * 4  # ~6 live N x K float32 tensors, mask, dense grad
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        limit = 0.6 * free
    else:
        limit = args.mem_limit_gb * 2**30
    if mem > limit:
        return f"skip: needs ~{mem / 2**30:.0f} GiB"
    if device.type == "cpu" and 6 * n * k * d > args.max_gflop * 1e9:
        return f"skip: {6 * n * k * d / 1e9:.0f} GFLOP/step"
    if device.type == "cpu" and n * k > args.max_nk:  # ~10 elementwise passes over N x K
        return f"skip: N*K = {n * k:.0e} (slow)"
    return None


def run_config(n, d, k, dtype_name, centers, device, args, compiled, graphs):
    dtype = DTYPES[dtype_name]
    gen = torch.Generator(device="cpu").manual_seed(n * 7919 + d * 31 + k + len(dtype_name))
    x = torch.randn(n, d, generator=gen).to(device=device, dtype=dtype).requires_grad_(True)
    y = torch.randint(0, k, (n,), generator=gen).to(device)
    # Timed steps cycle through several label batches, as training does: one batch would keep
    # the same center rows hot in the caches and the TLB, which flatters large tables.
    pool = [y] + [torch.randint(0, k, (n,), generator=gen).to(device)
                  for _ in range(args.label_batches - 1)]
    turn = itertools.count()

    def labels():
        return pool[next(turn) % len(pool)]

    c = centers.detach()
    rows = torch.unique(torch.cat(pool))  # every row a timed step may move
    feat_bytes = torch.empty((), dtype=dtype).element_size()
    moved_bytes = n * d * (2 * feat_bytes + 2 * centers.element_size())

    recipes = {"op": make_op_step(c), "op_raw": make_op_raw_step(device),
               "gather": make_gather_step(gather_loss, gather_update)}
    if compiled is not None:
        recipes["compile"] = compiled
    skipped = {}
    if graphs:  # a failed capture is recorded, not fatal: the other recipes are still timed
        try:
            recipes["op_graph"] = make_op_graph_step(c, x, y)
        except Exception as err:  # noqa: BLE001
            skipped["op_graph"] = f"capture failed: {type(err).__name__}"
            print(f"  op_graph at N={n} D={d} K={k} {dtype_name}: capture failed: {err}",
                  flush=True)
    why = distmat_budget(n, k, d, device, args)
    if why is None:
        recipes["distmat"] = make_distmat_step(centers)
    else:
        skipped["distmat"] = why

    # Reference: the op's own step, from the same centers (restored afterwards).
    saved = c[rows].clone()
    loss_ref, gx_ref = recipes["op"](x, y, c)
    expected_paper = (loss_ref.detach(), gx_ref, c[rows].clone())
    c[rows] = saved
    for name, step in list(recipes.items()):  # a recipe that fails its check leaves the dict
        if name == "op":
            continue
        expected = expected_paper
        if name == "distmat":  # gradient rule: c_j <- c_j - lr * dL/dc_j, dL/dc_j from the op
            (gc,) = torch.autograd.grad(centerloss.center_loss(x, y, centers), centers)
            expected = (loss_ref.detach(), gx_ref, saved - ALPHA * gc[rows])
            del gc
        try:
            check_against_op(name, step, x, y, centers, rows, expected, dtype)
        except torch.OutOfMemoryError:
            recipes.pop(name)
            skipped[name] = "skip: out of memory"
            torch.cuda.empty_cache()
        except SystemExit as err:
            if name != "op_graph":
                raise
            recipes.pop(name)  # reported, not fatal (tests/python/test_cuda_graphs.py tests it)
            skipped[name] = "failed its check"
            print(f"  {err}", flush=True)

    src = torch.empty(moved_bytes // 2, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    recipes["copy"] = lambda *_: dst.copy_(src)

    result = {"N": n, "D": d, "K": k, "dtype": dtype_name, "moved_bytes": moved_bytes,
              "seconds": {}, "iterations": {}, "kernel_seconds": {}, "skipped": skipped}
    heavy = {"distmat"}
    if device.type == "cpu":  # light recipes take turns (see time_interleaved)
        light = {name: (lambda step=step: step(x, labels(), c))
                 for name, step in recipes.items() if name not in heavy}
        timed = time_interleaved(light, args.target_s, args.rounds, args.min_iters,
                                 args.max_iters, args.warmup)
        c[rows] = saved  # undo the timed steps: the next recipe starts from the same centers
        for name, (secs, iters) in timed.items():
            result["seconds"][name] = secs
            result["iterations"][name] = iters
    for name, step in recipes.items():
        if name in result["seconds"]:
            continue
        try:
            secs, iters = time_steps(
                lambda: step(x, labels(), c), device, args.target_s,
                min_iters=3 if name in heavy else args.min_iters, max_iters=args.max_iters,
                warmup=1 if name in heavy else args.warmup)
        except torch.OutOfMemoryError:
            skipped[name] = "skip: out of memory"
            torch.cuda.empty_cache()
            c[rows] = saved
            continue
        result["seconds"][name] = secs
        result["iterations"][name] = iters
        if device.type == "cuda" and (n, d) in args.kernel_time_at:
            try:
                secs, parts = gpu_kernel_seconds(lambda: step(x, labels(), c), device)
                result["kernel_seconds"][name] = secs
                result.setdefault("kernel_profile", {})[name] = parts
                if name == "op":
                    print(f"  op at N={n} D={d} K={k}: {parts['device_ops_per_step']:.1f} device "
                          f"ops per step, {secs * 1e6:.1f} us of GPU time", flush=True)
                    for kernel, us in parts["top_us"]:
                        print(f"    {us:7.2f} us  {kernel}", flush=True)
            except Exception as err:  # the profiler is optional: record why it was not used
                result["kernel_seconds"][name] = None
                result.setdefault("notes", []).append(f"profiler failed for {name}: {err}")
        c[rows] = saved  # undo the timed (and profiled) steps: the next recipe starts the same
    if "distmat" in recipes:
        centers.grad = None
    return result


# ---------------------------------------------------------------- environment and reports

def git_commit():
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # read-only: never refresh the index
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, env=env, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, env=env, check=True, capture_output=True,
                               text=True).stdout.strip() != ""
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device):
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(), "platform": platform.platform(), "cpu": cpu_model(),
        "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "commit": git_commit(), "device": str(device),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "load_average_at_start": os.getloadavg(),
        "centerloss_cpu_isa": torch.ops.centerloss._cpu_isa(),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(device).total_memory
                                      / 2**30, 1)
    return env


def fmt_time(seconds):
    if seconds is None:
        return "n/a"
    us = seconds * 1e6
    if us < 1000:
        return f"{us:.1f} us" if us < 100 else f"{us:.0f} us"
    return f"{us / 1000:.2f} ms" if us < 100_000 else f"{us / 1e6:.2f} s"


def markdown_table(results, names):
    head = ["N", "D", "K", "dtype"] + names + ["op / copy", "gather / op"]
    if "compile" in names:
        head.append("compile / op")
    head.append("distmat / op")
    if "op_graph" in names:
        head += ["gather / op_graph"] + (["compile / op_graph"] if "compile" in names else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        s = r["seconds"]
        cells = [str(r["N"]), str(r["D"]), f"{r['K']:.0e}" if r["K"] >= 10_000 else str(r["K"]),
                 r["dtype"]]
        for name in names:
            cells.append(fmt_time(s[name]) if name in s else r["skipped"].get(name, "n/a"))

        def ratio(a, b):
            return f"{s[a] / s[b]:.2f}x" if a in s and b in s else "-"
        cells += [ratio("op", "copy"), ratio("gather", "op")]
        if "compile" in names:
            cells.append(ratio("compile", "op"))
        cells.append(ratio("distmat", "op"))
        if "op_graph" in names:
            cells.append(ratio("gather", "op_graph"))
            if "compile" in names:
                cells.append(ratio("compile", "op_graph"))
        lines.append("| " + " | ".join(cells) + " |")
    kernel_rows = [r for r in results if r["kernel_seconds"]]
    if kernel_rows:
        lines += ["", "GPU kernel time per step (profiler: sum of kernel durations):", "",
                  "| N | D | K | dtype | " + " | ".join(names) + " |",
                  "|" + "---|" * (4 + len(names))]
        for r in kernel_rows:
            ks = r["kernel_seconds"]
            lines.append(f"| {r['N']} | {r['D']} | {r['K']} | {r['dtype']} | "
                         + " | ".join(fmt_time(ks.get(name)) for name in names) + " |")
    return "\n".join(lines) + "\n"


def plot(results, names, path, env):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = sorted({r["N"] for r in results})
    ds = sorted({r["D"] for r in results})
    fig, axes = plt.subplots(len(ns), len(ds), figsize=(4.2 * len(ds), 3.4 * len(ns)),
                             squeeze=False, sharex=True)
    colors = {"op": "C0", "op_raw": "C9", "op_graph": "C4", "gather": "C1", "compile": "C2", "distmat": "C3",
              "copy": "k"}
    styles = {"float32": "-", "bfloat16": "--"}
    for i, n in enumerate(ns):
        for j, d in enumerate(ds):
            ax = axes[i][j]
            for name in names:
                for dt, style in styles.items():
                    pts = [(r["K"], r["seconds"][name]) for r in results
                           if r["N"] == n and r["D"] == d and r["dtype"] == dt
                           and name in r["seconds"]]
                    if pts:
                        ks, ts = zip(*sorted(pts))
                        ax.plot(ks, [t * 1e6 for t in ts], style, marker="o", ms=3,
                                color=colors.get(name, "C7"),
                                label=f"{name} {dt}" if (i, j) == (0, 0) else None)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"N={n}, D={d}", fontsize=9)
            ax.grid(True, which="both", alpha=0.3)
            if j == 0:
                ax.set_ylabel("time per step (us)")
            if i == len(ns) - 1:
                ax.set_xlabel("K (classes)")
    where = env.get("gpu") or f"{env['cpu']}, {env['threads']} threads"
    fig.suptitle(f"Center loss, one training step ({where}; solid float32, dashed bfloat16)",
                 fontsize=10)
    fig.legend(loc="lower center", ncol=6, fontsize=8)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- main

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--quick", action="store_true",
                   help=f"small sweep {QUICK}, float32 only, shorter timing")
    p.add_argument("--dtypes", nargs="+", choices=sorted(DTYPES), default=None)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU intra-op threads")
    p.add_argument("--target-s", type=float, default=None,
                   help="timed seconds per recipe and configuration (default 0.05, quick 0.03)")
    p.add_argument("--min-iters", type=int, default=10)
    p.add_argument("--max-iters", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--rounds", type=int, default=10,
                   help="CPU: turns the light recipes take (each gets 1/ROUNDS of its steps per "
                        "turn), so that outside load hits all of them alike")
    p.add_argument("--label-batches", type=int, default=8,
                   help="distinct label batches the timed steps cycle through (1: the same "
                        "batch every step, as before 2026-11-28 23:00 UTC)")
    p.add_argument("--mem-limit-gb", type=float, default=4.0,
                   help="CPU: skip the distmat recipe above this estimated memory")
    p.add_argument("--max-gflop", type=float, default=20.0,
                   help="CPU: skip the distmat recipe above this many GFLOP per step")
    p.add_argument("--max-nk", type=float, default=1e7,
                   help="CPU: skip the distmat recipe above this N*K (its elementwise passes)")
    p.add_argument("--compile", choices=("auto", "on", "off"), default="auto",
                   help="time torch.compile of the gather recipe (auto: on CUDA only)")
    p.add_argument("--graph", choices=("auto", "on", "off"), default="auto",
                   help="time the op step captured in a CUDA graph (op_graph; auto: on CUDA)")
    p.add_argument("--n", type=int, nargs="+", help="override the sweep's batch sizes")
    p.add_argument("--d", type=int, nargs="+", help="override the sweep's feature dimensions")
    p.add_argument("--k", type=int, nargs="+", help="override the sweep's class counts")
    p.add_argument("--time-budget-s", type=float, default=None,
                   help="stop sweeping after this many seconds (default: CUDA 170, CPU none); "
                        "N = D = 512 is measured first")
    p.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results" / "local")
    p.add_argument("--figure", type=Path, default=None,
                   help="figure path (default OUT_DIR/bench_step_DEVICE.png)")
    args = p.parse_args(argv)
    if args.target_s is None:
        args.target_s = 0.03 if args.quick else 0.05
    if args.time_budget_s is None and args.device == "cuda":
        args.time_budget_s = 170.0
    if args.dtypes is None:
        args.dtypes = ["float32"] if args.quick else list(DTYPES)
    args.kernel_time_at = {(512, 512)}
    return args


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_step.py: --device cuda but torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    sweep = dict(QUICK if args.quick else SWEEP)
    for key in ("N", "D", "K"):
        if getattr(args, key.lower()):
            sweep[key] = tuple(getattr(args, key.lower()))
    env = environment(device)
    compiled = None
    if args.compile == "on" or (args.compile == "auto" and device.type == "cuda"):
        compiled = make_gather_step(torch.compile(gather_loss, dynamic=True),
                                    torch.compile(gather_update, dynamic=True))
    graphs = device.type == "cuda" and args.graph != "off"
    if args.graph == "on" and device.type != "cuda":
        raise SystemExit("bench_step.py: --graph on needs --device cuda (CUDA graphs)")
    names = (["op", "op_raw"] + (["op_graph"] if graphs else []) + ["gather"]
             + (["compile"] if compiled else []) + ["distmat", "copy"])

    # N = D = 512 first (the GPU target's shape), then the rest; one centers table per (K, D).
    configs = sorted(((k, d, n, dt) for k in sweep["K"] for d in sweep["D"] for n in sweep["N"]
                      for dt in args.dtypes), key=lambda c: ((c[1], c[2]) != (512, 512), c[:2]))
    results = []
    start = time.perf_counter()
    centers = None
    stopped = None
    for idx, (k, d, n, dt) in enumerate(configs):
        if args.time_budget_s is not None and time.perf_counter() - start > args.time_budget_s:
            stopped = f"time budget of {args.time_budget_s:.0f} s spent: {len(configs) - idx} of " \
                      f"{len(configs)} configurations not measured"
            print(stopped, flush=True)
            break
        if centers is None or tuple(centers.shape) != (k, d):
            centers = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
            gen = torch.Generator(device=device).manual_seed(k * 13 + d)
            centers = centers_table(k, d, device, gen).requires_grad_(True)  # every recipe's
        results.append(run_config(n, d, k, dt, centers, device, args, compiled, graphs))
        elapsed = time.perf_counter() - start
        eta = elapsed / (idx + 1) * (len(configs) - idx - 1)
        r = results[-1]
        print(f"[{idx + 1}/{len(configs)}] N={n} D={d} K={k} {dt}: op {fmt_time(r['seconds']['op'])}"
              f", copy {fmt_time(r['seconds']['copy'])}  ({elapsed:.0f} s elapsed, "
              f"{(idx + 1) / elapsed:.2f} configs/s, ETA {eta:.0f} s)", flush=True)

    results.sort(key=lambda r: (r["dtype"] != "float32", r["N"], r["D"], r["K"]))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bench_step_{device.type}"
    table = markdown_table(results, names)
    report = {"environment": env, "alpha": ALPHA, "results": results, "stopped": stopped,
              "args": {k: str(v) for k, v in vars(args).items()}}
    (args.out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    env["load_average_at_end"] = os.getloadavg()
    header = (f"Measured {env['date']} on {env.get('gpu') or env['cpu']} "
              f"({env['threads']} CPU threads, centerloss CPU kernels: "
              f"{env['centerloss_cpu_isa']}; load average {env['load_average_at_start'][0]:.1f} "
              f"at start, {env['load_average_at_end'][0]:.1f} at end), torch {env['torch']}, "
              f"commit {env['commit']}.\n"
              f"Command: `{env['command']}`\n\n" + (f"Note: {stopped}.\n\n" if stopped else ""))
    (args.out_dir / f"{stem}.md").write_text(header + table)
    figure = args.figure or args.out_dir / f"{stem}.png"
    plot(results, names, figure, env)
    print("\n" + header + table)
    print(f"wrote {args.out_dir / stem}.json, .md and {figure}")


if __name__ == "__main__":
    main()
