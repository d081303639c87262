"""Bad input (spec section 7) and the NaN guard (section 3): clear errors, nothing changes; on
every device (tests/python/conftest.py: the `device` fixture)."""
from __future__ import annotations

import itertools

import pytest
import torch

import centerloss.functional  # loads torch.ops.centerloss
import reference


def case():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 3, 0, 1]), torch.randn(4, 3, generator=g)


BAD_CALLS = [
    # (description, kwargs override, expected message fragment)
    ("features 3-D", dict(features=torch.randn(6, 3, 1)), "features must be 2-D"),
    ("labels 2-D", dict(labels=torch.zeros(6, 1, dtype=torch.long)), "labels must be 1-D"),
    ("N mismatch", dict(labels=torch.zeros(5, dtype=torch.long)), "labels has 5 entries"),
    ("D mismatch", dict(features=torch.randn(6, 2)), "features has D = 2 but centers has D = 3"),
    ("float labels", dict(labels=torch.zeros(6)), "labels must have an integer dtype"),
    ("bool labels", dict(labels=torch.zeros(6, dtype=torch.bool)), "labels must have an integer dtype"),
    ("negative label", dict(labels=torch.tensor([0, 1, -1, 0, 0, 0])), "found label -1 at position 2"),
    ("label >= K", dict(labels=torch.tensor([0, 1, 2, 3, 4, 9])), "found label 4 at position 4"),
    ("label >> K", dict(labels=torch.tensor([0, 1, 2, 3, 100, 1])), "found label 100 at position 4"),
    ("int features", dict(features=torch.zeros(6, 3, dtype=torch.int32)), "features must be float32"),
    ("half centers", dict(centers=torch.zeros(4, 3, dtype=torch.float16)), "centers must be float32 or float64"),
    ("meta centers", dict(centers=torch.zeros(4, 3, device="meta")), "centers is on meta"),
]


@pytest.mark.parametrize("what,override,message", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_bad_input_names_argument_and_changes_nothing(device, what, override, message):
    features, labels, centers = case()
    args = dict(features=features, labels=labels, centers=centers)
    args.update(override)
    args = {k: v if v.device.type == "meta" else v.to(device) for k, v in args.items()}
    snapshot = {k: v.clone() for k, v in args.items() if v.device.type != "meta"}
    with pytest.raises(RuntimeError, match=message):
        centerloss.center_loss(args["features"], args["labels"], args["centers"])
    with pytest.raises(RuntimeError, match=message):
        centerloss.update_centers_(args["centers"], args["features"], args["labels"])
    for k, v in snapshot.items():
        assert torch.equal(args[k], v), f"{k} changed by a failed call ({what})"


@pytest.mark.parametrize("init", ["first_sight", "normal"])
def test_module_with_bad_labels_changes_nothing(device, init):
    """The module's step trusts the forward's label check: a bad label must raise in forward and
    leave every state tensor (centers, seen, counter) as it was."""
    features, _, _ = case()
    m = centerloss.CenterLoss(4, 3, init=init).to(device)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.raises(RuntimeError, match="found label 7 at position 1"):
        m(features.to(device), torch.tensor([0, 7, 0, 0, 0, 0], device=device))
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k]), k


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(alpha=0.0), "alpha must be in"),
        (dict(alpha=1.5), "alpha must be in"),
        (dict(margin=-0.1), "margin must be"),
        (dict(reduction="avg"), "reduction must be"),
        (dict(update="sgd"), "update must be"),
        (dict(init="ones"), "init must be"),
    ],
)
def test_bad_module_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        centerloss.CenterLoss(4, 3, **kwargs)


@pytest.mark.parametrize("k,d", [(0, 3), (3, 0)])
def test_bad_module_sizes(k, d):
    with pytest.raises(ValueError, match="must be >= 1"):
        centerloss.CenterLoss(k, d)


def test_op_level_alpha_and_margin_checks():
    features, labels, centers = case()
    before = centers.clone()
    with pytest.raises(RuntimeError, match="alpha must be in"):
        torch.ops.centerloss.update_centers_(centers, features, labels, 0.0, 0)
    with pytest.raises(RuntimeError, match="rule must be"):
        torch.ops.centerloss.update_centers_(centers, features, labels, 0.5, 2)
    with pytest.raises(RuntimeError, match="margin must be"):
        torch.ops.centerloss.center_loss(features, labels, centers, -1.0, 1)
    with pytest.raises(RuntimeError, match="reduction must be"):
        torch.ops.centerloss.center_loss(features, labels, centers, 0.0, 5)
    assert torch.equal(centers, before)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
def test_nan_guard_skips_whole_update(device, bad, dtype):
    features, labels, _ = case()
    features, labels = features.to(device, dtype), labels.to(device)
    features[4, 1] = bad  # class 0; classes 1, 2, 3 are clean but must not move either
    m = centerloss.CenterLoss(4, 3, init="normal").to(device)
    before = m.centers.clone()
    loss = m(features, labels)
    assert not torch.isfinite(loss)
    assert torch.equal(m.centers, before)
    assert int(m.skipped_updates) == 1
    assert m.update_centers(features, labels) is False
    assert int(m.skipped_updates) == 2
    clean = features.clone()
    clean[4, 1] = 0
    m(clean, labels)
    assert int(m.skipped_updates) == 2 and not torch.equal(m.centers, before)


def test_first_sight_skips_non_finite_batch(device):
    features, labels, _ = case()
    features[0, 0] = float("nan")
    m = centerloss.CenterLoss(4, 3, init="first_sight").to(device)
    m(features.to(device), labels.to(device))
    assert not m.seen.any() and torch.equal(m.centers.cpu(), torch.zeros(4, 3))


@pytest.mark.parametrize("margin", [0.0, 0.5, 100.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nan_feature_shows_in_the_loss_with_any_margin(device, margin, reduction):
    """Spec section 3: the loss of a non-finite batch is non-finite, so NaN handling sees it
    (a hinge max(d - margin, 0) would turn a NaN distance into 0)."""
    features, labels, centers = case()
    features[2, 0] = float("nan")
    features, labels, centers = features.to(device), labels.to(device), centers.to(device)
    loss = centerloss.center_loss(features, labels, centers, margin, reduction).cpu()
    if reduction == "none":
        assert torch.isnan(loss[2]) and torch.isfinite(loss[[0, 1, 3, 4, 5]]).all()
    else:
        assert torch.isnan(loss)
    m = centerloss.CenterLoss(4, 3, margin=margin, init="normal").to(device)
    before = m.centers.clone()
    assert torch.isnan(m(features, labels))
    assert torch.equal(m.centers, before) and int(m.skipped_updates) == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_gradient_rule_keeps_centers_finite(device, bad):
    """update="gradient": the optimizer moves the centers; a non-finite batch must give them a
    zero gradient (not NaN), so a plain SGD step leaves them untouched and finite."""
    features, labels, _ = case()
    features, labels = features.to(device), labels.to(device)
    m = centerloss.CenterLoss(4, 3, update="gradient", init="normal").to(device)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    before = m.centers.detach().clone()
    x = features.clone().requires_grad_(True)
    with torch.no_grad():
        x[3, 2] = bad
    loss = m(x, labels)
    assert not torch.isfinite(loss)
    loss.backward()
    assert torch.equal(m.centers.grad, torch.zeros_like(before))
    opt.step()
    assert torch.equal(m.centers.detach(), before)
    # a clean batch still gets the true gradient
    opt.zero_grad()
    m(features, labels).backward()
    assert m.centers.grad.abs().sum() > 0


def test_options_set_after_construction_are_checked_when_set():
    """A bad alpha, margin or reduction set on a built module is refused at once; it must not
    wait for a forward that first_sight has already half run (changing centers and seen)."""
    module = centerloss.CenterLoss(4, 3, init="first_sight")
    for name, value, message in (("alpha", 1.5, "alpha must be in"),
                                 ("margin", -1.0, "margin must be a finite number"),
                                 ("margin", float("inf"), "margin must be a finite number"),
                                 ("reduction", "avg", "reduction must be one of")):
        before = getattr(module, name)
        with pytest.raises(ValueError, match=message):
            setattr(module, name, value)
        assert getattr(module, name) == before
    module.alpha = 0.25  # a schedule may lower it
    assert module.alpha == 0.25 and "alpha=0.25" in repr(module)
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    module(x, y)
    assert bool(module.seen[:3].all())
    with pytest.raises(ValueError, match="init_std must be a finite number"):
        centerloss.CenterLoss(4, 3, init="normal", init_std=float("inf"))


@pytest.mark.parametrize("n", [8, 2000, 5000])  # CUDA: one checker block, several, a last slice
def test_update_refuses_a_non_finite_batch_with_a_verdict_on_its_device(device, n):
    for bad, dtype in itertools.product([float("nan"), float("inf")], reference.DTYPES):
        features, labels, centers = reference.make_case(n, 16, 4, dtype, n)
        features, labels, centers = features.to(device), labels.to(device), centers.to(device)
        features[n - 1, 15] = bad  # the last element: on CUDA the last checker block's slice
        before = centers.clone()
        applied = centerloss.update_centers_(centers, features, labels)
        assert applied.device.type == device, "the verdict must stay on the device (no sync)"
        assert not bool(applied) and torch.equal(centers, before), (bad, dtype)
        assert not torch.isfinite(centerloss.center_loss(features, labels, centers)).item()


# (N, positions of bad labels, reduction); CUDA: N = 5000 spans 1250 forward blocks, so the first
# bad position must win whichever block finishes last.
FIRST_BAD_CASES = [(5000, [4999], "mean"), (5000, [3, 4000, 17], "sum"),
                   (5000, [2500, 2501], "none"), (6, [0], "mean")]


@pytest.mark.parametrize("n,positions,reduction", FIRST_BAD_CASES)
def test_label_check_reports_the_first_bad_label_then_resets(device, n, positions, reduction):
    """The error names the first bad position; the next call (on CUDA: on the same stream, whose
    scratch holds the verdict) starts from a clean slate."""
    features, labels, centers = reference.make_case(n, 5, 9, torch.float32, n)
    y = labels.clone()
    for i, p in enumerate(positions):
        y[p] = -2 if i % 2 else 9
    first = min(positions)
    features, centers = features.to(device), centers.to(device)
    with pytest.raises(RuntimeError, match=f"found label {int(y[first])} at position {first}"):
        centerloss.center_loss(features, y.to(device), centers, 0.0, reduction)
    good = centerloss.center_loss(features, labels.to(device), centers, 0.0, reduction)
    want = reference.loss(features.cpu().double(), labels, centers.cpu().double(), 0.0, reduction)
    torch.testing.assert_close(good.cpu().double(), want, rtol=1e-5, atol=1e-6)
