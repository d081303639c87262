"""Data-parallel center steps over a real Gloo process group on loopback (spec section 5)."""
from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import centerloss

WORLD = 2
K, D = 7, 3


def batches(rank, step):
    g = torch.Generator().manual_seed(100 * step + rank)
    n = 5 + 3 * rank  # ranks see different batch sizes
    x = torch.randn(n, D, generator=g)
    y = torch.randint(0, K, (n,), generator=g)
    if step == 2 and rank == 1:
        x[1, 2] = float("nan")  # one rank's batch is non-finite: every rank must skip
    return x, y


def worker(rank, init_file, out_dir, init):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.manual_seed(0)
    m = centerloss.CenterLoss(K, D, init=init, process_group="world")
    for step in range(4):
        x, y = batches(rank, step)
        m(x.requires_grad_(True), y).backward()
    bad = None
    try:  # a bad label on rank 0 only: both ranks raise, none hangs, nothing changes
        x, y = batches(rank, 9)
        if rank == 0:
            y[0] = K
        before = m.centers.clone()
        m(x, y)
    except RuntimeError as err:
        bad = str(err)
        assert torch.equal(m.centers, before)
    torch.save({"state": m.state_dict(), "error": bad}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.parametrize("init", ["zeros", "first_sight"])
def test_ranks_match_one_process_on_the_union(tmp_path, init):
    mp.start_processes(
        worker, args=(str(tmp_path / "store"), str(tmp_path), init), nprocs=WORLD,
        start_method="spawn", join=True,
    )
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    torch.manual_seed(0)
    single = centerloss.CenterLoss(K, D, init=init)
    for step in range(4):
        xs, ys = zip(*(batches(r, step) for r in range(WORLD)))
        single(torch.cat(xs), torch.cat(ys))
    for r in results:
        assert torch.equal(r["state"]["centers"], single.centers)  # bitwise, every rank
        assert int(r["state"]["skipped_updates"]) == 1
        assert r["error"] is not None and "labels must be in [0, K)" in r["error"]
