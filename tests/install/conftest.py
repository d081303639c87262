"""Fixtures of the install tests (helpers in install_helpers.py)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from install_helpers import REPO


@pytest.fixture(scope="session")
def build_dir() -> Path:
    """The configured CMake build to install from (CTest passes its own)."""
    path = Path(os.environ.get("CENTERLOSS_BUILD_DIR", REPO / "build")).resolve()
    assert (path / "CMakeCache.txt").exists(), (
        f"{path} is not a configured build: build first (make build) or set CENTERLOSS_BUILD_DIR"
    )
    return path
