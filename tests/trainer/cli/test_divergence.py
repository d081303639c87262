"""A non-finite loss stops the run at once (exit code 3) with a message that says where, keeps
the last good checkpoint and records the stop (metrics.jsonl, diverged.json); the drivers
(`sweep`, the open-set experiment) record such a run as diverged and go on."""
import json
import os
import subprocess
import sys

from cli_runner import CLI, ROOT, require_cli, run
from run_check import TINY, checkpoint_loads, checkpoint_state

require_cli()

DIVERGED = 3
# 1e6 makes the first step's update blow the weights up: step 2's loss is not finite.
EXPLODE = ["--lr", "1e6"]


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    out = str(tmp_path / "run")
    result = run("train", "--out", out, "--epochs", "3", "--checkpoint-every", "1", *EXPLODE,
                 *TINY, check=False)
    assert result.returncode == DIVERGED, result.stderr
    assert "the loss is not finite at epoch 1, step 2 of 10" in result.stderr, result.stderr
    assert "after epoch 0, step 1" in result.stderr and "--on-nonfinite continue" in result.stderr
    # The checkpoint of step 1, written before the loss turned, loads.
    state = checkpoint_state(out)
    assert state["epoch"].item() == 0 and state["progress_counts"][0].item() == 1
    checkpoint_loads(out, str(tmp_path))
    records = [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
    assert records[-1]["kind"] == "diverged" and records[-1]["step"] == 2
    assert not any(r["kind"] == "epoch" for r in records)  # no NaN epoch was trained
    with open(os.path.join(out, "diverged.json")) as f:
        assert "not finite" in json.load(f)["message"]


def test_a_run_that_diverges_before_any_checkpoint_says_so(tmp_path):
    out = str(tmp_path / "run")
    result = run("train", "--out", out, "--epochs", "1", *EXPLODE, *TINY, check=False)
    assert result.returncode == DIVERGED
    assert "No checkpoint had been written yet" in result.stderr
    assert not os.path.exists(os.path.join(out, "checkpoint.pt"))


def test_sweep_records_a_diverged_run_and_goes_on(tmp_path):
    out = str(tmp_path / "sweep")
    # lambda 1000 pulls the features into the centers so hard that the steps overshoot
    result = run("sweep", "--out", out, "--lambdas", "1000,0", "--epochs", "1", *TINY)
    with open(os.path.join(out, "sweep.json")) as f:
        runs = {r["lambda"]: r for r in json.load(f)}
    assert runs[1000]["status"] == "diverged" and runs[1000]["test_accuracy"] is None
    assert runs[0]["status"] == "finished" and runs[0]["epochs"] == 1
    assert "| 1000 | diverged |" in result.stdout
    # Continued: the diverged run is not trained again.
    again = run("sweep", "--out", out, "--lambdas", "1000,0", "--epochs", "1", "--resume", *TINY)
    assert "not trained again" in again.stderr


def test_the_openset_experiment_records_a_diverged_run_and_goes_on(tmp_path):
    out = str(tmp_path / "experiment")
    script = os.path.join(ROOT, "scripts", "experiments", "openset_experiment.py")
    cmd = [sys.executable, script, "--cli", CLI, "--out", out, "--dims", "2", "--lambdas", "0,1000",
           "--seeds", "1", "--epochs", "1", "--train-limit", "300",
           "--train-args", "--test-limit 100 --batch-size 30",
           "--openset-args", "--folds 2 --pairs-per-fold 20"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "D2_lambda1000_seed1 diverged" in result.stderr
    assert os.path.exists(os.path.join(out, "D2_lambda0_seed1", "openset.json"))
    table = open(os.path.join(out, "table.md")).read()
    assert "Diverged" in table and "D2_lambda1000_seed1" in table
