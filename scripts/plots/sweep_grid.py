"""One grid of the test-feature scatters of a lambda sweep (the paper's Fig. 3), each panel
titled with its lambda and closed-set test accuracy.

usage: sweep_grid.py sweep.json sweep_grid.png
"""
import argparse
import json
import os

from common import draw_scatter, load_features, plt


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("sweep")
    p.add_argument("out")
    a = p.parse_args()
    with open(a.sweep) as f:
        runs = json.load(f)
    fig, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 4.4), squeeze=False)
    for ax, run in zip(axes[0], runs):
        if run.get("status") == "diverged":  # stopped on a non-finite loss: no features
            ax.set_title("lambda = %g\ndiverged" % run["lambda"])
            ax.set_axis_off()
            continue
        draw_scatter(ax, load_features(os.path.join(run["run"], "test_features.pt")), marker_size=1.0)
        ax.set_title("lambda = %g\ntest accuracy %.2f%%" % (run["lambda"], 100 * run["test_accuracy"]))
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)


if __name__ == "__main__":
    main()
