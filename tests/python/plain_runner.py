"""What the GPU test files share: their pytest skip mark, and a runner for when pytest is not
installed (the GPU machine may lack it): every test_* function in turn, reporting each, failing
at the end if any failed."""
from __future__ import annotations

import traceback

import torch

try:
    import pytest
except ImportError:  # run_tests below
    pytest = None

HAVE_CUDA = torch.cuda.is_available()


def cuda_only():
    """The module-level `pytestmark` of a GPU test file (None without pytest)."""
    return None if pytest is None else pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device")


def run_tests(namespace: dict, title: str) -> int:
    """Exit status for `python tests/python/<file>.py`: namespace is the file's globals()."""
    if not HAVE_CUDA:
        print(f"{title}: no CUDA device, skipped")
        return 0
    failures = 0
    for name, fn in sorted(namespace.items()):
        if name.startswith("test_") and callable(fn):
            try:
                fn()
                print(f"PASS {name}")
            except Exception:  # report every test, then fail at the end
                failures += 1
                print(f"FAIL {name}\n{traceback.format_exc()}")
    print(f"{title}: {failures} failed")
    return 1 if failures else 0
