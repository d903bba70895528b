"""Training throughput (images/s) of teacher training and of KD distillation for a named pair.

    python benchmarks/throughput.py --teacher resnet32x4 --student resnet8x4 [--device cuda] [--amp bf16]

Times full optimisation steps (forward, loss, backward, SGD step) on random 32x32 batches after a
warm-up, and reports images/s for: training the teacher, training the student alone (CE), and KD
distillation (student step + frozen teacher forward), plus KD's cost relative to plain student
training as a ratio. Numbers are for comparing kdzoo versions and methods on one machine.
"""

from __future__ import annotations

import argparse

import torch

from kdzoo import Distiller
from kdzoo.engine.runtime import resolve_device
from kdzoo.models import create_model
from steps import images_per_second, random_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    classes = 100
    teacher = create_model(args.teacher, num_classes=classes).to(device)
    student = create_model(args.student, num_classes=classes).to(device)
    batch = random_batch(args.batch_size, classes, device)
    rate = lambda distiller: images_per_second(distiller, batch, args.steps, args.warmup, args.amp)  # noqa: E731
    teacher_rate = rate(Distiller(teacher, None, "vanilla"))
    student_rate = rate(Distiller(student, None, "vanilla"))
    kd_rate = rate(Distiller(student, teacher, "kd").to(device))
    print(f"device {device}, batch {args.batch_size}, amp {args.amp}, {args.steps} timed steps, "
          f"torch {torch.__version__}")
    print(f"{'run':<34}{'images/s':>10}")
    print(f"{'train teacher ' + args.teacher:<34}{teacher_rate:>10.0f}")
    print(f"{'train student ' + args.student:<34}{student_rate:>10.0f}")
    print(f"{'KD ' + args.teacher + ' -> ' + args.student:<34}{kd_rate:>10.0f}")
    print(f"KD step time / plain student step time: {student_rate / kd_rate:.2f}x")


if __name__ == "__main__":
    main()
