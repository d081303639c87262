"""Center loss in PyTorch: Fashion-MNIST, a small conv net with two outputs (the softmax logits
and a feature layer), trained with cross-entropy + lambda * center loss; optionally data-parallel
over several processes (DistributedDataParallel on Gloo, every rank stepping the centers with
the union of the ranks' batches).

The centers belong to `centerloss.CenterLoss`, which moves them inside its forward (the paper's
rule); the optimizer sees only the network. Data: Debian's dataset-fashion-mnist (no downloads).

    python examples/pytorch_fashion_mnist.py --epochs 2                  # one process
    python examples/pytorch_fashion_mnist.py --epochs 2 --nproc 2        # two ranks, Gloo
    python examples/pytorch_fashion_mnist.py --steps 5 --eval-samples 512  # smoke run (seconds)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fashion_mnist import DATA_DIR, load_split  # noqa: E402

import centerloss  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--epochs", type=int, default=1, help="passes over the 60k training images")
    p.add_argument("--steps", type=int, default=None,
                   help="stop after this many training steps in all (short runs, tests)")
    p.add_argument("--batch-size", type=int, default=128, help="per process")
    p.add_argument("--feature-dim", type=int, default=100)
    p.add_argument("--lambda", dest="lam", type=float, default=0.2,
                   help="center loss weight: loss = cross-entropy + LAMBDA * center loss")
    p.add_argument("--alpha", type=float, default=0.5, help="center step size (paper's alpha)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument("--nproc", type=int, default=1, help="data-parallel processes (Gloo, CPU)")
    p.add_argument("--eval-samples", type=int, default=10000, help="test images to score")
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads per process (default: cores / processes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.nproc < 1 or args.batch_size < 1 or args.feature_dim < 1:
        p.error("--nproc, --batch-size and --feature-dim must be >= 1")
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) // args.nproc)
    return args


class Net(nn.Module):
    """Conv(32)-Pool-Conv(64)-Pool, a linear feature layer, a softmax head on the features."""

    def __init__(self, feature_dim: int, num_classes: int):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        )
        self.features = nn.Linear(64 * 7 * 7, feature_dim)
        self.head = nn.Linear(feature_dim, num_classes)

    def forward(self, images):
        features = self.features(self.trunk(images))
        return self.head(features), features


def as_tensors(images: np.ndarray, labels: np.ndarray):
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels).long()


def train(rank: int, world: int, args, store: str | None):
    torch.set_num_threads(args.threads)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank,
                                world_size=world)
    torch.manual_seed(args.seed)
    x_train, y_train = as_tensors(*load_split(args.data_dir, "train"))
    num_classes = int(y_train.max()) + 1
    net = Net(args.feature_dim, num_classes)
    model = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    # Not wrapped by DDP (it would broadcast the K x D table before every forward; inside a
    # wrapped model call centerloss.distributed.skip_ddp_buffer_sync first): with a process
    # group every rank applies the step of all ranks' batches, so the centers stay identical.
    center_loss = centerloss.CenterLoss(num_classes, args.feature_dim, alpha=args.alpha,
                                        process_group="world" if world > 1 else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    per_epoch = len(x_train) // (args.batch_size * world)
    if per_epoch == 0:
        raise SystemExit(f"--batch-size {args.batch_size} x {world} processes is more than the "
                         f"{len(x_train)} training images")
    total = per_epoch * args.epochs if args.steps is None else min(args.steps, per_epoch * args.epochs)
    bar = None
    if rank == 0 and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="step", desc=f"train ({world} process{'es' * (world > 1)})")
    step, start, last = 0, time.perf_counter(), {}
    while step < total:
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(
            args.seed * 1000 + step // per_epoch))
        shard = order[rank: per_epoch * args.batch_size * world: world]  # this rank's images
        for i in range(per_epoch):
            if step >= total:
                break
            idx = shard[i * args.batch_size: (i + 1) * args.batch_size]
            images, labels = x_train[idx], y_train[idx]
            logits, features = model(images)
            softmax_loss = F.cross_entropy(logits, labels)
            center = center_loss(features, labels)  # the centers move here
            loss = softmax_loss + args.lam * center
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            last = {"softmax": softmax_loss.item(), "center": center.item()}
            if bar is not None:
                bar.update(1)
                bar.set_postfix(softmax=f"{last['softmax']:.3f}", center=f"{last['center']:.3f}")
    train_seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()

    spread = 0.0
    if world > 1:  # every rank must hold the same centers
        gathered = [torch.empty_like(center_loss.centers) for _ in range(world)]
        dist.all_gather(gathered, center_loss.centers)
        spread = max(float((g - gathered[0]).abs().max()) for g in gathered)
    result = None
    if rank == 0:
        result = evaluate(net, center_loss, args)
        result.update(processes=world, steps=step, train_seconds=round(train_seconds, 2),
                      last_step=last, centers_max_difference_across_ranks=spread,
                      skipped_center_updates=int(center_loss.skipped_updates))
    if world > 1:
        # Every rank waits for rank 0's evaluation: a rank that tears its connections down while
        # another still holds them can abort (Gloo).
        dist.barrier()
        dist.destroy_process_group()
    return result


@torch.no_grad()
def evaluate(net: Net, center_loss: centerloss.CenterLoss, args) -> dict:
    """Closed-set accuracy of the softmax head, and how tight the test features sit around the
    learned centers (mean 1/2 ||x - c_y||^2), against how far apart the centers are."""
    net.eval()
    center_loss.eval()  # eval mode: the centers do not move
    x_test, y_test = as_tensors(*load_split(args.data_dir, "t10k"))
    x_test, y_test = x_test[: args.eval_samples], y_test[: args.eval_samples]
    # In chunks: all 10k images in one forward would hold about 2 GB of activations.
    outputs = [net(chunk) for chunk in x_test.split(1000)]
    logits = torch.cat([o[0] for o in outputs])
    features = torch.cat([o[1] for o in outputs])
    centers = center_loss.centers
    pair = torch.cdist(centers, centers)
    off_diagonal = pair[~torch.eye(len(centers), dtype=torch.bool)]
    return {
        "test_accuracy": float((logits.argmax(1) == y_test).float().mean()),
        "test_images": len(y_test),
        "test_center_loss": float(center_loss(features, y_test)),
        "mean_center_distance": float(off_diagonal.mean()),
    }


def _rank_main(rank, world, args, store, out):
    result = train(rank, world, args, store)
    if result is not None:
        Path(out).write_text(json.dumps(result))


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.nproc == 1:
        result = train(0, 1, args, None)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "result.json")
            torch.multiprocessing.start_processes(
                _rank_main, args=(args.nproc, args, os.path.join(tmp, "store"), out),
                nprocs=args.nproc, start_method="spawn", join=True)
            result = json.loads(Path(out).read_text())
    print(json.dumps(result, indent=1))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
