"""Training curves of a run from its metrics.jsonl: softmax loss, center loss, accuracy.

usage: curves.py metrics.jsonl curves.png [--title TEXT]
"""
import argparse
import json

from common import plt


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics")
    p.add_argument("out")
    p.add_argument("--title", default="")
    a = p.parse_args()
    with open(a.metrics) as f:
        records = [json.loads(line) for line in f if line.strip()]
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    x = [r["epoch_progress"] for r in steps]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(x, [r["softmax"] for r in steps])
    axes[0].set_title("softmax loss (train)")
    axes[1].plot(x, [r["center"] for r in steps], color="tab:orange")
    axes[1].set_yscale("log")
    axes[1].set_title("center loss (train, before lambda)")
    axes[2].plot(x, [100 * r["accuracy"] for r in steps], label="train (running)")
    tested = [r for r in epochs if r["test_accuracy"] is not None]  # None: no test split
    if tested:
        axes[2].plot([r["epoch"] for r in tested], [100 * r["test_accuracy"] for r in tested], "o-",
                     label="test (end of epoch)")
    axes[2].set_title("accuracy (%)")
    axes[2].legend()
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if a.title:
        fig.suptitle(a.title)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)


if __name__ == "__main__":
    main()
