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
import itertools
import json
import os
import time
from pathlib import Path

import torch

import centerloss.functional  # loads torch.ops.centerloss
from _common import centers_table
from step_recipes import (ALPHA, gather_loss, gather_update, make_distmat_step, make_gather_step,
                          make_op_graph_step, make_op_raw_step, make_op_step)
from step_report import REPO, environment, fmt_time, markdown_table, plot
from step_timing import gpu_kernel_seconds, time_interleaved, time_steps

SWEEP = {"N": (128, 512, 4096), "D": (2, 128, 512), "K": (10, 1000, 100_000, 1_000_000)}
QUICK = {"N": (512,), "D": (2, 512), "K": (10, 1000, 1_000_000)}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


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
            recipes.pop(name)  # reported, not fatal (tests/python/test_streams_and_graphs.py tests it)
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
                        "batch every step)")
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
