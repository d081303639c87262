"""The devices the op tests run on: every test with a `device` argument (the fixture below, or a
parametrize list of its own) runs once per device, "cpu" and "cuda"; the cuda variants carry the
mark `cuda` (select them with `-m cuda`) and skip where torch sees no CUDA device."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

HAVE_CUDA = torch.cuda.is_available()


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs a CUDA device (skipped without one)")


@pytest.fixture(params=["cpu", "cuda"])
def device(request):
    return request.param


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skipif(not HAVE_CUDA, reason="no CUDA device")
    for item in items:
        params = getattr(item, "callspec", None)
        on_cuda = params is not None and params.params.get("device") == "cuda"
        if on_cuda or item.get_closest_marker("cuda"):
            item.add_marker(pytest.mark.cuda)
            item.add_marker(skip)
