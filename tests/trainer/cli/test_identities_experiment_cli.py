"""The many-identities experiment end to end (scripts/experiments/identities_experiment.py, `make
identities`): a small font data set, `centerloss train` on its training fonts and `centerloss
openset --pairs` on its held-out fonts (the trainer's own LFW reader), the table and figures, a
second call that finds every run done, and the held-out features for TensorBoard's projector."""
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from google.protobuf import text_format
from PIL import Image
from tensorboard.plugins import projector

from cli_runner import CLI, ROOT, require_cli

require_cli()
SCRIPTS = os.path.join(ROOT, "scripts")
DRIVER = os.path.join(SCRIPTS, "experiments", "identities_experiment.py")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("identities")
    data, out = root / "data", root / "exp"
    subprocess.run([sys.executable, os.path.join(SCRIPTS, "make_font_identities.py"), str(data),
                    "--max-identities", "30", "--heldout", "10", "--per-class", "8",
                    "--test-per-class", "2", "--heldout-per-class", "4", "--sets", "2",
                    "--pairs-per-set", "10", "--size", "32x32"], check=True, capture_output=True)
    cmd = [sys.executable, DRIVER, "--cli", CLI, "--out", str(out), "--data", str(data),
           "--dims", "4", "--lambdas", "0,0.1", "--seeds", "1", "--epochs", "2",
           "--threads", "2", "--train-args", "--lr 0.05 --batch-size 16 --no-flip --loader-threads 0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return data, out, cmd


def test_runs_train_on_some_fonts_and_verify_the_others(experiment):
    data, out, _ = experiment
    heldout = sorted(os.listdir(data / "heldout"))
    training = sorted(os.listdir(data / "train"))
    for name in ("D4_lambda0_seed1", "D4_lambda0.1_seed1"):
        report = json.loads((out / name / "openset.json").read_text())
        assert report["class_names"][:len(training)] == training  # the run's identities first
        assert sorted(report["class_names"][len(training):]) == heldout
        v = report["open_set"]["verification"]
        assert v["folds"] == 2 and v["genuine"] == 20 and v["impostors"] == 20
        assert len(report["open_set"]["classes"]) == len(heldout)
        assert report["open_set"]["trained_classes_evaluated"] == []
        assert report["closed_set"]["samples"] == 0
        assert float((out / name / "seconds.txt").read_text()) > 0


def test_table_and_figures(experiment):
    data, out, _ = experiment
    table = (out / "table.md").read_text()
    assert "from %s" % (data / "pairs.txt") in table
    assert "40 pairs (20 genuine / 20 impostor, 2 folds)" in table
    rows = [line for line in table.splitlines() if line.startswith("| 4 |")]
    assert len(rows) == 2 and "0 (softmax)" in rows[0] and "| 0.1 |" in rows[1]
    # Closed-set accuracy: the held-out folder has no trained font, so the run's last epoch on
    # --test-data gives it.
    epochs = [json.loads(line) for line in (out / "D4_lambda0_seed1" / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in epochs if r["kind"] == "epoch"][-1]["test_accuracy"]
    assert rows[0].split("|")[4].strip() == "%.4f ± 0.0000" % last, rows[0]
    for figure in ("roc.png", "lambda.png", "curves.png"):
        assert (out / figure).stat().st_size > 10_000


def test_a_second_call_finds_every_run_done(experiment):
    _, out, cmd = experiment
    checkpoint = out / "D4_lambda0_seed1" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "2 runs, 2 already done" in again.stderr, again.stderr
    assert checkpoint.stat().st_mtime_ns == before


def test_projector_export_of_the_heldout_fonts(experiment):
    data, out, _ = experiment
    run = out / "D4_lambda0.1_seed1"
    export = [sys.executable, os.path.join(SCRIPTS, "experiments", "export_projector.py"), str(run),
              "--data", str(data / "heldout"), "--cli", CLI]
    result = subprocess.run(export, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    folder = run / "projector"
    config = text_format.Parse((folder / "projector_config.pbtxt").read_text(), projector.ProjectorConfig())
    (embedding,) = config.embeddings
    tensors = (folder / embedding.tensor_path).read_text().splitlines()
    metadata = (folder / embedding.metadata_path).read_text().splitlines()
    heldout = sorted(os.listdir(data / "heldout"))
    assert len(tensors) == 4 * len(heldout) and all(len(t.split("\t")) == 4 for t in tensors)
    assert metadata[0] == "identity\tfile" and len(metadata) == len(tensors) + 1
    rows = [m.split("\t") for m in metadata[1:]]
    assert sorted({r[0] for r in rows}) == heldout
    assert all(r[1].startswith(r[0] + "_") for r in rows)  # each line's file is its identity's
    side = math.ceil(math.sqrt(len(tensors))) * 32
    assert Image.open(folder / embedding.sprite.image_path).size == (side, side)
    assert list(embedding.sprite.single_image_dim) == [32, 32]
    again = subprocess.run(export, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0 and "already" in again.stderr  # an export is never overwritten


def test_d2_runs_train_on_their_own_fonts_and_schedule_and_draw_the_scatter(experiment, tmp_path):
    data, _, _ = experiment
    out = tmp_path / "d2"
    cmd = [sys.executable, DRIVER, "--cli", CLI, "--out", str(out), "--data", str(data),
           "--dims", "2,3", "--lambdas", "0.1", "--seeds", "1", "--epochs", "1", "--fonts-2d", "5",
           "--per-font-2d", "12", "--epochs-2d", "2", "--lr-step-2d", "1", "--train-args-2d", "--lr 0.03",
           "--threads", "2", "--train-args", "--lr 0.05 --batch-size 16 --no-flip --loader-threads 0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    training = sorted(os.listdir(data / "train"))
    spread = [training[i * len(training) // 5] for i in range(5)]
    assert len(training) == 20
    data_2d = str(data) + "-2d-5x12"  # written beside the data set, with its generator options
    assert sorted(os.listdir(os.path.join(data_2d, "train"))) == spread
    assert all(len(os.listdir(os.path.join(data_2d, "train", f))) == 12 for f in spread)
    assert all(len(os.listdir(os.path.join(data_2d, "test", f))) == 1 for f in spread)
    d2 = json.loads((out / "D2_lambda0.1_seed1" / "config.json").read_text())
    assert d2["class_names"] == spread and d2["data_dir"] == os.path.join(data_2d, "train")
    assert (d2["epochs"], d2["lr_step"], d2["lr"], d2["batch_size"]) == (2, 1, 0.03, 16)
    d3 = json.loads((out / "D3_lambda0.1_seed1" / "config.json").read_text())
    assert d3["class_names"] == training and (d3["epochs"], d3["lr"]) == (1, 0.05)  # only D = 2
    assert (pathlib.Path(data_2d) / "pairs.txt").read_text() == (data / "pairs.txt").read_text()
    heldout = sorted(os.listdir(data / "heldout"))
    for name, trained in (("D2_lambda0.1_seed1", spread), ("D3_lambda0.1_seed1", training)):
        report = json.loads((out / name / "openset.json").read_text())  # the same held-out pairs
        assert report["class_names"][:len(trained)] == trained
        assert sorted(report["class_names"][len(trained):]) == heldout
        assert report["open_set"]["verification"]["genuine"] == 20
    trained_on = "D = 2: 0,1,2,3,4; D = 3: %s)" % ",".join(map(str, range(20)))
    assert trained_on in (out / "table.md").read_text()
    assert (out / "scatter.png").stat().st_size > 10_000

    # The data set made again with another seed: the 2-D set beside it is stale (its fonts may be
    # held out now), so the experiment stops and leaves it as it is.
    again = tmp_path / "again"
    shutil.copytree(data, again)
    shutil.copytree(data_2d, str(again) + "-2d-5x12")
    manifest = json.loads((again / "fonts.json").read_text())
    manifest["args"]["seed"] += 1
    (again / "fonts.json").write_text(json.dumps(manifest))
    before = (pathlib.Path(str(again) + "-2d-5x12") / "fonts.json").read_text()
    stale = subprocess.run([sys.executable, DRIVER, "--cli", CLI, "--out", str(tmp_path / "d2-again"),
                            "--data", str(again), "--dims", "2", "--fonts-2d", "5", "--per-font-2d", "12"],
                           capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1 and "other generator options" in stale.stderr and "(seed)" in stale.stderr
    assert (pathlib.Path(str(again) + "-2d-5x12") / "fonts.json").read_text() == before
    assert not (tmp_path / "d2-again").exists()


def test_dim_train_args_are_checked_and_part_of_the_stored_options(experiment, tmp_path):
    data, _, _ = experiment
    driver = os.path.join(SCRIPTS, "experiments", "openset_experiment.py")
    base = [sys.executable, driver, "--cli", CLI, "--out", str(tmp_path / "x"),
            "--data", str(data / "train"), "--openset-data", str(data / "heldout"),
            "--pairs", str(data / "pairs.txt"), "--dims", "2", "--lambdas", "0", "--seeds", "1",
            "--epochs", "1", "--train-args", "--batch-size 16 --no-flip --loader-threads 0"]
    bad = subprocess.run(base + ["--dim-train-args", "two:--classes 0,1"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--dim-train-args takes D:OPTIONS" in bad.stderr, bad.stderr
    first = subprocess.run(base + ["--dim-train-args", "2:--classes 0,1"], capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    assert json.loads((tmp_path / "x" / "D2_lambda0_seed1" / "config.json").read_text())["classes"] == [0, 1]
    other = subprocess.run(base + ["--resume", "--dim-train-args", "2:--classes 0,2"],
                           capture_output=True, text=True, timeout=60)
    assert other.returncode != 0 and "--dim-train-args" in other.stderr, other.stderr


def test_d2_data_set_needs_the_generators_manifest(tmp_path):
    # Image folders not written by make_font_identities.py: no options to copy for D = 2.
    data = tmp_path / "faces"
    for side in ("train", "test", "heldout"):
        (data / side).mkdir(parents=True)
    (data / "pairs.txt").write_text("1\t1\n")
    cmd = [sys.executable, DRIVER, "--cli", CLI, "--out", str(tmp_path / "x"), "--data", str(data),
           "--dims", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no fonts.json" in result.stderr and "--fonts-2d 0" in result.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "faces-2d-10x600").exists()
