"""`cmake --install` of the build under test into a fresh prefix, then examples/cpp_consumer
built against it with find_package(centerloss), and run."""
from __future__ import annotations

import re
import sys

import pytest

from install_helpers import REPO, build_env, cache_value, project_version, run


@pytest.fixture(scope="module")
def prefix(build_dir, tmp_path_factory):
    prefix = tmp_path_factory.mktemp("prefix")
    run(["cmake", "--install", build_dir, "--prefix", prefix])
    return prefix


def test_install_tree_has_headers_library_and_package(prefix):
    for header in ("types.h", "ops.h", "center_loss.h"):
        assert (prefix / "include" / "centerloss" / header).is_file(), header
    libs = list(prefix.glob("lib*/libcenterloss.so"))
    assert len(libs) == 1, f"expected one installed libcenterloss.so, found {libs}"
    package = libs[0].parent / "cmake" / "centerloss"
    for name in ("centerlossConfig.cmake", "centerlossConfigVersion.cmake", "centerlossTargets.cmake"):
        assert (package / name).is_file(), name
    config = (package / "centerlossConfig.cmake").read_text()
    assert "find_dependency(Torch)" in config


@pytest.mark.parametrize("requested, compatible", [
    ("{major}.{minor}", True), ("{major}.{minor}.0", True), ("{major}.{next_minor}", False),
    ("{next_major}.0", False),
])
def test_version_file_accepts_same_minor_only(prefix, tmp_path, requested, compatible):
    major, minor, _ = (int(p) for p in project_version().split("."))
    requested = requested.format(major=major, minor=minor, next_minor=minor + 1, next_major=major + 1)
    version_file = next(prefix.glob("lib*/cmake/centerloss/centerlossConfigVersion.cmake"))
    script = tmp_path / "check.cmake"
    script.write_text(
        f'set(PACKAGE_FIND_VERSION "{requested}")\n'
        + "".join(f'set(PACKAGE_FIND_VERSION_{part} {value})\n' for part, value in
                  zip(("MAJOR", "MINOR", "PATCH"), (requested.split(".") + ["0", "0"])[:3]))
        + f'set(CMAKE_SIZEOF_VOID_P 8)\ninclude("{version_file}")\n'
        + 'message("version=${PACKAGE_VERSION} compatible=${PACKAGE_VERSION_COMPATIBLE}")\n')
    out = run(["cmake", "-P", script]).stderr
    assert f"version={project_version()} " in out
    assert ("compatible=TRUE" in out) == compatible, out


def test_cpp_consumer_builds_and_runs_against_the_prefix(prefix, build_dir, tmp_path, tmp_path_factory):
    torch_prefix = run([sys.executable, "-c", "import torch.utils; print(torch.utils.cmake_prefix_path)"]).stdout.strip()
    consumer_build = tmp_path / "build"
    env = build_env(tmp_path_factory.getbasetemp())
    configure = ["cmake", "-S", REPO / "examples" / "cpp_consumer", "-B", consumer_build,
                 f"-DCMAKE_PREFIX_PATH={prefix};{torch_prefix}"]
    if cache_value(build_dir, "CMAKE_GENERATOR") == "Ninja":
        configure += ["-G", "Ninja"]
    run(configure, env=env)
    run(["cmake", "--build", consumer_build], env=env)
    out = run([consumer_build / "cpp_consumer"]).stdout
    match = re.search(r"loss ([0-9.]+) -> ([0-9.]+)", out)
    assert match and float(match.group(2)) < float(match.group(1)), out
    # The consumer linked the installed library, not the one in the build tree.
    ldd = run(["ldd", consumer_build / "cpp_consumer"]).stdout
    assert str(prefix) in ldd and str(build_dir) not in ldd, ldd
