"""Update rules and module behaviour against hand-worked examples (spec section 3), on every
device (tests/python/conftest.py: the `device` fixture)."""
from __future__ import annotations

import pytest
import torch

import centerloss


def batch(device="cpu"):
    # Class 0 gets x = 1 and x = 3 (n_0 = 2), class 1 gets x = 8 (n_1 = 1); class 2 is absent.
    features = torch.tensor([[1.0], [8.0], [3.0]], device=device)
    labels = torch.tensor([0, 1, 0], device=device)
    centers = torch.tensor([[0.0], [10.0], [5.0]], device=device)
    return features, labels, centers


def close(got, want):
    torch.testing.assert_close(got.detach().cpu(), torch.as_tensor(want))


def test_paper_rule_by_hand(device):
    features, labels, centers = batch(device)
    centerloss.update_centers_(centers, features, labels, alpha=0.5, rule="paper")
    # c0: delta = ((0-1) + (0-3)) / (1+2) = -4/3 -> 0 - 0.5 * (-4/3) = 2/3
    # c1: delta = (10-8) / (1+1) = 1 -> 10 - 0.5 = 9.5 ; c2 untouched
    close(centers, [[2.0 / 3.0], [9.5], [5.0]])


def test_mean_rule_by_hand(device):
    features, labels, centers = batch(device)
    centerloss.update_centers_(centers, features, labels, alpha=1.0, rule="mean")
    # alpha = 1 with /n_j puts each present center on its batch mean.
    close(centers, [[2.0], [8.0], [5.0]])


def test_loss_reductions_by_hand(device):
    features, labels, centers = batch(device)
    # per sample: 1/2 * (1, 4, 9)
    per = torch.tensor([0.5, 2.0, 4.5])
    close(centerloss.center_loss(features, labels, centers, reduction="none"), per)
    close(centerloss.center_loss(features, labels, centers, reduction="sum"), per.sum())
    close(centerloss.center_loss(features, labels, centers), per.mean())


def test_module_trains_with_paper_rule_and_returns_loss_of_old_centers(device):
    features, labels, centers = batch(device)
    m = centerloss.CenterLoss(3, 1, alpha=0.5).to(device)
    with torch.no_grad():
        m.centers.copy_(centers)
    x = features.clone().requires_grad_(True)
    loss = m(x, labels)
    close(loss, 7.0 / 3.0)  # mean of (0.5, 2, 4.5)
    close(m.centers, [[2.0 / 3.0], [9.5], [5.0]])
    loss.backward()
    torch.testing.assert_close(x.grad, (features - centers[labels]) / 3)  # old centers


def test_step_independent_of_reduction_and_loss_scale(device):
    features, labels, centers = batch(device)
    results = []
    for reduction in ("mean", "sum", "none"):
        m = centerloss.CenterLoss(3, 1, reduction=reduction).to(device)
        with torch.no_grad():
            m.centers.copy_(centers)
        x = features.clone().requires_grad_(True)
        (1000.0 * m(x, labels).sum()).backward()  # a loss scale must not change the step
        results.append(m.centers.clone())
    assert all(torch.equal(r, results[0]) for r in results)


def test_eval_mode_and_update_in_forward_false_leave_centers(device):
    features, labels, centers = batch(device)
    for make in (
        lambda: centerloss.CenterLoss(3, 1).to(device).eval(),
        lambda: centerloss.CenterLoss(3, 1, update_in_forward=False).to(device),
    ):
        m = make()
        with torch.no_grad():
            m.centers.copy_(centers)
        m(features, labels)
        assert torch.equal(m.centers, centers)
    m = centerloss.CenterLoss(3, 1, update_in_forward=False).to(device)
    with torch.no_grad():
        m.centers.copy_(centers)
    assert m.update_centers(features, labels) is True
    close(m.centers, [[2.0 / 3.0], [9.5], [5.0]])


def test_gradient_rule_moves_centers_only_through_optimizer(device):
    features, labels, centers = batch(device)
    m = centerloss.CenterLoss(3, 1, update="gradient").to(device)
    assert isinstance(m.centers, torch.nn.Parameter)
    with torch.no_grad():
        m.centers.copy_(centers)
    opt = torch.optim.SGD(m.parameters(), lr=0.5)
    loss = m(features, labels)
    assert torch.equal(m.centers.detach(), centers)  # forward never moves them
    loss.backward()
    # dL/dc_j = -1/N * sum_{y_i=j} (x_i - c_j): c0: -(1 + 3)/3, c1: -(8 - 10)/3, c2: 0
    close(m.centers.grad, [[-4.0 / 3.0], [2.0 / 3.0], [0.0]])
    opt.step()
    close(m.centers, [[2.0 / 3.0], [10.0 - 1.0 / 3.0], [5.0]])
    with pytest.raises(RuntimeError, match="gradient"):
        m.update_centers(features, labels)


def test_first_sight_init_sets_mean_of_first_batch_once(device):
    features, labels, _ = batch(device)
    m = centerloss.CenterLoss(3, 1, init="first_sight").to(device)
    loss = m(features, labels)
    # centers set to batch means (2, 8) before the loss: per-sample 1/2*(1, 0, 1)
    close(loss, 1.0 / 3.0)
    close(m.centers, [[2.0], [8.0], [0.0]])
    assert m.seen.tolist() == [True, True, False]
    m(torch.tensor([[100.0]], device=device), torch.tensor([0], device=device))  # no re-init
    close(m.centers[0], [2.0 - 0.5 * (2.0 - 100.0) / 2])


def test_normal_and_xavier_inits_are_random_and_seeded():
    torch.manual_seed(0)
    a = centerloss.CenterLoss(10, 4, init="normal", init_std=2.0).centers.clone()
    torch.manual_seed(0)
    b = centerloss.CenterLoss(10, 4, init="normal", init_std=2.0).centers.clone()
    assert torch.equal(a, b) and a.abs().sum() > 0
    x = centerloss.CenterLoss(10, 4, init="xavier").centers
    bound = (6.0 / (10 + 4)) ** 0.5
    assert x.abs().max() <= bound and x.abs().sum() > 0
