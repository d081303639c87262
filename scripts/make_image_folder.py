"""Writes a synthetic face-recognition-style data set to try `centerloss` on image folders.

Each "identity" is a coloured shape on a tinted background (shape, colours and a mark drawn
from a per-identity seed); its images vary in position, size, rotation, brightness and noise.
The layout is the one of CASIA-WebFace / LFW crops, with an LFW pairs file over the held-out
identities:

    OUT/train/<name>/<name>_0001.jpg ...   training identities (--classes of them)
    OUT/test/<name>/...                    more images of the same identities (closed-set test)
    OUT/heldout/<name>/...                 identities never trained on (open-set verification)
    OUT/pairs.txt                          LFW format over OUT/heldout: "SETS PAIRS" header, then
                                           per set PAIRS genuine "name n1 n2" lines and PAIRS
                                           impostor "name1 n1 name2 n2" lines

usage: make_image_folder.py OUT [--classes 100] [--per-class 30] [--size 100x100] ...
Deterministic for a given --seed. Needs numpy and Pillow (the test requirements).
"""
import argparse
import os
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SHAPES = ("circle", "square", "triangle", "diamond", "bar", "cross")


def identity_style(seed):
    """The fixed look of one identity: shape, colours, mark."""
    rng = random.Random(seed)
    return {
        "shape": rng.choice(SHAPES),
        "fill": tuple(rng.randrange(30, 226) for _ in range(3)),
        "background": tuple(rng.randrange(70, 186) for _ in range(3)),
        "mark": rng.choice(("none", "dot", "ring", "stripe")),
        "mark_colour": tuple(rng.randrange(0, 256) for _ in range(3)),
    }


def draw_image(style, size, rng):
    """One image of an identity: (width, height) pixels, jittered by rng."""
    w, h = size
    image = Image.new("RGB", size, style["background"])
    draw = ImageDraw.Draw(image)
    s = min(w, h) * rng.uniform(0.26, 0.36)
    cx = w / 2 + rng.uniform(-0.08, 0.08) * w
    cy = h / 2 + rng.uniform(-0.08, 0.08) * h
    shape, fill = style["shape"], style["fill"]
    if shape == "circle":
        draw.ellipse([cx - s, cy - s, cx + s, cy + s], fill=fill)
    elif shape == "square":
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    elif shape == "triangle":
        draw.polygon([(cx, cy - s), (cx + s, cy + s), (cx - s, cy + s)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(cx, cy - s), (cx + s, cy), (cx, cy + s), (cx - s, cy)], fill=fill)
    elif shape == "bar":
        draw.rectangle([cx - s, cy - s / 3, cx + s, cy + s / 3], fill=fill)
    else:
        draw.rectangle([cx - s, cy - s / 4, cx + s, cy + s / 4], fill=fill)
        draw.rectangle([cx - s / 4, cy - s, cx + s / 4, cy + s], fill=fill)
    mark, colour = style["mark"], style["mark_colour"]
    if mark == "dot":
        draw.ellipse([cx - s / 4, cy - s / 4, cx + s / 4, cy + s / 4], fill=colour)
    elif mark == "ring":
        draw.ellipse([cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2], outline=colour, width=max(2, int(s / 8)))
    elif mark == "stripe":
        draw.line([cx - s, cy, cx + s, cy], fill=colour, width=max(2, int(s / 6)))
    image = image.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR, fillcolor=style["background"])
    pixels = np.asarray(image, dtype=np.float32) * rng.uniform(0.75, 1.25)
    pixels += np.random.default_rng(rng.randrange(1 << 32)).normal(0, 10, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.0)))


def write_identity(folder, name, style, count, size, rng, first=1, formats=("jpg", "png")):
    """folder/name/name_NNNN.<fmt> for NNNN = first .. first + count - 1."""
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    for n in range(first, first + count):
        image = draw_image(style, size, rng)
        ext = formats[n % len(formats)]
        image.save(os.path.join(folder, name, f"{name}_{n:04d}.{ext}"), quality=92)


def write_pairs(path, names, per_identity, sets, pairs_per_set, rng):
    """An LFW pairs file over `names`, each with images 1..per_identity."""
    lines = [f"{sets}\t{pairs_per_set}"]
    for _ in range(sets):
        for _ in range(pairs_per_set):
            name = rng.choice(names)
            a, b = rng.sample(range(1, per_identity + 1), 2)
            lines.append(f"{name}\t{a}\t{b}")
        for _ in range(pairs_per_set):
            first, second = rng.sample(names, 2)
            lines.append(f"{first}\t{rng.randint(1, per_identity)}\t{second}\t{rng.randint(1, per_identity)}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def parse_size(text):
    height, _, width = text.partition("x")
    return int(width or height), int(height)  # PIL sizes are (width, height)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--classes", type=int, default=100, help="training identities")
    p.add_argument("--per-class", type=int, default=30, help="training images per identity")
    p.add_argument("--test-per-class", type=int, default=5, help="closed-set test images per identity")
    p.add_argument("--heldout", type=int, default=40, help="open-set identities (for pairs.txt)")
    p.add_argument("--heldout-per-class", type=int, default=10)
    p.add_argument("--sets", type=int, default=10, help="pairs.txt folds")
    p.add_argument("--pairs-per-set", type=int, default=30, help="genuine (and impostor) pairs per fold")
    p.add_argument("--size", default="100x100", help="HEIGHTxWIDTH of the images")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    size = parse_size(a.size)
    train_names = [f"id{k:05d}" for k in range(a.classes)]
    heldout_names = [f"id{k:05d}" for k in range(a.classes, a.classes + a.heldout)]
    for k, name in enumerate(train_names):
        style = identity_style(a.seed * 1_000_003 + k)
        write_identity(os.path.join(a.out, "train"), name, style, a.per_class, size, rng)
        write_identity(os.path.join(a.out, "test"), name, style, a.test_per_class, size, rng, first=a.per_class + 1)
    for k, name in enumerate(heldout_names, start=a.classes):
        write_identity(os.path.join(a.out, "heldout"), name, identity_style(a.seed * 1_000_003 + k),
                       a.heldout_per_class, size, rng)
    if heldout_names:
        write_pairs(os.path.join(a.out, "pairs.txt"), heldout_names, a.heldout_per_class, a.sets,
                    a.pairs_per_set, rng)
    pairs = f"; pairs.txt {a.sets} x 2 x {a.pairs_per_set}" if heldout_names else ""
    print(f"wrote {a.out}: {a.classes} x {a.per_class} training, {a.classes} x {a.test_per_class} test, "
          f"{a.heldout} x {a.heldout_per_class} held-out images of {a.size}{pairs}")


if __name__ == "__main__":
    main()
