#!/usr/bin/env python3
"""Held-out identities' features for TensorBoard's embedding projector.

    python scripts/experiments/export_projector.py runs/identities/D128_lambda0.01_seed1 \
        --data runs/identities/data/heldout
    .venv/bin/tensorboard --logdir runs/identities/D128_lambda0.01_seed1/projector   # "Projector" tab

Embeds the images of --data with the run (`centerloss embed`), then writes to RUN/projector
(or --out): tensors.tsv (one feature vector a line), metadata.tsv (identity and file of each
line), sprite.png (each image's thumbnail, in the same order) and projector_config.pbtxt
(tensorboard's projector plugin writes it). The projector then shows the identities as
points, coloured or labelled by identity, with their images.
"""
import argparse
import math
import os
import subprocess
import sys

import torch
from PIL import Image
from tensorboard.plugins import projector

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SPRITE_LIMIT = 8192  # the projector's largest sprite image side


def write_sprite(files, path, thumb):
    """One square grid of thumb x thumb thumbnails, row by row, in the order of `files`."""
    side = math.ceil(math.sqrt(len(files)))
    sprite = Image.new("RGB", (side * thumb, side * thumb), (255, 255, 255))
    for k, f in enumerate(files):
        with Image.open(f) as image:
            sprite.paste(image.convert("RGB").resize((thumb, thumb), Image.BILINEAR),
                         ((k % side) * thumb, (k // side) * thumb))
    sprite.save(path)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run", help="a trained run folder (checkpoint.pt)")
    p.add_argument("--data", required=True, help="image folder to embed, e.g. DATA/heldout")
    p.add_argument("--out", default="", help="projector folder (default RUN/projector)")
    p.add_argument("--cli", default=os.path.join(ROOT, "build", "trainer", "centerloss"))
    p.add_argument("--thumb", type=int, default=32, help="thumbnail side in pixels")
    a = p.parse_args()
    out = a.out or os.path.join(a.run, "projector")
    if os.path.exists(os.path.join(out, "projector_config.pbtxt")):
        p.error(f"{out} holds a projector export already: give another --out")
    os.makedirs(out, exist_ok=True)
    features_path = os.path.join(out, "features.pt")
    subprocess.check_call([a.cli, "embed", "--run", a.run, "--data", a.data, "--out", features_path])
    features, labels, _, _ = torch.load(features_path)
    with open(os.path.join(out, "features.classes.txt")) as f:
        names = f.read().split()
    with open(os.path.join(out, "features.files.txt")) as f:
        files = f.read().split()
    thumb = min(a.thumb, SPRITE_LIMIT // math.ceil(math.sqrt(len(files))))

    with open(os.path.join(out, "tensors.tsv"), "w") as f:
        for row in features.tolist():
            f.write("\t".join("%.6g" % v for v in row) + "\n")
    with open(os.path.join(out, "metadata.tsv"), "w") as f:
        f.write("identity\tfile\n")
        for label, path in zip(labels.tolist(), files):
            f.write(f"{names[label]}\t{os.path.basename(path)}\n")
    write_sprite(files, os.path.join(out, "sprite.png"), thumb)

    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "heldout_features"
    embedding.tensor_path = "tensors.tsv"
    embedding.metadata_path = "metadata.tsv"
    embedding.sprite.image_path = "sprite.png"
    embedding.sprite.single_image_dim.extend([thumb, thumb])
    projector.visualize_embeddings(out, config)
    print(f"wrote {out}: {features.shape[0]} features of {features.shape[1]} dimensions, "
          f"{len(set(labels.tolist()))} identities; view with: tensorboard --logdir {out}")


if __name__ == "__main__":
    sys.exit(main())
