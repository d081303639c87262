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

The D = 2 runs (the picture) train on --fonts-2d of the training fonts (default 10, spread over
the sorted list) with --per-font-2d images each (default 600), their own data set written beside
the main one with the same generator options (so the same held-out fonts and pairs), on their
own schedule: two dimensions need many images per identity and more epochs to converge.
--fonts-2d 0 trains them like the others, on every font.

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
from openset_experiment import ints  # noqa: E402

GRIDS = {
    "default": dict(dims="2,128", lambdas="0,0.003,0.01,0.03", seeds="1,2,3", epochs=24, lr_step=12,
                    epochs_2d=40, lr_step_2d=30),
    "quick": dict(dims="2,128", lambdas="0,0.01", seeds="1", epochs=6, lr_step=5,
                  epochs_2d=8, lr_step_2d=6),
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
    p.add_argument("--fonts-2d", type=int, default=10, help="training fonts of the D = 2 runs, "
                   "spread over the sorted list (0: all, on the main data set and schedule)")
    p.add_argument("--per-font-2d", type=int, default=600, help="training images per font of the "
                   "D = 2 runs (a tenth as many closed-set test images)")
    p.add_argument("--epochs-2d", type=int, help="epochs of the D = 2 runs (default: the grid's)")
    p.add_argument("--lr-step-2d", type=int, help="their lr x0.1 every N epochs (default: the grid's)")
    p.add_argument("--train-args-2d", default="--lr 0.02", help="options of the D = 2 runs that "
                   "replace or add to --train-args (a higher lr diverges in two dimensions)")
    p.add_argument("--scatter-identities", type=int, default=30, help="fonts in scatter.png")
    p.add_argument("--figures", default="", help="also copy the figures here with this prefix, "
                   "e.g. docs/figures/identities_")
    a = p.parse_args()
    grid = GRIDS["quick" if a.quick else "default"]
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
           "--dims", a.dims or grid["dims"], "--lambdas", a.lambdas or grid["lambdas"],
           "--seeds", a.seeds or grid["seeds"], "--epochs", str(a.epochs or grid["epochs"]),
           "--lr-step", str(default(a.lr_step, grid["lr_step"])),
           "--arch", a.arch, "--threads", str(a.threads), "--train-args", a.train_args]
    if a.fonts_2d > 0 and 2 in ints(a.dims or grid["dims"]):
        data_2d = write_data_2d(data, a.fonts_2d, a.per_font_2d)
        cmd += ["--dim-train-args", "2:--data %s --test-data %s --epochs %d --lr-step %d %s" % (
            os.path.join(data_2d, "train"), os.path.join(data_2d, "test"),
            default(a.epochs_2d, grid["epochs_2d"]), default(a.lr_step_2d, grid["lr_step_2d"]),
            a.train_args_2d)]
    prefix = a.figures + ("quick_" if a.quick else "") if a.figures else ""
    if prefix:  # the quick grid's figures never replace the default grid's
        cmd += ["--figures", prefix]
    rc = subprocess.call(cmd)
    if rc == 0 and plot_scatter(out, a.scatter_identities, os.path.join(out, "scatter.png")) and prefix:
        shutil.copyfile(os.path.join(out, "scatter.png"), prefix + "scatter.png")
    sys.exit(rc)


def default(value, fallback):
    return fallback if value is None else value


def write_data_2d(data, fonts, per_font):
    """The D = 2 runs' data set, DATA-2d-<fonts>x<per_font> beside DATA (written once): the
    generator options of DATA (its fonts.json), with `fonts` training fonts spread over the sorted
    list and `per_font` images each; the held-out side and pairs.txt are those of DATA. One
    written from other options (DATA made again with another seed) stops the experiment: its
    fonts may be held out in DATA now."""
    out = "%s-2d-%dx%d" % (data.rstrip("/"), fonts, per_font)
    manifest = os.path.join(data, "fonts.json")
    if not os.path.exists(manifest):
        sys.exit("%s has no fonts.json (not written by make_font_identities.py): the D = 2 runs' "
                 "data set copies its options; give --fonts-2d 0 to train them on %s" % (data, data))
    with open(manifest) as f:
        args = json.load(f)["args"]
    args.update(train_identities=fonts, per_class=per_font, test_per_class=max(1, per_font // 10))
    if os.path.exists(os.path.join(out, "pairs.txt")):
        with open(os.path.join(out, "fonts.json")) as f:
            written = json.load(f)["args"]
        if written != args:
            sys.exit("%s was written from other generator options than %s now has (%s): move it "
                     "away to write it again" % (out, data, ", ".join(
                         k for k in sorted(set(args) | set(written)) if args.get(k) != written.get(k))))
        return out
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "make_font_identities.py"), out]
    for key, value in sorted(args.items()):
        for v in (value if isinstance(value, list) else [value]):
            if v is not None:
                cmd += ["--" + key.replace("_", "-"), str(v)]
    subprocess.check_call(cmd)
    return out


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
                                                len(shown), first), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print("figure", path)
    return True


if __name__ == "__main__":
    main()
