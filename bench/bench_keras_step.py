#!/usr/bin/env python3
"""Times `model.fit` steps of a Keras model with centerloss.keras.CenterLoss on each backend, for
several K, and compares the layer of this tree ("after") with the one of a git revision
("before") in the same run.

The model isolates the layer: inputs [N, 32] -> Dense(D) features -> CenterLoss(K, weight 0.2),
with the labels as a second input, no other loss, SGD; one step = forward, the center loss and
its gradient, the Dense update and the center step (paper rule). The step time is the median of
the intervals between consecutive steps (each step's loss is read back on the host, as a
progress bar does), after --warmup steps that include the compilation; the 10th percentile is
reported too (on a machine shared with other jobs, the steps they did not disturb). With
--rounds R the whole sweep runs R times, before and after taking turns, and the tables show
each configuration's fastest round.

Each (backend, version) runs in its own process (Keras fixes its backend at import); "before"
imports the python/ folder of the revision --before (git archive), with this tree's compiled
library (the C++ op is the same). Writes JSON (machine, versions, commit, every timing) and a
markdown table. Example (docs/keras.md):

    .venv/bin/python bench/bench_keras_step.py --before main --out-dir bench/results/local
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("torch", "jax", "tensorflow")
INPUT_DIM = 32


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    p.add_argument("--d", nargs="+", type=int, default=[100, 512], help="feature dimensions D")
    p.add_argument("--k", nargs="+", type=int, default=[1000, 100_000, 1_000_000],
                   help="numbers of classes K")
    p.add_argument("--n", type=int, default=512, help="batch size N")
    p.add_argument("--steps", type=int, default=40, help="timed steps per configuration")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1, help="sweeps, before and after taking turns")
    p.add_argument("--before", default=None,
                   help="git revision whose layer to time as well ('before'); none: only this tree")
    p.add_argument("--out-dir", type=Path, default=REPO / "bench" / "results" / "local")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--version", default="after", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---------------------------------------------------------------- worker: one backend, one version

def time_configuration(keras, CenterLoss, n: int, d: int, k: int, steps: int, warmup: int):
    """Seconds per model.fit step: median, interquartile range and 10th percentile."""
    rng = __import__("numpy").random.default_rng(0)
    total = (steps + warmup + 1) * n
    x = rng.normal(size=(total, INPUT_DIM)).astype("float32")
    y = rng.integers(0, k, size=total).astype("int32")
    keras.utils.set_random_seed(0)
    features_in = keras.Input((INPUT_DIM,))
    labels_in = keras.Input((), dtype="int32")
    features = keras.layers.Dense(d)(features_in)
    out = CenterLoss(k, alpha=0.5, weight=0.2, name="center_loss")([features, labels_in])
    model = keras.Model([features_in, labels_in], out)
    model.compile(keras.optimizers.SGD(0.01))

    stamps = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])  # waits for the step (jax dispatches asynchronously)
            stamps.append(time.perf_counter())

    model.fit([x, y], batch_size=n, epochs=1, shuffle=False, verbose=0, callbacks=[Clock()])
    skipped = int(keras.ops.convert_to_numpy(model.get_layer("center_loss").skipped_updates))
    assert skipped == 0, f"{skipped} skipped center updates"
    intervals = sorted(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1:]))
    quartiles = statistics.quantiles(intervals, n=4)
    del model
    keras.backend.clear_session()
    return (statistics.median(intervals), quartiles[2] - quartiles[0],
            statistics.quantiles(intervals, n=10)[0])


def worker(args) -> int:
    import gc

    import keras

    from centerloss.keras import CenterLoss

    for d in args.d:
        for k in args.k:
            median, iqr, p10 = time_configuration(keras, CenterLoss, args.n, d, k, args.steps,
                                                  args.warmup)
            gc.collect()
            row = {"backend": keras.backend.backend(), "version": args.version, "N": args.n,
                   "D": d, "K": k, "step_ms": round(median * 1e3, 3),
                   "iqr_ms": round(iqr * 1e3, 3), "p10_ms": round(p10 * 1e3, 3)}
            print("RESULT " + json.dumps(row), flush=True)
    return 0


# ---------------------------------------------------------------- parent: processes, reports

def export_python_tree(revision: str, into: Path) -> Path:
    """python/ of a git revision, extracted under `into`; returns the folder to import from."""
    archive = subprocess.run(["git", "archive", "--format=tar", revision, "python"], cwd=REPO,
                             check=True, capture_output=True).stdout
    path = into / "archive.tar"
    path.write_bytes(archive)
    with tarfile.open(path) as tar:
        tar.extractall(into, filter="data")
    return into / "python"


def run_worker(args, backend: str, version: str, python_dir: Path, progress) -> list[dict]:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2",
               OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(python_dir),
               CENTERLOSS_LIBRARY=str(REPO / "python" / "centerloss" / "_lib" / "libcenterloss.so"))
    command = [sys.executable, __file__, "--worker", "--version", version, "--n", str(args.n),
               "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--d", *map(str, args.d), "--k", *map(str, args.k)]
    rows = []
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        for line in proc.stdout:
            if line.startswith("RESULT "):
                row = json.loads(line[len("RESULT "):])
                rows.append(row)
                progress.update(1)
                progress.set_postfix_str(f"{backend} {version} D={row['D']} K={row['K']}: "
                                         f"{row['step_ms']:.2f} ms")
        stderr = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{backend} ({version}) failed:\n{stderr[-4000:]}")
    return rows


def machine() -> dict:
    def version(module):
        try:
            return __import__(module).__version__
        except ImportError:
            return None

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip() or None
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "python"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip())
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "keras": version("keras"), "jax": version("jax"), "tensorflow": version("tensorflow"),
            "torch": version("torch"), "commit": commit, "python_tree_modified": dirty}


def fastest_rounds(rows: list[dict], key: str = "step_ms") -> list[dict]:
    """Each configuration's row with the lowest `key` over the rounds."""
    best = {}
    for row in rows:
        config = (row["backend"], row["version"], row["D"], row["K"])
        if config not in best or row[key] < best[config][key]:
            best[config] = row
    return list(best.values())


def markdown(rows: list[dict], versions: list[str], key: str = "step_ms") -> str:
    ks = sorted({r["K"] for r in rows})
    head = ["backend", "D"] + [f"{v} K={k:.0e}".replace("e+0", "e") for v in versions for k in ks]
    head += [f"{v} K_max/K_min" for v in versions]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    index = {(r["backend"], r["version"], r["D"], r["K"]): r[key] for r in rows}
    for backend in BACKENDS:
        for d in sorted({r["D"] for r in rows}):
            if (backend, versions[0], d, ks[0]) not in index:
                continue
            cells = [backend, str(d)]
            cells += [f"{index[(backend, v, d, k)]:.2f}" for v in versions for k in ks]
            cells += [f"{index[(backend, v, d, ks[-1])] / index[(backend, v, d, ks[0])]:.2f}"
                      for v in versions]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    from tqdm import tqdm

    versions = ["before", "after"] if args.before else ["after"]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([Path(sys.executable).name, *sys.argv]),
              "machine": machine(), "before": args.before, "load_average_start": os.getloadavg(),
              "results": []}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"after": REPO / "python"}
        if args.before:
            trees["before"] = export_python_tree(args.before, Path(tmp))
        total = args.rounds * len(args.backends) * len(versions) * len(args.d) * len(args.k)
        with tqdm(total=total, unit="config", desc="keras fit steps") as progress:
            for round_ in range(args.rounds):
                for backend in args.backends:
                    for version in versions:
                        rows = run_worker(args, backend, version, trees[version], progress)
                        report["results"] += [dict(row, round=round_) for row in rows]
    report["load_average_end"] = os.getloadavg()
    (args.out_dir / "bench_keras_step.json").write_text(json.dumps(report, indent=1) + "\n")
    table = "".join(f"{title}\n\n" + markdown(fastest_rounds(report["results"], key), versions, key)
                    + "\n" for key, title in (("step_ms", "Median ms per step"),
                                               ("p10_ms", "10th percentile, ms per step")))
    (args.out_dir / "bench_keras_step.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
