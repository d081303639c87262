"""`centerloss` on image folders, end to end: train (RGB, resize and centre-crop, flips), eval,
embed with its class and file lists, openset with an LFW pairs file over image files and
--flip-concat, and the bad files of a user's folder (truncated, corrupt, empty, text named .jpg,
a decompression bomb), which stop a run naming the file or are skipped and listed.

The folders come from scripts/make_image_folder.py (the generator docs/face-data.md uses),
with some files rewritten grey, RGBA or at other sizes. The command is found by cli_runner.py.
"""
import json
import os
import random
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from cli_runner import ROOT, require_cli, run

require_cli()
sys.path.insert(0, os.path.join(ROOT, "scripts"))
from make_image_folder import identity_style, write_identity  # noqa: E402

FAST = ["--arch", "small", "--threads", "2", "--no-progress", "--batch-size", "16"]


def make_folder(root, names, per_class):
    """root/<name>/<name>_NNNN.{jpg,png} at two sizes (40x40, 48x44), a non-image file in each."""
    rng = random.Random(0)
    for k, name in enumerate(names):
        half = per_class // 2
        write_identity(root, name, identity_style(k), half, (40, 40), rng)
        write_identity(root, name, identity_style(k), per_class - half, (44, 48), rng, first=half + 1)
        (root / name / "Thumbs.db").write_bytes(b"not an image")
    return root


def bomb_png(width, height):
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
            + bytes(64))


BAD_BYTES = {"empty": b"", "text": b"this is a text file\n", "bomb": bomb_png(60000, 60000)}


def write_bad_files(folder):
    """The bad files of issue 16 in one class folder; returns {kind: path}."""
    image = Image.new("RGB", (40, 40), (200, 30, 30))
    image.save(folder / "truncated.jpg")
    jpeg = (folder / "truncated.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    image.save(folder / "corrupt.png")
    png = bytearray((folder / "corrupt.png").read_bytes())
    at = png.find(b"IDAT") + 8
    png[at:at + 16] = bytes(b ^ 0xFF for b in png[at:at + 16])
    (folder / "corrupt.png").write_bytes(bytes(png))
    paths = {"truncated": folder / "truncated.jpg", "corrupt": folder / "corrupt.png",
             "empty": folder / "empty.jpg", "text": folder / "notes.jpg", "bomb": folder / "bomb.png"}
    for kind, data in BAD_BYTES.items():
        paths[kind].write_bytes(data)
    return {kind: str(path) for kind, path in paths.items()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("faces")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_image_folder.py"), str(root),
                    "--classes", "3", "--per-class", "16", "--test-per-class", "4", "--heldout", "2",
                    "--heldout-per-class", "6", "--sets", "2", "--pairs-per-set", "4",
                    "--size", "40x36"], check=True, capture_output=True)
    # Grey, RGBA and larger files among the training images.
    for k, path in enumerate(sorted((root / "train" / "id00001").iterdir())[:6]):
        image = Image.open(path)
        image = image.resize((54, 60)) if k % 3 == 2 else image
        image.convert("L" if k % 3 == 0 else "RGBA" if k % 3 == 1 else "RGB").save(path.with_suffix(".png"))
        if path.suffix != ".png":
            path.unlink()
    return root


@pytest.fixture(scope="module")
def run_dir(folders):
    out = folders / "run"
    result = run("train", "--out", str(out), "--data", str(folders / "train"),
                 "--test-data", str(folders / "test"), "--image-size", "32x28",
                 "--feature-dim", "8", "--epochs", "10", "--lr", "0.05", "--no-outputs", *FAST)
    assert "closed-set test accuracy" in result.stdout, result.stdout
    return out


def test_train_records_classes_shape_and_loader_figures(run_dir):
    config = json.loads((run_dir / "config.json").read_text())
    assert config["class_names"] == ["id00000", "id00001", "id00002"]
    assert config["image_size"] == [32, 28] and config["channels"] == 3 and config["flip"] is True
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == 10
    last = epochs[-1]
    assert last["test_accuracy"] >= 0.9, last  # 12 test images of three distinct identities
    assert last["images_per_s"] > 0 and last["decode_images_per_s"] > 0
    assert last["data_wait_s"] >= 0 and last["bad_images"] == 0


def test_eval_and_embed_map_classes_by_name(run_dir, folders):
    result = run("eval", "--run", str(run_dir), "--json")
    assert json.loads(result.stdout)["samples"] == 12
    out = folders / "feats.pt"
    run("embed", "--run", str(run_dir), "--out", str(out), "--data", str(folders / "heldout"),
        "--flip-concat")
    features, labels, centers, classes = torch.load(out)
    assert features.shape == (12, 16) and centers.shape == (3, 8)  # flip-concat: 2 x D
    names = (folders / "feats.classes.txt").read_text().split()
    assert names == ["id00000", "id00001", "id00002", "id00003", "id00004"]  # the run's ids first
    files = (folders / "feats.files.txt").read_text().split()
    assert [names[k] for k in labels.tolist()] == [os.path.basename(os.path.dirname(f)) for f in files]
    assert files[0].endswith("id00003/id00003_0001.png")


def test_openset_reads_lfw_pairs_over_image_files(run_dir, folders):
    # make_image_folder.py's pairs.txt: both line forms, names DIR/name/name_NNNN.<png|jpg>.
    pairs = folders / "pairs.txt"
    lines = pairs.read_text().splitlines()
    assert len(lines[1].split()) == 3 and len(lines[5].split()) == 4
    for flip_concat in ([], ["--flip-concat"]):
        out = folders / f"openset{len(flip_concat)}.json"
        result = run("openset", "--run", str(run_dir), "--data", str(folders / "heldout"),
                     "--pairs", str(pairs), "--out", str(out), "--no-plot", *flip_concat)
        assert "verification acc" in result.stdout
        report = json.loads(out.read_text())
        assert report["flip_concat"] == bool(flip_concat)
        assert report["class_names"][3:] == ["id00003", "id00004"]
        v = report["open_set"]["verification"]
        assert v["genuine"] == 8 and v["impostors"] == 8 and v["folds"] == 2
        assert report["open_set"]["trained_classes_evaluated"] == []
    name, first, second = lines[1].split()
    missing = folders / "pairs_missing.txt"
    missing.write_text("\n".join([lines[0], f"{name}\t{first}\t9"] + lines[2:]) + "\n")
    bad = run("openset", "--run", str(run_dir), "--data", str(folders / "heldout"),
              "--pairs", str(missing), "--no-plot", check=False)
    assert bad.returncode != 0
    assert f"no image {folders / 'heldout' / name / (name + '_0009')}.*" in bad.stderr, bad.stderr


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
    for kind, data_bytes in BAD_BYTES.items():
        open(bad[kind], "wb").write(data_bytes)
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
        "--no-progress", "--python", sys.executable)
    assert np.isfinite(json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["train_softmax"])
    # No test split: a report and training curves, no test features or scatter.
    assert "No test split (--test-data): no test accuracy" in (out / "report.md").read_text()
    assert (out / "curves.png").stat().st_size > 10_000
    assert not (out / "test_features.pt").exists() and not (out / "scatter.png").exists()
