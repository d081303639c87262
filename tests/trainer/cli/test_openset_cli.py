"""End to end: `centerloss train` on held-out classes, `centerloss openset` with its ROC figure,
the experiment table script on the result, and the CLI's refusal of bad option values.

The command is found by cli_runner.py ($CENTERLOSS_CLI, else the default build folder).
"""
import json
import os
import subprocess
import sys

import pytest

from cli_runner import ROOT, require_cli, run

require_cli()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("experiment") / "D8_lambda0.1_seed1")
    run("train", "--out", out, "--holdout", "8,9", "--feature-dim", "8", "--lambda", "0.1",
        "--epochs", "1", "--train-limit", "1200", "--test-limit", "400", "--arch", "small",
        "--threads", "2", "--no-progress", "--no-outputs")
    return out


def test_openset_writes_metrics_and_roc_figure(run_dir):
    result = run("openset", "--run", run_dir, "--pairs-per-fold", "30", "--python", sys.executable)
    assert "TAR @ FAR" in result.stdout
    with open(os.path.join(run_dir, "openset.json")) as f:
        metrics = json.load(f)
    o = metrics["open_set"]
    assert o["classes"] == [8, 9]
    v = o["verification"]
    assert v["genuine"] == 300 and v["impostors"] == 300  # 10 folds x 30 pairs of each kind
    assert 0.0 <= v["roc_auc"] <= 1.0
    far, tar = v["roc"]["far"], v["roc"]["tar"]
    assert far[0] == 0.0 and far[-1] == 1.0 and tar[-1] == 1.0
    assert all(a <= b for a, b in zip(far, far[1:])) and all(a <= b for a, b in zip(tar, tar[1:]))
    # Each TAR@FAR entry is a point of the ROC curve within its target.
    points = list(zip(far, tar))
    assert [e["far_target"] for e in v["tar_at_far"]] == [1e-2, 1e-3]
    for entry in v["tar_at_far"]:
        assert entry["far"] <= entry["far_target"] and entry["num_impostors"] == 300
        assert (entry["far"], entry["tar"]) in points
    assert os.path.getsize(os.path.join(run_dir, "openset_roc.png")) > 10_000


def test_experiment_table_reads_the_runs(run_dir):
    folder = os.path.dirname(run_dir)
    if not os.path.exists(os.path.join(run_dir, "openset.json")):
        run("openset", "--run", run_dir, "--pairs-per-fold", "30", "--no-plot")
    script = os.path.join(ROOT, "scripts", "experiments", "make_table.py")
    result = subprocess.run([sys.executable, script, folder], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(folder, "table.md")) as f:
        table = f.read()
    assert "| 8 | 0.1 |" in table
    for figure in ("roc.png", "lambda.png"):
        assert os.path.getsize(os.path.join(folder, figure)) > 10_000


def test_experiment_table_of_a_second_scoring(run_dir):
    folder = os.path.dirname(run_dir)
    run("openset", "--run", run_dir, "--pairs-per-fold", "30", "--no-plot",
        "--similarity", "euclidean", "--out", os.path.join(run_dir, "openset_euclidean.json"))
    script = os.path.join(ROOT, "scripts", "experiments", "make_table.py")
    result = subprocess.run([sys.executable, script, folder, "--metrics", "openset_euclidean.json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(folder, "table_openset_euclidean.md")) as f:
        table = f.read()
    assert "euclidean similarity" in table and "| 8 | 0.1 |" in table
    for figure in ("roc_openset_euclidean.png", "lambda_openset_euclidean.png"):
        assert os.path.getsize(os.path.join(folder, figure)) > 10_000


@pytest.mark.parametrize("metrics, table", [("openset.json", "table.md"),
                                            ("openset_euclidean.json", "table_openset_euclidean.md")])
def test_experiment_table_when_every_run_diverged(tmp_path, metrics, table):
    run_dir = tmp_path / "D8_lambda0.1_seed1"
    run_dir.mkdir()
    (run_dir / "diverged.json").write_text("{}")
    script = os.path.join(ROOT, "scripts", "experiments", "make_table.py")
    result = subprocess.run([sys.executable, script, str(tmp_path), "--metrics", metrics],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("*.md")) == [table]  # the other table untouched
    assert "No run finished" in (tmp_path / table).read_text()


@pytest.mark.parametrize("option, value", [
    ("--similarity", "manhattan"),
    ("--split", "dev"),
    ("--threads", "0"),
    ("--folds", "1"),
    ("--pairs-per-fold", "0"),
    ("--gallery-per-class", "-1"),
])
def test_openset_rejects_bad_values_before_loading(option, value, tmp_path):
    # The run folder does not exist: a value check that ran after loading would report that.
    result = run("openset", "--run", str(tmp_path / "none"), option, value, check=False)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert option in message and "does not exist" not in message, message


def test_missing_checkpoint_names_the_file(tmp_path):
    result = run("eval", "--run", str(tmp_path), check=False)
    assert result.returncode != 0
    assert "checkpoint.pt' does not exist" in result.stdout + result.stderr


def _pairs_file(path, sets, classes):
    """An LFW-layout pairs file: per set, 2 genuine then 2 impostor lines on `classes`."""
    a, b = classes
    lines = [f"{sets}\t2"] if sets > 1 else ["2"]
    for s in range(sets):
        lines += [f"{a}\t{1 + s}\t{3 + s}", f"{b}\t{1 + s}\t{3 + s}",
                  f"{a}\t{1 + s}\t{b}\t{2 + s}", f"{b}\t{3 + s}\t{a}\t{4 + s}"]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_pairs_on_trained_classes_are_flagged_not_open_set(run_dir, tmp_path):
    out = str(tmp_path / "openset.json")
    trained = run("openset", "--run", run_dir, "--pairs", _pairs_file(tmp_path / "t.txt", 2, (0, 1)),
                  "--out", out, "--no-plot")
    assert "class 0 was trained on: not open-set" in trained.stderr
    assert "class 1 was trained on: not open-set" in trained.stderr
    with open(out) as f:
        assert json.load(f)["open_set"]["trained_classes_evaluated"] == [0, 1]
    held_out = run("openset", "--run", run_dir, "--pairs", _pairs_file(tmp_path / "h.txt", 2, (8, 9)),
                   "--out", out, "--no-plot")
    assert "trained on" not in held_out.stderr
    with open(out) as f:
        assert json.load(f)["open_set"]["trained_classes_evaluated"] == []


def test_a_pairs_file_of_one_set_is_refused_with_the_reason(run_dir, tmp_path):
    result = run("openset", "--run", run_dir, "--pairs", _pairs_file(tmp_path / "one.txt", 1, (8, 9)),
                 "--no-plot", check=False)
    assert result.returncode != 0
    assert "one set of pairs" in result.stderr and "at least 2" in result.stderr, result.stderr
