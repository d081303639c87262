"""torch.compile of a model forward that holds centerloss.CenterLoss (CPU), as one graph
(fullgraph=True: the ops have Meta kernels and the mutating step is functionalised): the compiled
forward gives the eager loss, gradients and moved centers, for the paper rule (loss and step in
one mutating op) and the gradient rule (centers as a parameter)."""
from __future__ import annotations

import pytest
import torch

import centerloss


def make(update):
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 4)
    loss_fn = centerloss.CenterLoss(5, 4, update=update, init="normal")
    return net, loss_fn


def forward(net, loss_fn, x, y):
    return loss_fn(net(x), y)


@pytest.mark.parametrize("update", ["paper", "gradient"])
def test_compiled_step_matches_eager(update):
    torch._dynamo.reset()
    x = torch.randn(32, 8)
    y = torch.randint(0, 5, (32,))
    results = []
    for compiled in (False, True):
        net, loss_fn = make(update)
        step = torch.compile(forward, fullgraph=True) if compiled else forward
        losses = []
        for _ in range(3):
            loss = step(net, loss_fn, x, y)
            loss.backward()
            losses.append(loss.detach())
        grads = [p.grad.clone() for p in list(net.parameters()) + list(loss_fn.parameters())]
        results.append((losses, grads, loss_fn.centers.detach().clone(),
                        int(loss_fn.skipped_updates)))
    (eager_losses, eager_grads, eager_centers, _), (losses, grads, centers, skipped) = results
    for a, b in zip(eager_losses, losses):
        torch.testing.assert_close(a, b)
    for a, b in zip(eager_grads, grads):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(eager_centers, centers)
    assert skipped == 0
    if update == "paper":  # three steps moved the centers away from their initial values
        assert not torch.equal(centers, make(update)[1].centers)
