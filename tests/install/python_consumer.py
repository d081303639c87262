"""What a new user runs after `pip install`: import centerloss, train features of 3 classes with
center loss for a few steps, check the loss falls and the centers move. Prints one line with the
version, where the package and its library were loaded from, and the losses (the tests read it)."""
import json
import sys

import torch

import centerloss

torch.manual_seed(0)
center_loss = centerloss.CenterLoss(num_classes=3, feature_dim=2, alpha=0.5)
labels = torch.arange(96) % 3
features = (torch.randn(96, 2) + 3.0 * labels[:, None]).requires_grad_()
optimizer = torch.optim.SGD([features], lr=0.5)
losses = []
for _ in range(20):
    optimizer.zero_grad()
    loss = center_loss(features, labels)  # moves the centers (training mode)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())

moved = bool(center_loss.centers.abs().sum() > 0)
print(json.dumps({
    "version": centerloss.__version__,
    "package": centerloss.__file__,
    "library": str(centerloss._library._library_path()),
    "first_loss": losses[0],
    "last_loss": losses[-1],
    "centers_moved": moved,
}))
sys.exit(0 if losses[-1] < losses[0] and moved else 1)
