#!/usr/bin/env python3
"""Open-set experiment: softmax alone against softmax + center loss on held-out classes.

For every feature dimension D, lambda and seed it trains a run with the `centerloss` CLI on
the training classes only (default: Fashion-MNIST 0-6), evaluates it with `centerloss openset`
on the held-out classes (default 7-9) and finally writes the results table and figures
(make_table.py). Runs whose openset.json already exists are skipped, so an interrupted
experiment continues where it stopped.

    python scripts/experiments/openset_experiment.py --cli build/trainer/centerloss \
        --out runs/openset --dims 2,64 --lambdas 0,0.001,0.01,0.1 --seeds 1,2,3 --epochs 6

With --pairs the data are image folders (scripts/make_font_identities.py writes them): the runs
train on every class of --data, report closed-set accuracy on --test-data, and are evaluated on
the LFW pairs file over --openset-data (identities no run saw; identities_experiment.py).

Each run uses --threads (default 2) LibTorch threads: on a 2-core machine run one at a time.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))


def floats(text):
    return [float(x) for x in text.split(",") if x]


def ints(text):
    return [int(x) for x in text.split(",") if x]


def run_name(dim, lam, seed):
    return "D%d_lambda%g_seed%d" % (dim, lam, seed)


def run(cmd, log_path):
    """Runs one CLI command, its output into a log file; raises with the log's tail on failure."""
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    if rc != 0:
        with open(log_path) as log:
            tail = "".join(log.readlines()[-20:])
        raise RuntimeError("command failed (exit %d): %s\n%s" % (rc, " ".join(cmd), tail))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cli", default="build/trainer/centerloss", help="the centerloss executable")
    p.add_argument("--out", default="runs/openset", help="folder of the runs, table and figures")
    p.add_argument("--data", default="", help="data directory (default: the CLI's, Fashion-MNIST)")
    p.add_argument("--holdout", default="7,8,9", help="classes held out of training (IDX data)")
    p.add_argument("--test-data", default="", help="image folders: the closed-set test split")
    p.add_argument("--openset-data", default="", help="image folders: the held-out identities")
    p.add_argument("--pairs", default="", help="LFW pairs file over --openset-data (image folders)")
    p.add_argument("--dims", default="2,64", help="feature dimensions")
    p.add_argument("--lambdas", default="0,0.001,0.01,0.1", help="center loss weights (0: softmax)")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--arch", default="small", help="small | lenets++")
    p.add_argument("--lr-step", type=int, default=0, help="lr x0.1 every N epochs (0: never)")
    p.add_argument("--train-limit", type=int, default=0, help="first N training samples (0: all)")
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-args", default="", help="extra `centerloss train` options, quoted")
    p.add_argument("--openset-args", default="", help="extra `centerloss openset` options, quoted")
    p.add_argument("--figures", default="", help="also copy the figures here with this prefix, "
                   "e.g. docs/figures/openset_")
    a = p.parse_args()

    if bool(a.pairs) != bool(a.openset_data):
        p.error("--pairs and --openset-data go together (image folders)")
    if not os.access(a.cli, os.X_OK):
        sys.exit("no executable %s: build first (make build)" % a.cli)
    os.makedirs(a.out, exist_ok=True)
    grid = [(d, lam, s) for d in ints(a.dims) for lam in floats(a.lambdas) for s in ints(a.seeds)]
    with open(os.path.join(a.out, "experiment.json"), "w") as f:
        json.dump({"argv": sys.argv, "args": vars(a), "runs": [run_name(*g) for g in grid]}, f,
                  indent=2)

    todo = [g for g in grid
            if not os.path.exists(os.path.join(a.out, run_name(*g), "openset.json"))]
    print("%d runs, %d already done; run logs in %s/<run>/log.txt" %
          (len(grid), len(grid) - len(todo), a.out), file=sys.stderr)
    start = time.time()
    bar = tqdm(todo, unit="run", dynamic_ncols=True)
    for dim, lam, seed in bar:
        name = run_name(dim, lam, seed)
        bar.set_postfix_str(name)
        rdir = os.path.join(a.out, name)
        os.makedirs(rdir, exist_ok=True)
        log = os.path.join(rdir, "log.txt")
        run_start = time.time()
        data = ["--data", a.data] if a.data else []
        if os.path.exists(os.path.join(rdir, "checkpoint.pt")):
            # An interrupted run continues from its last epoch; its checkpoint holds the rest
            # of the configuration (`train --resume` refuses options that would change it).
            train = [a.cli, "train", "--out", rdir, "--resume", "--epochs", str(a.epochs),
                     "--threads", str(a.threads), "--no-progress"]
        else:
            split = (["--test-data", a.test_data] if a.test_data else []) if a.pairs else \
                ["--holdout", a.holdout, "--train-limit", str(a.train_limit)]
            train = [a.cli, "train", "--out", rdir] + split + ["--arch", a.arch,
                     "--feature-dim", str(dim), "--lambda", repr(lam), "--alpha", repr(a.alpha),
                     "--seed", str(seed), "--epochs", str(a.epochs), "--threads", str(a.threads),
                     "--lr-step", str(a.lr_step), "--no-progress"] + data + a.train_args.split()
        run(train, log)
        heldout = ["--data", a.openset_data, "--pairs", a.pairs] if a.pairs else ["--holdout", a.holdout] + data
        run([a.cli, "openset", "--run", rdir, "--threads", str(a.threads), "--no-plot"] + heldout
            + a.openset_args.split(), log)
        with open(os.path.join(rdir, "seconds.txt"), "w") as f:  # the table's time column
            f.write("%.1f\n" % (time.time() - run_start))
    bar.close()
    print("training and evaluation took %.0f s" % (time.time() - start), file=sys.stderr)
    table = [sys.executable, os.path.join(HERE, "make_table.py"), a.out]
    if a.figures:
        table += ["--figures", a.figures]
    subprocess.check_call(table)


if __name__ == "__main__":
    main()
