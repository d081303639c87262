"""centerloss.keras on every installed Keras backend (torch: the C++ op; jax, tensorflow:
keras.ops), and parity between the backends.

Keras fixes its backend at import, so each backend runs keras_worker.py in its own
process (KERAS_BACKEND set), all started together; each of its checks becomes one test here.
A backend is skipped only when its package is not installed (requirements.txt installs all
three, and all three install on this machine).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
WORKER = HERE / "keras_worker.py"
BACKENDS = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}  # backend: package
CHECKS = [
    "check_training_call_moves_centers",
    "check_loss_options",
    "check_fit_moves_centers_per_spec",
    "check_eval_and_predict_do_not_move",
    "check_gradient_rule",
    "check_gradient_rule_keeps_centers_finite",
    "check_function_gives_zero_center_gradient_for_a_nan_batch",
    "check_nan_batch_skips_update",
    "check_first_sight_init",
    "check_mixed_precision",
    "check_mixed_precision_fit",
    "check_fit_step_touches_only_the_batch_rows",
    "check_fit_step_repeats_bitwise",
    "check_fit_skips_a_nan_batch",
    "check_save_load_round_trip",
    "check_bad_labels_raise",
    "check_bad_labels_under_xla_change_nothing",
    "check_narrow_integer_labels",
    "check_example_short_run",
    "check_question_model_quick_run",
    "check_torch_is_imported_only_on_the_torch_backend",
]
_workers: dict[str, tuple[subprocess.Popen, Path, Path]] = {}
_results: dict[str, dict] = {}


def _installed(backend: str) -> bool:
    return importlib.util.find_spec("keras") is not None and (
        importlib.util.find_spec(BACKENDS[backend]) is not None
    )


def backend_params():
    return [
        pytest.param(b, marks=pytest.mark.skipif(not _installed(b), reason=f"{b} not installed"))
        for b in BACKENDS
    ]


def _start(backend: str, tmp_dir: Path) -> None:
    out, log = tmp_dir / f"keras_{backend}.json", tmp_dir / f"keras_{backend}.log"
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("OMP_NUM_THREADS", "2")
    with open(log, "w") as log_file:  # a file, not a pipe: a full pipe would stall the worker
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(out)], env=env, stdout=log_file, stderr=log_file
        )
    _workers[backend] = (proc, out, log)


@pytest.fixture(scope="session")
def worker_dir(tmp_path_factory) -> Path:
    """Starts every installed backend's worker at once (most of their time is imports and
    tracing, one core each), and stops any still running at the end."""
    tmp_dir = tmp_path_factory.mktemp("keras_worker")
    for backend in BACKENDS:
        if _installed(backend):
            _start(backend, tmp_dir)
    yield tmp_dir
    for proc, _, _ in _workers.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def results_for(backend: str, tmp_dir: Path) -> dict:
    """The worker's JSON for one backend (waits for it once, then cached)."""
    if backend not in _results:
        proc, out, log = _workers[backend]
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.returncode == 0 and out.exists(), (
            f"worker for {backend} failed (rc {proc.returncode}):\n{log.read_text()[-4000:]}"
        )
        _results[backend] = json.loads(out.read_text())
        assert _results[backend]["backend"] == backend
    return _results[backend]


@pytest.mark.parametrize("check", CHECKS)
@pytest.mark.parametrize("backend", backend_params())
def test_keras_backend(backend, check, worker_dir):
    outcome = results_for(backend, worker_dir)["checks"].get(check, "check did not run")
    assert outcome == "ok", f"{check} on {backend}:\n{outcome}"


def test_worker_runs_every_check(worker_dir):
    """The list above and the worker's checks are the same (a new check cannot go unrun)."""
    backend = next((b for b in BACKENDS if _installed(b)), None)
    if backend is None:
        pytest.skip("no Keras backend installed")
    assert sorted(results_for(backend, worker_dir)["checks"]) == sorted(CHECKS)


@pytest.mark.parametrize("other", ["jax", "tensorflow"])
def test_backends_agree_with_the_cpp_op(other, worker_dir):
    """Loss, gradients (features, centers) and centers after 5 training steps: torch (the C++
    op) and the keras.ops implementation agree within float32 tolerance."""
    for b in ("torch", other):
        if not _installed(b):
            pytest.skip(f"{b} not installed")
    torch_run, other_run = results_for("torch", worker_dir), results_for(other, worker_dir)
    for run in (torch_run, other_run):
        assert "parity_error" not in run, run.get("parity_error")
    assert sorted(torch_run["parity"]) == sorted(other_run["parity"])
    assert len(torch_run["parity"]) == 12  # 6 losses, 4 gradients, 2 center tables
    for name, expected in torch_run["parity"].items():
        np.testing.assert_allclose(
            other_run["parity"][name], expected, rtol=1e-5, atol=1e-6, err_msg=name
        )
