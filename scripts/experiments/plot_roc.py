#!/usr/bin/env python3
"""ROC curve(s) of open-set verification, from the metrics JSON `centerloss openset` writes.

    plot_roc.py RUN/openset.json OUT.png                 # one run (called by the command)
    plot_roc.py a.json b.json ... OUT.png --labels A,B   # several runs on one figure

FAR is drawn on a log axis (the operating points that matter are FAR = 1e-2 and 1e-3); the
legend gives each curve's AUC and 10-fold verification accuracy.
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def load_roc(path):
    with open(path) as f:
        metrics = json.load(f)
    v = metrics["open_set"]["verification"]
    return metrics, np.asarray(v["roc"]["far"]), np.asarray(v["roc"]["tar"]), v


def draw_curve(ax, verification, label):
    """One ROC step curve from an openset.json "verification" object; returns its FAR floor."""
    v = verification
    # The first non-zero FAR is 1/impostors; FAR = 0 cannot sit on a log axis.
    floor = 1.0 / max(v["impostors"], 1)
    far = np.maximum(np.asarray(v["roc"]["far"]), floor / 2)
    ax.step(far, np.asarray(v["roc"]["tar"]), where="post", label=label, linewidth=1.2)
    return floor


def style_axes(ax, floor, title=""):
    """Log FAR axis down to half the smallest measurable FAR, grid, legend."""
    ax.set_xscale("log")
    ax.set_xlim(floor / 2, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false accept rate (held-out classes)")
    ax.set_ylabel("true accept rate")
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(loc="lower right", fontsize=7)


def draw(ax, path, label):
    metrics, _, _, v = load_roc(path)
    text = "%s AUC %.4f, acc %.3f" % (label, v["roc_auc"], v["accuracy_mean"])
    return metrics, draw_curve(ax, v, text)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("metrics", nargs="+", help="openset.json file(s)")
    p.add_argument("out", help="output .png")
    p.add_argument("--labels", default="", help="comma-separated legend labels")
    p.add_argument("--title", default="")
    a = p.parse_args()
    labels = a.labels.split(",") if a.labels else []
    fig, ax = plt.subplots(figsize=(5.2, 4.2), dpi=130)
    floor = 1.0
    metrics = None
    for i, path in enumerate(a.metrics):
        label = labels[i] if i < len(labels) else ("" if len(a.metrics) == 1 else path)
        metrics, f = draw(ax, path, label)
        floor = min(floor, f)
    for target in (1e-3, 1e-2):
        ax.axvline(target, color="0.7", linewidth=0.8, linestyle="--")
    title = a.title
    if not title and len(a.metrics) == 1:
        o = metrics["open_set"]
        title = "open-set ROC, classes %s, %s%s" % (
            ",".join(str(c) for c in o["classes"]), o["similarity"],
            " (L2-normalised)" if o["normalize"] else "")
    style_axes(ax, floor, title)
    fig.tight_layout()
    fig.savefig(a.out)


if __name__ == "__main__":
    main()
