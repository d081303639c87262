#!/usr/bin/env python3
"""Training curves of an experiment's runs: softmax loss and accuracy per epoch, one line per
(feature dimension, lambda) and seed, from each RUN/metrics.jsonl (the `kind: epoch` records).

    plot_curves.py runs/identities/D2_lambda0_seed1 ... OUT.png

Whether the softmax baseline has converged on its training identities is read off the flat end
of its training-loss and training-accuracy curves.
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def epochs_of(run_dir):
    """The run's epoch records, in order."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if r.get("kind") == "epoch"]


def plot_curves(runs, out):
    """runs: [(label, run_dir, colour key)]; draws train softmax, train and test accuracy."""
    panels = [("train softmax loss", "train_softmax"), ("train accuracy", "train_accuracy"),
              ("closed-set test accuracy", "test_accuracy")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), dpi=120)
    keys = sorted({key for _, _, key in runs})
    colours = {k: plt.cm.tab10(i % 10) for i, k in enumerate(keys)}
    labelled = set()
    for label, run_dir, key in runs:
        records = epochs_of(run_dir)
        x = [r["epoch"] for r in records]
        for ax, (_, field) in zip(axes, panels):
            y = [r[field] if r.get(field) is not None else float("nan") for r in records]
            ax.plot(x, y, color=colours[key], linewidth=1, alpha=0.8,
                    label=label if (key not in labelled and ax is axes[0]) else None)
        labelled.add(key)
    for ax, (title, field) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(True, linewidth=0.3)
        if field == "train_softmax":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("runs", nargs="+", help="run folders, then the output .png")
    a = p.parse_args()
    *dirs, out = a.runs
    plot_curves([(os.path.basename(d), d, os.path.basename(d)) for d in dirs], out)


if __name__ == "__main__":
    main()
