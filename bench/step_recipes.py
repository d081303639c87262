"""The training steps bench_step.py times: this project's op as users call it, the registered ops
called directly, the op captured in a CUDA graph, and what users would write instead (eager
gather, the N x K distance-matrix recipe). Each make_*_step returns one step as a function."""
from __future__ import annotations

import torch

import centerloss.functional  # loads torch.ops.centerloss

ALPHA = 0.5  # center step of the paper rule, and SGD learning rate of the distmat recipe



def module_on(centers):
    """nn.CenterLoss in training mode on the benchmark's centers table (shared, not copied)."""
    with torch.device("meta"):  # no K x D allocation: the state is assigned below
        module = centerloss.CenterLoss(centers.shape[0], centers.shape[1], alpha=ALPHA)
    # strict: a buffer the module gains later fails here instead of staying on the meta device
    module.load_state_dict({"centers": centers, "skipped_updates": torch.zeros(
        (), dtype=torch.long, device=centers.device)}, strict=True, assign=True)
    assert module.centers.data_ptr() == centers.data_ptr()
    return module


def make_op_step(centers):
    """This project as users call it: nn.CenterLoss in training mode (loss with autograd, center
    step inside forward)."""
    module = module_on(centers)

    def step(x, y, _c):
        loss = module(x, y)
        (gx,) = torch.autograd.grad(loss, x)
        return loss, gx

    return step


def make_op_graph_step(centers, x, y):
    """make_op_step's step on features x, captured once in a CUDA graph after PyTorch's warm-up
    recipe (three steps on a side stream: they move the centers, before the reference step is
    taken). A step copies its labels into the graph's label tensor and replays the graph."""
    module = module_on(centers)
    static_y = y.clone()

    def eager():
        loss = module(x, static_y)
        (gx,) = torch.autograd.grad(loss, x)
        return loss, gx

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            eager()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss, static_gx = eager()

    def step(features, labels, _c):
        assert features is x, "the graph was captured on another features tensor"
        static_y.copy_(labels)
        graph.replay()
        return static_loss, static_gx

    step.module = module  # the graph writes to its skip counter: keep it alive
    return step


def make_op_raw_step(device):
    """The registered kernels the module runs, without module or autograd."""
    skipped = torch.zeros((), dtype=torch.long, device=device)
    one = torch.ones((), device=device)

    def step(x, y, c):
        loss, basis = torch.ops.centerloss._forward_step_(x.detach(), y, c, skipped, 0.0, 1,
                                                          ALPHA, 0)
        if device.type == "cpu":  # a unit loss gradient: autograd returns the basis itself
            return loss, basis
        return loss, torch.ops.centerloss.backward(one, basis)

    return step


def gather_loss(x, y, c):
    diff = x.float() - c.index_select(0, y)
    return 0.5 * diff.pow(2).sum() / x.shape[0], diff


def gather_update(diff, y, c):
    """Paper rule, sparse: c_j += alpha * sum_{y_i=j} (x_i - c_j) / (1 + n_j) for present j."""
    classes, inverse, counts = torch.unique(y, return_inverse=True, return_counts=True)
    sums = torch.zeros(classes.shape[0], diff.shape[1], device=diff.device, dtype=diff.dtype)
    sums.index_add_(0, inverse, diff)
    c.index_add_(0, classes, sums * (ALPHA / (counts + 1).to(sums.dtype)).unsqueeze(1))


def make_gather_step(loss_fn, update_fn):
    def step(x, y, c):
        loss, diff = loss_fn(x, y, c)
        (gx,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            update_fn(diff.detach(), y, c)
        return loss, gx

    return step


def distmat_loss(x, y, centers):
    """KaiyangZhou/pytorch-center-loss, with the paper's 1/2 so its numbers match the op's."""
    xf = x.float()
    n, k = xf.shape[0], centers.shape[0]
    distmat = xf.pow(2).sum(1, keepdim=True).expand(n, k) + centers.pow(2).sum(
        1, keepdim=True
    ).expand(k, n).t()
    distmat = torch.addmm(distmat, xf, centers.t(), beta=1, alpha=-2)
    classes = torch.arange(k, device=x.device)
    mask = y.unsqueeze(1).expand(n, k).eq(classes.expand(n, k))
    dist = distmat * mask.float()
    return 0.5 * dist.clamp(min=1e-12, max=1e12).sum() / n


def make_distmat_step(centers_param):
    optimizer = torch.optim.SGD([centers_param], lr=ALPHA)

    def step(x, y, _c):
        loss = distmat_loss(x, y, centers_param)
        gx, gc = torch.autograd.grad(loss, (x, centers_param))
        centers_param.grad = gc
        optimizer.step()
        centers_param.grad = None
        return loss, gx

    return step
