#!/usr/bin/env python3
"""Times each CPU kernel of the op on its own: forward, backward, update (medians, microseconds).

The figures in docs/benchmarks.md that compare instruction sets, thread counts and huge pages
come from this script. Every variant runs in its own process, because the instruction set
(CENTERLOSS_CPU_ISA) and the one-pass setting (CENTERLOSS_CPU_ONE_PASS) are read once per
process:

    .venv/bin/python bench/bench_kernels.py                       # the default sweep below
    .venv/bin/python bench/bench_kernels.py --n 4096 --d 512 --k 1000000 --huge-pages both
    .venv/bin/python bench/bench_kernels.py --n 512 4096 --d 128 --one-pass both  # the choice
    .venv/bin/python bench/bench_kernels.py --isa default --reuse-saved-basis both  # the switch

Prints one line per (variant, N, D, K): forward, backward and update times, their sum, then
forward and update timed together as two ops and as the one op the module runs (_forward_step_),
then that op with autograd's backward for loss gradients 1 and 0.01 (graph freed, retained);
writes the same rows as JSON (--json, default bench/results/bench_kernels.json).
"""
from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKER = "--worker"
REPO = Path(__file__).resolve().parent.parent


def time_alternating_us(fns: dict, make_input, iters: int, warmup: int = 10) -> dict:
    """Medians of each fn(make_input()), the fns called in turn: they see the same machine state
    (on a shared VM separate loops drift from one minute to the next). Each call takes the next
    label batch, as training does: with one batch per round the first fn would pay the cache
    misses on its center rows and the others would find them cached."""
    for _ in range(warmup):
        for fn in fns.values():
            fn(make_input())
    times = {name: [] for name in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            v = make_input()
            t0 = time.perf_counter()
            fn(v)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) * 1e6 for name, t in times.items()}


def worker(args) -> None:
    import torch

    import centerloss.functional  # noqa: F401  (loads the ops)
    from _common import centers_table, median_seconds

    def time_us(fn):
        return median_seconds(fn, args.iters) * 1e6

    torch.set_num_threads(args.threads)
    ops = torch.ops.centerloss
    rows = []
    for n in args.n:
        for d in args.d:
            for k in args.k:
                gen = torch.Generator().manual_seed(n * 7919 + d * 31 + k)
                x = torch.randn(n, d, generator=gen).to(getattr(torch, args.dtype))
                # Training sees other labels every step: cycle through a pool of label batches
                # (one batch would keep the same center rows hot in the caches and the TLB).
                pool = [torch.randint(0, k, (n,), generator=gen) for _ in range(args.label_batches)]
                turn = iter(range(1 << 62))
                next_y = lambda: pool[next(turn) % len(pool)]  # noqa: E731
                y = pool[0]
                if args.huge_pages == "on":  # as CenterLoss allocates its table
                    c = centers_table(k, d, "cpu", gen)
                else:
                    c = torch.empty(k, d).normal_(generator=gen)
                one = torch.ones(())
                skipped = torch.zeros((), dtype=torch.long)
                _, basis = ops.forward(x, y, c, 0.0, 1)

                def two_ops(labels):  # what the module ran before _forward_step_
                    ops.forward(x, labels, c, 0.0, 1)
                    ops.update_centers_(c, x, labels, 0.5, 0)

                def one_op(labels):
                    ops._forward_step_(x, labels, c, skipped, 0.0, 1, 0.5, 0)

                parts = {
                    "forward": time_us(lambda: ops.forward(x, next_y(), c, 0.0, 1)),
                    "backward": time_us(lambda: ops.backward(one, basis)),
                    "update": time_us(lambda: ops.update_centers_(c, x, next_y(), 0.5, 0)),
                }
                # The two ops against the one op the module runs now (one pass where that
                # pays), timed alternately.
                parts.update(time_alternating_us({"two_ops": two_ops, "forward_step": one_op},
                                                 next_y, args.iters))
                # The module's step with its backward (_center_loss_step_ + autograd.grad):
                # loss gradient 1 (the saved basis is the gradient), 0.01 with the graph freed
                # (scaled in place) and 0.01 with the graph retained (the backward op writes a
                # new tensor).
                xg = x.clone().requires_grad_(True)
                unit, lam = torch.ones(()), torch.full((), 0.01)

                def with_grad(g, retain):
                    def step(labels):
                        loss = ops._center_loss_step_(xg, labels, c, skipped, 0.0, 1, 0.5, 0)
                        return torch.autograd.grad(loss, xg, grad_outputs=g, retain_graph=retain)
                    return step

                parts.update(time_alternating_us(
                    {"grad_unit": with_grad(unit, False), "grad_lambda": with_grad(lam, False),
                     "grad_lambda_retained": with_grad(lam, True)}, next_y, args.iters))
                rows.append({"N": n, "D": d, "K": k, "dtype": args.dtype, "isa": ops._cpu_isa(),
                             "one_pass": ops._cpu_one_pass(),
                             "threads": args.threads, "huge_pages": args.huge_pages, **parts})
    print(json.dumps(rows))


TIMED = ("forward", "backward", "update", "two_ops", "forward_step", "grad_unit", "grad_lambda",
         "grad_lambda_retained")


def run_worker(args, isa: str, threads: int, huge: str, one_pass: str, reuse: str) -> list:
    """One worker process for one variant; its rows (medians in us)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), CENTERLOSS_CPU_ONE_PASS=one_pass,
               CENTERLOSS_REUSE_SAVED_BASIS="1" if reuse == "on" else "0")
    env.pop("CENTERLOSS_CPU_ISA", None)
    if isa == "baseline":
        env["CENTERLOSS_CPU_ISA"] = "baseline"
    cmd = [sys.executable, __file__, WORKER, "--threads", str(threads), "--huge-pages", huge,
           "--iters", str(args.iters), "--label-batches", str(args.label_batches),
           "--dtype", args.dtype,
           "--n", *map(str, args.n), "--d", *map(str, args.d), "--k", *map(str, args.k)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"bench_kernels.py worker failed ({isa}, {threads} threads, huge pages "
                         f"{huge}, one pass {one_pass}):\n{out.stderr}")
    return [dict(row, reuse_saved_basis=reuse)
            for row in json.loads(out.stdout.strip().splitlines()[-1])]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[512, 4096])
    p.add_argument("--d", type=int, nargs="+", default=[2, 512])
    p.add_argument("--k", type=int, nargs="+", default=[1000])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--isa", choices=["default", "baseline", "both"], default="both")
    p.add_argument("--huge-pages", choices=["on", "off", "both"], default="on")
    p.add_argument("--one-pass", choices=["auto", "never", "always", "both"], default="auto",
                   help="CENTERLOSS_CPU_ONE_PASS for the one op (both: never and always, the "
                        "two paths the default chooses between)")
    p.add_argument("--reuse-saved-basis", choices=["on", "off", "both"], default="on",
                   help="CENTERLOSS_REUSE_SAVED_BASIS: whether autograd gets the forward's saved "
                        "basis as the features' gradient (on) or a new tensor (off)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                   help="the features' dtype (centers are float32)")
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--repeat", type=int, default=1,
                   help="run every variant's process this many times, in turn; report the "
                        "median over the repeats")
    p.add_argument("--label-batches", type=int, default=16,
                   help="distinct label batches cycled through (1: the same rows every call)")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "bench_kernels.json",
                   help="where every row goes, with date, commit and command")
    p.add_argument(WORKER, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        args.threads = args.threads[0]
        worker(args)
        return 0

    isas = ["default", "baseline"] if args.isa == "both" else [args.isa]
    pages = ["on", "off"] if args.huge_pages == "both" else [args.huge_pages]
    passes = ["never", "always"] if args.one_pass == "both" else [args.one_pass]
    reuses = ["on", "off"] if args.reuse_saved_basis == "both" else [args.reuse_saved_basis]
    variants = list(itertools.product(isas, args.threads, pages, passes, reuses))
    # Every repeat runs each variant's process once, in turn, so that the VM's slow minutes fall
    # on all of them; each figure is the median over the repeats of the processes' medians.
    runs = {}
    for repeat in range(args.repeat):
        for isa, threads, huge, one_pass, reuse in variants:
            for r in run_worker(args, isa, threads, huge, one_pass, reuse):
                key = (isa, threads, huge, one_pass, reuse, r["N"], r["D"], r["K"])
                runs.setdefault(key, []).append(r)
        if args.repeat > 1:
            print(f"repeat {repeat + 1}/{args.repeat} done", flush=True)
    print(f"{'isa':>8} {'thr':>3} {'huge':>4} {'pass':>6} {'reuse':>5} {'N':>5} {'D':>4} {'K':>8} "
          f"{'forward':>9} {'backward':>9} {'update':>9} {'sum':>9} {'two ops':>9} "
          f"{'one op':>9} {'grad 1':>9} {'grad .01':>9} {'retained':>9}  (us, medians; two ops ="
          f" forward then update in one loop; one op = _forward_step_, the module's forward and"
          f" update; grad: that op with autograd.grad for a loss gradient of 1, of 0.01, and of"
          f" 0.01 with retain_graph)")
    rows = []
    for (isa, threads, huge, one_pass, reuse, *_), repeats in runs.items():
        r = dict(repeats[0], repeats=len(repeats))  # one_pass: as the worker read it
        for key in TIMED:
            r[key] = statistics.median(x[key] for x in repeats)
        rows.append(r)
        total = r["forward"] + r["backward"] + r["update"]
        print(f"{r['isa']:>8} {r['threads']:>3} {r['huge_pages']:>4} {one_pass:>6} {reuse:>5} "
              f"{r['N']:>5} {r['D']:>4} {r['K']:>8} {r['forward']:9.1f} "
              f"{r['backward']:9.1f} {r['update']:9.1f} {total:9.1f} "
              f"{r['two_ops']:9.1f} {r['forward_step']:9.1f} {r['grad_unit']:9.1f} "
              f"{r['grad_lambda']:9.1f} {r['grad_lambda_retained']:9.1f}",
              flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip() or None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit, "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "unit": "microseconds, median per call", "rows": rows}, indent=1) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
