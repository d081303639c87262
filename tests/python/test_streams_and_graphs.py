"""What only CUDA has: the op on side streams, and inside CUDA graphs (torch.cuda.graph): the
training step captured once and replayed gives the eager step's loss, gradient and centers; a
bad label, which cannot raise inside a replay, gives a NaN loss, a zero gradient row and no
center step (counted as skipped).

Marked `cuda` (tests/python/conftest.py): skipped without a CUDA device. The host logic of the
same paths runs on the CPU in CI (tests/cpp/test_op_glue.cpp).
"""
from __future__ import annotations

import copy

import pytest
import torch

import centerloss
import reference

pytestmark = pytest.mark.cuda

CUDA = torch.device("cuda")
N, D, K = 96, 24, 10


def _batch(seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g).to(dtype)
    y = torch.randint(0, K, (N,), generator=g)
    return x.to(CUDA), y.to(CUDA)


def _backward(loss):
    (loss.sum() if loss.dim() else loss).backward()


def _warm_up(module, twin, x, y, steps=3):
    """PyTorch's recipe: run the step a few times on a side stream before capturing. The twin
    (eager) takes the same steps, so both hold the same centers afterwards."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for m in (module, twin):
            for _ in range(steps):
                xi = x.detach().clone().requires_grad_(True)
                _backward(m(xi, y))
    torch.cuda.current_stream().wait_stream(side)


def _captured_step(module, static_x, static_y):
    graph = torch.cuda.CUDAGraph()
    static_x.grad = None
    with torch.cuda.graph(graph):
        static_loss = module(static_x, static_y)
        _backward(static_loss)
    return graph, static_loss


def test_captured_module_step_replays_the_eager_step():
    for dtype, reduction in ((torch.float32, "mean"), (torch.bfloat16, "sum"),
                             (torch.float32, "none")):
        module = centerloss.CenterLoss(K, D, alpha=0.4, init="normal", reduction=reduction).to(CUDA)
        twin = copy.deepcopy(module)
        x0, y0 = _batch(0, dtype)
        static_x = x0.clone().requires_grad_(True)
        static_y = y0.clone()
        _warm_up(module, twin, x0, y0)
        graph, static_loss = _captured_step(module, static_x, static_y)
        torch.testing.assert_close(module.centers, twin.centers, rtol=0, atol=0)  # capture ran nothing
        for step in range(1, 6):
            x, y = _batch(step, dtype)
            with torch.no_grad():
                static_x.copy_(x)
            static_y.copy_(y)
            graph.replay()
            xe = x.clone().requires_grad_(True)
            loss = twin(xe, y)
            _backward(loss)
            torch.cuda.synchronize()
            msg = f"{dtype} {reduction} step {step}"
            assert torch.equal(static_loss, loss.detach()), msg
            assert torch.equal(static_x.grad, xe.grad), msg
            assert torch.equal(module.centers, twin.centers), msg
            assert int(module.skipped_updates) == int(twin.skipped_updates) == 0, msg


def test_bad_label_in_a_replay_gives_nan_loss_zero_gradient_row_and_no_step():
    module = centerloss.CenterLoss(K, D, alpha=0.5, init="normal").to(CUDA)
    twin = copy.deepcopy(module)
    x0, y0 = _batch(10)
    static_x = x0.clone().requires_grad_(True)
    static_y = y0.clone()
    _warm_up(module, twin, x0, y0)
    graph, static_loss = _captured_step(module, static_x, static_y)
    for bad_label, row in ((K, 7), (-1, 0), (K + 1000, N - 1)):
        before = module.centers.clone()
        skipped = int(module.skipped_updates)
        static_y.copy_(y0)
        static_y[row] = bad_label
        graph.replay()
        torch.cuda.synchronize()
        assert torch.isnan(static_loss), bad_label
        assert torch.equal(module.centers, before), "a bad label moved the centers"
        assert int(module.skipped_updates) == skipped + 1
        assert torch.count_nonzero(static_x.grad[row]) == 0
        # The other rows: the gradient of the same loss with the bad row's label replaced.
        good_y = static_y.clone()
        good_y[row] = 0
        xe = static_x.detach().clone().requires_grad_(True)
        centerloss.center_loss(xe, good_y, before).backward()
        keep = torch.arange(N, device=CUDA) != row
        assert torch.equal(static_x.grad[keep], xe.grad[keep])
        # Outside the graph the same batch still raises and changes nothing.
        try:
            twin(static_x.detach(), static_y)
        except RuntimeError as err:
            assert "labels must be in [0, K)" in str(err)
        else:
            raise AssertionError("eager step accepted a bad label")
    # A good batch afterwards steps again.
    static_y.copy_(y0)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.isfinite(static_loss)


def test_captured_per_sample_loss_is_nan_exactly_at_bad_labels():
    centers = torch.randn(K, D, device=CUDA)
    x, y = _batch(30)
    static_y = y.clone()
    centerloss.center_loss(x, y, centers, reduction="none")  # warm-up
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        losses = centerloss.center_loss(x, static_y, centers, reduction="none")
    static_y[[3, 50]] = torch.tensor([K, -5], device=CUDA)
    graph.replay()
    torch.cuda.synchronize()
    bad = (static_y < 0) | (static_y >= K)
    assert torch.equal(torch.isnan(losses), bad)
    want = centerloss.center_loss(x, y, centers, reduction="none")
    assert torch.equal(losses[~bad], want[~bad])


def test_captured_update_centers_returns_false_for_a_bad_label():
    centers = torch.randn(K, D, device=CUDA)
    x, y = _batch(20)
    static_y = y.clone()
    centerloss.update_centers_(centers.clone(), x, y)  # warm-up (lazy initialisation)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    work = centers.clone()
    with torch.cuda.graph(graph):
        applied = centerloss.update_centers_(work, x, static_y, 0.5)
    expected = centers.clone()
    centerloss.update_centers_(expected, x, y, 0.5)
    graph.replay()
    torch.cuda.synchronize()
    assert bool(applied) and torch.equal(work, expected)
    static_y[5] = K
    moved = work.clone()
    graph.replay()
    torch.cuda.synchronize()
    assert not bool(applied) and torch.equal(work, moved)


def test_forward_captured_on_a_used_stream_keeps_its_own_scratch():
    # The forward's per-stream scratch (ticket, first bad label) is not used inside a graph: a
    # graph captured on a stream that ran eager forwards, replayed while that stream runs a
    # forward with a bad label, still gives the good batch's loss.
    stream = torch.cuda.Stream()
    centers = torch.randn(K, D, device=CUDA)
    x = torch.randn(5000, D, device=CUDA)
    good = torch.randint(0, K, (5000,), device=CUDA)
    bad = good.clone()
    bad[4321] = K
    want = centerloss.center_loss(x, good, centers, reduction="sum")
    graph = torch.cuda.CUDAGraph()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        centerloss.center_loss(x, good, centers)  # the stream's scratch now exists
        stream.synchronize()
        with torch.cuda.graph(graph, stream=stream):
            static_loss = centerloss.center_loss(x, good, centers, reduction="sum")
    for _ in range(20):
        graph.replay()  # on the current (default) stream
        with torch.cuda.stream(stream):
            try:
                centerloss.center_loss(x, bad, centers, reduction="sum")
            except RuntimeError:
                pass
    torch.cuda.synchronize()
    assert torch.equal(static_loss, want)


def test_forward_on_side_streams_gives_the_default_streams_result():
    # Sequential calls (each forward reads its label verdict on the host), so this checks that
    # each side stream gets a working scratch; overlapping streams are tested in C++
    # (CudaStreams.ConcurrentForwardsOnTwoStreamsKeepTheirOwnVerdicts).
    features, labels, centers = reference.make_case(3000, 64, 50, torch.float32, 8)
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
