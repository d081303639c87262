"""Helpers for the reliability tests: the tiny run they all train, comparing two runs' results
bitwise, and loading a run's latest checkpoint."""
import json
import os
import warnings

import torch

from cli_runner import run

# A tiny run: 300 samples in batches of 30 (10 steps an epoch), the small net, 2 threads.
TINY = ["--arch", "small", "--train-limit", "300", "--test-limit", "100", "--batch-size", "30",
        "--threads", "2", "--no-progress", "--no-outputs", "--log-every", "3"]

# Fields of metrics.jsonl that measure time, not results.
# Timings and rates, which no two runs share.
TIME_FIELDS = {"seconds", "ms_per_step", "images_per_s", "decode_images_per_s", "data_wait_s"}


def metrics(run_dir):
    """metrics.jsonl without its timings."""
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in TIME_FIELDS}
                for line in f if line.strip()]


def checkpoint_state(run_dir):
    """The tensors of a run's checkpoint.pt (a TorchScript archive): weights, centers, skipped
    updates, epoch and position, generator state and the CRC-32 of everything restored (which
    covers the optimizers' momentum buffers too)."""
    with warnings.catch_warnings():  # torch.jit.load is deprecated, and reads these archives
        warnings.simplefilter("ignore", DeprecationWarning)
        return dict(torch.jit.load(os.path.join(run_dir, "checkpoint.pt")).state_dict())


def checkpoint_loads(run_dir, scratch):
    """The trainer itself loads the checkpoint (its CRC-32 checked): `embed` of one class."""
    run("embed", "--run", run_dir, "--classes", "0", "--threads", "2",
        "--out", os.path.join(scratch, "loads.pt"))


def assert_same_results(a, b):
    """Two run folders hold the same checkpoint state bitwise and the same metrics (but for
    timings)."""
    sa, sb = checkpoint_state(a), checkpoint_state(b)
    assert sorted(sa) == sorted(sb)
    for name in sa:
        assert torch.equal(sa[name], sb[name]), "%s differs between %s and %s" % (name, a, b)
    assert metrics(a) == metrics(b)
