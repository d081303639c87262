"""examples/pytorch_fashion_mnist.py on real Fashion-MNIST: a few steps in one process, and in
two data-parallel processes (DistributedDataParallel on Gloo), whose centers must end equal."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pytorch_fashion_mnist.py"


def load_example():
    spec = importlib.util.spec_from_file_location("pytorch_fashion_mnist", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    # Registered under its name: the spawned ranks unpickle their entry point from it (the
    # example puts examples/ on sys.path, which they inherit).
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_one_process_learns_in_thirty_steps(tmp_path):
    example = load_example()
    result = example.main(["--steps", "30", "--eval-samples", "1000", "--quiet", "--threads", "2",
                           "--out", str(tmp_path / "r.json")])
    assert result["steps"] == 30 and result["processes"] == 1
    assert result["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    assert result["skipped_center_updates"] == 0
    assert result["test_center_loss"] > 0 and result["mean_center_distance"] > 0
    assert (tmp_path / "r.json").read_text().strip().startswith("{")


def test_two_processes_keep_identical_centers():
    example = load_example()
    result = example.main(["--steps", "10", "--eval-samples", "500", "--quiet", "--nproc", "2",
                           "--threads", "1"])
    assert result["processes"] == 2 and result["steps"] == 10
    assert result["centers_max_difference_across_ranks"] == 0.0
    assert result["test_accuracy"] > 0.2
