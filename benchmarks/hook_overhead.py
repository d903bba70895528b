"""Cost of hook taps (any network) against the zoo's native taps, on the same network.

    python benchmarks/hook_overhead.py --teacher resnet32x4 --student resnet8x4 --method at [--device cuda]

Both sides distil the same zoo pair with a feature method; on the hook side the student and the
teacher are wrapped in :class:`kdzoo.models.TappedModel` with their stage modules named, so their
features come from forward hooks (as for a timm, torchvision or user network) instead of the zoo's
own ``forward_taps``. Rounds alternate between the two, and the median ratio of training-step
images/s (hook / native) is printed: 1.00 means no cost, 0.95 a 5 % slowdown.
"""

from __future__ import annotations

import argparse
import copy
import statistics

import torch

from kdzoo.distiller import Distiller
from kdzoo.engine.runtime import resolve_device
from kdzoo.models import TappedModel, create_model
from steps import images_per_second, random_batch


def hooked(model: torch.nn.Module) -> TappedModel:
    """The zoo network behind hook taps at its stage modules (it runs its plain ``forward``; its taps come from
    the hooks)."""
    return TappedModel(copy.deepcopy(model), list(model.stage_names), classifier=model.classifier_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--method", default="at")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    torch.manual_seed(0)
    teacher = create_model(args.teacher, num_classes=100).to(device)
    student = create_model(args.student, num_classes=100).to(device)
    batch = random_batch(args.batch_size, 100, device)
    native = Distiller(copy.deepcopy(student), teacher, args.method).to(device)
    hook = Distiller(hooked(student), hooked(teacher), args.method).to(device)
    ratios = []
    for _ in range(args.rounds):
        rates = [images_per_second(d.student, d.teacher, d.objective, batch, args.steps, warmup=2)
                 for d in (native, hook)]
        ratios.append(rates[1] / rates[0])
        print(f"native {rates[0]:.0f} img/s, hooks {rates[1]:.0f} img/s, ratio {ratios[-1]:.3f}")
    print(f"{args.teacher} -> {args.student}, {args.method}, batch {args.batch_size}, {device}: "
          f"hook taps / native taps images/s, median of {args.rounds} rounds = {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
