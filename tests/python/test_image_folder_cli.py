"""`centerloss` on image folders, end to end: train (RGB, resize and centre-crop, flips), eval,
embed with its class and file lists, openset with an LFW pairs file over image files and
--flip-concat, and the bad files of a user's folder (truncated, corrupt, empty, text named .jpg,
a decompression bomb), which stop a run naming the file or are skipped and listed.

The folders are generated here with Pillow: a coloured shape per class, PNG and JPEG, RGB,
grey and RGBA, of mixed sizes. The command is found by cli_runner.py.
"""
import json
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from cli_runner import require_cli, run

require_cli()

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 60, 220), (220, 200, 30), (200, 40, 200)]
FAST = ["--arch", "small", "--threads", "2", "--no-progress", "--batch-size", "16"]


def shape_image(k, i, size):
    """Class k: a shape of colour k on grey, jittered by i."""
    w, h = size
    image = Image.new("RGB", size, (128, 128, 128))
    draw = ImageDraw.Draw(image)
    s = min(w, h) // 3
    cx, cy = w // 2 + (i % 3 - 1) * 2, h // 2 + (i % 2) * 2
    box = [cx - s, cy - s, cx + s, cy + s]
    shape = k % 3
    if shape == 0:
        draw.ellipse(box, fill=COLOURS[k])
    elif shape == 1:
        draw.rectangle(box, fill=COLOURS[k])
    else:
        draw.polygon([(cx, cy - s), (cx + s, cy + s), (cx - s, cy + s)], fill=COLOURS[k])
    return image


def make_folder(root, names, per_class, first=1):
    """root/<name>/<name>_NNNN.{png,jpg}: mixed formats, modes (RGB, L, RGBA) and sizes."""
    for k, name in enumerate(names):
        os.makedirs(root / name, exist_ok=True)
        for i in range(per_class):
            image = shape_image(k, i, (36 + 6 * (i % 3), 36 + 4 * (i % 2)))
            mode = ["RGB", "L", "RGB", "RGBA"][i % 4]
            ext = "png" if mode == "RGBA" or i % 2 == 0 else "jpg"
            image.convert(mode).save(root / name / f"{name}_{first + i:04d}.{ext}")
        (root / name / "Thumbs.db").write_bytes(b"not an image")
    return root


def bomb_png(width, height):
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
            + bytes(64))


def write_bad_files(folder):
    """The bad files of issue 16 in one class folder; returns {kind: path}."""
    good = folder / "good.jpg"
    shape_image(0, 0, (40, 40)).save(good)
    jpeg = good.read_bytes()
    good.unlink()
    png_path = folder / "corrupt.png"
    shape_image(0, 0, (40, 40)).save(png_path)
    png = bytearray(png_path.read_bytes())
    at = png.find(b"IDAT") + 8
    png[at:at + 16] = bytes(b ^ 0xFF for b in png[at:at + 16])
    files = {
        "truncated": (folder / "truncated.jpg", jpeg[: len(jpeg) // 2]),
        "corrupt": (png_path, bytes(png)),
        "empty": (folder / "empty.jpg", b""),
        "text": (folder / "notes.jpg", b"this is a text file\n"),
        "bomb": (folder / "bomb.png", bomb_png(60000, 60000)),
    }
    for path, data in files.values():
        path.write_bytes(data)
    return {kind: str(path) for kind, (path, _) in files.items()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    names = ["Alice_A", "Bob_B", "Carol_C"]
    make_folder(root / "train", names, 16)
    make_folder(root / "test", names, 4, first=17)
    # Open-set identities the run never saw, for the pairs file.
    make_folder(root / "others", ["Dan_D", "Eve_E"], 6)
    return root


@pytest.fixture(scope="module")
def run_dir(folders):
    out = folders / "run"
    result = run("train", "--out", str(out), "--data", str(folders / "train"),
                 "--test-data", str(folders / "test"), "--image-size", "32x28",
                 "--feature-dim", "8", "--epochs", "4", "--lr", "0.05", "--no-outputs", *FAST)
    assert "closed-set test accuracy" in result.stdout, result.stdout
    return out


def test_train_records_classes_shape_and_loader_figures(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["class_names"] == ["Alice_A", "Bob_B", "Carol_C"]
    assert config["image_size"] == [32, 28] and config["channels"] == 3 and config["flip"] is True
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 4
    last = epochs[-1]
    assert last["test_accuracy"] >= 0.75, last  # 12 test images of three easy shapes
    assert last["images_per_s"] > 0 and last["decode_images_per_s"] > 0
    assert last["data_wait_s"] >= 0 and last["bad_images"] == 0


def test_eval_and_embed_map_classes_by_name(run_dir, folders):
    result = run("eval", "--run", str(run_dir), "--json")
    assert json.loads(result.stdout)["samples"] == 12
    out = folders / "feats.pt"
    run("embed", "--run", str(run_dir), "--out", str(out), "--data", str(folders / "others"),
        "--flip-concat")
    features, labels, centers, classes = torch.load(out)
    assert features.shape == (12, 16) and centers.shape == (3, 8)  # flip-concat: 2 x D
    names = (folders / "feats.classes.txt").read_text().split()
    assert names == ["Alice_A", "Bob_B", "Carol_C", "Dan_D", "Eve_E"]  # the run's ids first
    files = (folders / "feats.files.txt").read_text().split()
    assert [names[k] for k in labels.tolist()] == [os.path.basename(os.path.dirname(f)) for f in files]
    assert files[0].endswith("Dan_D/Dan_D_0001.png")


def test_openset_reads_lfw_pairs_over_image_files(run_dir, folders):
    # Both line forms; names resolve to DIR/name/name_NNNN.<png|jpg>.
    pairs = folders / "pairs.txt"
    pairs.write_text("2\t3\n"
                     "Dan_D\t1\t2\nEve_E\t1\t3\nDan_D\t3\t4\n"
                     "Dan_D\t1\tEve_E\t2\nDan_D\t5\tEve_E\t6\nEve_E\t4\tDan_D\t2\n"
                     "Eve_E\t5\t6\nDan_D\t5\t6\nEve_E\t2\t4\n"
                     "Eve_E\t1\tDan_D\t6\nDan_D\t3\tEve_E\t3\nEve_E\t6\tDan_D\t4\n")
    for flip_concat in ([], ["--flip-concat"]):
        out = folders / f"openset{len(flip_concat)}.json"
        result = run("openset", "--run", str(run_dir), "--data", str(folders / "others"),
                     "--pairs", str(pairs), "--out", str(out), "--no-plot", *flip_concat)
        assert "verification acc" in result.stdout
        report = json.loads(out.read_text())
        assert report["flip_concat"] == bool(flip_concat)
        assert report["class_names"][3:] == ["Dan_D", "Eve_E"]
        v = report["open_set"]["verification"]
        assert v["genuine"] == 6 and v["impostors"] == 6 and v["folds"] == 2
        assert report["open_set"]["trained_classes_evaluated"] == []
    missing = folders / "pairs_missing.txt"
    missing.write_text(pairs.read_text().replace("Eve_E\t5\t6", "Eve_E\t5\t9"))
    bad = run("openset", "--run", str(run_dir), "--data", str(folders / "others"),
              "--pairs", str(missing), "--no-plot", check=False)
    assert bad.returncode != 0
    assert f"no image {folders / 'others' / 'Eve_E' / 'Eve_E_0009'}.*" in bad.stderr, bad.stderr


def test_bad_files_stop_the_run_naming_them_or_are_skipped(tmp_path):
    data = make_folder(tmp_path / "data", ["a", "b"], 6)
    bad = write_bad_files(data / "a")
    out = tmp_path / "run"
    # Found by their headers at start-up: nothing is written.
    result = run("train", "--out", str(out), "--data", str(data), "--epochs", "1",
                 "--image-size", "32", *FAST, check=False)
    assert result.returncode == 1, result.stderr
    assert "3 of 17 image files" in result.stderr
    for kind in ("empty", "text", "bomb"):
        assert bad[kind] in result.stderr, (kind, result.stderr)
    assert "60000x60000" in result.stderr and "64 megapixels" in result.stderr
    assert not out.exists()
    # Truncated and corrupt files pass the header check: the loader stops at the first it reads.
    for kind in ("empty", "text", "bomb"):
        os.unlink(bad[kind])
    result = run("train", "--out", str(out), "--data", str(data), "--epochs", "1",
                 "--image-size", "32", *FAST, check=False)
    assert result.returncode == 1
    assert f"image '{bad['truncated']}'" in result.stderr or f"image '{bad['corrupt']}'" in result.stderr
    assert "Traceback" not in result.stderr and "terminate" not in result.stderr
    # Skipped: the run finishes and says how many and which.
    for kind in ("empty", "text", "bomb"):
        path, data_bytes = bad[kind], {"empty": b"", "text": b"text\n", "bomb": bomb_png(60000, 60000)}[kind]
        open(path, "wb").write(data_bytes)
    out2 = tmp_path / "run2"
    result = run("train", "--out", str(out2), "--data", str(data), "--epochs", "1",
                 "--image-size", "32", "--skip-bad-images", "--no-outputs", *FAST)
    assert "3 bad images skipped" in result.stderr and "5 bad images skipped" in result.stderr
    for path in bad.values():
        assert path in result.stderr, path
    last = json.loads((out2 / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["bad_images"] == 5 and last["test_accuracy"] is None
    assert "no test split" in result.stdout


def test_a_refused_run_leaves_an_existing_run_untouched(tmp_path):
    data = make_folder(tmp_path / "data", ["a", "b"], 4)
    out = tmp_path / "run"
    run("train", "--out", str(out), "--data", str(data), "--epochs", "1", "--image-size", "32",
        "--no-outputs", *FAST)
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    os.makedirs(data / "c")  # an empty class folder
    fresh = ["--data", str(data), "--image-size", "32", *FAST]
    for args in (fresh, ["--resume", "--no-progress"]):
        result = run("train", "--out", str(out), "--epochs", "2", "--no-outputs", *args, check=False)
        assert result.returncode != 0
        assert f"class folder '{data / 'c'}' holds no image files" in result.stderr, result.stderr
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before


def test_image_options_are_checked_by_name(tmp_path):
    data = make_folder(tmp_path / "data", ["a", "b"], 3)
    out = str(tmp_path / "run")
    cases = [
        (["--data", str(data)], "differ in size"),  # mixed sizes without --image-size
        (["--data", str(data), "--image-size", "32x"], "--image-size"),
        (["--data", str(data), "--image-size", "32", "--channels", "2"], "--channels"),
        (["--image-size", "32"], "IDX files, which are used at their own size"),
        (["--channels", "3", "--train-limit", "50"], "--channels 3"),
        (["--test-data", str(data), "--train-limit", "50"], "--test-data"),
        (["--data", str(data / "a")], "has no class folders"),
    ]
    for args, message in cases:
        result = run("train", "--out", out, "--epochs", "1", *args, *FAST, check=False)
        assert result.returncode != 0 and message in result.stderr, (args, result.stderr)
        assert not os.path.exists(out)


def test_grey_face_arch_run_at_non_square_size(tmp_path):
    data = make_folder(tmp_path / "data", ["a", "b"], 4)
    out = tmp_path / "run"
    run("train", "--out", str(out), "--data", str(data), "--arch", "face", "--channels", "1",
        "--image-size", "24x20", "--no-flip", "--feature-dim", "6", "--epochs", "1",
        "--threads", "2", "--no-progress", "--no-outputs", "--loader-threads", "0")
    config = json.loads((out / "config.json").read_text())
    assert config["arch"] == "face" and config["channels"] == 1 and config["flip"] is False
    assert config["image_size"] == [24, 20] and config["loader_threads"] == 0
    run("train", "--out", str(out), "--resume", "--epochs", "2", "--loader-threads", "2",
        "--no-progress", "--no-outputs")
    assert np.isfinite(json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["train_softmax"])
