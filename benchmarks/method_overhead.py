"""Per-method cost: training-step time relative to plain KD on the same pair, and peak memory.

    python benchmarks/method_overhead.py --teacher resnet32x4 --student resnet8x4 [--device cuda] [--methods at crd]

Each method is measured in its own fresh process (so peak memory is its own): random 32x32 batches,
the method's default options and weights, full optimisation steps as the engine runs them (teacher
forward under inference_mode, only the features the method declares). CRD gets a memory bank for
``--num-data`` samples (CIFAR-100's 50 000 by default). Peak memory is the process's peak resident
size on CPU and the peak allocated CUDA memory on a GPU, read before KD runs in the process. The step
time ratio is timed in ``--rounds`` rounds alternating KD and the method in that process (so background
load hits both alike); the median ratio is printed, beside the ratio of the step's counted FLOPs (so a method's
own arithmetic can be told from the runner's overhead). The absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

import torch

from kdzoo import Distiller
from kdzoo.engine.runtime import resolve_device
from kdzoo.methods import list_methods, method_needs
from kdzoo.models import create_model
from steps import images_per_second, random_batch, step_flops


def peak_memory_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def measure(args: argparse.Namespace, name: str) -> dict:
    device = resolve_device(args.device)
    torch.manual_seed(0)
    classes = 100
    teacher = create_model(args.teacher, num_classes=classes).to(device)
    student = create_model(args.student, num_classes=classes).to(device)
    labels = torch.arange(args.num_data) % classes
    # the student with its exits (BYOT, exit_kd) or its head (SimKD), as the engine builds it
    distiller = Distiller(student, teacher if method_needs(name).needs_teacher else None, name,
                          train_labels=labels).to(device)
    kd = Distiller(student, teacher, "kd").to(device)
    batch = random_batch(args.batch_size, classes, device)
    batch.index = torch.randint(0, args.num_data, (args.batch_size,), device=device)
    rates = [images_per_second(distiller, batch, args.steps, args.warmup, args.amp)]
    peak = peak_memory_mb(device)
    kd_rates = [images_per_second(kd, batch, args.steps, args.warmup, args.amp)]
    for _ in range(args.rounds - 1):
        rates.append(images_per_second(distiller, batch, args.steps, 0, args.amp))
        kd_rates.append(images_per_second(kd, batch, args.steps, 0, args.amp))
    flops = step_flops(distiller, batch, args.amp) / step_flops(kd, batch, args.amp)
    return {"method": name, "images_per_s": statistics.median(rates), "peak_mb": peak, "flops_over_kd": flops,
            "step_time_over_kd": statistics.median(k / r for k, r in zip(kd_rates, rates, strict=True))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered method")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating KD/method rounds per method")
    parser.add_argument("--num-data", type=int, default=50000, help="training-set size (CRD's memory bank)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="none", choices=["none", "bf16", "fp16"])
    parser.add_argument("--only", help=argparse.SUPPRESS)  # internal: measure one method in this process
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args, args.only)))
        return
    methods = args.methods or list_methods()
    if "kd" not in methods:
        methods = ["kd", *methods]
    results = {}
    for name in methods:
        shared = {"teacher": args.teacher, "student": args.student, "batch-size": args.batch_size, "steps": args.steps,
                  "warmup": args.warmup, "rounds": args.rounds, "num-data": args.num_data, "device": args.device,
                  "amp": args.amp}
        argv = [sys.executable, __file__, "--only", name, *(f"--{k}={v}" for k, v in shared.items())]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name}: failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    kd = results["kd"]
    print(f"{args.teacher} -> {args.student}, batch {args.batch_size}, device {resolve_device(args.device)}, "
          f"amp {args.amp}, torch {torch.__version__}")
    print(f"{'method':<10}{'images/s':>10}{'step time / KD':>16}{'FLOPs / KD':>12}{'peak MB':>10}{'peak / KD':>11}")
    for name, r in results.items():
        peak = (f"{r['peak_mb']:>10.0f}{r['peak_mb'] / kd['peak_mb']:>11.2f}" if r["peak_mb"]
                else f"{'n/a':>10}{'n/a':>11}")
        print(f"{name:<10}{r['images_per_s']:>10.0f}{r['step_time_over_kd']:>16.2f}{r['flops_over_kd']:>12.2f}{peak}")
    print("FLOPs: matrix products and convolutions of one step, forward and backward (torch's FlopCounterMode); "
          "elementwise ops, reductions and SVDs are not counted")


if __name__ == "__main__":
    main()
