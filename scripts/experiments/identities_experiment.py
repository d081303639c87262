#!/usr/bin/env python3
"""Many identities, unseen at training time: softmax alone against softmax + center loss,
verified on font identities that no run trained on (`make identities`; docs/identities.md).

1. Writes the data set once (scripts/make_font_identities.py: one identity = one installed font;
   OUT/data/{train,test,heldout}/<font>/ and OUT/data/pairs.txt over the held-out fonts).
2. Trains every (feature dimension, lambda, seed) of the grid on the training fonts and
   evaluates it with `centerloss openset --pairs` on the held-out fonts (openset_experiment.py:
   finished runs are skipped, interrupted ones resume from their checkpoint).
3. Writes OUT/table.md (mean +- std over seeds), roc.png, lambda.png, curves.png and
   scatter.png (D = 2, first seed: test features of --scatter-identities training fonts and
   their centers, one panel per lambda).

--fonts-2d N trains the D = 2 runs (the picture) on N of the training fonts, spread over the
sorted list, and verifies them on the same held-out fonts as the others (default: all fonts).

    python scripts/experiments/identities_experiment.py --quick     # minutes
    python scripts/experiments/identities_experiment.py             # the default grid

--quick is its own, smaller grid (one seed, fewer epochs) in OUT-quick by default, so that it
never mixes with the default grid's runs.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts", "plots"))
from common import draw_scatter, load_features, plt  # noqa: E402  (the trainer's scatter look)

# (dims, lambdas, seeds, epochs, lr step)
GRIDS = {
    "default": ("2,128", "0,0.003,0.01,0.03", "1,2,3", 24, 12),
    "quick": ("2,128", "0,0.01", "1", 6, 5),
}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cli", default=os.path.join(ROOT, "build", "trainer", "centerloss"))
    p.add_argument("--out", default="", help="experiment folder (default runs/identities, "
                   "runs/identities-quick with --quick)")
    p.add_argument("--data", default="", help="the data set's folder (default OUT/data; written "
                   "when it does not exist)")
    p.add_argument("--quick", action="store_true", help="the small grid: %s" % (GRIDS["quick"],))
    p.add_argument("--dims", help="feature dimensions (default: the grid's)")
    p.add_argument("--lambdas", help="center loss weights, 0 = softmax alone (default: the grid's)")
    p.add_argument("--seeds", help="(default: the grid's)")
    p.add_argument("--epochs", type=int, help="(default: the grid's)")
    p.add_argument("--lr-step", type=int, help="lr x0.1 every N epochs (default: the grid's)")
    p.add_argument("--arch", default="small")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-args", default="--lr 0.05 --batch-size 64 --no-flip --image-size 32x32",
                   help="extra `centerloss train` options (fonts: no mirror images; 32x32 for time)")
    p.add_argument("--generator-args", default="", help="extra make_font_identities.py options, "
                   "e.g. '--size 100x100' (used only when the data set is written)")
    p.add_argument("--fonts-2d", type=int, default=0, help="training fonts of the D = 2 runs, "
                   "spread over the sorted list (0: all)")
    p.add_argument("--scatter-identities", type=int, default=30, help="fonts in scatter.png")
    p.add_argument("--figures", default="", help="also copy the figures here with this prefix, "
                   "e.g. docs/figures/identities_")
    a = p.parse_args()
    dims, lambdas, seeds, epochs, lr_step = GRIDS["quick" if a.quick else "default"]
    out = a.out or os.path.join("runs", "identities-quick" if a.quick else "identities")
    data = a.data or os.path.join(out, "data")

    if not os.path.exists(os.path.join(data, "pairs.txt")):
        subprocess.check_call([sys.executable, os.path.join(ROOT, "scripts", "make_font_identities.py"),
                               data] + a.generator_args.split())
    # `--resume auto`: a second call continues the grid (finished runs are skipped).
    cmd = [sys.executable, os.path.join(HERE, "openset_experiment.py"), "--cli", a.cli, "--out", out,
           "--resume", "auto",
           "--data", os.path.join(data, "train"), "--test-data", os.path.join(data, "test"),
           "--openset-data", os.path.join(data, "heldout"), "--pairs", os.path.join(data, "pairs.txt"),
           "--dims", a.dims or dims, "--lambdas", a.lambdas or lambdas, "--seeds", a.seeds or seeds,
           "--epochs", str(a.epochs or epochs), "--lr-step", str(a.lr_step if a.lr_step is not None else lr_step),
           "--arch", a.arch, "--threads", str(a.threads), "--train-args", a.train_args]
    if a.fonts_2d > 0:
        cmd += ["--dim-train-args", "2:--classes " + spread_classes(os.path.join(data, "train"), a.fonts_2d)]
    prefix = a.figures + ("quick_" if a.quick else "") if a.figures else ""
    if prefix:  # the quick grid's figures never replace the default grid's
        cmd += ["--figures", prefix]
    rc = subprocess.call(cmd)
    if rc == 0 and plot_scatter(out, a.scatter_identities, os.path.join(out, "scatter.png")) and prefix:
        shutil.copyfile(os.path.join(out, "scatter.png"), prefix + "scatter.png")
    sys.exit(rc)


def spread_classes(train_dir, count):
    """`count` class ids spread evenly over the sorted class folders of train_dir (the trainer's
    class ids: folders in bytewise order), as a --classes list."""
    total = len([d for d in os.listdir(train_dir) if os.path.isdir(os.path.join(train_dir, d))])
    if count >= total:
        return ",".join(str(i) for i in range(total))
    return ",".join(str(i * total // count) for i in range(count))


def plot_scatter(out, identities, path):
    """D = 2 runs of the first seed, one panel per lambda: the test features of the first
    `identities` training fonts with their centers. False when there is no such run."""
    runs = []
    for config_path in glob.glob(os.path.join(out, "*", "config.json")):
        with open(config_path) as f:
            c = json.load(f)
        features = os.path.join(os.path.dirname(config_path), "test_features.pt")
        if c["feature_dim"] == 2 and os.path.exists(features):
            runs.append((c["seed"], c["lambda"], features))
    if not runs:
        return False
    first = min(seed for seed, _, _ in runs)
    runs = sorted((lam, f) for seed, lam, f in runs if seed == first)
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4.2), dpi=120, squeeze=False)
    for ax, (lam, features) in zip(axes[0], runs):
        data = load_features(features)
        shown = data["classes"][:identities]  # the run's first trained identities
        keep = np.isin(data["labels"], shown)
        chosen = np.isin(data["classes"], shown)
        data = {"features": data["features"][keep], "labels": data["labels"][keep],
                "centers": data["centers"][chosen], "classes": data["classes"][chosen]}
        draw_scatter(ax, data, marker_size=4)
        ax.set_title("%s, %d fonts, seed %d" % ("softmax" if lam == 0 else "lambda %g" % lam,
                                                identities, first), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print("figure", path)
    return True


if __name__ == "__main__":
    main()
