#!/usr/bin/env python3
"""Open-set experiment: softmax alone against softmax + center loss on held-out classes.

For every feature dimension D, lambda and seed it trains a run with the `centerloss` CLI on
the training classes only (default: Fashion-MNIST 0-6), evaluates it with `centerloss openset`
on the held-out classes (default 7-9) and finally writes the results table and figures
(make_table.py).

    python scripts/experiments/openset_experiment.py --cli build/trainer/centerloss \\
        --out runs/openset --dims 2,64 --lambdas 0,0.001,0.01,0.1 --seeds 1,2,3 --epochs 6

A folder that already holds an experiment is continued only with --resume (finished runs are
skipped, interrupted ones resume from their last checkpoint; the options that shape the
results must be the same, the grid may grow) or replaced with --overwrite; `--resume auto` also
starts a new one. A run whose loss turns non-finite is recorded as diverged (its diverged.json)
and the experiment goes on to the next. SIGINT/SIGTERM stop the current run at a checkpoint.

With --pairs the data are image folders (scripts/make_font_identities.py writes them): the runs
train on every class of --data, report closed-set accuracy on --test-data, and are evaluated on
the LFW pairs file over --openset-data (identities no run saw; identities_experiment.py).

--also-similarity euclidean scores every finished run a second way (RUN/openset_euclidean.json,
written once; table_openset_euclidean.md and its figures in --out), also runs finished before.

Each run uses --threads (default 2) LibTorch threads: on a 2-core machine run one at a time.
"""
import argparse
import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from tqdm import tqdm

HERE = os.path.dirname(os.path.abspath(__file__))
DIVERGED_EXIT = 3  # `centerloss train` exit code for a non-finite loss (trainer.h)
# Options that shape every run's results: a continued experiment must keep them. (The grid,
# --dims/--lambdas/--seeds, may grow; --cli, --threads and --figures may change.)
RESULT_OPTIONS = ("holdout", "epochs", "arch", "lr_step", "train_limit", "alpha", "train_args",
                  "dim_train_args", "openset_args", "data", "test_data", "openset_data", "pairs")
# What the driver writes into --out besides the run folders.
OUTPUT_FILES = ("experiment.json", "table.md", "roc.png", "lambda.png", "curves.png")
# ... and per --also-similarity S: make_table.py's names for the metrics file openset_S.json.
SCORED_FILES = ("table_openset_%s.md", "roc_openset_%s.png", "lambda_openset_%s.png")
SIMILARITIES = ("cosine", "euclidean")  # `centerloss openset --similarity`


def floats(text):
    return [float(x) for x in text.split(",") if x]


def ints(text):
    return [int(x) for x in text.split(",") if x]


def dim_train_args(entries):
    """--dim-train-args D:OPTIONS entries as {D: [options]}."""
    by_dim = {}
    for entry in entries or []:
        dim, sep, options = entry.partition(":")
        if not sep or not dim.strip().isdigit():
            raise ValueError("--dim-train-args takes D:OPTIONS, e.g. '2:--classes 0,1,2', got %r"
                             % entry)
        by_dim.setdefault(int(dim), []).extend(options.split())
    return by_dim


def with_overrides(command, extra):
    """`command` + `extra`, where an option of `extra` replaces the same option (and its value)
    of `command`: CLI11 refuses an option given twice."""
    given = {t for t in extra if t.startswith("--")}
    kept, skip = [], False
    for i, token in enumerate(command):
        if skip:
            skip = False
        elif token in given:
            skip = i + 1 < len(command) and not command[i + 1].startswith("--")
        else:
            kept.append(token)
    return kept + extra


def run_name(dim, lam, seed):
    return "D%d_lambda%g_seed%d" % (dim, lam, seed)


class Stopped(Exception):
    """The current command was stopped by a signal; the driver stops too."""

    def __init__(self, code):
        super().__init__("stopped by a signal (exit %d)" % code)
        self.code = code


_child = None  # the command now running, for the signal handlers
_stop_signal = None  # set by a SIGINT/SIGTERM; run() stops the driver once its command ends


def _forward_and_stop(signum, _frame):
    # SIGTERM, not the signal itself: after a Ctrl-C the trainer has already used its SIGINT
    # handler, and its SIGTERM one makes it write a checkpoint too. The handler interrupts
    # run()'s wait, which holds Popen's wait lock: waiting (or polling) here would deadlock, so it
    # only signals and records the stop; run() raises Stopped once its command has ended.
    global _stop_signal
    _stop_signal = signum
    if _child is None:
        raise Stopped(128 + signum)
    os.kill(_child.pid, signal.SIGTERM)


def _die_with_parent():
    """In the child: SIGTERM when the driver dies, even by SIGKILL (Linux prctl)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


def run(cmd, log_path):
    """Runs one CLI command, its output into a log file; returns its exit code. A signal
    stops it (Stopped)."""
    global _child
    with open(log_path, "a") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        _child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                  preexec_fn=_die_with_parent)
        try:
            rc = _child.wait()
        finally:
            _child = None
    if rc in (128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM):
        raise Stopped(rc if rc > 0 else 128 - rc)
    if _stop_signal is not None:  # the signal came as the command was ending: stop all the same
        raise Stopped(128 + _stop_signal)
    return rc


def check(rc, cmd, log_path):
    if rc != 0:
        with open(log_path) as log:
            tail = "".join(log.readlines()[-20:])
        raise RuntimeError("command failed (exit %d): %s\n%s" % (rc, " ".join(cmd), tail))


def finished(rdir, metrics="openset.json"):
    """Whether the run's openset.json (or another scoring's metrics) is complete (it is written
    atomically; a run of an older driver may have left a cut one)."""
    try:
        with open(os.path.join(rdir, metrics)) as f:
            return "open_set" in json.load(f)
    except (OSError, ValueError):
        return False


def lock_folder(out):
    """An exclusive lock on OUT/.lock for the driver's lifetime: two drivers must not write one
    folder (the trainer locks each run folder the same way)."""
    handle = open(os.path.join(out, ".lock"), "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        sys.exit("the experiment folder '%s' is in use by another process%s: wait for it to "
                 "finish, or choose another --out" % (out, " (pid %s)" % holder if holder else ""))
    handle.seek(0)
    handle.truncate()
    handle.write("%d\n" % os.getpid())
    handle.flush()
    return handle


def prepare_folder(a, grid):
    """Applies --resume/--overwrite to what --out already holds (see the module docstring)."""
    stored_path = os.path.join(a.out, "experiment.json")
    stored = None
    if os.path.exists(stored_path):
        with open(stored_path) as f:
            stored = json.load(f)
    runs = set(run_name(*g) for g in grid) | set((stored or {}).get("runs", []))
    present = sorted(r for r in runs if os.path.isdir(os.path.join(a.out, r)))
    holds = stored is not None or present
    if a.overwrite:
        for name in present:
            shutil.rmtree(os.path.join(a.out, name))
        scored = [pattern % sim for pattern in SCORED_FILES for sim in SIMILARITIES]
        for name in OUTPUT_FILES + tuple(scored):
            if os.path.exists(os.path.join(a.out, name)):
                os.remove(os.path.join(a.out, name))
        return
    if a.resume is None:
        if holds:
            sys.exit("'%s' holds an open-set experiment (%s). Add --resume to continue it, "
                     "--overwrite to delete its results and start again, or choose another "
                     "--out" % (a.out, ", ".join((["experiment.json"] if stored else []) +
                                                 [r + "/" for r in present[:4]] +
                                                 (["..."] if len(present) > 4 else []))))
        return
    if not holds:
        if a.resume != "auto":
            sys.exit("--resume: '%s' holds no experiment to continue; use --resume auto "
                     "(continue or start) or drop --resume" % a.out)
        return
    if stored is not None:
        changes = ["--%s %r (now %r)" % (k.replace("_", "-"), stored["args"].get(k), getattr(a, k))
                   for k in RESULT_OPTIONS if stored["args"].get(k) != getattr(a, k)]
        if changes:
            sys.exit("'%s' holds an experiment run with other options: %s. A continued "
                     "experiment keeps them (the grid may grow): repeat its values, use another "
                     "--out, or --overwrite" % (a.out, ", ".join(changes)))


def write_json_atomic(path, value):
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def score(out, grid, evaluate, similarity):
    """Writes RUN/openset_<similarity>.json for every finished run of the grid that has none:
    the same evaluation scored another way (a finished file is kept)."""
    name = "openset_%s.json" % similarity
    todo = [os.path.join(out, run_name(*g)) for g in grid]
    todo = [r for r in todo if finished(r) and not finished(r, name)]
    for rdir in tqdm(todo, unit="run", desc="--similarity " + similarity, dynamic_ncols=True):
        cmd = with_overrides(evaluate, ["--similarity", similarity, "--out",
                                        os.path.join(rdir, name), "--run", rdir])
        check(run(cmd, os.path.join(rdir, "log.txt")), cmd, os.path.join(rdir, "log.txt"))


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
    p.add_argument("--dim-train-args", action="append", metavar="D:OPTIONS",
                   help="extra `centerloss train` options for the runs of feature dimension D "
                   "only, e.g. '2:--classes 0,8,16' (repeatable); they replace the same options "
                   "of the others, e.g. '2:--epochs 30 --data DIR'")
    p.add_argument("--openset-args", default="", help="extra `centerloss openset` options, quoted")
    p.add_argument("--also-similarity", action="append", default=[], choices=SIMILARITIES,
                   help="also score every finished run with this `centerloss openset "
                   "--similarity` (RUN/openset_S.json, table_openset_S.md; repeatable)")
    p.add_argument("--figures", default="", help="also copy the figures here with this prefix, "
                   "e.g. docs/figures/openset_")
    p.add_argument("--resume", nargs="?", const="yes", choices=["yes", "auto"], default=None,
                   help="continue the experiment in --out; 'auto': continue or start")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the experiment in --out and start again")
    a = p.parse_args()
    if a.resume and a.overwrite:
        p.error("--resume and --overwrite exclude each other")

    if bool(a.pairs) != bool(a.openset_data):
        p.error("--pairs and --openset-data go together (image folders)")
    try:
        extra_by_dim = dim_train_args(a.dim_train_args)
    except ValueError as e:
        p.error(str(e))
    if not os.access(a.cli, os.X_OK):
        sys.exit("no executable %s: build first (make build)" % a.cli)
    os.makedirs(a.out, exist_ok=True)
    lock = lock_folder(a.out)  # noqa: F841  (held until the driver exits)
    grid = [(d, lam, s) for d in ints(a.dims) for lam in floats(a.lambdas) for s in ints(a.seeds)]
    prepare_folder(a, grid)
    args = {k: v for k, v in vars(a).items() if k not in ("resume", "overwrite")}
    data = ["--data", a.data] if a.data else []
    heldout = (["--data", a.openset_data, "--pairs", a.pairs] if a.pairs
               else ["--holdout", a.holdout] + data)
    evaluate = [a.cli, "openset", "--threads", str(a.threads), "--no-plot"] + heldout + \
        a.openset_args.split()
    write_json_atomic(os.path.join(a.out, "experiment.json"),
                      {"argv": sys.argv, "args": args, "runs": [run_name(*g) for g in grid]})
    signal.signal(signal.SIGTERM, _forward_and_stop)
    signal.signal(signal.SIGINT, _forward_and_stop)

    def done(g):
        rdir = os.path.join(a.out, run_name(*g))
        return finished(rdir) or os.path.exists(os.path.join(rdir, "diverged.json"))

    todo = [g for g in grid if not done(g)]
    print("%d runs, %d already done; run logs in %s/<run>/log.txt" %
          (len(grid), len(grid) - len(todo), a.out), file=sys.stderr)
    start = time.time()
    diverged = [run_name(*g) for g in grid
                if os.path.exists(os.path.join(a.out, run_name(*g), "diverged.json"))]
    try:
        bar = tqdm(todo, unit="run", dynamic_ncols=True)
        for dim, lam, seed in bar:
            name = run_name(dim, lam, seed)
            bar.set_postfix_str(name)
            rdir = os.path.join(a.out, name)
            os.makedirs(rdir, exist_ok=True)
            log = os.path.join(rdir, "log.txt")
            run_start = time.time()
            split = (["--test-data", a.test_data] if a.test_data else []) if a.pairs else \
                ["--holdout", a.holdout, "--train-limit", str(a.train_limit)]
            # One command line for a new and an interrupted run: `--resume auto` continues a
            # checkpoint trained with these very options and refuses any other.
            train = [a.cli, "train", "--out", rdir, "--resume", "auto"] + split + [
                     "--arch", a.arch, "--feature-dim", str(dim), "--lambda", repr(lam),
                     "--alpha", repr(a.alpha), "--seed", str(seed), "--epochs", str(a.epochs),
                     "--threads", str(a.threads), "--lr-step", str(a.lr_step),
                     "--no-progress"] + data + a.train_args.split()
            train = with_overrides(train, extra_by_dim.get(dim, []))
            rc = run(train, log)
            if rc == DIVERGED_EXIT:
                tqdm.write("%s diverged (non-finite loss): recorded in %s/diverged.json; going on"
                           % (name, rdir), file=sys.stderr)
                diverged.append(name)
                continue
            check(rc, train, log)
            scored = evaluate + ["--run", rdir]
            check(run(scored, log), scored, log)
            with open(os.path.join(rdir, "seconds.txt"), "w") as f:  # the table's time column
                f.write("%.1f\n" % (time.time() - run_start))
        bar.close()
        for sim in a.also_similarity:
            score(a.out, grid, evaluate, sim)
    except Stopped as stop:
        print("stopped; the runs keep their checkpoints: continue with --resume", file=sys.stderr)
        sys.exit(stop.code)
    print("training and evaluation took %.0f s" % (time.time() - start), file=sys.stderr)
    if diverged:
        print("%d runs diverged: %s" % (len(diverged), ", ".join(diverged)), file=sys.stderr)
    table = [sys.executable, os.path.join(HERE, "make_table.py"), a.out]
    if a.figures:
        table += ["--figures", a.figures]
    subprocess.check_call(table)
    for sim in a.also_similarity:
        subprocess.check_call(table[:3] + ["--metrics", "openset_%s.json" % sim])


if __name__ == "__main__":
    main()
