"""The module's training step in one op (_forward_step_, and _center_loss_step_ with autograd)
on the CPU: the same bits as the forward op followed by the step op, for every dtype, margin,
reduction and rule, on every side of the kernel's choice between one pass and two (D <= 4, x
larger than 1 MiB with a small table, a table of 64 MiB or more, few classes per thread), for 1
and 2 threads, and the same guards.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import centerloss.functional  # loads torch.ops.centerloss
import reference

ops = torch.ops.centerloss

# (N, D, K): one pass (small x, many classes per batch), forward then update on the same class
# groups (fewer than 8 classes per thread: N = 1, K = 10), two passes (D <= 4; x of 8 MiB with a
# small table; a small x of more than 1024 rows), one pass for 1536 rows of 1200 bytes (x above
# 1 MiB in long rows) and for an x above 1 MiB once the table reaches 64 MiB (2^20 rows of 16).
SHAPES = [(1, 5, 1), (300, 17, 1000), (513, 128, 10), (513, 128, 1000), (256, 2, 10),
          (4096, 512, 100), (2048, 16, 1000), (1536, 300, 1000), (20000, 16, 1 << 20)]
DTYPES = [(torch.float32, torch.float32), (torch.bfloat16, torch.float32),
          (torch.float16, torch.float32), (torch.float64, torch.float64),
          (torch.float32, torch.float64)]


def two_ops(features, labels, centers, skipped, margin, reduction, alpha, rule):
    loss, basis = ops.forward(features, labels, centers, margin, reduction)
    applied = ops.update_centers_(centers, features, labels, alpha, rule)
    skipped += ~applied
    return loss, basis


@pytest.mark.parametrize("n,d,k", SHAPES)
@pytest.mark.parametrize("dtype,centers_dtype", DTYPES)
def test_one_op_gives_the_two_ops_bits(n, d, k, dtype, centers_dtype):
    if k == 1 << 20 and dtype != torch.float32:
        pytest.skip("the 64 MiB table once is enough")
    features, labels, centers = reference.make_case(n, d, k, dtype, 7 * n + d, centers_dtype)
    for margin, reduction, rule in [(0.0, 1, 0), (0.5, 0, 1), (2.0, 2, 0)]:
        c1, c2 = centers.clone(), centers.clone()
        s1, s2 = torch.zeros((), dtype=torch.long), torch.zeros((), dtype=torch.long)
        loss1, basis1 = two_ops(features, labels, c1, s1, margin, reduction, 0.3, rule)
        loss2, basis2 = ops._forward_step_(features, labels, c2, s2, margin, reduction, 0.3, rule)
        assert torch.equal(loss1, loss2), (margin, reduction, rule)
        assert torch.equal(basis1, basis2), (margin, reduction, rule)
        assert torch.equal(c1, c2), (margin, reduction, rule)
        assert int(s2) == 0 and not torch.equal(c2, centers)


def test_same_bits_for_one_and_two_threads():
    features, labels, centers = reference.make_case(700, 64, 50, torch.float32, 3)
    results = []
    threads = torch.get_num_threads()
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            c = centers.clone()
            loss, basis = ops._forward_step_(features, labels, c, torch.zeros((), dtype=torch.long),
                                             0.0, 1, 0.5, 0)
            results.append((loss, basis, c))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


# (N, D, K) on each path of the kernel: two passes (D <= 4; x of 8 MiB with a small table) and
# one pass (which moves centers as it goes, so it must have checked x before).
GUARD_SHAPES = [(64, 2, 10), (4096, 512, 100), (300, 17, 1000)]


@pytest.mark.parametrize("n,d,k", GUARD_SHAPES)
@pytest.mark.parametrize("bad,dtype", [(float("nan"), torch.float32),
                                       (float("inf"), torch.bfloat16),
                                       (float("-inf"), torch.float64)])
def test_non_finite_batch_shows_in_the_loss_and_moves_nothing(n, d, k, bad, dtype):
    features, labels, centers = reference.make_case(n, d, k, dtype, 5)
    features[n - 7, 1] = bad
    before = centers.clone()
    skipped = torch.tensor([3])
    loss, basis = ops._forward_step_(features, labels, centers, skipped, 0.0, 1, 0.5, 0)
    assert not torch.isfinite(loss) and not torch.isfinite(basis[n - 7, 1])
    assert torch.equal(centers, before) and int(skipped) == 4


@pytest.mark.parametrize("n,d,k", GUARD_SHAPES)
def test_finite_batch_whose_distance_overflows_still_steps(n, d, k):
    """1e20^2 overflows float32: the loss is infinite, yet every feature is finite, so the batch
    steps (spec section 3: only a NaN or an infinity in the batch skips), as update_centers_ does."""
    features, labels, centers = reference.make_case(n, d, k, torch.float32, 6)
    features[n - 3, 0] = 1e20
    c1, c2 = centers.clone(), centers.clone()
    s1, s2 = torch.zeros((), dtype=torch.long), torch.zeros((), dtype=torch.long)
    loss1, basis1 = two_ops(features, labels, c1, s1, 0.0, 1, 0.5, 0)
    loss2, basis2 = ops._forward_step_(features, labels, c2, s2, 0.0, 1, 0.5, 0)
    assert torch.isinf(loss2) and torch.equal(loss1, loss2) and torch.equal(basis1, basis2)
    assert torch.equal(c1, c2) and int(s2) == 0
    assert c2[labels[n - 3], 0] != centers[labels[n - 3], 0]


@pytest.mark.parametrize("n,d,k", GUARD_SHAPES)
@pytest.mark.parametrize("dtype,big", [(torch.float32, 1e20), (torch.bfloat16, 1e20),
                                       (torch.float64, 1e200)])
def test_overflowing_distance_with_a_margin_gives_a_finite_gradient(n, d, k, dtype, big):
    """With a margin the gradient coefficient is (d - margin) / d; a squared distance that
    overflows from finite features must give its limit 1, not inf / inf = NaN, so the row's
    gradient is x - c (finite) as with margin 0. Both the forward op and the one op."""
    features, labels, centers = reference.make_case(n, d, k, dtype, 9)
    features[n - 3] = big
    for margin in (0.0, 0.5):
        _, basis = ops.forward(features, labels, centers, margin, 2)
        loss, basis_step = ops._forward_step_(features, labels, centers.clone(),
                                              torch.zeros((), dtype=torch.long), margin, 2, 0.5, 0)
        assert torch.isinf(loss)
        assert torch.isfinite(basis).all() and torch.equal(basis, basis_step), margin
        want = (features[n - 3].double() - centers[labels[n - 3]].double()).to(dtype)
        torch.testing.assert_close(basis[n - 3], want, rtol=0, atol=0)


@pytest.mark.parametrize("n,d,k", GUARD_SHAPES)
def test_a_loaded_non_finite_center_does_not_stop_the_step(n, d, k):
    """A NaN center (a state loaded by the user: the guard keeps the module's own finite) makes
    its rows' losses NaN, but the features are finite, so the batch steps as update_centers_
    does: the other centers move, the NaN one stays NaN."""
    features, labels, centers = reference.make_case(n, d, k, torch.float32, 8)
    centers[labels[0]] = float("nan")
    c1, c2 = centers.clone(), centers.clone()
    s1, s2 = torch.zeros((), dtype=torch.long), torch.zeros((), dtype=torch.long)
    loss1, basis1 = two_ops(features, labels, c1, s1, 0.0, 2, 0.5, 0)
    loss2, basis2 = ops._forward_step_(features, labels, c2, s2, 0.0, 2, 0.5, 0)
    exact = dict(rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(loss2, loss1, **exact)
    torch.testing.assert_close(basis2, basis1, **exact)
    torch.testing.assert_close(c2, c1, **exact)
    assert int(s2) == 0 and torch.isnan(loss2)
    assert not torch.equal(c2[labels[-1]], centers[labels[-1]]) or labels[-1] == labels[0]


@pytest.mark.parametrize("d", [2, 32])
def test_bad_label_raises_and_changes_nothing(d):
    features, labels, centers = reference.make_case(64, d, 10, torch.float32, 5)
    labels[40] = 10
    before = centers.clone()
    skipped = torch.zeros((), dtype=torch.long)
    with pytest.raises(RuntimeError, match="found label 10 at position 40"):
        ops._forward_step_(features, labels, centers, skipped, 0.0, 1, 0.5, 0)
    with pytest.raises(RuntimeError, match="found label 10 at position 40"):
        ops._center_loss_step_(features, labels, centers, skipped, 0.0, 1, 0.5, 0)
    assert torch.equal(centers, before) and int(skipped) == 0


def test_strided_centers_and_int32_labels():
    features, labels, centers = reference.make_case(200, 24, 30, torch.float32, 9)
    wide = torch.zeros(30, 48)
    wide[:, ::2] = centers
    strided = wide[:, ::2]
    c1 = centers.clone()
    two_ops(features, labels, c1, torch.zeros((), dtype=torch.long), 0.0, 1, 0.5, 0)
    ops._forward_step_(features, labels.int(), strided, torch.zeros((), dtype=torch.long),
                       0.0, 1, 0.5, 0)
    assert torch.equal(strided, c1)
    assert torch.equal(wide[:, 1::2], torch.zeros(30, 24))  # the gaps are not written


@pytest.mark.parametrize("reduction,code", [("none", 0), ("mean", 1), ("sum", 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_autograd_gradient_is_center_loss_gradient(reduction, code, dtype):
    features, labels, centers = reference.make_case(128, 40, 12, dtype, 13)
    x1 = features.clone().requires_grad_(True)
    x2 = features.clone().requires_grad_(True)
    c1 = centers.clone()
    weights = torch.rand(128) if reduction == "none" else torch.tensor(3.0)
    loss1 = centerloss.center_loss(x1, labels, c1, 0.5, reduction)
    (g1,) = torch.autograd.grad((loss1 * weights).sum(), x1)
    skipped = torch.zeros((), dtype=torch.long)
    version = c1._version
    loss2 = ops._center_loss_step_(x2, labels, c1, skipped, 0.5, code, 0.5, 0)
    assert c1._version > version  # the in-place step is visible to autograd
    (g2,) = torch.autograd.grad((loss2 * weights).sum(), x2)
    assert torch.equal(loss1, loss2) and torch.equal(g1, g2)
    expected = centers.clone()
    centerloss.update_centers_(expected, features, labels, 0.5, "paper")
    assert torch.equal(c1, expected)


def test_centers_that_require_grad_are_refused():
    features, labels, centers = reference.make_case(8, 3, 4, torch.float32, 1)
    centers.requires_grad_(True)
    with pytest.raises(RuntimeError, match="centers require grad"):
        ops._center_loss_step_(features.requires_grad_(True), labels, centers,
                               torch.zeros((), dtype=torch.long), 0.0, 1, 0.5, 0)


def test_meta_tensors_give_shapes_only():
    x = torch.empty(6, 4, device="meta", dtype=torch.bfloat16)
    y = torch.empty(6, dtype=torch.long, device="meta")
    c = torch.empty(9, 4, device="meta")
    s = torch.empty((), dtype=torch.long, device="meta")
    loss, basis = ops._forward_step_(x, y, c, s, 0.0, 0, 0.5, 0)
    assert loss.shape == (6,) and loss.dtype == torch.float32
    assert basis.shape == (6, 4) and basis.dtype == torch.bfloat16


ONE_PASS_SCRIPT = textwrap.dedent(
    """
    import sys, torch, centerloss.functional
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(5)
    out = [torch.ops.centerloss._cpu_one_pass()]
    # D <= 4, few classes, a small x, many small rows, a large x, a bad feature
    for n, d, k, bad in ((256, 2, 10, False), (64, 32, 10, False), (513, 128, 1000, False),
                         (2048, 16, 1000, False), (4096, 300, 100, False), (300, 17, 1000, True)):
        for dtype in (torch.float32, torch.bfloat16, torch.float64):
            x = torch.randn(n, d, generator=g).to(dtype)
            if bad:
                x[7, 1] = float("nan")
            y = torch.randint(0, k, (n,), generator=g)
            c = torch.randn(k, d, generator=g)
            s = torch.zeros((), dtype=torch.long)
            out += [*torch.ops.centerloss._forward_step_(x, y, c, s, 0.3, 0, 0.4, 1), c, s]
    torch.save(out, sys.argv[1])
    """
)


def test_one_pass_and_two_passes_give_the_same_bits(tmp_path):
    """CENTERLOSS_CPU_ONE_PASS forces either path for every shape (the default picks by shape):
    the results must not depend on the choice. Each process reports the setting it read."""
    runs = {}
    for setting in ("never", "always", "auto"):
        env = dict(os.environ, CENTERLOSS_CPU_ONE_PASS=setting)
        path = tmp_path / f"{setting}.pt"
        subprocess.run([sys.executable, "-c", ONE_PASS_SCRIPT, str(path)], check=True, env=env)
        runs[setting] = torch.load(path)
        assert runs[setting][0] == setting
    exact = dict(rtol=0, atol=0, equal_nan=True)
    for a, b, c in zip(runs["never"][1:], runs["always"][1:], runs["auto"][1:]):
        torch.testing.assert_close(b, a, **exact)
        torch.testing.assert_close(c, a, **exact)


def test_a_bad_one_pass_setting_is_refused_before_anything_changes():
    script = ("import torch, centerloss.functional\n"
              "c = torch.zeros(10, 8)\n"
              "try:\n"
              "    torch.ops.centerloss._forward_step_(torch.ones(64, 8), torch.arange(64) % 10, c,\n"
              "        torch.zeros((), dtype=torch.long), 0.0, 1, 0.5, 0)\n"
              "except RuntimeError as e:\n"
              "    print(str(e).splitlines()[0], bool(c.eq(0).all()))\n")
    env = dict(os.environ, CENTERLOSS_CPU_ONE_PASS="sometimes")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert "CENTERLOSS_CPU_ONE_PASS must be auto, never or always, got 'sometimes'" in out
    assert out.strip().endswith("True")
