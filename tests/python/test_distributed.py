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
    errors = {}
    for case in BAD_CASES:  # one rank's bad batch: every rank raises, none hangs, none moves
        x, y = batches(rank, 9)
        if case == "label out of range" and rank == 0:
            y[0] = K
        if case == "float labels" and rank == 1:
            y = y.float()
        if case == "float64 features" and rank == 1:
            x = x.double()
        if case == "labels of another length" and rank == 0:
            y = y[:-1]
        before = m.state_dict()
        before = {k: v.clone() for k, v in before.items()}
        try:
            m(x, y)
        except RuntimeError as err:
            errors[case] = str(err)
        after = m.state_dict()
        assert all(torch.equal(before[k], after[k]) for k in before), case
    x, y = batches(rank, 4)  # the group still works after the refused calls
    m(x, y)
    torch.save({"state": m.state_dict(), "errors": errors},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


BAD_CASES = {  # case: what the error says on the rank that had it, and on the other rank
    "label out of range": ("labels must be in [0, K)", "labels must be in [0, K)"),
    "float labels": ("labels must be a 1-D integer tensor", "rank(s) [1] is invalid"),
    "float64 features": ("rank 1: D = 3, torch.float64", "rank 1: D = 3, torch.float64"),
    "labels of another length": ("labels have 4 entries but features have 5 rows",
                                 "rank(s) [0] is invalid"),
}
BAD_RANK = {"label out of range": 0, "float labels": 1, "float64 features": 1,
            "labels of another length": 0}


@pytest.mark.parametrize("init", ["zeros", "first_sight"])
def test_ranks_match_one_process_on_the_union(tmp_path, init):
    mp.start_processes(
        worker, args=(str(tmp_path / "store"), str(tmp_path), init), nprocs=WORLD,
        start_method="spawn", join=True,
    )
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    torch.manual_seed(0)
    single = centerloss.CenterLoss(K, D, init=init)
    for step in range(5):
        xs, ys = zip(*(batches(r, step) for r in range(WORLD)))
        single(torch.cat(xs), torch.cat(ys))
    for rank, r in enumerate(results):
        assert torch.equal(r["state"]["centers"], single.centers)  # bitwise, every rank
        assert int(r["state"]["skipped_updates"]) == 1
        for case, (own, other) in BAD_CASES.items():
            assert case in r["errors"], (rank, case)
            assert (own if rank == BAD_RANK[case] else other) in r["errors"][case], (
                rank, case, r["errors"][case])
