"""The C++ op against the primitive-based reference (spec section 8), on every device; on CUDA
also against the CPU op (tests/python/conftest.py: the `device` fixture)."""
from __future__ import annotations

import itertools

import pytest
import torch

import centerloss.functional  # loads torch.ops.centerloss
import reference
from reference import (CUDA_SHAPES, DTYPES, SHAPES, TOL, deterministic, make_case, max_abs_diff,
                       per_device)

REDUCTIONS = ["mean", "sum", "none"]
# CUDA also runs float64 centers with every feature dtype, and both deterministic modes (its
# center sums differ between them); the CPU's float64 centers are in the tests below and in
# test_forward_step.py.
CENTERS_DTYPES = {"cpu": [torch.float32], "cuda": [torch.float32, torch.float64]}
DETERMINISTIC = {"cpu": [False], "cuda": [False, True]}


@pytest.mark.parametrize("device,n,d,k", per_device(SHAPES, SHAPES + CUDA_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("margin", [0.0, 0.7])
def test_loss_and_gradient_match_reference(device, n, d, k, dtype, margin):
    loss_rtol, loss_atol, grad_atol = TOL[device][dtype]
    for centers_dtype, reduction in itertools.product(CENTERS_DTYPES[device], REDUCTIONS):
        where = f"centers {centers_dtype} {reduction}"
        features, labels, centers = make_case(n, d, k, dtype, n * 31 + d * 7 + k, centers_dtype)
        x = features.to(device, copy=True).requires_grad_(True)
        got = centerloss.center_loss(x, labels.to(device), centers.to(device), margin, reduction)
        # The reference sees the same rounded inputs, upcast; the op accumulates in float32.
        x_ref = features.to(torch.float64, copy=True).requires_grad_(True)
        want = reference.loss(x_ref, labels, centers.to(torch.float64), margin, reduction)
        assert got.dtype == reference.acc_dtype(features, centers), where
        torch.testing.assert_close(got.cpu().double(), want.detach(), rtol=loss_rtol,
                                   atol=loss_atol, msg=where)
        weight = torch.linspace(0.5, 1.5, n, dtype=got.dtype) if reduction == "none" else None
        if weight is None:
            got.backward()
            want.backward()
        else:
            (got * weight.to(device)).sum().backward()
            (want * weight.double()).sum().backward()
        assert x.grad.dtype == dtype, where
        scale = max(x_ref.grad.abs().max().item(), 1e-30)
        assert max_abs_diff(x.grad, x_ref.grad) <= grad_atol * scale, where
        if device != "cpu":  # parity with the CPU op
            x_cpu = features.clone().requires_grad_(True)
            cpu = centerloss.center_loss(x_cpu, labels, centers, margin, reduction)
            assert got.dtype == cpu.dtype and got.shape == cpu.shape, where
            torch.testing.assert_close(got.detach().cpu(), cpu.detach(), rtol=max(loss_rtol, 1e-5),
                                       atol=1e-6, msg=where)
            (cpu.backward() if weight is None else (cpu * weight).sum().backward())
            assert max_abs_diff(x.grad, x_cpu.grad) <= grad_atol * scale, where


@pytest.mark.parametrize("device,n,d,k", per_device(SHAPES, SHAPES + CUDA_SHAPES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("rule", ["paper", "mean"])
def test_update_matches_reference(device, n, d, k, dtype, rule):
    for centers_dtype, det in itertools.product(CENTERS_DTYPES[device], DETERMINISTIC[device]):
        where = f"centers {centers_dtype} deterministic={det}"
        features, labels, centers = make_case(n, d, k, dtype, n + d + k, centers_dtype)
        alpha = 0.3
        got = centers.to(device, copy=True)
        with deterministic(det):
            applied = centerloss.update_centers_(got, features.to(device), labels.to(device),
                                                 alpha=alpha, rule=rule)
        assert applied.device.type == device and applied.dtype == torch.bool, where
        assert bool(applied), where
        want = reference.updated_centers(centers.double(), features.double(), labels, alpha, rule)
        tol = 1e-10 if centers_dtype == torch.float64 else 1e-5
        torch.testing.assert_close(got.cpu().double(), want, rtol=tol, atol=tol, msg=where)
        untouched = torch.ones(k, dtype=torch.bool)
        untouched[labels] = False
        assert torch.equal(got.cpu()[untouched], centers[untouched]), "absent classes moved"
        if device != "cpu":  # parity with the CPU op
            cpu = centers.clone()
            centerloss.update_centers_(cpu, features, labels, alpha, rule)
            torch.testing.assert_close(got.cpu(), cpu, rtol=tol, atol=tol, msg=where)


@pytest.mark.parametrize("rule", ["paper", "mean"])
def test_update_float64_centers_exact(device, rule):
    features, labels, centers = make_case(500, 9, 13, torch.float64, 3, torch.float64)
    got = centers.to(device, copy=True)
    centerloss.update_centers_(got, features.to(device), labels.to(device), alpha=0.9, rule=rule)
    want = reference.updated_centers(centers, features, labels, 0.9, rule)
    tol = 1e-12 if device == "cpu" else 1e-10  # CUDA sums in another order
    torch.testing.assert_close(got.cpu(), want, rtol=tol, atol=tol)


# (N, K): the CPU case, then sizes that take each CUDA sort path; D = 8.
COVER_CASES = [(1000, 10), (1, 1), (300, 1), (4096, 5), (6000, 2)]


@pytest.mark.parametrize("n,k", COVER_CASES)
def test_labels_cover_every_class_and_one_label_repeated(device, n, k):
    features, _, centers = make_case(n, 8, k, torch.float32, n + k)
    for labels in (torch.arange(n) % k, torch.full((n,), k - 1)):
        got = centers.to(device, copy=True)
        centerloss.update_centers_(got, features.to(device), labels.to(device))
        want = reference.updated_centers(centers.double(), features.double(), labels).float()
        torch.testing.assert_close(got.cpu(), want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            centerloss.center_loss(features.to(device), labels.to(device),
                                   centers.to(device)).cpu().double(),
            reference.loss(features.double(), labels, centers.double()),
            rtol=1e-5,
            atol=1e-6,
        )


def test_integer_label_dtypes_agree(device):
    features, labels, centers = make_case(50, 4, 6, torch.float32, 11)
    features, labels, centers = features.to(device), labels.to(device), centers.to(device)
    want = centerloss.center_loss(features, labels, centers)
    for dtype in (torch.int32, torch.int16, torch.uint8):
        assert torch.equal(centerloss.center_loss(features, labels.to(dtype), centers), want)


def test_non_contiguous_inputs_give_the_contiguous_result(device):
    features, labels, centers = make_case(64, 12, 9, torch.float32, 9)
    features, labels, centers = features.to(device), labels.to(device), centers.to(device)
    x_strided = features.t().contiguous().t()  # column-major
    y_strided = torch.stack([labels, labels], 1)[:, 0]
    c_strided = centers.t().contiguous().t()
    assert not x_strided.is_contiguous() and not y_strided.is_contiguous()
    assert not c_strided.is_contiguous()
    for margin, reduction in itertools.product([0.0, 0.3], REDUCTIONS):
        assert torch.equal(
            centerloss.center_loss(x_strided, y_strided, c_strided, margin, reduction),
            centerloss.center_loss(features, labels, centers, margin, reduction),
        ), (margin, reduction)
    for rule in ("paper", "mean"):
        a, b = centers.clone(), c_strided.clone()
        b = b.t().contiguous().t()
        centerloss.update_centers_(a, features, labels, 0.5, rule)
        centerloss.update_centers_(b, x_strided, y_strided, 0.5, rule)
        assert not b.is_contiguous() and torch.equal(a, b), rule


def test_empty_batch(device):
    centers = torch.randn(4, 3, device=device)
    x = torch.zeros(0, 3, device=device, requires_grad=True)
    y = torch.zeros(0, dtype=torch.long, device=device)
    for reduction, shape in (("mean", ()), ("sum", ()), ("none", (0,))):
        loss = centerloss.center_loss(x, y, centers, reduction=reduction)
        assert loss.shape == shape and loss.sum().item() == 0.0
        loss.sum().backward()
        assert x.grad.shape == (0, 3)
    before = centers.clone()
    applied = centerloss.update_centers_(centers, x.detach(), y)
    assert applied.device.type == device and bool(applied)
    assert torch.equal(centers, before)


def test_margin_zero_inside_and_exact_outside(device):
    centers = torch.zeros(1, 2, device=device)
    x = torch.tensor([[0.3, 0.4], [3.0, 4.0]], device=device, requires_grad=True)  # d 0.5 and 5
    y = torch.zeros(2, dtype=torch.long, device=device)
    loss = centerloss.center_loss(x, y, centers, margin=1.0, reduction="none")
    torch.testing.assert_close(loss.cpu(), torch.tensor([0.0, 0.5 * 16.0]))
    loss.sum().backward()
    # inside the margin: zero gradient; outside: (d - rho) / d * (x - c) = 0.8 * x
    torch.testing.assert_close(x.grad.cpu(), torch.tensor([[0.0, 0.0], [2.4, 3.2]]))


@pytest.mark.parametrize("margin,reduction", list(itertools.product([0.0, 0.4], ["mean", "sum", "none"])))
def test_gradcheck_float64(device, margin, reduction):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 5, dtype=torch.float64, generator=g).to(device).requires_grad_(True)
    c = torch.randn(4, 5, dtype=torch.float64, generator=g).to(device).requires_grad_(True)
    y = torch.randint(0, 4, (12,), generator=g).to(device)
    fn = lambda x, c: centerloss.center_loss(x, y, c, margin=margin, reduction=reduction)  # noqa: E731
    # CUDA sums the centers' gradient with atomics: two backward passes may differ in the last bits.
    assert torch.autograd.gradcheck(fn, (x, c), nondet_tol=0.0 if device == "cpu" else 1e-12)


def test_center_gradient_is_minus_scaled_sum(device):
    features, labels, centers = make_case(40, 3, 5, torch.float32, 21)
    c = centers.to(device, copy=True).requires_grad_(True)
    centerloss.center_loss(features.to(device), labels.to(device), c).backward()
    c_ref = centers.double().requires_grad_(True)
    reference.loss(features.double(), labels, c_ref).backward()
    torch.testing.assert_close(c.grad.cpu().double(), c_ref.grad, rtol=1e-5, atol=1e-7)


def test_backward_uses_the_centers_of_the_forward_and_supports_retain_graph():
    features, labels, centers = make_case(30, 4, 3, torch.float32, 2)
    x = features.clone().requires_grad_(True)
    loss = centerloss.center_loss(x, labels, centers)
    expected = (features - centers[labels]) / 30
    centerloss.update_centers_(centers, features, labels)  # moves centers after the forward
    loss.backward(retain_graph=True)
    torch.testing.assert_close(x.grad, expected)
    loss.backward()
    torch.testing.assert_close(x.grad, 2 * expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("op", ["center_loss", "_center_loss_step_"])
def test_cpu_backward_without_a_copy_gives_the_op_bits_and_keeps_retained_graphs(dtype, op):
    """On the CPU backward skips the backward op's new tensor: a loss gradient of exactly 1 returns
    the saved basis itself, any other scales it in place when autograd frees it after the node
    (no retain_graph). The bits must be the op's, and a retained graph must see an intact basis:
    a second and third backward add the same amount, also when the features feed a second loss
    (autograd then adds into the gradient it was handed)."""
    features, labels, centers = make_case(30, 6, 4, dtype, 5)
    ops = torch.ops.centerloss
    skipped = torch.zeros((), dtype=torch.long)
    _, basis = ops._forward_step_(features, labels, centers.clone(), skipped, 0.0, 1, 0.5, 0)

    loss_dtype = torch.float64 if dtype == torch.float64 else torch.float32

    def scaled(g):  # the backward op: a new tensor, never the basis
        return ops.backward(torch.as_tensor(g, dtype=loss_dtype), basis)

    def loss_of(x, reduction=1):
        if op == "center_loss":
            return ops.center_loss(x, labels, centers, 0.0, reduction)
        return ops._center_loss_step_(x, labels, centers.clone(), skipped, 0.0, reduction, 0.5, 0)

    x = features.clone().requires_grad_(True)
    for g in (1.0, 0.5, 0.01):  # unit, and lambda * loss
        (grad,) = torch.autograd.grad(loss_of(x), x, grad_outputs=torch.tensor(g, dtype=loss_dtype))
        assert torch.equal(grad, scaled(g)), g
    w = torch.rand(30, generator=torch.Generator().manual_seed(4))  # reduction none, per sample
    _, basis_sum = ops._forward_step_(features, labels, centers.clone(), skipped, 0.0, 0, 0.5, 0)
    (grad,) = torch.autograd.grad(loss_of(x, reduction=0), x, grad_outputs=w)
    assert torch.equal(grad, ops.backward(w, basis_sum))

    other = torch.randn(features.shape, generator=torch.Generator().manual_seed(6)).to(dtype)
    for g, second_loss in itertools.product((1.0, 0.01), (False, True)):
        x.grad = None
        total = loss_of(x) * g + ((x * other).sum() if second_loss else 0)
        once = scaled(g) + other if second_loss else scaled(g)
        for times in range(1, 4):
            total.backward(retain_graph=times < 3)
            assert torch.equal(x.grad, once if times == 1 else expected + once), (g, times)
            expected = x.grad.clone()


@pytest.mark.parametrize("op", ["center_loss", "_center_loss_step_", "module"])
def test_gradients_handed_out_never_change_afterwards(op):
    """A gradient autograd handed out (returned by autograd.grad, kept by a hook, or x.grad of a
    view of a leaf) must not change when a later backward on the retained graph runs: with
    retain_graph the backward returns a copy, never the saved basis (which a later freeing
    backward may scale in place)."""
    features, labels, centers = make_case(6, 3, 4, torch.float32, 12)
    module = centerloss.CenterLoss(4, 3)
    module.centers.data.copy_(centers)

    def loss_of(x):
        if op == "center_loss":
            return centerloss.center_loss(x, labels, centers)
        if op == "module":
            return module(x, labels)
        return torch.ops.centerloss._center_loss_step_(x, labels, centers.clone(),
                                                       torch.zeros((), dtype=torch.long),
                                                       0.0, 1, 0.5, 0)

    x = features.clone().requires_grad_(True)
    loss = loss_of(x)
    (first,) = torch.autograd.grad(loss, x, retain_graph=True)
    kept = first.clone()
    torch.autograd.grad(loss, x, grad_outputs=torch.tensor(3.0))
    assert torch.equal(first, kept)

    x = features.clone().requires_grad_(True)
    loss = loss_of(x.view(6, 3))  # AccumulateGrad may adopt the gradient of a view as x.grad
    loss.backward(retain_graph=True)
    unit = x.grad.clone()
    loss.backward(retain_graph=True)  # a third backward must still find the basis intact
    (2 * loss).backward()
    torch.testing.assert_close(x.grad, 4 * unit, rtol=0, atol=0)

    x = features.clone().requires_grad_(True)
    feats = x * 1  # not a view: the hook's tensor is the op's own gradient, and stays its own
    seen = []
    feats.register_hook(seen.append)
    loss = loss_of(feats)
    loss.backward(retain_graph=True)
    seen_first = seen[0].clone()
    (2 * loss).backward()
    assert torch.equal(seen[0], seen_first)


def _double_backward_cases():
    return [("center_loss", False), ("center_loss", True), ("_center_loss_step_", False),
            ("module", False)]


@pytest.mark.parametrize("op,centers_grad", _double_backward_cases())
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_double_backward_matches_the_reference(op, centers_grad, reduction):
    """create_graph=True (gradient penalties, MAML): the features' gradient is differentiable
    again and its derivatives are the reference's, for the features and (update="gradient") the
    centers; the center-loss term must not silently drop out."""
    features, labels, centers = make_case(10, 4, 3, torch.float64, 21, torch.float64)
    head = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    red_code = {"none": 0, "mean": 1, "sum": 2}[reduction]
    weight = torch.rand(10, dtype=torch.float64) if reduction == "none" else torch.ones(())

    def run(x, c, ours):
        if not ours:
            cl = reference.loss(x, labels, c, 0.0, reduction)
        elif op == "center_loss":
            cl = centerloss.center_loss(x, labels, c, 0.0, reduction)
        elif op == "module":
            module = centerloss.CenterLoss(3, 4, reduction=reduction).double()
            module.centers.data.copy_(c)
            cl = module(x, labels)
        else:
            cl = torch.ops.centerloss._center_loss_step_(
                x, labels, c.clone(), torch.zeros((), dtype=torch.long), 0.0, red_code, 0.5, 0)
        total = torch.nn.functional.cross_entropy(x @ head, labels) + (cl * weight).sum()
        (g,) = torch.autograd.grad(total, x, create_graph=True)
        (g.pow(2).sum() + (g * x).sum()).backward()
        return g.detach(), x.grad, c.grad

    got = run(features.clone().requires_grad_(True), centers.clone().requires_grad_(centers_grad), True)
    want = run(features.clone().requires_grad_(True), centers.clone().requires_grad_(centers_grad), False)
    for a, b in zip(got, want):
        if b is None:
            assert a is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    if op == "center_loss" and reduction == "mean":
        x = features.clone().requires_grad_(True)
        c = centers.clone().requires_grad_(True)
        assert torch.autograd.gradgradcheck(
            lambda a, b: centerloss.center_loss(a, labels, b, 0.0, "mean"), (x, c))


@pytest.mark.parametrize("op", ["center_loss", "_center_loss_step_"])
def test_double_backward_with_a_margin_is_refused(op):
    features, labels, centers = make_case(10, 4, 3, torch.float32, 22)
    x = features.clone().requires_grad_(True)
    if op == "center_loss":
        loss = centerloss.center_loss(x, labels, centers, 0.5)
    else:
        loss = torch.ops.centerloss._center_loss_step_(
            x, labels, centers.clone(), torch.zeros((), dtype=torch.long), 0.5, 1, 0.5, 0)
    with pytest.raises(RuntimeError, match="double backward .* margin = 0 only, got margin 0.5"):
        torch.autograd.grad(loss, x, create_graph=True)
    (grad,) = torch.autograd.grad(loss, x)  # the graph is intact: a plain backward still works
    assert torch.isfinite(grad).all()


def test_opcheck_every_op(device):
    features, labels, centers = make_case(9, 3, 4, torch.float64, 8, torch.float64)
    features, labels, centers = features.to(device), labels.to(device), centers.to(device)
    x = features.clone().requires_grad_(True)
    c = centers.clone().requires_grad_(True)
    ops = torch.ops.centerloss
    for reduction in (0, 1, 2):
        torch.library.opcheck(ops.center_loss.default, (x, labels, c, 0.25, reduction))
        torch.library.opcheck(ops.forward.default, (x.detach(), labels, centers, 0.0, reduction))
    torch.library.opcheck(ops.update_centers_.default, (centers.clone(), features, labels, 0.5, 0))
    torch.library.opcheck(
        ops.init_centers_first_sight_.default,
        (centers.clone(), torch.zeros(4, dtype=torch.bool, device=device), features, labels),
    )
    # The modules' one op (schema with two mutated arguments, Meta kernel, autograd).
    skipped = torch.zeros((), dtype=torch.long, device=device)
    for reduction in (0, 1, 2):
        torch.library.opcheck(ops._forward_step_.default,
                              (x.detach(), labels, centers.clone(), skipped, 0.25, reduction,
                               0.5, 0))
        torch.library.opcheck(ops._center_loss_step_.default,
                              (x, labels, centers.clone(), skipped, 0.25, reduction, 0.5, 1))
