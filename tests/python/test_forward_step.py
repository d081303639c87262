"""The module's training step in one op (_forward_step_, and _center_loss_step_ with autograd)
on every device: the same bits as the forward op followed by the step op, for every dtype,
margin, reduction and rule (on the CPU on every side of the kernel's choice between one pass and
two: D <= 4, x larger than 1 MiB with a small table, a table of 64 MiB or more, few classes per
thread; for 1 and 2 threads), the reference's results, and the same guards.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import itertools

import pytest
import torch

import centerloss.functional  # loads torch.ops.centerloss
import reference
from reference import TOL, max_abs_diff

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
# CUDA: the op tests' shapes and those of the CUDA paths, with float32 centers.
CUDA_SHAPES = reference.SHAPES + reference.CUDA_SHAPES
CUDA_DTYPES = [(torch.float32, torch.float32), (torch.bfloat16, torch.float32)]
ONE_OP_CASES = reference.per_device(
    [(*shape, *dtypes) for shape in SHAPES for dtypes in DTYPES
     if shape[2] < 1 << 20 or dtypes[0] == torch.float32],  # the 64 MiB table once is enough
    [(*shape, *dtypes) for shape in CUDA_SHAPES for dtypes in CUDA_DTYPES])


def on(device, *tensors):
    return [t.to(device) for t in tensors]


def zero_count(device):
    return torch.zeros((), dtype=torch.long, device=device)


def two_ops(features, labels, centers, skipped, margin, reduction, alpha, rule):
    loss, basis = ops.forward(features, labels, centers, margin, reduction)
    applied = ops.update_centers_(centers, features, labels, alpha, rule)
    skipped += ~applied
    return loss, basis


@pytest.mark.parametrize("device,n,d,k,dtype,centers_dtype", ONE_OP_CASES, ids=str)
def test_one_op_gives_the_two_ops_bits(device, n, d, k, dtype, centers_dtype):
    features, labels, centers = on(device, *reference.make_case(n, d, k, dtype, 7 * n + d,
                                                                centers_dtype))
    for margin, reduction, rule in [(0.0, 1, 0), (0.5, 0, 1), (2.0, 2, 0), (0.5, 1, 0)]:
        case = (margin, reduction, rule)
        c1, c2, c3 = centers.clone(), centers.clone(), centers.clone()
        s1, s2 = zero_count(device), zero_count(device)
        loss1, basis1 = two_ops(features, labels, c1, s1, margin, reduction, 0.3, rule)
        loss2, basis2 = ops._forward_step_(features, labels, c2, s2, margin, reduction, 0.3, rule)
        assert torch.equal(loss1, loss2), case
        assert torch.equal(basis1, basis2), case
        assert torch.equal(c1, c2), case
        assert int(s2) == 0 and not torch.equal(c2, centers)
        # The modules' op: the same loss and step, and a unit incoming gradient gives the basis.
        x = features.clone().requires_grad_(True)
        loss3 = ops._center_loss_step_(x, labels, c3, s2, margin, reduction, 0.3, rule)
        (grad,) = torch.autograd.grad(loss3, x, torch.ones_like(loss3))
        assert torch.equal(loss3, loss1) and torch.equal(grad, basis1), case
        assert torch.equal(c3, c1) and int(s2) == 0, case


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
def test_non_finite_batch_shows_in_the_loss_and_moves_nothing(device, n, d, k, bad, dtype):
    features, labels, centers = on(device, *reference.make_case(n, d, k, dtype, 5))
    features[n - 7, 1] = bad
    before = centers.clone()
    skipped = torch.tensor([3], device=device)
    loss, basis = ops._forward_step_(features, labels, centers, skipped, 0.0, 1, 0.5, 0)
    assert not torch.isfinite(loss) and not torch.isfinite(basis[n - 7, 1])
    assert torch.equal(centers, before) and int(skipped) == 4


@pytest.mark.parametrize("n,d,k", GUARD_SHAPES)
def test_finite_batch_whose_distance_overflows_still_steps(device, n, d, k):
    """1e20^2 overflows float32: the loss is infinite, yet every feature is finite, so the batch
    steps (spec section 3: only a NaN or an infinity in the batch skips), as update_centers_ does."""
    features, labels, centers = on(device, *reference.make_case(n, d, k, torch.float32, 6))
    features[n - 3, 0] = 1e20
    c1, c2 = centers.clone(), centers.clone()
    s1, s2 = zero_count(device), zero_count(device)
    loss1, basis1 = two_ops(features, labels, c1, s1, 0.0, 1, 0.5, 0)
    loss2, basis2 = ops._forward_step_(features, labels, c2, s2, 0.0, 1, 0.5, 0)
    assert torch.isinf(loss2) and torch.equal(loss1, loss2) and torch.equal(basis1, basis2)
    assert torch.equal(c1, c2) and int(s2) == 0
    assert c2[labels[n - 3], 0] != centers[labels[n - 3], 0]


@pytest.mark.parametrize("n,d,k", GUARD_SHAPES)
@pytest.mark.parametrize("dtype,big", [(torch.float32, 1e20), (torch.bfloat16, 1e20),
                                       (torch.float64, 1e200)])
def test_overflowing_distance_with_a_margin_gives_a_finite_gradient(device, n, d, k, dtype, big):
    """With a margin the gradient coefficient is (d - margin) / d; a squared distance that
    overflows from finite features must give its limit 1, not inf / inf = NaN, so the row's
    gradient is x - c (finite) as with margin 0. The forward op, the one op and autograd."""
    features, labels, centers = on(device, *reference.make_case(n, d, k, dtype, 9))
    features[n - 3] = big
    for margin in (0.0, 0.5):
        _, basis = ops.forward(features, labels, centers, margin, 2)
        loss, basis_step = ops._forward_step_(features, labels, centers.clone(),
                                              zero_count(device), margin, 2, 0.5, 0)
        assert torch.isinf(loss)
        assert torch.isfinite(basis).all() and torch.equal(basis, basis_step), margin
        want = (features[n - 3].double() - centers[labels[n - 3]].double()).to(dtype)
        torch.testing.assert_close(basis[n - 3], want, rtol=0, atol=0)
        x = features.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(centerloss.center_loss(x, labels, centers, margin, "sum"), x)
        assert torch.equal(grad, basis), margin


@pytest.mark.parametrize("n,d,k", GUARD_SHAPES)
def test_a_loaded_non_finite_center_does_not_stop_the_step(device, n, d, k):
    """A NaN center (a state loaded by the user: the guard keeps the module's own finite) makes
    its rows' losses NaN, but the features are finite, so the batch steps as update_centers_
    does: the other centers move, the NaN one stays NaN."""
    features, labels, centers = on(device, *reference.make_case(n, d, k, torch.float32, 8))
    centers[labels[0]] = float("nan")
    c1, c2 = centers.clone(), centers.clone()
    s1, s2 = zero_count(device), zero_count(device)
    loss1, basis1 = two_ops(features, labels, c1, s1, 0.0, 2, 0.5, 0)
    loss2, basis2 = ops._forward_step_(features, labels, c2, s2, 0.0, 2, 0.5, 0)
    exact = dict(rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(loss2, loss1, **exact)
    torch.testing.assert_close(basis2, basis1, **exact)
    torch.testing.assert_close(c2, c1, **exact)
    assert int(s2) == 0 and torch.isnan(loss2)
    assert not torch.equal(c2[labels[-1]], centers[labels[-1]]) or labels[-1] == labels[0]


@pytest.mark.parametrize("d", [2, 32])
def test_bad_label_raises_and_changes_nothing(device, d):
    features, labels, centers = on(device, *reference.make_case(64, d, 10, torch.float32, 5))
    labels[40] = 10
    before = centers.clone()
    skipped = zero_count(device)
    with pytest.raises(RuntimeError, match="found label 10 at position 40"):
        ops._forward_step_(features, labels, centers, skipped, 0.0, 1, 0.5, 0)
    with pytest.raises(RuntimeError, match="found label 10 at position 40"):
        ops._center_loss_step_(features, labels, centers, skipped, 0.0, 1, 0.5, 0)
    assert torch.equal(centers, before) and int(skipped) == 0


def test_strided_centers_and_int32_labels(device):
    features, labels, centers = on(device, *reference.make_case(200, 24, 30, torch.float32, 9))
    wide = torch.zeros(30, 48, device=device)
    wide[:, ::2] = centers
    strided = wide[:, ::2]
    c1 = centers.clone()
    two_ops(features, labels, c1, zero_count(device), 0.0, 1, 0.5, 0)
    ops._forward_step_(features, labels.int(), strided, zero_count(device), 0.0, 1, 0.5, 0)
    assert torch.equal(strided, c1)
    assert not wide[:, 1::2].any()  # the gaps are not written


@pytest.mark.parametrize("reduction,code", [("none", 0), ("mean", 1), ("sum", 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_autograd_gradient_is_center_loss_gradient(device, reduction, code, dtype):
    features, labels, centers = on(device, *reference.make_case(128, 40, 12, dtype, 13))
    x1 = features.clone().requires_grad_(True)
    x2 = features.clone().requires_grad_(True)
    c1 = centers.clone()
    weights = (torch.rand(128) if reduction == "none" else torch.tensor(3.0)).to(device)
    loss1 = centerloss.center_loss(x1, labels, c1, 0.5, reduction)
    (g1,) = torch.autograd.grad((loss1 * weights).sum(), x1)
    skipped = zero_count(device)
    version = c1._version
    loss2 = ops._center_loss_step_(x2, labels, c1, skipped, 0.5, code, 0.5, 0)
    assert c1._version > version  # the in-place step is visible to autograd
    (g2,) = torch.autograd.grad((loss2 * weights).sum(), x2)
    assert torch.equal(loss1, loss2) and torch.equal(g1, g2)
    expected = centers.clone()
    centerloss.update_centers_(expected, features, labels, 0.5, "paper")
    assert torch.equal(c1, expected)


def test_centers_that_require_grad_are_refused(device):
    features, labels, centers = on(device, *reference.make_case(8, 3, 4, torch.float32, 1))
    centers.requires_grad_(True)
    with pytest.raises(RuntimeError, match="centers require grad"):
        ops._center_loss_step_(features.requires_grad_(True), labels, centers,
                               zero_count(device), 0.0, 1, 0.5, 0)


# An empty batch and the op tests' shapes: the small ones on the CPU (where the one op gives the
# two ops' bits, above, and those are tested against the reference in test_op_reference.py),
# every one on CUDA.
REFERENCE_CASES = reference.per_device([(0, 5, 3)] + reference.SHAPES[:4],
                                       [(0, 5, 3)] + CUDA_SHAPES)


@pytest.mark.parametrize("device,n,d,k", REFERENCE_CASES)
def test_one_op_matches_the_reference_everywhere(device, n, d, k):
    """_forward_step_ (CUDA: forward_then_step) and _center_loss_step_ (with its backward) against
    the reference on every dtype pair, reduction, margin and rule; on CUDA also against the CPU
    ops."""
    for dtype, centers_dtype, reduction, margin, rule in itertools.product(
        reference.DTYPES, [torch.float32, torch.float64], (0, 1, 2), [0.0, 0.7], (0, 1)
    ):
        where = f"{dtype} centers {centers_dtype} {reduction=} {margin=} {rule=}"
        features, labels, centers = reference.make_case(n, d, k, dtype, 11 * n + d + k,
                                                        centers_dtype)
        loss_rtol, loss_atol, grad_atol = TOL[device][dtype]
        center_tol = 1e-10 if centers_dtype == torch.float64 else 1e-5
        name = ["none", "mean", "sum"][reduction]
        x_ref = features.double().requires_grad_(True)
        want = reference.loss(x_ref, labels, centers.double(), margin, name)
        weight = torch.rand(n, dtype=torch.float64) if reduction == 0 else torch.full((), 0.5)
        (want_basis,) = torch.autograd.grad(want, x_ref, torch.ones_like(want), retain_graph=True)
        (want_grad,) = torch.autograd.grad(want, x_ref, weight.expand_as(want))
        want_centers = reference.updated_centers(centers.double(), features.double(), labels,
                                                 0.3, ["paper", "mean"][rule])

        c, s = centers.to(device, copy=True), zero_count(device)
        loss, basis = ops._forward_step_(features.to(device), labels.to(device), c, s, margin,
                                         reduction, 0.3, rule)
        assert loss.dtype == reference.acc_dtype(features, centers), where
        assert basis.dtype == dtype and basis.shape == (n, d), where
        torch.testing.assert_close(loss.cpu().double(), want.detach(), rtol=loss_rtol,
                                   atol=loss_atol, msg=where)
        scale = max(want_basis.abs().max().item(), 1e-30) if n else 1.0
        assert max_abs_diff(basis, want_basis) <= grad_atol * scale, where
        torch.testing.assert_close(c.cpu().double(), want_centers, rtol=center_tol,
                                   atol=center_tol, msg=where)
        assert int(s) == 0, where

        x = features.to(device, copy=True).requires_grad_(True)
        c_step = centers.to(device, copy=True)
        loss_step = ops._center_loss_step_(x, labels.to(device), c_step, zero_count(device),
                                           margin, reduction, 0.3, rule)
        (grad,) = torch.autograd.grad(loss_step, x, weight.to(device, loss_step.dtype))
        torch.testing.assert_close(loss_step.detach().cpu().double(), want.detach(),
                                   rtol=loss_rtol, atol=loss_atol, msg=where)
        assert grad.dtype == dtype, where
        scale = max(want_grad.abs().max().item(), 1e-30) if n else 1.0
        assert max_abs_diff(grad, want_grad) <= grad_atol * scale, where
        torch.testing.assert_close(c_step.cpu().double(), want_centers, rtol=center_tol,
                                   atol=center_tol, msg=where)

        if device != "cpu":  # parity with the CPU op
            c_cpu = centers.clone()
            loss_cpu, basis_cpu = ops._forward_step_(features, labels, c_cpu, zero_count("cpu"),
                                                     margin, reduction, 0.3, rule)
            assert loss.dtype == loss_cpu.dtype and loss.shape == loss_cpu.shape, where
            torch.testing.assert_close(loss.cpu(), loss_cpu, rtol=loss_rtol, atol=1e-6, msg=where)
            scale = max(basis_cpu.abs().max().item(), 1e-30) if n else 1.0
            assert max_abs_diff(basis, basis_cpu) <= grad_atol * scale, where
            torch.testing.assert_close(c.cpu(), c_cpu, rtol=center_tol, atol=center_tol, msg=where)


def test_one_op_refuses_what_the_two_ops_refuse_with_the_same_message(device):
    """Bad labels and options: both one ops raise the CPU op's message on every device and change
    nothing; strided centers are stepped through a contiguous copy and written back."""
    features, labels, centers = reference.make_case(50, 6, 4, torch.float32, 5)
    bad_label = labels.clone()
    bad_label[17] = 4
    cases = {  # name: (labels, margin, reduction, alpha, rule)
        "bad label": (bad_label, 0.0, 1, 0.3, 0),
        "negative margin": (labels, -1.0, 1, 0.3, 0),
        "unknown reduction": (labels, 0.0, 7, 0.3, 0),
        "alpha out of range": (labels, 0.0, 1, -0.5, 0),
        "gradient rule": (labels, 0.0, 1, 0.3, 2),
    }
    for name, (y, margin, reduction, alpha, rule) in cases.items():
        messages = []
        for where in sorted({"cpu", device}):
            for op in (ops._forward_step_, ops._center_loss_step_):
                c, skipped = centers.to(where, copy=True), zero_count(where)
                with pytest.raises(RuntimeError) as err:
                    op(features.to(where), y.to(where), c, skipped, margin, reduction, alpha, rule)
                messages.append(str(err.value).splitlines()[0])
                assert torch.equal(c.cpu(), centers) and int(skipped) == 0, f"{name} {where}"
        assert len(set(messages)) == 1, f"{name}: {messages}"
    strided = torch.randn(6, 4, dtype=torch.float64).t().float()  # [4, 6], not contiguous
    strided.copy_(centers)
    c = strided.to(device, copy=True)  # keeps the strides
    assert not c.is_contiguous()
    ops._forward_step_(features.to(device), labels.to(device), c, zero_count(device), 0.0, 1, 0.3,
                       0)
    dense = centers.clone()
    ops._forward_step_(features, labels, dense, zero_count("cpu"), 0.0, 1, 0.3, 0)
    torch.testing.assert_close(c.cpu(), dense, rtol=1e-5, atol=1e-5)


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
