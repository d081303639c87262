"""centerloss.__version__, kept in one place: project(VERSION) in the top-level CMakeLists.txt.

An installed package reads it from its metadata (pyproject.toml takes it from CMakeLists.txt);
the source tree (make build, pip install -e .) reads CMakeLists.txt itself.
"""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
_PATTERN = re.compile(r"project\(centerloss\s+VERSION\s+([0-9][0-9.]*)")


def _from_source_tree() -> str | None:
    root = _PACKAGE_DIR.parents[1]  # <root>/python/centerloss
    cmake = root / "CMakeLists.txt"
    if _PACKAGE_DIR != root / "python" / "centerloss" or not cmake.is_file():
        return None
    match = _PATTERN.search(cmake.read_text())
    return match.group(1) if match else None


def _version() -> str:
    found = _from_source_tree()
    if found is not None:
        return found
    try:
        return metadata.version("centerloss")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
