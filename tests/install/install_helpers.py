"""Helpers for the install tests: the repository, commands, build environments, and a fresh
virtual environment that sees the already-installed packages (all of them, or all but torch).

Why the fresh venv borrows packages: re-downloading torch (4.7 GB), tensorflow and jax per test
run is out of the question and the tests run offline. The new venv gets a .pth line naming the
running interpreter's site-packages (the project's .venv), so torch, keras and
scikit-build-core are importable, while `centerloss` itself is not: .pth files inside a
directory added that way are not processed, so the .venv's development .pth (which puts python/
on sys.path) stays inactive. A venv without torch borrows a folder of links to every entry of
that site-packages except torch and the packages only torch uses.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def project_version() -> str:
    match = re.search(r"project\(centerloss\s+VERSION\s+([0-9.]+)", (REPO / "CMakeLists.txt").read_text())
    assert match, "CMakeLists.txt has no project(centerloss VERSION x.y.z)"
    return match.group(1)


def run(cmd, cwd=None, env=None, timeout=900, check=True) -> subprocess.CompletedProcess:
    """Runs a command; with check, a failure's assertion shows its output."""
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, timeout=timeout,
                            capture_output=True, text=True)
    assert not check or result.returncode == 0, (
        f"command failed ({result.returncode}): {' '.join(map(str, cmd))}\n"
        f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
    )
    return result


def cache_value(build_dir: Path, name: str) -> str | None:
    for line in (build_dir / "CMakeCache.txt").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split("=", 1)[1]
    return None


def build_env(ccache_base: Path) -> dict:
    """Environment for builds: ccache (when present) with paths made relative to ccache_base,
    so repeated runs in new temporary directories hit the cache."""
    env = dict(os.environ)
    if subprocess.run(["which", "ccache"], capture_output=True).returncode == 0:
        env.setdefault("CMAKE_CXX_COMPILER_LAUNCHER", "ccache")
        env.setdefault("CMAKE_CUDA_COMPILER_LAUNCHER", "ccache")
        env["CCACHE_BASEDIR"] = str(ccache_base)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", "2")  # the machine is shared: -j2 at most
    return env


# Site-packages entries of torch and of the packages only torch needs (its CUDA libraries).
TORCH_ENTRIES = re.compile(r"^(torch|torchgen|functorch|triton|nvidia)([-_.].*)?$")


def make_venv(path: Path, without_torch: bool = False) -> Path:
    """A new venv whose own site-packages is empty but which can import the running
    interpreter's packages (with torch, or without it); returns its python."""
    run([sys.executable, "-m", "venv", path])
    python = path / "bin" / "python"
    borrowed = Path(sysconfig.get_paths()["purelib"])
    if without_torch:
        links = path / "borrowed"
        links.mkdir()
        for entry in borrowed.iterdir():
            if not TORCH_ENTRIES.match(entry.name):
                (links / entry.name).symlink_to(entry)
        borrowed = links
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(site, "_borrowed_site_packages.pth").write_text(f"{borrowed}\n")
    return python


def site_packages(python: Path) -> Path:
    return Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
