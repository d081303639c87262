"""Loads the compiled centerloss library (the one C++ implementation) into torch.ops."""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import torch

_LIB_DIR = Path(__file__).resolve().parent / "_lib"
_LIB_NAME = "libcenterloss.so"


def _library_path() -> Path:
    override = os.environ.get("CENTERLOSS_LIBRARY")
    if override:
        return Path(override)
    # importlib.resources also sees the _lib that `pip install -e .` puts in site-packages
    # (the package's own directory then is the source tree).
    installed = resources.files(__package__).joinpath("_lib").joinpath(_LIB_NAME)
    if isinstance(installed, Path) and installed.exists():
        return installed
    return _LIB_DIR / _LIB_NAME


def _built_for() -> str | None:
    stamp = _library_path().parent / "torch_version.txt"
    return stamp.read_text().strip() if stamp.exists() else None


def _same_release(built: str, running: str) -> bool:
    # "2.11.0" (CMake) vs "2.11.0+cu130" (Python): compare the release part.
    return built.split("+")[0] == running.split("+")[0]


def load() -> None:
    if hasattr(torch.ops, "centerloss") and hasattr(torch.ops.centerloss, "forward"):
        return
    path = _library_path()
    if not path.exists():
        raise ImportError(
            f"centerloss: compiled library not found at {path}. This install has only the "
            "pure-Python part (centerloss.keras on jax and tensorflow), as pip builds it where "
            "torch or a compiler is missing. Install torch, then `pip install "
            "--no-build-isolation --force-reinstall centerloss` (CENTERLOSS_NATIVE=1 makes a "
            "failed build an error); in the source tree `make build`; or point "
            "CENTERLOSS_LIBRARY at libcenterloss.so."
        )
    built = _built_for()
    if built is not None and not _same_release(built, torch.__version__):
        raise ImportError(
            f"centerloss: the compiled library was built for torch {built}, but torch "
            f"{torch.__version__} is installed. Rebuild centerloss against this torch "
            "(`make build` or `pip install --force-reinstall .`)."
        )
    try:
        torch.ops.load_library(str(path))
    except OSError as err:
        raise ImportError(
            f"centerloss: could not load {path} (built for torch {built or 'unknown'}, "
            f"running torch {torch.__version__}): {err}"
        ) from err
