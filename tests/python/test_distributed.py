"""Data-parallel center steps over a real Gloo process group on loopback (spec section 5)."""
from __future__ import annotations

import datetime
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


def same_bits(a, b):
    """Bitwise equality that counts NaN == NaN (the NaN step's loss and gradient)."""
    return torch.equal(a.view(torch.int32), b.view(torch.int32))


def refused_batches(m, rank):
    """Feeds one rank's bad batch of each BAD_CASES case: every rank must raise, none may hang,
    none may move. Returns the error messages."""
    errors = {}
    for case in BAD_CASES:
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
    return errors


def worker(rank, init_file, out_dir, init):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.manual_seed(0)
    m = centerloss.CenterLoss(K, D, init=init, process_group="world")
    # The same steps on a table sharded across the ranks: bitwise the same results.
    sharded = centerloss.CenterLoss(K, D, init=init, process_group="world", shard_centers=True)
    same_as_sharded = []
    for step in range(4):
        x, y = batches(rank, step)
        xm, xs = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        lm, ls = m(xm, y), sharded(xs, y)
        lm.backward()
        ls.backward()
        same_as_sharded.append(same_bits(lm, ls) and same_bits(xm.grad, xs.grad))
    errors = refused_batches(m, rank)
    sharded_errors = refused_batches(sharded, rank)
    torch.save({"state": m.state_dict(), "errors": errors, "sharded": sharded.state_dict(),
                "sharded_errors": sharded_errors, "same_as_sharded": same_as_sharded},
               os.path.join(out_dir, f"rank{rank}.pt"))
    dist.barrier()
    # Another rank's shard is refused; a whole table's state gives each rank its rows.
    other = torch.load(os.path.join(out_dir, f"rank{1 - rank}.pt"))["sharded"]
    try:
        sharded.load_state_dict(other)
        foreign = ""
    except RuntimeError as err:
        foreign = str(err)
    sharded.load_state_dict(m.state_dict())
    torch.save({"foreign": foreign, "rows": sharded.centers.clone()},
               os.path.join(out_dir, f"load{rank}.pt"))
    dist.destroy_process_group()


BAD_CASES = {  # case: what the error says on the rank that had it, and on the other rank
    "label out of range": ("labels must be in [0, K)", "labels must be in [0, K)"),
    "float labels": ("labels must have an integer dtype", "rank(s) [1] is invalid"),
    "float64 features": ("rank 1: D = 3, float64", "rank 1: D = 3, float64"),
    "labels of another length": ("features has N = 5 rows but labels has 4 entries",
                                 "rank(s) [0] is invalid"),
}
# A sharded table checks the labels before the rows move: the other rank learns of it then.
SHARDED_OTHER = {"label out of range": "rank(s) [0] is invalid"}
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
            sharded_other = SHARDED_OTHER.get(case, other)
            assert (own if rank == BAD_RANK[case] else sharded_other) in r["sharded_errors"][case]
        assert r["same_as_sharded"] == [True] * 4  # loss and gradient, bitwise, every step
        assert int(r["sharded"]["skipped_updates"]) == 1
    shards = [r["sharded"]["centers"] for r in results]  # rows [0, 3) and [3, 7)
    assert [tuple(s.shape) for s in shards] == [(3, D), (4, D)]
    assert torch.equal(torch.cat(shards), single.centers)
    loads = [torch.load(tmp_path / f"load{r}.pt") for r in range(WORLD)]
    assert all("holds rows [" in load["foreign"] for load in loads), loads[0]["foreign"]
    final = results[0]["state"]["centers"]
    assert torch.equal(torch.cat([load["rows"] for load in loads]), final)


class Net(torch.nn.Module):
    """A feature layer and its center loss, wrapped whole in DistributedDataParallel."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Linear(4, D)
        self.center_loss = centerloss.CenterLoss(K, D, init="normal", process_group="world")

    def forward(self, x, y):
        return self.center_loss(self.features(x), y)


def ddp_inputs(rank, step):
    g = torch.Generator().manual_seed(1000 * step + rank)
    n = 6 + 2 * rank
    return torch.randn(n, 4, generator=g), torch.randint(0, K, (n,), generator=g)


def ddp_worker(rank, init_file, out_dir):
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    # A short timeout: a collective that only one rank makes fails the test in seconds.
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    torch.manual_seed(10 + rank)  # per-rank seeds, as for data augmentation: centers start apart
    net = Net()
    initial = net.center_loss.centers.clone()
    ignored = centerloss.distributed.skip_ddp_buffer_sync(net)
    ddp = DistributedDataParallel(net)
    broadcast_by_ddp = any(b is net.center_loss.centers for b in ddp.modules_buffers)
    features_state = {k: v.clone() for k, v in net.features.state_dict().items()}
    for step in range(3):
        x, y = ddp_inputs(rank, step)
        ddp(x, y).backward()
    after_training = net.center_loss.centers.clone()
    # Ranks that load different states are made equal again at the next training forward.
    state = net.center_loss.state_dict()
    state["centers"] = state["centers"] + rank
    net.center_loss.load_state_dict(state)
    loaded = net.center_loss.centers.clone()
    x, y = ddp_inputs(rank, 3)
    ddp(x, y).backward()
    final = net.center_loss.centers.clone()
    # The usual DDP resume: only rank 0 loads the checkpoint. Its first step shares it.
    if rank == 0:
        state = net.center_loss.state_dict()
        state["centers"] = state["centers"] * 2
        net.center_loss.load_state_dict(state)
    loaded_on_0 = net.center_loss.centers.clone()
    x, y = ddp_inputs(rank, 4)
    ddp(x, y).backward()
    after_rank0_load = net.center_loss.centers.clone()
    # update="gradient" makes no collective in forward: one rank may run a forward alone.
    gradient_rule = centerloss.CenterLoss(K, D, update="gradient", process_group="world")
    if rank == 0:
        gradient_rule(net.features(x).detach(), y).backward()
    dist.barrier()
    # A module without a process group under an initialised process group warns once.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lonely = centerloss.CenterLoss(K, D)
        lonely(net.features(x).detach(), y)
        lonely(net.features(x).detach(), y)
    warned = [str(w.message) for w in caught if "process_group" in str(w.message)]
    torch.save({"initial": initial, "ignored": ignored, "broadcast_by_ddp": broadcast_by_ddp,
                "features_state": features_state, "after_training": after_training,
                "loaded": loaded, "final": final, "loaded_on_0": loaded_on_0,
                "after_rank0_load": after_rank0_load, "warned": warned},
               os.path.join(out_dir, f"ddp{rank}.pt"))
    dist.destroy_process_group()


def test_inside_ddp_with_per_rank_seeds_the_centers_stay_identical(tmp_path):
    mp.start_processes(ddp_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD,
                       start_method="spawn", join=True)
    r = [torch.load(tmp_path / f"ddp{rank}.pt") for rank in range(WORLD)]
    for rank in range(WORLD):
        assert r[rank]["ignored"] == ["center_loss.centers", "center_loss.skipped_updates"]
        assert not r[rank]["broadcast_by_ddp"]  # no K x D broadcast before every forward
        assert len(r[rank]["warned"]) == 1, r[rank]["warned"]
    layer = torch.nn.Linear(4, D)
    layer.load_state_dict(r[0]["features_state"])

    def expect_one_process(before, steps, after):
        """The ranks' centers `after` equal, and those of one process that applied `steps` to
        the union of the ranks' batches from rank 0's centers `before` (and its layer)."""
        assert not torch.equal(before[0], before[1])  # the ranks started apart: it can fail
        assert torch.equal(after[0], after[1])
        single = centerloss.CenterLoss(K, D)
        with torch.no_grad():
            single.centers.copy_(before[0])
            for step in steps:
                xs, ys = zip(*(ddp_inputs(rank, step) for rank in range(WORLD)))
                single(torch.cat([layer(x) for x in xs]), torch.cat(ys))
        torch.testing.assert_close(after[0], single.centers, rtol=1e-6, atol=1e-6)

    def both(key):
        return [r[0][key], r[1][key]]

    expect_one_process(both("initial"), range(3), both("after_training"))  # per-rank seeds
    expect_one_process(both("loaded"), [3], both("final"))  # both ranks loaded, differently
    expect_one_process(both("loaded_on_0"), [4], both("after_rank0_load"))  # rank 0 only loaded


def test_skip_ddp_buffer_sync_refuses_a_center_loss_without_a_process_group():
    net = torch.nn.Sequential(centerloss.CenterLoss(K, D))
    with pytest.raises(ValueError, match="'0' has no process_group"):
        centerloss.distributed.skip_ddp_buffer_sync(net)
    # The gradient rule's centers are a parameter whose gradients DDP averages: nothing to skip.
    net = torch.nn.Sequential(centerloss.CenterLoss(K, D, update="gradient"))
    assert centerloss.distributed.skip_ddp_buffer_sync(net) == []

