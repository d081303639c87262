"""The many-identities experiment end to end (scripts/experiments/identities_experiment.py, `make
identities`): a small font data set, `centerloss train` on its training fonts and `centerloss
openset --pairs` on its held-out fonts (the trainer's own LFW reader), the table and figures,
and a second call that finds every run done."""
import json
import os
import subprocess
import sys

from cli_runner import CLI, ROOT, require_cli

require_cli()
DRIVER = os.path.join(ROOT, "scripts", "experiments", "identities_experiment.py")


def test_small_grid_trains_evaluates_on_unseen_fonts_and_resumes(tmp_path):
    data, out = tmp_path / "data", tmp_path / "exp"
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "make_font_identities.py"),
                    str(data), "--max-identities", "30", "--heldout", "10", "--per-class", "8",
                    "--test-per-class", "2", "--heldout-per-class", "4", "--sets", "2",
                    "--pairs-per-set", "10", "--size", "32x32"], check=True, capture_output=True)
    heldout = sorted(os.listdir(data / "heldout"))
    training = sorted(os.listdir(data / "train"))
    cmd = [sys.executable, DRIVER, "--cli", CLI, "--out", str(out), "--data", str(data),
           "--dims", "4", "--lambdas", "0,0.1", "--seeds", "1", "--epochs", "2",
           "--threads", "2", "--train-args", "--lr 0.05 --batch-size 16 --no-flip --loader-threads 0"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
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
    table = (out / "table.md").read_text()
    assert "from %s" % (data / "pairs.txt") in table and "40 pairs (20 genuine / 20 impostor, 2 folds)" in table
    rows = [line for line in table.splitlines() if line.startswith("| 4 |")]
    assert len(rows) == 2 and "0 (softmax)" in rows[0] and "| 0.1 |" in rows[1]
    assert "nan" not in rows[0]  # closed-set accuracy comes from the run's --test-data epochs
    for figure in ("roc.png", "lambda.png", "curves.png"):
        assert (out / figure).stat().st_size > 10_000
    checkpoint = out / "D4_lambda0_seed1" / "checkpoint.pt"
    before = checkpoint.stat().st_mtime_ns
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "2 runs, 2 already done" in again.stderr, again.stderr
    assert checkpoint.stat().st_mtime_ns == before
