"""State (spec section 4), CPU determinism across thread counts and deterministic mode on every
device (section 6)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import centerloss.functional  # loads torch.ops.centerloss
import reference


def trained_module(**kwargs):
    torch.manual_seed(0)
    m = centerloss.CenterLoss(10, 4, init="normal", **kwargs)
    for step in range(3):
        g = torch.Generator().manual_seed(step)
        m(torch.randn(32, 4, generator=g), torch.randint(0, 10, (32,), generator=g))
    return m


@pytest.mark.parametrize("init", ["normal", "first_sight"])
def test_state_dict_round_trip_resumes_exactly(init):
    a = trained_module() if init == "normal" else centerloss.CenterLoss(10, 4, init=init)
    a(torch.randn(8, 4), torch.arange(8))
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    b = centerloss.CenterLoss(10, 4, init=init)
    b.load_state_dict(torch.load(io.BytesIO(buffer.getvalue())))
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k
    x, y = torch.randn(16, 4), torch.randint(0, 10, (16,))
    assert torch.equal(a(x, y), b(x, y)) and torch.equal(a.centers, b.centers)


def test_skip_counter_is_saved():
    a = centerloss.CenterLoss(3, 2)
    a(torch.full((2, 2), float("nan")), torch.tensor([0, 1]))
    b = centerloss.CenterLoss(3, 2)
    b.load_state_dict(a.state_dict())
    assert int(b.skipped_updates) == 1


def test_loading_wrong_shape_names_both_shapes():
    state = centerloss.CenterLoss(10, 4).state_dict()
    m = centerloss.CenterLoss(12, 4)
    before = m.centers.clone()
    with pytest.raises(RuntimeError, match=r"\(10, 4\).*expects \(12, 4\)"):
        m.load_state_dict(state)
    assert torch.equal(m.centers, before)


def test_large_k_touches_only_present_classes():
    k, d = 100_000, 8
    centers = torch.randn(k, d)
    before = centers.clone()
    labels = torch.tensor([5, 99_999, 5, 123])
    centerloss.update_centers_(centers, torch.randn(4, d), labels)
    changed = (centers != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [5, 123, 99_999]


DETERMINISM_SCRIPT = textwrap.dedent(
    """
    import sys, torch, centerloss.functional
    torch.set_num_threads(int(sys.argv[1]))
    g = torch.Generator().manual_seed(7)
    out = []
    for n, d, k in ((4096, 128, 50), (3000, 3, 7), (1024, 512, 1), (8192, 16, 100000)):
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.randn(n, d, generator=g).to(dtype).requires_grad_(True)
            y = torch.randint(0, k, (n,), generator=g)
            c = torch.randn(k, d, generator=g)
            loss = centerloss.center_loss(x, y, c, margin=0.1)
            loss.backward()
            centerloss.update_centers_(c, x.detach(), y)
            out += [loss.detach(), x.grad.float(), c[y.unique()]]
    torch.save(out, sys.argv[2])
    """
)


def test_bitwise_identical_for_any_thread_count(tmp_path):
    results = []
    for threads in (1, 2, 3):
        path = tmp_path / f"out{threads}.pt"
        subprocess.run(
            [sys.executable, "-c", DETERMINISM_SCRIPT, str(threads), str(path)], check=True
        )
        results.append(torch.load(path))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert torch.equal(a, b)


ISA_SCRIPT = textwrap.dedent(
    """
    import sys, torch, centerloss.functional
    torch.set_num_threads(2)
    g = torch.Generator().manual_seed(11)
    out = [torch.ops.centerloss._cpu_isa()]
    for n, d, k in ((4096, 128, 50), (300, 3, 7), (513, 512, 1), (2000, 17, 100000)):
        for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
            for margin, reduction in ((0.0, "mean"), (0.3, "sum"), (0.1, "none")):
                x = torch.randn(n, d, generator=g).to(dtype).requires_grad_(True)
                y = torch.randint(0, k, (n,), generator=g)
                c = torch.randn(k, d, generator=g)
                loss = centerloss.center_loss(x, y, c, margin, reduction)
                loss.sum().backward()
                centerloss.update_centers_(c, x.detach(), y, 0.4, "mean" if margin else "paper")
                out += [loss.detach(), x.grad, c[y.unique()]]
    # The module's one-pass step (D > 4, many classes per thread, x within 1 MiB).
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        x = torch.randn(500, 64, generator=g).to(dtype)
        y = torch.randint(0, 200, (500,), generator=g)
        c = torch.randn(200, 64, generator=g)
        s = torch.zeros((), dtype=torch.long)
        out += [*torch.ops.centerloss._forward_step_(x, y, c, s, 0.2, 0, 0.4, 0), c]
    torch.save(out, sys.argv[1])
    """
)


@pytest.mark.parametrize("n,d,k", [(512, 512, 10), (3000, 64, 1000), (6000, 32, 20)])
def test_deterministic_mode_is_bitwise_reproducible(device, n, d, k):
    """torch.use_deterministic_algorithms(True): two runs give the same loss, gradient and
    centers, bit for bit (on CUDA: no atomics in the sums)."""
    features, labels, centers = reference.make_case(n, d, k, torch.float32, n, torch.float32)
    features, labels, centers = features.to(device), labels.to(device), centers.to(device)

    def run():
        x = features.clone().requires_grad_(True)
        loss = centerloss.center_loss(x, labels, centers, 0.1)
        loss.backward()
        moved = centers.clone()
        centerloss.update_centers_(moved, features, labels)
        return loss, x.grad, moved

    with reference.deterministic(True):
        first, second = run(), run()
    for a, b in zip(first, second):
        assert torch.equal(a, b)


def test_avx2_and_baseline_kernels_give_the_same_bits(tmp_path):
    """The CPU kernels are built twice (csrc/cpu/cpu_variants.h); both copies must agree."""
    runs = {}
    for isa in ("baseline", None):
        env = dict(os.environ)
        env.pop("CENTERLOSS_CPU_ISA", None)
        if isa:
            env["CENTERLOSS_CPU_ISA"] = isa
        path = tmp_path / f"{isa or 'default'}.pt"
        subprocess.run([sys.executable, "-c", ISA_SCRIPT, str(path)], check=True, env=env)
        runs[isa or "default"] = torch.load(path)
    assert runs["baseline"][0] == "baseline"
    if runs["default"][0] == "baseline":
        pytest.skip("this CPU (or build) has no AVX2 kernels: nothing to compare")
    assert runs["default"][0] == "avx2"
    for a, b in zip(runs["baseline"][1:], runs["default"][1:]):
        assert a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_checkpointed_training_forward_is_refused_not_stepped_twice(use_reentrant):
    """torch.utils.checkpoint recomputes its region during backward: a CenterLoss inside it would
    move the centers a second time and take the gradient from moved centers. The recomputation
    raises; the centers keep the one step of the real forward; outside a checkpoint, or in eval
    mode inside one, it works."""
    from torch.utils.checkpoint import checkpoint

    torch.manual_seed(0)
    lin = torch.nn.Linear(5, 3)
    module = centerloss.CenterLoss(4, 3, init="normal")
    x = torch.randn(8, 5, requires_grad=True)
    y = torch.randint(0, 4, (8,))
    start = module.centers.clone()
    loss = checkpoint(lambda a: module(lin(a), y), x, use_reentrant=use_reentrant)
    once = module.centers.clone()
    assert not torch.equal(once, start)
    with pytest.raises(RuntimeError, match="inside a backward pass"):
        loss.backward()
    assert torch.equal(module.centers, once)

    module.eval()  # no step: recomputing is harmless
    loss = checkpoint(lambda a: module(lin(a), y), x, use_reentrant=use_reentrant)
    loss.backward()
    assert torch.equal(module.centers, once)


@pytest.mark.parametrize("update", ["paper", "gradient"])
def test_half_and_double_models_keep_a_usable_center_loss(update):
    """model.half() / .bfloat16() leave the centers' dtype and values as they were (the op takes
    float32/float64 centers; spec section 4), as the C++ module's to() does; .double() and
    .float() convert them; the counter stays int64."""
    model = torch.nn.ModuleDict({"fc": torch.nn.Linear(3, 3),
                                 "cl": centerloss.CenterLoss(4, 3, update=update)})
    y = torch.tensor([0, 1, 2, 0])
    for convert, want in ((torch.nn.Module.half, torch.float32),
                          (torch.nn.Module.double, torch.float64),
                          (torch.nn.Module.bfloat16, torch.float64),
                          (torch.nn.Module.float, torch.float32)):
        before = model["cl"].centers.detach().clone()
        convert(model)
        assert model["cl"].centers.dtype == want, convert
        if before.dtype == want:
            assert torch.equal(model["cl"].centers, before), convert  # not rounded on the way
        assert model["cl"].skipped_updates.dtype == torch.int64
        x = torch.randn(4, 3).to(model["fc"].weight.dtype).requires_grad_(True)
        model["cl"](x, y).backward()
        assert x.grad is not None and int(model["cl"].skipped_updates) == 0
