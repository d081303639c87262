"""`centerloss train` on small runs: a diverged run trained on still reporting, a cut-off
metrics line, and input checks that fail early (run folders: test_run_folder.py; divergence:
test_divergence.py).

The command is found by cli_runner.py ($CENTERLOSS_CLI, else the default build folder).
"""
import gzip
import os
import struct

from cli_runner import require_cli, run

require_cli()

SMALL = ["--arch", "small", "--train-limit", "300", "--test-limit", "100", "--threads", "2",
         "--no-progress"]


def test_a_diverged_run_trained_on_still_writes_its_report(tmp_path):
    out = str(tmp_path / "diverged")
    result = run("train", "--out", out, "--lr", "1e6", "--epochs", "1", "--python", "/bin/false",
                 "--on-nonfinite", "continue", *SMALL)
    assert "the loss is not finite" in result.stderr and "training on" in result.stderr
    # The run did diverge (its metrics hold null for NaN), and the report says so.
    assert "null" in open(os.path.join(out, "metrics.jsonl")).read()
    report = open(os.path.join(out, "report.md")).read()
    assert "nan" in report, report
    assert "trained 1 epochs" in result.stdout


def test_a_cut_off_last_metrics_line_does_not_block_resume(tmp_path):
    out = str(tmp_path / "run")
    run("train", "--out", out, "--epochs", "1", "--no-outputs", *SMALL)
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:
        f.write('{"kind":"step","epoch":2,"st')
    result = run("train", "--out", out, "--resume", "--epochs", "2", "--no-outputs",
                 "--no-progress")
    assert "dropping the incomplete last line" in result.stderr
    fewer = run("train", "--out", out, "--resume", "--epochs", "1", "--no-outputs", check=False)
    assert fewer.returncode != 0 and "--epochs must be at least that" in fewer.stderr
    same = run("train", "--out", out, "--resume", "--epochs", "2", "--threads", "1",
               "--no-outputs", "--no-progress")
    assert "the continued run will not be bitwise the same" in same.stderr
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:
        f.write('not json\n{"kind":"epoch"}\n')
    broken = run("train", "--out", out, "--resume", "--epochs", "3", "--no-outputs",
                 "--no-progress", check=False)
    assert broken.returncode != 0 and "metrics.jsonl: line" in broken.stderr, broken.stderr


def test_negative_limits_are_refused(tmp_path):
    # (A limit that were accepted would train quickly here and leave a checkpoint.)
    for option in ("--train-limit", "--test-limit"):
        out = tmp_path / option.strip("-")
        result = run("train", "--out", str(out), "--arch", "small", "--epochs", "1",
                     "--no-outputs", "--no-progress", option, "-5", check=False)
        assert result.returncode != 0 and option in result.stderr, result.stderr
        assert not (out / "checkpoint.pt").exists()


def _write_idx(path, array_bytes, dims, kind):
    magic = {"images": 0x00000803, "labels": 0x00000801}[kind]
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims))
        f.write(array_bytes)


def test_test_images_of_another_size_fail_before_training(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    n = 20
    _write_idx(data / "train-images-idx3-ubyte.gz", bytes(n * 28 * 28), (n, 28, 28), "images")
    _write_idx(data / "train-labels-idx1-ubyte.gz", bytes(i % 2 for i in range(n)), (n,), "labels")
    _write_idx(data / "t10k-images-idx3-ubyte.gz", bytes(n * 32 * 32), (n, 32, 32), "images")
    _write_idx(data / "t10k-labels-idx1-ubyte.gz", bytes(i % 2 for i in range(n)), (n,), "labels")
    result = run("train", "--out", str(tmp_path / "run"), "--data", str(data), "--arch", "small",
                 "--epochs", "1", "--no-progress", "--no-outputs", check=False)
    assert result.returncode != 0
    assert "test images are [1, 32, 32] but training images are [1, 28, 28]" in result.stderr, result.stderr
    assert not os.path.exists(tmp_path / "run" / "checkpoint.pt")


def test_classes_without_training_samples_are_named(tmp_path):
    """The class count is the largest label + 1: a stray label makes empty classes, which still
    get an output and a center. The trainer says so."""
    data = tmp_path / "data"
    data.mkdir()
    n = 30
    labels = bytes([0, 1, 5] * (n // 3))
    for prefix in ("train", "t10k"):
        _write_idx(data / f"{prefix}-images-idx3-ubyte.gz", bytes(range(256)) * (n * 28 * 28 // 256)
                   + bytes(n * 28 * 28 % 256), (n, 28, 28), "images")
        _write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", labels, (n,), "labels")
    result = run("train", "--out", str(tmp_path / "run"), "--data", str(data), "--arch", "small",
                 "--epochs", "1", "--no-progress", "--no-outputs", "--threads", "2")
    assert "3 of 6 classes have no training sample (2,3,4)" in result.stderr, result.stderr
    full = run("train", "--out", str(tmp_path / "run2"), "--data", str(data), "--classes", "0,1,5",
               "--arch", "small", "--epochs", "1", "--no-progress", "--no-outputs")
    assert "no training sample" not in full.stderr
