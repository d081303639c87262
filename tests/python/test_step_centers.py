"""The module's center step (the step half of op _forward_step_, spec section 3 and 7) on every
device, and the CPU's class grouping and small-D paths the center update shares with it.

The step must move the centers exactly as update_centers_ does, count a skipped (non-finite)
batch in the module's counter instead of returning a verdict, and leave every center untouched
then. The one op's bits against the two ops are tested in test_forward_step.py.
"""
from __future__ import annotations

import pytest
import torch

import centerloss.functional  # loads torch.ops.centerloss
import reference


def step(centers, skipped, features, labels, alpha, rule):
    torch.ops.centerloss._forward_step_(features, labels, centers, skipped, 0.0, 1, alpha, rule)


SHAPES_BY_DEVICE = reference.per_device(reference.SHAPES,
                                        reference.SHAPES + reference.CUDA_SHAPES)


def on(device, *tensors):
    return [t.to(device) for t in tensors]


@pytest.mark.parametrize("device,n,d,k", SHAPES_BY_DEVICE)
@pytest.mark.parametrize("rule,code", [("paper", 0), ("mean", 1)])
def test_step_matches_update_centers_bitwise(device, n, d, k, rule, code):
    features, labels, centers = on(device,
                                   *reference.make_case(n, d, k, torch.float32, 11 * n + d))
    expected = centers.clone()
    centerloss.update_centers_(expected, features, labels, 0.3, rule)
    skipped = torch.zeros((), dtype=torch.long, device=device)
    step(centers, skipped, features, labels, 0.3, code)
    assert torch.equal(centers, expected)
    assert int(skipped) == 0


@pytest.mark.parametrize("device,n,d,k", SHAPES_BY_DEVICE)
def test_step_guards_on_every_shape(device, n, d, k):
    """A non-finite batch is skipped and counted on the device; a bad label raises in the forward
    before the step runs, moving nothing and counting nothing."""
    features, labels, centers = on(device, *reference.make_case(n, d, k, torch.float32, 3 * n + k))
    skipped = torch.zeros((), dtype=torch.long, device=device)
    for code in (0, 1):
        x, c = features.clone(), centers.clone()
        x[n - 1, d - 1] = float("nan")
        step(c, skipped, x, labels, 0.3, code)
        assert torch.equal(c, centers) and int(skipped) == code + 1, code
        for bad in (-1, k):
            y, c = labels.clone(), centers.clone()
            y[n - 1] = bad
            with pytest.raises(RuntimeError, match=f"found label {bad} at position {n - 1}"):
                step(c, skipped, features, y, 0.3, code)
            assert torch.equal(c, centers) and int(skipped) == code + 1, (code, bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("d", [2, 6])
def test_non_finite_batch_is_skipped_and_counted(device, bad, d):
    features, labels, centers = on(device, *reference.make_case(40, d, 5, torch.float32, 3))
    features[39, d - 1] = bad
    before = centers.clone()
    skipped = torch.tensor([7], device=device)
    step(centers, skipped, features, labels, 0.5, 0)
    assert torch.equal(centers, before)
    assert int(skipped) == 8


@pytest.mark.parametrize(
    "skipped,message",
    [
        (torch.zeros(2, dtype=torch.long), "skipped must be an int64 tensor of one element"),
        (torch.zeros((), dtype=torch.int32), "skipped must be an int64 tensor of one element"),
        (torch.zeros((), dtype=torch.long, device="meta"), "skipped is on meta"),
    ],
)
def test_bad_counter_is_named_and_changes_nothing(device, skipped, message):
    features, labels, centers = on(device, *reference.make_case(8, 3, 4, torch.float32, 5))
    skipped = skipped if skipped.device.type == "meta" else skipped.to(device)
    before = centers.clone()
    with pytest.raises(RuntimeError, match="centerloss._forward_step_: " + message):
        step(centers, skipped, features, labels, 0.5, 0)
    assert torch.equal(centers, before)


def test_module_forward_steps_like_update_centers(device):
    features, labels, _ = on(device, *reference.make_case(64, 8, 10, torch.float32, 9))
    module = centerloss.CenterLoss(10, 8, alpha=0.4, init="normal").to(device)
    expected = module.centers.clone()
    loss = module(features, labels)
    centerloss.update_centers_(expected, features, labels, 0.4)
    assert torch.equal(module.centers, expected) and int(module.skipped_updates) == 0
    assert loss.item() > 0


def _thp_mode():
    try:
        text = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return None
    return text.split("[")[1].split("]")[0] if "[" in text else None


def test_huge_page_advice_for_large_cpu_tables_only():
    advise = torch.ops.centerloss._advise_huge_pages
    assert not advise(torch.empty(1000, 16))  # 64 KB: not worth it
    assert not advise(torch.empty(100_000, 512, device="meta"))
    big = torch.arange(40_000 * 512, dtype=torch.float32).reshape(40_000, 512)  # 78 MB
    copy = big.clone()
    assert advise(big) == (_thp_mode() in ("always", "madvise"))
    assert torch.equal(big, copy)  # madvise(MADV_HUGEPAGE) must keep the values


@pytest.mark.parametrize("k", [40_000, 10])  # advised table (fresh pages); heap memory reused
def test_module_starts_from_zero_centers_in_reused_memory(k):
    # The module allocates its table uninitialised (to advise huge pages first) and must zero
    # it: free a table of the same size full of ones first, so that fresh memory (always zero)
    # cannot hide a missing zero_().
    junk = torch.ones(k, 512)
    del junk
    module = centerloss.CenterLoss(k, 512)
    assert module.centers.shape == (k, 512) and not module.centers.any()


@pytest.mark.parametrize("dtype", reference.DTYPES)
@pytest.mark.parametrize("n,k", [(64, 4), (400, 3), (40, 40)])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_guard_with_few_and_many_classes_per_batch(device, dtype, n, k, bad):
    """A non-finite value in the first, a middle or the last row stops the whole step."""
    features, labels, centers = reference.make_case(n, 7, k, dtype, n + k)
    expected = reference.updated_centers(centers, features, labels, 0.5)
    features, labels, centers = on(device, features, labels, centers)
    clean = centers.clone()
    assert bool(centerloss.update_centers_(clean, features, labels))
    torch.testing.assert_close(clean.cpu(), expected, rtol=1e-5, atol=1e-5)
    for row in (0, n // 2, n - 1):
        x = features.clone()
        x[row, 6 if row else 0] = bad
        moved = centers.clone()
        assert not bool(centerloss.update_centers_(moved, x, labels))
        assert torch.equal(moved, centers)


@pytest.mark.parametrize("d", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", reference.DTYPES)
def test_small_d_paths_give_the_general_paths_bits(d, dtype):
    """D <= 4 runs unrolled copies of the forward and the update; padding with zero columns to
    D = 9 takes the general paths, which must give the same bits on the first D columns."""
    features, labels, centers = reference.make_case(700, d, 13, dtype, 40 + d)
    pad = lambda t: torch.cat([t, torch.zeros(t.shape[0], 9 - d, dtype=t.dtype)], dim=1)
    for margin in (0.0, 0.2):
        small = torch.ops.centerloss.forward(features, labels, centers, margin, 0)
        wide = torch.ops.centerloss.forward(pad(features), labels, pad(centers), margin, 0)
        assert torch.equal(small[0], wide[0])
        assert torch.equal(small[1], wide[1][:, :d])
    moved_small, moved_wide = centers.clone(), pad(centers)
    centerloss.update_centers_(moved_small, features, labels, 0.3)
    centerloss.update_centers_(moved_wide, pad(features), labels, 0.3)
    assert torch.equal(moved_small, moved_wide[:, :d])


@pytest.mark.parametrize("k_big", [1000, 1 << 23])  # sparse grouping: 1 and 3 radix passes
@pytest.mark.parametrize("d", [1, 3, 33])
def test_sparse_and_dense_class_grouping_give_the_same_bits(k_big, d):
    # The same batch of 40 distinct classes with repeats, once with K = 40 (counting sort,
    # K <= 2N) and once spread over a table of k_big rows (radix sort, K > 2N): every moved row,
    # the loss and the basis must be the same bits.
    g = torch.Generator().manual_seed(d + k_big)
    n = 150 if k_big > 1000 else 64
    ids = torch.randperm(k_big, generator=g)[:40]
    small = torch.randint(0, 40, (n,), generator=g)
    features = torch.randn(n, d, generator=g)
    rows = torch.randn(40, d, generator=g)
    dense = rows.clone()
    sparse = torch.zeros(k_big, d)
    sparse[ids] = rows
    skipped = torch.zeros((), dtype=torch.long)
    for labels_are_int32 in (False, True):
        big = ids[small].int() if labels_are_int32 else ids[small]
        centerloss.update_centers_(dense, features, small, 0.5, "paper")
        centerloss.update_centers_(sparse, features, big, 0.5, "paper")
        assert torch.equal(sparse[ids], dense)
        loss_d, basis_d = torch.ops.centerloss._forward_step_(features, small, dense, skipped,
                                                              0.0, 1, 0.5, 1)
        loss_s, basis_s = torch.ops.centerloss._forward_step_(features, big, sparse, skipped,
                                                              0.0, 1, 0.5, 1)
        assert torch.equal(loss_d, loss_s) and torch.equal(basis_d, basis_s)
        assert torch.equal(sparse[ids], dense)
    assert int(skipped) == 0
