"""A run folder is never overwritten silently: `train` and `sweep` refuse a folder that holds
another run unless --resume (continue) or --overwrite (start again) says which; a resume
accepts the run's own options repeated and refuses only real changes, naming the option, the
stored value and the new one; `--resume auto` continues or starts."""
import os

from cli_runner import require_cli, run
from run_check import TINY, metrics

require_cli()


def test_train_refuses_a_folder_holding_a_run(tmp_path):
    out = str(tmp_path / "run")
    run("train", "--out", out, "--epochs", "1", *TINY)
    before = open(os.path.join(out, "checkpoint.pt"), "rb").read()
    again = run("train", "--out", out, "--epochs", "1", *TINY, check=False)
    assert again.returncode != 0
    assert "holds another run (checkpoint.pt" in again.stderr, again.stderr
    assert "--resume" in again.stderr and "--overwrite" in again.stderr
    assert open(os.path.join(out, "checkpoint.pt"), "rb").read() == before
    # a folder with other files (a driver's log) is not a run: training there is fine
    other = tmp_path / "other"
    other.mkdir()
    (other / "log.txt").write_text("kept\n")
    run("train", "--out", str(other), "--epochs", "1", *TINY)
    assert (other / "log.txt").read_text() == "kept\n"


def test_overwrite_starts_again_and_keeps_other_files(tmp_path):
    out = tmp_path / "run"
    run("train", "--out", str(out), "--epochs", "1", "--seed", "3", *TINY)
    (out / "notes.txt").write_text("mine\n")
    run("train", "--out", str(out), "--epochs", "1", "--seed", "4", "--overwrite", *TINY)
    assert (out / "notes.txt").read_text() == "mine\n"
    assert '"seed": 4' in (out / "config.json").read_text()
    assert len([r for r in metrics(str(out)) if r["kind"] == "epoch"]) == 1
    both = run("train", "--out", str(out), "--overwrite", "--resume", *TINY, check=False)
    assert both.returncode != 0 and "excludes" in both.stderr


def test_resume_accepts_the_same_options_and_names_a_real_change(tmp_path):
    out = str(tmp_path / "run")
    run("train", "--out", out, "--epochs", "1", "--lambda", "0.1", *TINY)
    # The very same command with --resume added (here with more epochs) continues.
    same = run("train", "--out", out, "--epochs", "2", "--lambda", "0.1", "--resume", *TINY)
    assert "resuming" in same.stderr and "after epoch 1" in same.stderr
    changed = run("train", "--out", out, "--epochs", "3", "--train-limit", "600", "--lr", "0.2",
                  "--resume", "--no-progress", "--no-outputs", check=False)
    assert changed.returncode != 0
    assert "--train-limit 300 (now 600)" in changed.stderr, changed.stderr
    assert "--lr 0.01 (now 0.2)" in changed.stderr
    assert "--lambda" not in changed.stderr  # not given: the stored value is used
    held = run("train", "--out", out, "--epochs", "3", "--holdout", "9", "--resume",
               "--no-progress", "--no-outputs", check=False)
    assert "--classes/--holdout [0,1,2,3,4,5,6,7,8,9] (now [0,1,2,3,4,5,6,7,8])" in held.stderr
    # Options outside the config (run handling, output) may change freely.
    run("train", "--out", out, "--epochs", "2", "--resume", "--checkpoint-every", "5",
        "--on-nonfinite", "continue", "--no-progress", "--no-outputs")


def test_resume_needs_a_checkpoint_and_auto_starts_without_one(tmp_path):
    out = str(tmp_path / "run")
    missing = run("train", "--out", out, "--epochs", "1", "--resume", *TINY, check=False)
    assert missing.returncode != 0 and "has no checkpoint.pt to continue" in missing.stderr
    started = run("train", "--out", out, "--epochs", "1", "--resume", "auto", *TINY)
    assert "resuming" not in started.stderr
    continued = run("train", "--out", out, "--epochs", "2", "--resume", "auto", *TINY)
    assert "after epoch 1" in continued.stderr
    bad = run("train", "--out", out, "--resume", "always", *TINY, check=False)
    assert bad.returncode != 0 and "expected nothing or 'auto'" in bad.stderr


def test_resume_auto_refuses_results_without_a_checkpoint(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "report.md").write_text("a finished run's report\n")
    result = run("train", "--out", str(out), "--resume", "auto", *TINY, check=False)
    assert result.returncode != 0 and "holds results (report.md)" in result.stderr
    assert (out / "report.md").read_text() == "a finished run's report\n"


def test_sweep_refuses_a_folder_holding_a_sweep_and_continues_on_resume(tmp_path):
    out = str(tmp_path / "sweep")
    run("sweep", "--out", out, "--lambdas", "0.01", "--epochs", "1", *TINY)
    again = run("sweep", "--out", out, "--lambdas", "0.01", "--epochs", "1", *TINY, check=False)
    assert again.returncode != 0 and "holds a sweep" in again.stderr, again.stderr
    changed = run("sweep", "--out", out, "--lambdas", "0.01", "--epochs", "2", "--lr", "0.2",
                  "--seed", "9", "--resume", *TINY, check=False)
    assert changed.returncode != 0
    assert "--lr 0.01 (now 0.2)" in changed.stderr and "--seed 1 (now 9)" in changed.stderr
    same = run("sweep", "--out", out, "--lambdas", "0.01,0.1", "--epochs", "2", "--resume", *TINY)
    assert "resuming" in same.stderr and "after epoch 1" in same.stderr
    assert os.path.exists(os.path.join(out, "lambda_0.1", "checkpoint.pt"))  # a new lambda starts
    fresh = run("sweep", "--out", out, "--lambdas", "0.01", "--epochs", "1", "--overwrite", *TINY)
    assert "resuming" not in fresh.stderr
    assert not os.path.exists(os.path.join(out, "lambda_0.1", "checkpoint.pt"))
    twice = run("sweep", "--out", out, "--lambdas", "0.01,0.010", "--resume", *TINY, check=False)
    assert twice.returncode != 0 and "listed twice" in twice.stderr
