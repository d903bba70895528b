"""A hand-written training loop around ``kdzoo.Distiller``: any teacher, any student, any method.

    python examples/distiller_loop.py --teacher runs/<teacher run> --student timm/mobilenetv3_small_050 \\
        --method kd --dataset fashion_mnist --train-subset 8000 --test-subset 2000 --epochs 3

The data comes from kdzoo's loaders (the same images, augmentation and order as ``kdzoo distill`` with
the same options), the optimisation is plain PyTorch: SGD with momentum, a cosine schedule, and the
Distiller's loss terms summed. Prints the loss terms and the test top-1 after every epoch.
"""

from __future__ import annotations

import argparse

import torch

from kdzoo import Distiller, load_teacher
from kdzoo.data import build_data
from kdzoo.engine.evaluate import evaluate
from kdzoo.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="a kdzoo run folder or checkpoint")
    parser.add_argument("--student", default="timm/mobilenetv3_small_050")
    parser.add_argument("--method", default="kd")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--train-subset", type=int, default=8000)
    parser.add_argument("--test-subset", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    device = torch.device("cpu")
    data = build_data(args.dataset, batch_size=64, device=device, seed=args.seed, train_subset=args.train_subset,
                      test_subset=args.test_subset)
    teacher = load_teacher(args.teacher, device=device)
    student = create_model(args.student, num_classes=data.num_classes, in_channels=data.in_channels)
    distiller = Distiller(student, teacher, args.method, input_shape=(data.in_channels, *data.image_size),
                          train_labels=data.train_labels)
    optimizer = torch.optim.SGD(distiller.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    for epoch in range(1, args.epochs + 1):
        distiller.train()
        distiller.on_epoch_start(epoch, args.epochs)
        for batch in data.train.epoch(epoch):
            losses = distiller(batch.images, batch.labels, index=batch.index)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
        schedule.step()
        top1 = evaluate(distiller.student, data.test, device)["top1"]
        terms = ", ".join(f"{k} {v.item():.3f}" for k, v in losses.items())
        print(f"epoch {epoch}/{args.epochs}: {terms}; test top-1 {top1:.2f}%")


if __name__ == "__main__":
    main()
