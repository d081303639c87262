"""The Keras layer with several replicas of one model (tests/python/keras_replicas_worker.py,
one fresh process per backend, two logical CPU devices): tensorflow's MirroredStrategy and
jax's keras.distribution.DataParallel must give the centers of one device on the global batch,
on every replica's copy (without the layer's gather, MirroredStrategy steps each replica's copy
with its own slice only). The jax case checks docs/keras.md's claim that DataParallel needs
nothing from the layer."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("keras_replicas_worker.py")


def run_worker(backend: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, str(WORKER)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_replicas_step_the_centers_of_the_global_batch(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    result = run_worker(backend)
    for init, r in result.items():
        assert r["copies"] == (2 if backend == "tensorflow" else 1), (init, r)
        # tensorflow: the same ops on the same gathered batch, bitwise; jax: one sharded
        # computation whose sums may be added in another order.
        limit = 0.0 if backend == "tensorflow" else 1e-6 * r["largest_center"]
        assert r["max_difference"] <= limit, (init, r)
        assert r["largest_center"] > 0.1, (init, r)  # the centers did move
        assert r["skipped"] == [0, 0], (init, r)
