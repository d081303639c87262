"""centerloss for a Keras user on jax or tensorflow: `pip install .` into a fresh virtual
environment that has keras, jax and tensorflow but no torch, and no compiler (CC and CXX are
/bin/false). The build of the library fails and pip retries it as a pure-Python wheel
(pyproject.toml); centerloss.keras then trains on both backends without torch. The torch user's
install (the compiled package, the C++ op behind the layer) is in test_pip_install.py."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from install_helpers import REPO, make_venv, run, site_packages

CONSUMER = Path(__file__).with_name("keras_consumer.py")


def pip_install(python: Path, root: Path, env: dict, check=True):
    # A fresh build dir, so CMake configures (and fails) as on a user's machine; no index.
    return run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--quiet",
                f"-Cbuild-dir={root / 'build'}", str(REPO)], cwd=root, env=env, check=check)


def user_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CENTERLOSS_NATIVE", "CENTERLOSS_LIBRARY", "PYTHONPATH")}
    return env | {"TF_CPP_MIN_LOG_LEVEL": "2"} | extra


@pytest.fixture(scope="module")
def keras_user(tmp_path_factory):
    root = tmp_path_factory.mktemp("keras_user")
    python = make_venv(root / "venv", without_torch=True)
    assert run([python, "-c", "import torch"], cwd=root, check=False).returncode != 0, \
        "the environment without torch can import torch"
    pip_install(python, root, user_env(CC="/bin/false", CXX="/bin/false"))
    return python, root


def test_the_install_is_a_pure_python_wheel(keras_user):
    python, _ = keras_user
    package = site_packages(python) / "centerloss"
    assert (package / "keras" / "layer.py").is_file()
    assert not (package / "_lib").exists(), "a compiled library was installed"
    wheel = next(site_packages(python).glob("centerloss-*.dist-info")) / "WHEEL"
    assert "Tag: py3-none-any" in wheel.read_text(), wheel.read_text()


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_keras_layer_trains_without_torch(keras_user, backend):
    python, root = keras_user
    out = run([python, CONSUMER], cwd=root, env=user_env(KERAS_BACKEND=backend)).stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert report["backend"] == backend
    assert Path(report["package"]).is_relative_to(site_packages(python) / "centerloss")
    assert not report["torch_imported"]
    assert report["max_error"] < 1e-5 and report["skipped"] == 0, report


def test_the_pytorch_api_says_what_to_install(keras_user):
    python, root = keras_user
    result = run([python, "-c", "import centerloss; centerloss.CenterLoss"], cwd=root,
                 env=user_env(), check=False)
    assert result.returncode != 0
    assert "needs torch and the compiled library" in result.stderr, result.stderr[-2000:]


def test_native_required_fails_without_torch(tmp_path):
    """CENTERLOSS_NATIVE=1: no fallback; the error names the missing torch."""
    python = make_venv(tmp_path / "venv", without_torch=True)
    result = pip_install(python, tmp_path, user_env(CENTERLOSS_NATIVE="1"), check=False)
    assert result.returncode != 0
    assert "no torch found" in result.stdout + result.stderr, result.stderr[-3000:]
    assert run([python, "-c", "import centerloss"], cwd=tmp_path, check=False).returncode != 0
