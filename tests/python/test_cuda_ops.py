"""The CUDA kernels against the CPU op and the primitive reference (spec section 8).

Skipped without a CUDA device. Runs under pytest, or as `python tests/python/test_cuda_ops.py`
where pytest is not installed (the GPU machine may lack it): every test loops over its own cases.
"""
from __future__ import annotations

import itertools
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import centerloss.functional  # noqa: E402  (loads torch.ops.centerloss)
from plain_runner import cuda_only, run_tests  # noqa: E402
import reference  # noqa: E402

pytestmark = cuda_only()

CUDA = torch.device("cuda")
DTYPES = reference.DTYPES
make_case = reference.make_case
# (loss rtol, gradient atol relative to the largest gradient) per feature dtype.
TOL = {
    torch.float32: (1e-5, 1e-5),
    torch.float64: (1e-12, 1e-12),
    torch.float16: (1e-5, 2e-3),
    torch.bfloat16: (1e-5, 1.6e-2),
}
# The CPU tests' shapes (tests/python/test_op_reference.py), then shapes that take each CUDA
# path: one-block sort up to 1024 and 4096 rows, device-wide sort above.
SHAPES = reference.SHAPES + [(4096, 40, 3), (6000, 24, 500)]
REDUCTIONS = ["mean", "sum", "none"]




class deterministic:
    """Context manager: torch.use_deterministic_algorithms(on), restored on exit."""

    def __init__(self, on):
        self.on = on

    def __enter__(self):
        self.before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(self.on)

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.before)


def test_loss_and_gradient_match_cpu_and_reference():
    for (n, d, k), dtype, centers_dtype, margin, reduction in itertools.product(
        SHAPES, DTYPES, [torch.float32, torch.float64], [0.0, 0.7], REDUCTIONS
    ):
        where = f"N={n} D={d} K={k} {dtype} centers {centers_dtype} margin={margin} {reduction}"
        features, labels, centers = make_case(n, d, k, dtype, n + d + k, centers_dtype)
        loss_rtol, grad_atol = TOL[dtype]
        weight = torch.rand(n, dtype=torch.float64) if reduction == "none" else torch.ones(())

        x_gpu = features.to(CUDA).requires_grad_(True)
        got = centerloss.center_loss(x_gpu, labels.to(CUDA), centers.to(CUDA), margin, reduction)
        x_cpu = features.clone().requires_grad_(True)
        cpu = centerloss.center_loss(x_cpu, labels, centers, margin, reduction)
        x_ref = features.to(torch.float64).requires_grad_(True)
        want = reference.loss(x_ref, labels, centers.to(torch.float64), margin, reduction)

        assert got.dtype == cpu.dtype and got.shape == cpu.shape, where
        torch.testing.assert_close(got.cpu().double(), want.detach(), rtol=loss_rtol, atol=1e-6, msg=where)
        torch.testing.assert_close(got.cpu(), cpu.detach(), rtol=max(loss_rtol, 1e-5), atol=1e-6, msg=where)
        (got * weight.to(CUDA, got.dtype)).sum().backward()
        (cpu * weight.to(cpu.dtype)).sum().backward()
        (want * weight).sum().backward()
        assert x_gpu.grad.dtype == dtype, where
        scale = max(x_ref.grad.abs().max().item(), 1e-30) if n else 1.0
        assert (x_gpu.grad.cpu().double() - x_ref.grad).abs().max().item() <= grad_atol * scale, where
        assert (x_gpu.grad.cpu().double() - x_cpu.grad.double()).abs().max().item() <= grad_atol * scale, where


def test_update_matches_cpu_and_reference_in_both_modes():
    for (n, d, k), dtype, centers_dtype, rule, det in itertools.product(
        SHAPES, DTYPES, [torch.float32, torch.float64], ["paper", "mean"], [True, False]
    ):
        where = f"N={n} D={d} K={k} {dtype} centers {centers_dtype} {rule} deterministic={det}"
        features, labels, centers = make_case(n, d, k, dtype, 7 * n + d + k, centers_dtype)
        got = centers.to(CUDA)
        with deterministic(det):
            applied = centerloss.update_centers_(got, features.to(CUDA), labels.to(CUDA), 0.4, rule)
        assert applied.device.type == "cuda" and applied.dtype == torch.bool and applied.item(), where
        cpu = centers.clone()
        centerloss.update_centers_(cpu, features, labels, 0.4, rule)
        want = reference.updated_centers(centers.double(), features.double(), labels, 0.4, rule)
        tol = 1e-10 if centers_dtype == torch.float64 else 1e-5
        torch.testing.assert_close(got.cpu().double(), want, rtol=tol, atol=tol, msg=where)
        torch.testing.assert_close(got.cpu(), cpu, rtol=tol, atol=tol, msg=where)
        absent = torch.ones(k, dtype=torch.bool)
        absent[labels] = False
        assert torch.equal(got.cpu()[absent], centers[absent]), where  # untouched bitwise


def test_one_label_repeated_and_every_class_covered():
    for n, k in [(1, 1), (300, 1), (4096, 5), (6000, 2)]:
        for labels in (torch.full((n,), k - 1), torch.arange(n) % k):
            features, _, centers = make_case(n, 8, k, torch.float32, n + k)
            got = centers.to(CUDA)
            centerloss.update_centers_(got, features.to(CUDA), labels.to(CUDA), 0.5, "paper")
            want = reference.updated_centers(centers.double(), features.double(), labels, 0.5, "paper")
            torch.testing.assert_close(got.cpu().double(), want, rtol=1e-5, atol=1e-5)
            loss = centerloss.center_loss(features.to(CUDA), labels.to(CUDA), centers.to(CUDA))
            want_loss = reference.loss(features.double(), labels, centers.double())
            torch.testing.assert_close(loss.cpu().double(), want_loss, rtol=1e-5, atol=1e-6)


def test_gradcheck_float64():
    features, labels, centers = make_case(12, 5, 4, torch.float64, 3, torch.float64)
    x = features.to(CUDA).requires_grad_(True)
    c = centers.to(CUDA)
    for margin, reduction in itertools.product([0.0, 0.4], REDUCTIONS):
        assert torch.autograd.gradcheck(
            lambda t: centerloss.center_loss(t, labels.to(CUDA), c, margin, reduction), (x,)
        )
    # The "gradient" rule: centers get the true gradient, summed by index_add_ (atomics on
    # CUDA, so two backward passes may differ in the last bits).
    cg = c.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda t, u: centerloss.center_loss(t, labels.to(CUDA), u, 0.0, "mean"), (x, cg),
        nondet_tol=1e-12,
    )


def test_opcheck_every_op():
    features, labels, centers = make_case(9, 3, 4, torch.float64, 8, torch.float64)
    features, labels, centers = features.to(CUDA), labels.to(CUDA), centers.to(CUDA)
    ops = torch.ops.centerloss
    x = features.clone().requires_grad_(True)
    c = centers.clone().requires_grad_(True)
    for reduction in (0, 1, 2):
        torch.library.opcheck(ops.center_loss.default, (x, labels, c, 0.25, reduction))
        torch.library.opcheck(ops.forward.default, (features, labels, centers, 0.0, reduction))
    torch.library.opcheck(ops.update_centers_.default, (centers.clone(), features, labels, 0.5, 0))
    torch.library.opcheck(
        ops.init_centers_first_sight_.default,
        (centers.clone(), torch.zeros(4, dtype=torch.bool, device=CUDA), features, labels),
    )
    skipped = torch.zeros((), dtype=torch.long, device=CUDA)
    for reduction in (0, 1, 2):
        torch.library.opcheck(ops._forward_step_.default,
                              (features, labels, centers.clone(), skipped, 0.25, reduction, 0.5, 0))
        torch.library.opcheck(ops._center_loss_step_.default,
                              (x, labels, centers.clone(), skipped, 0.25, reduction, 0.5, 1))


def test_deterministic_mode_is_bitwise_reproducible():
    for n, d, k in [(512, 512, 10), (3000, 64, 1000), (6000, 32, 20)]:
        features, labels, centers = make_case(n, d, k, torch.float32, n, torch.float32)
        features, labels, centers = features.to(CUDA), labels.to(CUDA), centers.to(CUDA)

        def run():
            x = features.clone().requires_grad_(True)
            loss = centerloss.center_loss(x, labels, centers, 0.1)
            loss.backward()
            moved = centers.clone()
            centerloss.update_centers_(moved, features, labels)
            return loss, x.grad, moved

        with deterministic(True):
            first, second = run(), run()
        for a, b in zip(first, second):
            assert torch.equal(a, b), f"N={n} D={d} K={k}"


def test_nan_guard_changes_nothing_and_returns_a_device_verdict():
    for n, bad, dtype in itertools.product([8, 2000, 5000], [float("nan"), float("inf")], DTYPES):
        features, labels, centers = make_case(n, 16, 4, dtype, n)
        features, labels, centers = features.to(CUDA), labels.to(CUDA), centers.to(CUDA)
        features[n - 1, 15] = bad  # the last element: the last checker block's slice
        before = centers.clone()
        applied = centerloss.update_centers_(centers, features, labels)
        assert applied.device.type == "cuda"
        assert not applied.item()
        assert torch.equal(centers, before)
        assert not torch.isfinite(centerloss.center_loss(features, labels, centers)).item()


def test_nan_feature_shows_in_the_loss_with_a_margin():
    features, labels, centers = make_case(40, 5, 4, torch.float32, 3)
    features[7, 2] = float("nan")
    for reduction in REDUCTIONS:
        loss = centerloss.center_loss(features.to(CUDA), labels.to(CUDA), centers.to(CUDA), 0.5,
                                      reduction).cpu()
        assert torch.isnan(loss[7] if reduction == "none" else loss).item(), reduction


def test_gradient_rule_gives_zero_center_gradient_for_a_nan_batch():
    module = centerloss.CenterLoss(5, 4, update="gradient", init="normal").to(CUDA)
    x = torch.randn(16, 4, device=CUDA)
    x[9, 1] = float("nan")
    y = torch.randint(0, 5, (16,), device=CUDA)
    module(x.requires_grad_(True), y).backward()
    assert torch.equal(module.centers.grad, torch.zeros_like(module.centers))


def test_module_counts_skipped_steps_on_the_device():
    module = centerloss.CenterLoss(10, 6, alpha=0.5).to(CUDA)
    x = torch.randn(32, 6, device=CUDA, requires_grad=True)
    y = torch.randint(0, 10, (32,), device=CUDA)
    module(x, y).backward()
    assert x.grad is not None and module.skipped_updates.item() == 0
    x_bad = x.detach().clone()
    x_bad[3, 2] = float("nan")
    before = module.centers.clone()
    module(x_bad, y)
    assert module.skipped_updates.item() == 1
    assert torch.equal(module.centers, before)


def test_bad_labels_raise_and_change_nothing():
    features, labels, centers = make_case(6, 3, 4, torch.float32, 1)
    features, centers = features.to(CUDA), centers.to(CUDA)
    before = centers.clone()
    for bad in (-1, 4, 100):
        y = labels.clone()
        y[4] = bad
        for call in (
            lambda: centerloss.update_centers_(centers, features, y.to(CUDA)),
            lambda: centerloss.center_loss(features, y.to(CUDA), centers),
        ):
            try:
                call()
            except RuntimeError as err:
                assert f"found label {bad} at position 4" in str(err), str(err)
            else:
                raise AssertionError(f"label {bad} was accepted")
        assert torch.equal(centers, before)


def test_fused_label_check_reports_the_first_bad_label_then_resets():
    # N = 5000 spans 1250 forward blocks: the first bad position must win whichever block
    # finishes last, and the next call on the stream must start from a clean slate.
    for n, positions, reduction in [
        (5000, [4999], "mean"),
        (5000, [3, 4000, 17], "sum"),
        (5000, [2500, 2501], "none"),
        (6, [0], "mean"),
    ]:
        features, labels, centers = make_case(n, 5, 9, torch.float32, n)
        features, centers = features.to(CUDA), centers.to(CUDA)
        y = labels.clone()
        for i, p in enumerate(positions):
            y[p] = -2 if i % 2 else 9
        first = min(positions)
        try:
            centerloss.center_loss(features, y.to(CUDA), centers, 0.0, reduction)
        except RuntimeError as err:
            assert f"found label {int(y[first])} at position {first}" in str(err), str(err)
        else:
            raise AssertionError(f"bad labels at {positions} were accepted")
        good = centerloss.center_loss(features, labels.to(CUDA), centers, 0.0, reduction)
        torch.testing.assert_close(
            good.cpu(), centerloss.center_loss(features.cpu(), labels, centers.cpu(), 0.0, reduction)
        )


def test_forward_on_side_streams_gives_the_default_streams_result():
    # Sequential calls (each forward reads its label verdict on the host), so this checks that
    # each side stream gets a working scratch; overlapping streams are tested in C++
    # (CudaStreams.ConcurrentForwardsOnTwoStreamsKeepTheirOwnVerdicts).
    features, labels, centers = make_case(3000, 64, 50, torch.float32, 8)
    features, labels, centers = features.to(CUDA), labels.to(CUDA), centers.to(CUDA)
    want = centerloss.center_loss(features, labels, centers)
    streams = [torch.cuda.Stream() for _ in range(3)]
    got = []
    for s in streams:
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            got.append([centerloss.center_loss(features, labels, centers) for _ in range(5)])
    torch.cuda.synchronize()
    for values in got:
        for v in values:
            assert torch.equal(v, want)


def test_module_step_matches_update_centers_and_guards_on_the_device():
    def step(c, skipped, x, y, rule):
        return torch.ops.centerloss._forward_step_(x, y, c, skipped, 0.0, 1, 0.3, rule)

    for (n, d, k), rule in itertools.product(SHAPES, [0, 1]):
        features, labels, centers = make_case(n, d, k, torch.float32, 3 * n + k)
        features, labels, centers = features.to(CUDA), labels.to(CUDA), centers.to(CUDA)
        expected = centers.clone()
        centerloss.update_centers_(expected, features, labels, 0.3, ["paper", "mean"][rule])
        skipped = torch.zeros((), dtype=torch.long, device=CUDA)
        got = centers.clone()
        step(got, skipped, features, labels, rule)
        assert torch.equal(got, expected), f"N={n} D={d} K={k} rule={rule}"
        assert skipped.item() == 0
        x, c = features.clone(), centers.clone()
        x[n - 1, d - 1] = float("nan")
        step(c, skipped, x, labels, rule)  # a non-finite batch: skipped on the device
        assert torch.equal(c, centers) and skipped.item() == 1, f"N={n} D={d} K={k}"
        for bad in (-1, k):  # a bad label: the forward raises before the step runs
            y, c = labels.clone(), centers.clone()
            y[n - 1] = bad
            try:
                step(c, skipped, features, y, rule)
                raise AssertionError(f"no error for label {bad}")
            except RuntimeError as err:
                assert f"found label {bad} at position {n - 1}" in str(err), str(err)
            assert torch.equal(c, centers) and skipped.item() == 1, f"N={n} D={d} K={k} bad={bad}"


def test_one_op_step_gives_the_two_ops_bits_on_the_device():
    ops = torch.ops.centerloss
    for (n, d, k), dtype in itertools.product(SHAPES, [torch.float32, torch.bfloat16]):
        features, labels, centers = make_case(n, d, k, dtype, 5 * n + d)
        features, labels, centers = features.to(CUDA), labels.to(CUDA), centers.to(CUDA)
        c1, c2 = centers.clone(), centers.clone()
        s2 = torch.zeros((), dtype=torch.long, device=CUDA)
        loss1, basis1 = ops.forward(features, labels, c1, 0.5, 1)
        assert bool(ops.update_centers_(c1, features, labels, 0.3, 0))
        loss2, basis2 = ops._forward_step_(features, labels, c2, s2, 0.5, 1, 0.3, 0)
        case = f"N={n} D={d} K={k} {dtype}"
        assert torch.equal(loss1, loss2) and torch.equal(basis1, basis2), case
        assert torch.equal(c1, c2) and s2.item() == 0, case
        x = features.clone().requires_grad_(True)
        c3 = centers.clone()
        loss3 = ops._center_loss_step_(x, labels, c3, s2, 0.5, 1, 0.3, 0)
        (grad,) = torch.autograd.grad(loss3, x)
        assert torch.equal(loss3, loss1) and torch.equal(grad, basis1) and torch.equal(c3, c1), case


def test_module_with_bad_labels_raises_in_forward_and_changes_nothing():
    module = centerloss.CenterLoss(10, 6, init="normal").to(CUDA)
    state = {k: v.clone() for k, v in module.state_dict().items()}
    x = torch.randn(32, 6, device=CUDA)
    y = torch.randint(0, 10, (32,), device=CUDA)
    y[20] = 10
    try:
        module(x, y)
    except RuntimeError as err:
        assert "found label 10 at position 20" in str(err), str(err)
    else:
        raise AssertionError("bad label accepted")
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_empty_batch():
    x = torch.zeros(0, 4, device=CUDA, requires_grad=True)
    y = torch.zeros(0, dtype=torch.long, device=CUDA)
    c = torch.randn(3, 4, device=CUDA)
    before = c.clone()
    loss = centerloss.center_loss(x, y, c)
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad.shape == x.shape
    assert centerloss.center_loss(x, y, c, reduction="none").shape == (0,)
    assert centerloss.update_centers_(c, x.detach(), y).item()
    assert torch.equal(c, before)


def test_non_contiguous_inputs_give_the_contiguous_result():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(40, 96, generator=g).to(CUDA).t()
    y = torch.randint(0, 7, (192,), generator=g).to(CUDA)[::2]
    c = torch.randn(40, 7, generator=g).to(CUDA).t()
    assert not (x.is_contiguous() or y.is_contiguous() or c.is_contiguous())
    for reduction in REDUCTIONS:
        torch.testing.assert_close(
            centerloss.center_loss(x, y, c, 0.3, reduction),
            centerloss.center_loss(x.contiguous(), y.contiguous(), c.contiguous(), 0.3, reduction),
            rtol=0, atol=0,
        )
    strided = torch.randn(40, 7, generator=g).to(CUDA).t()
    dense = strided.contiguous()
    centerloss.update_centers_(strided, x, y, 0.5, "mean")
    centerloss.update_centers_(dense, x.contiguous(), y.contiguous(), 0.5, "mean")
    assert torch.equal(strided, dense)


def test_one_op_matches_the_cpu_op_everywhere():
    # _forward_step_ (forward, then the step; CUDA: forward_then_step) and _center_loss_step_ (the
    # modules' op, with its backward) against the CPU ops, on every dtype pair, reduction, margin
    # and rule, including an empty batch.
    ops = torch.ops.centerloss
    for (n, d, k), dtype, centers_dtype, reduction, margin, rule in itertools.product(
        SHAPES + [(0, 5, 3)], DTYPES, [torch.float32, torch.float64], (0, 1, 2), [0.0, 0.7], (0, 1)
    ):
        where = f"N={n} D={d} K={k} {dtype} centers {centers_dtype} {reduction=} {margin=} {rule=}"
        features, labels, centers = make_case(n, d, k, dtype, 11 * n + d + k, centers_dtype)
        loss_rtol, grad_atol = TOL[dtype]
        center_tol = 1e-10 if centers_dtype == torch.float64 else 1e-5
        c_cpu, s_cpu = centers.clone(), torch.zeros((), dtype=torch.long)
        c_gpu, s_gpu = centers.to(CUDA, copy=True), torch.zeros((), dtype=torch.long, device=CUDA)
        loss_cpu, basis_cpu = ops._forward_step_(features, labels, c_cpu, s_cpu, margin, reduction,
                                                 0.3, rule)
        loss_gpu, basis_gpu = ops._forward_step_(features.to(CUDA), labels.to(CUDA), c_gpu, s_gpu,
                                                 margin, reduction, 0.3, rule)
        assert loss_gpu.dtype == loss_cpu.dtype and loss_gpu.shape == loss_cpu.shape, where
        assert basis_gpu.dtype == basis_cpu.dtype == dtype and basis_gpu.shape == (n, d), where
        torch.testing.assert_close(loss_gpu.cpu(), loss_cpu, rtol=loss_rtol, atol=1e-6, msg=where)
        scale = max(basis_cpu.abs().max().item(), 1e-30) if n else 1.0
        assert (basis_gpu.cpu().double() - basis_cpu.double()).abs().max().item() <= grad_atol * scale if n else True, where
        torch.testing.assert_close(c_gpu.cpu(), c_cpu, rtol=center_tol, atol=center_tol, msg=where)
        assert s_gpu.item() == s_cpu.item() == 0, where

        weight = torch.rand(n, dtype=torch.float64) if reduction == 0 else torch.full((), 0.5)
        grads = []
        for device in ("cpu", CUDA):
            x = features.to(device).requires_grad_(True)
            c = centers.to(device, copy=True)
            loss = ops._center_loss_step_(x, labels.to(device), c,
                                          torch.zeros((), dtype=torch.long, device=device),
                                          margin, reduction, 0.3, rule)
            (grad,) = torch.autograd.grad(loss, x, weight.to(device, loss.dtype))
            grads.append(grad.cpu().double())
            torch.testing.assert_close(c.cpu(), c_cpu, rtol=center_tol, atol=center_tol, msg=where)
        assert grads[0].dtype == grads[1].dtype, where
        if n:
            scale = max(grads[0].abs().max().item(), 1e-30)
            assert (grads[1] - grads[0]).abs().max().item() <= grad_atol * scale, where


def test_one_op_refuses_what_the_cpu_op_refuses_with_the_same_message():
    ops = torch.ops.centerloss
    features, labels, centers = make_case(50, 6, 4, torch.float32, 5)
    bad_label = labels.clone()
    bad_label[17] = 4
    strided = torch.randn(6, 4, dtype=torch.float64).t().float()  # [4, 6], not contiguous
    strided.copy_(centers)
    cases = {  # name: (labels, margin, reduction, alpha, rule)
        "bad label": (bad_label, 0.0, 1, 0.3, 0),
        "negative margin": (labels, -1.0, 1, 0.3, 0),
        "unknown reduction": (labels, 0.0, 7, 0.3, 0),
        "alpha out of range": (labels, 0.0, 1, -0.5, 0),
        "gradient rule": (labels, 0.0, 1, 0.3, 2),
    }
    for name, (y, margin, reduction, alpha, rule) in cases.items():
        messages = []
        for device in ("cpu", CUDA):
            for op in (ops._forward_step_, ops._center_loss_step_):
                c = centers.to(device, copy=True)
                skipped = torch.zeros((), dtype=torch.long, device=device)
                try:
                    op(features.to(device), y.to(device), c, skipped, margin, reduction, alpha,
                       rule)
                except RuntimeError as err:
                    messages.append(str(err).splitlines()[0])
                else:
                    raise AssertionError(f"{name}: {op} on {device} accepted it")
                assert torch.equal(c.cpu(), centers) and skipped.item() == 0, f"{name} {device}"
        assert len(set(messages)) == 1, f"{name}: {messages}"
    # Strided centers: stepped through a contiguous copy and written back, as on the CPU.
    for device in ("cpu", CUDA):
        c = strided.to(device, copy=True)  # keeps the strides
        assert not c.is_contiguous()
        skipped = torch.zeros((), dtype=torch.long, device=device)
        ops._forward_step_(features.to(device), labels.to(device), c, skipped, 0.0, 1, 0.3, 0)
        dense = centers.clone()
        ops._forward_step_(features, labels, dense, torch.zeros((), dtype=torch.long), 0.0, 1,
                           0.3, 0)
        torch.testing.assert_close(c.cpu(), dense, rtol=1e-5, atol=1e-5, msg=device)


def test_overflowing_distance_with_a_margin_gives_a_finite_gradient():
    # Finite features whose squared distance overflows float32: the gradient is (x - c) * 1
    # (the limit of (d - margin) / d), as on the CPU, not inf / inf = NaN.
    features, labels, centers = make_case(8, 4, 3, torch.float32, 2)
    features[5] = 1e20
    grads = []
    for device in ("cpu", CUDA):
        x = features.to(device).requires_grad_(True)
        loss = centerloss.center_loss(x, labels.to(device), centers.to(device), 0.5, "sum")
        (grad,) = torch.autograd.grad(loss, x)
        grads.append(grad.cpu())
    assert torch.isfinite(grads[1]).all()
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-6)


if __name__ == "__main__":
    sys.exit(run_tests(globals(), "test_cuda_ops"))
