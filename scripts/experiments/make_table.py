#!/usr/bin/env python3
"""Results table and figures of an open-set experiment folder (openset_experiment.py).

    make_table.py runs/openset [--figures docs/figures/openset_]
    make_table.py runs/openset --metrics openset_euclidean.json   # a second scoring of the runs

Reads every RUN/openset.json (or RUN/<--metrics>) under the folder, groups runs by (feature dimension, lambda) and
writes FOLDER/table.md (runs that stopped on a non-finite loss, RUN/diverged.json, are listed
under it): mean +- sample standard deviation over seeds of closed-set accuracy,
10-fold verification accuracy, ROC AUC, TAR at FAR 1e-2 / 1e-3, rank-1 identification and the
held-out classes' intra/inter distance ratio. Figures (FOLDER/, and copies with the --figures
prefix): roc.png (first seed, one panel per D), lambda.png (metrics against lambda) and
curves.png (every run's training curves). With another --metrics file the table and the ROC and
lambda figures carry its name (table_openset_euclidean.md, ...), and curves.png is not redrawn.
"""
import argparse
import glob
import json
import os
import shutil
from collections import defaultdict


import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import plot_curves as plot_curves_figure  # noqa: E402  (same folder)
import plot_roc as plot_roc_figure  # noqa: E402  (same folder: one way to draw a ROC curve)

# (column title, function of one run's metrics, format)
COLUMNS = [
    ("closed-set acc", lambda m: closed_set_accuracy(m), "%.4f"),
    ("verif. acc (10-fold)", lambda m: m["open_set"]["verification"]["accuracy_mean"], "%.4f"),
    ("ROC AUC", lambda m: m["open_set"]["verification"]["roc_auc"], "%.4f"),
    ("TAR@FAR=1e-2", lambda m: tar(m, 1e-2), "%.3f"),
    ("TAR@FAR=1e-3", lambda m: tar(m, 1e-3), "%.3f"),
    ("rank-1", lambda m: m["open_set"]["identification"]["rank1"], "%.4f"),
    ("intra/inter", lambda m: m["open_set"]["feature_stats"]["ratio"], "%.3f"),
]


def closed_set_accuracy(m):
    """openset's, else (a folder of other identities has none of the trained classes) the run's
    last test accuracy (train --test-data)."""
    if m["closed_set"]["samples"] > 0:
        return m["closed_set"]["accuracy"]
    epochs = plot_curves_figure.epochs_of(m["run_dir"])
    last = epochs[-1].get("test_accuracy") if epochs else None
    return float("nan") if last is None else last


def classes_text(ids):
    return ",".join(map(str, ids)) if len(ids) <= 20 else "%d identities" % len(ids)


def tar(m, target):
    for t in m["open_set"]["verification"]["tar_at_far"]:
        if abs(t["far_target"] - target) < 1e-12:
            return t["tar"]
    return float("nan")


def load_runs(folder, metrics="openset.json"):
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, "*", metrics))):
        with open(path) as f:
            m = json.load(f)
        m["run_dir"] = os.path.dirname(path)  # where it is now (the "run" it names may have moved)
        c = m["config"]
        runs.append({"dir": os.path.dirname(path), "path": path, "metrics": m,
                     "dim": int(c["feature_dim"]), "lambda": float(c["lambda"]),
                     "seed": int(c["seed"]), "seconds": run_seconds(os.path.dirname(path))})
    if not runs:
        raise SystemExit("no */%s under %s" % (metrics, folder))
    return runs


def diverged_runs(folder):
    return sorted(os.path.basename(os.path.dirname(p))
                  for p in glob.glob(os.path.join(folder, "*", "diverged.json")))


def diverged_note(names):
    if not names:
        return ""
    return ("\nDiverged (the loss turned non-finite; stopped, not in the table): %s.\n"
            % ", ".join(names))
def run_seconds(run_dir):
    """Wall time of the run (training and openset), as the experiment driver recorded it."""
    path = os.path.join(run_dir, "seconds.txt")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return float(f.read())


def grouped(runs):
    groups = defaultdict(list)
    for r in runs:
        groups[(r["dim"], r["lambda"])].append(r)
    return dict(sorted(groups.items()))


def mean_std(values):
    v = np.asarray(values, dtype=float)
    return v.mean(), (v.std(ddof=1) if len(v) > 1 else 0.0)


def trained_text(runs):
    """The training classes, per feature dimension when the dimensions trained on different ones
    (identities_experiment.py's D = 2 runs have their own fonts)."""
    by_dim = {}
    for r in sorted(runs, key=lambda r: r["dim"]):
        by_dim.setdefault(r["dim"], classes_text(r["metrics"]["config"]["classes"]))
    if len(set(by_dim.values())) == 1:
        return next(iter(by_dim.values()))
    return "; ".join("D = %d: %s" % item for item in by_dim.items())


def table(groups, runs):
    m0 = runs[0]["metrics"]
    v0 = m0["open_set"]["verification"]
    lines = [
        "Held-out classes %s (trained on %s), %d pairs (%d genuine / %d impostor, %d folds) "
        "from %s, %s similarity%s; rank-1 with %d gallery sample(s) per class; "
        "mean +- std over seeds (n per row); minutes: training + evaluation per run." % (
            classes_text(m0["open_set"]["classes"]), trained_text(runs),
            v0["pairs"], v0["genuine"], v0["impostors"], v0["folds"],
            m0["open_set"].get("pairs_source", "sampled") if m0["open_set"].get("pairs_source", "sampled")
            != "sampled" else "the %s split" % m0["split"],
            m0["open_set"]["similarity"],
            ", L2-normalised" if m0["open_set"]["normalize"] else "",
            m0["open_set"]["identification"]["gallery_per_class"]),
        "",
        "| D | lambda | n | " + " | ".join(c[0] for c in COLUMNS) + " | minutes |",
        "|---|---|---|" + "---|" * (len(COLUMNS) + 1),
    ]
    for (dim, lam), rs in groups.items():
        cells = []
        for _, fn, fmt in COLUMNS:
            mu, sd = mean_std([fn(r["metrics"]) for r in rs])
            cells.append((fmt + " ± " + fmt) % (mu, sd))
        name = "0 (softmax)" if lam == 0 else "%g" % lam
        minutes = [r["seconds"] / 60 for r in rs if r["seconds"] is not None]
        cells.append("%.1f" % np.mean(minutes) if minutes else "-")
        lines.append("| %d | %s | %d | %s |" % (dim, name, len(rs), " | ".join(cells)))
    return "\n".join(lines) + "\n"


def plot_roc(groups, out):
    dims = sorted({d for d, _ in groups})
    fig, axes = plt.subplots(1, len(dims), figsize=(5 * len(dims), 4.2), dpi=120, squeeze=False)
    for ax, dim in zip(axes[0], dims):
        floor = 1.0
        for (d, lam), rs in groups.items():
            if d != dim:
                continue
            r = min(rs, key=lambda r: r["seed"])
            v = r["metrics"]["open_set"]["verification"]
            label = "%s (AUC %.3f)" % ("softmax" if lam == 0 else "lambda %g" % lam, v["roc_auc"])
            floor = min(floor, plot_roc_figure.draw_curve(ax, v, label))
        plot_roc_figure.style_axes(
            ax, floor, "held-out classes, D = %d, seed %d" % (dim, r["seed"]))
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def plot_lambda(groups, out):
    dims = sorted({d for d, _ in groups})
    panels = [COLUMNS[1], COLUMNS[2], COLUMNS[5], COLUMNS[6]]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), dpi=120)
    for ax, (title, fn, _) in zip(axes, panels):
        for dim in dims:
            keys = [k for k in groups if k[0] == dim]
            lams = [k[1] for k in keys]
            stats = [mean_std([fn(r["metrics"]) for r in groups[k]]) for k in keys]
            ax.errorbar(range(len(lams)), [s[0] for s in stats], yerr=[s[1] for s in stats],
                        marker="o", capsize=3, label="D = %d" % dim)
        ax.set_xticks(range(len(lams)))
        ax.set_xticklabels(["0" if l == 0 else "%g" % l for l in lams])
        ax.set_xlabel("lambda")
        ax.set_title(title, fontsize=9)
        ax.grid(True, linewidth=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--figures", default="", help="copy figures to PREFIX{roc,lambda}.png")
    p.add_argument("--metrics", default="openset.json",
                   help="each run's metrics file (e.g. openset_euclidean.json, from "
                        "`centerloss openset --similarity euclidean --out ...`)")
    a = p.parse_args()
    # Outputs of another scoring are named after it, beside the default table.
    suffix = "" if a.metrics == "openset.json" else "_" + os.path.splitext(a.metrics)[0]
    diverged = diverged_runs(a.folder)
    if diverged and not glob.glob(os.path.join(a.folder, "*", a.metrics)):
        text = "No run finished." + diverged_note(diverged)
        with open(os.path.join(a.folder, "table%s.md" % suffix), "w") as f:
            f.write(text)
        print(text)
        return
    runs = load_runs(a.folder, a.metrics)
    groups = grouped(runs)
    text = table(groups, runs) + diverged_note(diverged)
    with open(os.path.join(a.folder, "table%s.md" % suffix), "w") as f:
        f.write(text)
    print(text)
    made = []
    for name, plot in (("roc", plot_roc), ("lambda", plot_lambda)):
        plot(groups, os.path.join(a.folder, name + suffix + ".png"))
        made.append(name + suffix + ".png")
    if not suffix:  # the training curves do not depend on the scoring: drawn once
        plot_curves_figure.plot_curves(
            [("D = %d, %s" % (r["dim"], "softmax" if r["lambda"] == 0 else "lambda %g" % r["lambda"]),
              r["dir"], (r["dim"], r["lambda"]))
             for r in sorted(runs, key=lambda r: (r["dim"], r["lambda"], r["seed"]))],
            os.path.join(a.folder, "curves.png"))
        made.append("curves.png")
    for name in made:
        src = os.path.join(a.folder, name)
        print("figure", src)
        if a.figures:
            os.makedirs(os.path.dirname(a.figures) or ".", exist_ok=True)
            shutil.copyfile(src, a.figures + name)
            print("figure", a.figures + name)


if __name__ == "__main__":
    main()
