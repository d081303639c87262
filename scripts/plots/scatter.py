"""Scatter of a run's test features, coloured by class, centers marked with an X.

usage: scatter.py test_features.pt scatter.png [--title TEXT]
"""
import argparse

from common import draw_scatter, load_features, plt


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("features")
    p.add_argument("out")
    p.add_argument("--title", default="")
    a = p.parse_args()
    data = load_features(a.features)
    fig, ax = plt.subplots(figsize=(6.4, 6))
    note = draw_scatter(ax, data)
    ax.legend(markerscale=6, fontsize=8, loc="upper right", title="class")
    ax.set_title((a.title + note) or "test features")
    fig.tight_layout()
    fig.savefig(a.out, dpi=130)


if __name__ == "__main__":
    main()
