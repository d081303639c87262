"""Writes a many-identity data set from the installed fonts: one identity = one font file.

A sample is a short random string rendered in the identity's font at a random size, position
and small rotation, in a random colour on a random background, blurred and noised, at a fixed
size. Nothing downloads: the fonts come from Debian font packages (scripts/install_system_deps.sh).
The layout is the one of CASIA-WebFace / LFW crops (scripts/make_image_folder.py's):

    OUT/train/<font>/<font>_0001.jpg ...   training identities
    OUT/test/<font>/...                    more images of them (closed-set test)
    OUT/heldout/<font>/...                 identities never trained on (open-set verification)
    OUT/pairs.txt                          LFW format over OUT/heldout, identity-disjoint folds
    OUT/fonts.json                         identity -> font file, family group, side; skipped fonts

Fonts that miss a character of the alphabet (their glyph is the .notdef box or empty) are
skipped, as are symbol fonts (SYMBOL_FAMILIES), fonts with the same (family, style) name as one
already taken (one font in several formats) and redraws of another installed family
(CLONE_FAMILIES). All styles of a
family group stay on one side of the train / held-out split.

usage: make_font_identities.py OUT [--heldout 80] [--per-class 40] [--size 64x64] [--seed 0]
--train-identities N keeps N training fonts (spread over the sorted list) and the same held-out
side and pairs.txt: with a larger --per-class, the data set of the D = 2 runs of
experiments/identities_experiment.py.
Deterministic for a given --seed and set of fonts (each identity has its own random stream,
so --workers does not change the output). OUT must not exist: it is written as OUT.partial
and renamed when complete.
"""
import argparse
import json
import os
import random
import re
import shutil
import sys
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from tqdm import tqdm

FONT_EXTENSIONS = (".ttf", ".otf", ".pfb", ".t1")
FORMAT_PREFERENCE = {".otf": 0, ".ttf": 1, ".pfb": 2, ".t1": 3}  # same font twice: keep the first
# Letters whose shapes differ most between fonts (bowls, tails, joins, serifs): a font's identity
# shows in a sample of one or two of them, which a small network learns in minutes.
ALPHABET = "aegkmrsyAGKMQRW3"
# Families that redraw another installed family (TeX Gyre and GNU FreeFont from URW's base 35,
# Hack from DejaVu Sans Mono) and math fonts (their Latin letters are a text family's): two
# identities that look the same would be label noise.
CLONE_FAMILIES = re.compile(
    r"^(TeX Gyre (Termes|Heros|Heros Cn|Cursor|Pagella|Bonum|Schola|Adventor|Chorus)"
    r"|FreeSerif|FreeSans|FreeMono|Hack)$|Math")
# Symbol fonts that map Latin code points to other glyphs (dingbats; Greek letters), which the
# .notdef check cannot tell from letters.
SYMBOL_FAMILIES = re.compile(r"^(D050000L|Standard Symbols PS|Dingbats|Symbol)$")
# Family groups that must stay on one side of the split: a superfamily's members share design.
GROUP_PREFIXES = {"Nimbus": "URW", "URW": "URW", "C059": "URW", "P052": "URW", "Z003": "URW",
                  "D050000L": "URW", "Standard Symbols": "URW", "DejaVu": "DejaVu", "CMU": "CMU",
                  "Noto": "Noto", "Linux": "Linux Libertine", "Go": "Go", "Roboto": "Roboto",
                  "Open Sans": "Open Sans", "Liberation": "Liberation", "STIX": "STIX",
                  "Lato": "Lato", "Gentium": "Gentium", "Charis": "Charis", "Cabin": "Cabin",
                  "Quicksand": "Quicksand", "Comfortaa": "Comfortaa", "JetBrains": "JetBrains Mono",
                  "Junicode": "Junicode", "Fira": "Fira", "League": "League Spartan"}


def family_group(family):
    """The split group of a family: its superfamily (GROUP_PREFIXES), else the family itself."""
    for prefix, group in GROUP_PREFIXES.items():
        if family.startswith(prefix):
            return group
    return family


def identity_name(family, style):
    """A folder name: the font's family and style, [A-Za-z0-9_-] only."""
    return re.sub(r"[^A-Za-z0-9-]+", "_", f"{family} {style}").strip("_")


def glyph_mask(font, text):
    mask = font.getmask(text)
    return mask.size, bytes(mask)


def missing_characters(font, alphabet):
    """Characters the font draws as its .notdef glyph or as nothing."""
    notdef = glyph_mask(font, "\U000F0000")  # a private-use code point no text font maps
    missing = []
    for ch in alphabet:
        size, pixels = glyph_mask(font, ch)
        if (size, pixels) == notdef or size[0] == 0 or size[1] == 0 or not any(pixels):
            missing.append(ch)
    return "".join(missing)


def find_font_files(dirs):
    files = []
    for root_dir in dirs:
        for root, _, names in os.walk(root_dir, followlinks=True):
            files += [os.path.join(root, n) for n in names if n.lower().endswith(FONT_EXTENSIONS)]
    return sorted(set(files), key=lambda f: (FORMAT_PREFERENCE[os.path.splitext(f)[1].lower()], f))


def survey_fonts(dirs, alphabet):
    """(identities, skipped): identity dicts sorted by name; skipped: [{file, reason}]."""
    taken, skipped = {}, []
    for path in find_font_files(dirs):
        try:
            font = ImageFont.truetype(path, 32)
            family, style = font.getname()
        except OSError as e:
            skipped.append({"file": path, "reason": f"not loadable: {e}"})
            continue
        family, style = family or os.path.basename(path), style or "Regular"
        name = identity_name(family, style)
        if name in taken:
            skipped.append({"file": path, "reason": f"same font as {taken[name]['file']}"})
            continue
        if CLONE_FAMILIES.search(family):
            skipped.append({"file": path, "reason": f"{family}: a redraw of another family or a math font"})
            continue
        if SYMBOL_FAMILIES.search(family):
            skipped.append({"file": path, "reason": f"{family}: a symbol font"})
            continue
        missing = missing_characters(font, alphabet)
        if missing:
            skipped.append({"file": path, "reason": f"no glyph for {missing!r}"})
            continue
        taken[name] = {"name": name, "file": path, "family": family, "style": style,
                       "group": family_group(family)}
    return [taken[k] for k in sorted(taken)], skipped


def split_groups(identities, heldout, rng):
    """Identity names held out: whole family groups, in a random order, about `heldout` of them."""
    groups = {}
    for ident in identities:
        groups.setdefault(ident["group"], []).append(ident["name"])
    order = sorted(groups)
    rng.shuffle(order)
    chosen = []
    for g in order:  # groups that fit under the target first, then the smallest to reach it
        if sum(len(groups[c]) for c in chosen) + len(groups[g]) <= heldout:
            chosen.append(g)
    for g in sorted((g for g in order if g not in chosen), key=lambda g: (len(groups[g]), g)):
        if sum(len(groups[c]) for c in chosen) >= heldout:
            break
        chosen.append(g)
    return {n for g in chosen for n in groups[g]}


def contrasting_colours(rng):
    """Background and text colours, the text darker by at least 80 (of 255) in luminance: any
    hue, one polarity (as print; a small net learns fonts, not contrast inversion, first)."""
    def luminance(c):
        return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]
    while True:
        bg = tuple(rng.randrange(256) for _ in range(3))
        fg = tuple(rng.randrange(256) for _ in range(3))
        if luminance(bg) - luminance(fg) >= 80:
            return bg, fg


_fonts = {}


def sized_font(path, size):
    key = (path, size)
    if key not in _fonts:
        _fonts[key] = ImageFont.truetype(path, size)
    return _fonts[key]


def draw_sample(path, size, rng, alphabet=ALPHABET):
    """One image of the font at `path`: (width, height) pixels, jittered by rng."""
    w, h = size
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 2)))
    bg, fg = contrasting_colours(rng)
    font = sized_font(path, max(8, int(h * rng.uniform(0.5, 0.8))))
    left, top, right, bottom = font.getbbox(text)
    mask = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(mask).text((2 - left, 2 - top), text, font=font, fill=255)
    mask = mask.rotate(rng.uniform(-8, 8), resample=Image.BILINEAR, expand=True)
    scale = min(1.0, 0.95 * w / mask.width, 0.95 * h / mask.height)  # long strings shrink to fit
    if scale < 1.0:
        mask = mask.resize((max(1, int(mask.width * scale)), max(1, int(mask.height * scale))),
                           Image.BILINEAR)
    image = Image.new("RGB", size, bg)
    at = (rng.randint(0, w - mask.width), rng.randint(0, h - mask.height))
    image.paste(Image.new("RGB", mask.size, fg), at, mask)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))
    pixels = np.asarray(image, dtype=np.float32)
    pixels += np.random.default_rng(rng.randrange(1 << 32)).normal(0, rng.uniform(2, 10), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_identity(job):
    """job = (folder, name, font file, count, first, size, seed text, ext): writes the files."""
    folder, name, path, count, first, size, seed, ext = job
    rng = random.Random(seed)  # a string seed: the same stream on every run and platform
    _fonts.clear()  # one identity's sizes at a time: every font at every size is gigabytes
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    for n in range(first, first + count):
        draw_sample(path, size, rng).save(os.path.join(folder, name, f"{name}_{n:04d}.{ext}"), quality=92)
    return count


def write_pairs(path, names, per_identity, sets, pairs_per_set, rng):
    """An LFW pairs file over `names` (images 1..per_identity): each set's pairs come from its own
    identities (as LFW's folds), distinct pairs, as many as asked or the largest the data allows.
    Returns the pairs per set written."""
    names = sorted(names)
    rng.shuffle(names)
    folds = [names[k::sets] for k in range(sets)]
    genuine_max = min(len(f) * per_identity * (per_identity - 1) // 2 for f in folds)
    impostor_max = min(len(f) * (len(f) - 1) // 2 * per_identity ** 2 for f in folds)
    pairs_per_set = min(pairs_per_set, genuine_max, impostor_max)
    if pairs_per_set < 1:
        raise SystemExit(f"--sets {sets}: {len(names)} held-out identities of {per_identity} images "
                         "give a fold no genuine or impostor pair")
    lines = [f"{sets}\t{pairs_per_set}"]
    for fold in folds:
        genuine, impostor = set(), set()
        while len(genuine) < pairs_per_set:
            a, b = sorted(rng.sample(range(1, per_identity + 1), 2))
            genuine.add((rng.choice(fold), a, b))
        while len(impostor) < pairs_per_set:
            first, second = sorted(rng.sample(fold, 2))
            impostor.add((first, rng.randint(1, per_identity), second, rng.randint(1, per_identity)))
        lines += ["\t".join(map(str, p)) for p in sorted(genuine)]
        lines += ["\t".join(map(str, p)) for p in sorted(impostor)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return pairs_per_set


def parse_size(text):
    height, _, width = text.partition("x")
    if not height.isdigit() or not (width or height).isdigit() or min(int(height), int(width or height)) < 16:
        raise SystemExit(f"--size {text!r}: expected HEIGHTxWIDTH (or one number), at least 16")
    return int(width or height), int(height)  # PIL sizes are (width, height)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--fonts-dir", action="append", help="where to look for fonts (repeatable; "
                   "default /usr/share/fonts)")
    p.add_argument("--heldout", type=int, default=80, help="held-out identities (about: whole families)")
    p.add_argument("--max-identities", type=int, default=0, help="use N identities (0: every usable font)")
    p.add_argument("--train-identities", type=int, default=0, help="keep N of the training identities, "
                   "spread over their sorted list (0: all); the held-out side and pairs.txt are unchanged")
    p.add_argument("--per-class", type=int, default=60, help="training images per identity")
    p.add_argument("--test-per-class", type=int, default=10, help="closed-set test images per identity")
    p.add_argument("--heldout-per-class", type=int, default=20)
    p.add_argument("--sets", type=int, default=10, help="pairs.txt folds")
    p.add_argument("--pairs-per-set", type=int, default=300, help="genuine (and impostor) pairs per fold")
    p.add_argument("--size", default="64x64", help="HEIGHTxWIDTH of the images, e.g. 100x100")
    p.add_argument("--format", default="jpg", choices=("jpg", "png"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes drawing images")
    a = p.parse_args()
    if a.train_identities < 0:
        p.error("--train-identities must be at least 0")
    for arg in ("per_class", "test_per_class", "sets", "pairs_per_set", "workers"):
        if getattr(a, arg) < 1:
            p.error(f"--{arg.replace('_', '-')} must be at least 1")
    if a.heldout_per_class < 2:
        p.error("--heldout-per-class must be at least 2 (genuine pairs)")
    size = parse_size(a.size)
    if os.path.exists(a.out):
        p.error(f"{a.out} exists: give a new folder (a finished data set is never overwritten)")
    partial = a.out.rstrip("/") + ".partial"
    if os.path.exists(partial):
        shutil.rmtree(partial)  # an interrupted earlier run of this script

    identities, skipped = survey_fonts(a.fonts_dir or ["/usr/share/fonts"], ALPHABET)
    rng = random.Random(a.seed)
    if a.max_identities:
        identities = sorted(rng.sample(identities, min(a.max_identities, len(identities))),
                            key=lambda i: i["name"])
    held = split_groups(identities, a.heldout, rng)
    train_ids = [i for i in identities if i["name"] not in held]
    held_ids = [i for i in identities if i["name"] in held]
    if 0 < a.train_identities < len(train_ids):  # draws nothing from rng: the rest stays the same
        train_ids = [train_ids[k * len(train_ids) // a.train_identities] for k in range(a.train_identities)]
    if len(held_ids) < a.sets or not train_ids:
        p.error(f"{len(identities)} usable fonts give {len(train_ids)} training and {len(held_ids)} "
                f"held-out identities: need at least 1 and --sets {a.sets}")

    jobs = []
    for i in train_ids:
        jobs.append((os.path.join(partial, "train"), i["name"], i["file"], a.per_class, 1, size,
                     f"{a.seed}/train/{i['name']}", a.format))
        jobs.append((os.path.join(partial, "test"), i["name"], i["file"], a.test_per_class,
                     a.per_class + 1, size, f"{a.seed}/test/{i['name']}", a.format))
    for i in held_ids:
        jobs.append((os.path.join(partial, "heldout"), i["name"], i["file"], a.heldout_per_class, 1,
                     size, f"{a.seed}/heldout/{i['name']}", a.format))
    total = sum(j[3] for j in jobs)
    os.makedirs(partial)
    with tqdm(total=total, unit="img", desc="drawing", dynamic_ncols=True) as bar:
        if a.workers == 1:
            for job in jobs:
                bar.update(write_identity(job))
        else:
            with Pool(a.workers) as pool:
                for n in pool.imap_unordered(write_identity, jobs):
                    bar.update(n)
    pairs_per_set = write_pairs(os.path.join(partial, "pairs.txt"), [i["name"] for i in held_ids],
                                a.heldout_per_class, a.sets, a.pairs_per_set, rng)
    kept = {i["name"] for i in train_ids}
    manifest = {"args": {k: v for k, v in vars(a).items() if k not in ("workers", "out")},
                "alphabet": ALPHABET, "pairs_per_set": pairs_per_set,
                "identities": [dict(i, side="heldout" if i["name"] in held else "train")
                               for i in identities if i["name"] in held or i["name"] in kept],
                "skipped": skipped}
    with open(os.path.join(partial, "fonts.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    os.rename(partial, a.out)
    print(f"wrote {a.out}: {len(train_ids)} training identities x ({a.per_class} train + "
          f"{a.test_per_class} test), {len(held_ids)} held-out x {a.heldout_per_class} "
          f"({len({i['group'] for i in held_ids})} family groups), {a.size} {a.format}; "
          f"pairs.txt {a.sets} x 2 x {pairs_per_set}; {len(skipped)} font files skipped (fonts.json)")


if __name__ == "__main__":
    sys.exit(main())
