"""Shared drawing code for the trainer's figures (scatter of features with their centers)."""
import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


def load_features(path):
    """The file `centerloss embed` writes: features [N,D], labels [N], centers [K,D], classes [K]."""
    features, labels, centers, classes = torch.load(path, map_location="cpu")
    return {"features": features.numpy(), "labels": labels.numpy(), "centers": centers.numpy(),
            "classes": classes.numpy()}


def project_2d(features, centers):
    """D = 2 is drawn as is; larger D is projected on the features' first two principal axes."""
    if features.shape[1] == 2:
        return features, centers, ""
    mean = features.mean(0)
    _, _, vt = np.linalg.svd(features - mean, full_matrices=False)
    axes = vt[:2].T
    return (features - mean) @ axes, (centers - mean) @ axes, " (PCA of D=%d)" % features.shape[1]


def draw_scatter(ax, data, max_points=10000, marker_size=1.5):
    """Test features coloured by class, each class's center marked (the paper's Fig. 2/3 look)."""
    feats, centers, note = project_2d(data["features"], data["centers"])
    labels = data["labels"]
    classes = sorted(set(labels.tolist()) | set(data["classes"].tolist()))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    color = {c: cmap(i % cmap.N) for i, c in enumerate(classes)}
    idx = np.arange(len(labels))
    if len(idx) > max_points:
        idx = np.random.default_rng(0).choice(idx, max_points, replace=False)
    for c in classes:
        sel = idx[labels[idx] == c]
        ax.scatter(feats[sel, 0], feats[sel, 1], s=marker_size, color=color[c], label=str(c),
                   rasterized=True, linewidths=0)
    for j, c in enumerate(data["classes"].tolist()):
        ax.scatter(centers[j, 0], centers[j, 1], marker="X", s=70, color=color[c],
                   edgecolors="black", linewidths=1.0, zorder=3)
    ax.set_aspect("equal", adjustable="datalim")
    return note
