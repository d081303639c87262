"""`pip install .` and `pip install -e .` into fresh virtual environments (torch borrowed, see
install_helpers.py), then the Python consumer script, the torch-version guard and
centerloss.keras (the install of a torch user: the compiled package).

The CMake builds live beside the build under test, in <build dir>-pip-{wheel,editable}
(scikit-build-core's build-dir), so after the first run only CMake's configure step and the
packaging are repeated; at the same depth as the build under test, so that ccache (which writes
paths relative to the build folder) gives the first run that build's objects."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from install_helpers import (REPO, build_env, cache_value, make_venv, project_version, run,
                             site_packages)

CONSUMER = Path(__file__).with_name("python_consumer.py")
KERAS_CONSUMER = Path(__file__).with_name("keras_consumer.py")


def pip_install(python: Path, build_dir: Path, tmp_root: Path, kind: str, *args: str) -> None:
    # The compiler, CUDA and -Werror settings of the build under test (so ccache reuses its
    # objects); no index: everything must already be here. One CMake build dir per kind (wheel,
    # editable) stays incremental between runs.
    defines = [f"-Ccmake.define.{name}={cache_value(build_dir, name) or 'OFF'}"
               for name in ("CENTERLOSS_WITH_CUDA", "CENTERLOSS_WERROR")]
    defines.append(f"-Ccmake.define.CMAKE_CXX_COMPILER={cache_value(build_dir, 'CMAKE_CXX_COMPILER')}")
    # Unity batches as in the build under test: the same batch files, so the same cached objects.
    defines += [f"-Ccmake.define.{name}={value}"
                for name in ("CMAKE_UNITY_BUILD", "CMAKE_UNITY_BUILD_BATCH_SIZE")
                if (value := cache_value(build_dir, name))]
    run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index", "--quiet",
         f"-Cbuild-dir={build_dir.parent / (build_dir.name + '-pip-' + kind)}", *defines, *args],
        cwd=tmp_root, env=build_env(REPO))


def consumer(python: Path, cwd: Path) -> dict:
    # cwd outside the repository, so nothing is imported from the source tree by accident.
    return json.loads(run([python, CONSUMER], cwd=cwd).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def installed(build_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("pip")
    python = make_venv(root / "venv")
    pip_install(python, build_dir, root, "wheel", str(REPO))
    return python, root


def test_installed_package_runs_from_site_packages(installed):
    python, root = installed
    site = site_packages(python)
    report = consumer(python, root)
    assert report["version"] == project_version()
    assert Path(report["package"]).parent == site / "centerloss"
    assert Path(report["library"]) == site / "centerloss" / "_lib" / "libcenterloss.so"
    assert report["last_loss"] < report["first_loss"]
    stamp = (site / "centerloss" / "_lib" / "torch_version.txt").read_text().strip()
    torch_version = run([python, "-c", "import torch; print(torch.__version__)"]).stdout.strip()
    assert stamp == torch_version.split("+")[0]


def test_metadata_version_is_the_cmake_project_version(installed):
    python, root = installed
    code = "from importlib.metadata import metadata as m; d = m('centerloss'); print(d['Version'], d['License-Expression'])"
    version, license_ = run([python, "-c", code], cwd=root).stdout.split()
    assert version == project_version() and license_


def test_a_library_built_for_another_torch_is_refused_by_name(installed):
    python, root = installed
    stamp = site_packages(python) / "centerloss" / "_lib" / "torch_version.txt"
    original = stamp.read_text()
    stamp.write_text("1.0.0\n")
    try:
        result = run([python, "-c", "from centerloss import CenterLoss"], cwd=root, check=False)
    finally:
        stamp.write_text(original)
    assert result.returncode != 0
    assert "built for torch 1.0.0" in result.stderr, result.stderr


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_keras_front_end_is_installed(installed, backend):
    """The torch user's install also serves Keras: on torch the layer runs the compiled op; on
    jax (torch installed but unused) it imports neither torch nor the library."""
    python, root = installed
    env = build_env(REPO) | {"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    report = json.loads(run([python, KERAS_CONSUMER], cwd=root, env=env).stdout.strip().splitlines()[-1])
    assert report["backend"] == backend
    assert Path(report["package"]).is_relative_to(site_packages(python) / "centerloss")
    assert report["torch_imported"] == report["library_loaded"] == (backend == "torch"), report
    assert report["max_error"] < 1e-5 and report["skipped"] == 0, report


def test_editable_install_uses_the_source_tree(build_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("pip_editable")
    python = make_venv(root / "venv")
    pip_install(python, build_dir, root, "editable", "-e", str(REPO))
    report = consumer(python, root)
    assert report["version"] == project_version()
    assert Path(report["package"]) == REPO / "python" / "centerloss" / "__init__.py"
    # The library comes from this install, not from a `make build` copy in the source tree.
    assert Path(report["library"]).is_relative_to(site_packages(python)), report["library"]
