"""kdzoo's distillation epoch against a RepDistiller-style loop and against the compute floor, as images/s ratios.

    python benchmarks/speed.py                                   # resnet32x4 -> resnet8x4, KD, batch 64, this CPU
    python benchmarks/speed.py --device cuda --method crd --variants baseline kdzoo-fp32 kdzoo compiled floor
    python benchmarks/speed.py --dataset-shape fashion_mnist --teacher resnet20 --student resnet8

Variants, timed in interleaved rounds (one epoch of ``--batches`` batches each per round, so background load hits
them alike), after an untimed warm-up epoch each (compilation happens there):

- ``baseline``: what RepDistiller's training script does: a map-style dataset of uint8 HWC images with per-image
  torchvision transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize) in a DataLoader
  with 2 workers, the teacher under ``no_grad``, the student's forward and backward, SGD's for-loop step; fp32,
  contiguous NCHW. The loss terms are kdzoo's (the same computation as RepDistiller's for KD).
- ``kdzoo``: kdzoo's own engine epoch (``Trainer.train_epoch``) with the defaults of the device (data resident
  on the device, augmented by batch; the fast path of ``kdzoo.engine.speed``), eager.
- ``kdzoo-fp32``: the same with ``--amp none --no-channels-last`` (on a CPU this is ``kdzoo``).
- ``compiled``: ``kdzoo`` with ``--compile``.
- ``cache-fill``: ``kdzoo`` with ``--teacher-cache`` (the Trainer's own cache), each timed epoch a new epoch number,
  so its file is not there yet: the teacher runs and its logits are written (the cost of filling the cache).
- ``cache-read``: ``kdzoo`` with ``--teacher-cache`` and the default ``--teacher-cache-verify batch``, every call
  epoch 1 again, whose file the warm-up epoch wrote: the logits are read back (and one batch recomputed to verify).
- ``cache-unverified``: ``cache-read`` with ``--teacher-cache-verify none``: what a long epoch approaches, where the
  one verified batch is a small share (1 in 782 for CIFAR-100's 50 000 images at batch 64, 1 in ``--batches`` here).
- ``floor``: the compute floor: the same step (teacher forward, student forward/backward, optimiser step) on one
  resident batch, nothing else, with the device's best settings (those of ``kdzoo``).

Ratios are per round, over ``baseline``, ``kdzoo`` (eager) and ``floor``; the median over rounds is printed, then
the cache variants' hits and misses in the timed epochs. The data is synthetic (kdzoo's ``synthetic`` dataset) of
the shape of ``--dataset-shape``'s dataset (its classes, channels and image size as kdzoo registers them):
``cifar100`` (the default: 100 classes, 3 x 32 x 32) or ``fashion_mnist`` (10 classes, 1 x 32 x 32: kdzoo pads
Fashion-MNIST's 28 x 28 images to 32 x 32).
``--dry`` runs a tiny version (small networks, 2 batches of 8, 1 round) to check the script itself.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from kdzoo.batch import Batch
from kdzoo.config import RunConfig
from kdzoo.data.registry import DATASETS
from kdzoo.data.synthetic import generate
from kdzoo.data.tensor_loader import TensorSplits
from kdzoo.distiller import run_networks
from kdzoo.engine.build import build
from kdzoo.engine.logger import RunLogger
from kdzoo.engine.runtime import resolve_device
from kdzoo.engine.speed import compile_networks, optimizer_options
from kdzoo.engine.trainer import Trainer
from kdzoo.models import create_model, run_model

SHAPES = ("cifar100", "cifar10", "fashion_mnist")  # --dataset-shape: in-memory datasets of kdzoo's registry


class UInt8Images(Dataset):
    """RepDistiller's CIFAR dataset shape: HWC uint8 images, one torchvision transform per image, and the index."""

    def __init__(self, data: TensorSplits):
        self.images = data.train_images.permute(0, 2, 3, 1).contiguous().numpy()  # N x H x W x C, as torchvision's
        self.labels = data.train_labels.tolist()
        self.transform = transforms.Compose([transforms.ToPILImage(),
                                             transforms.RandomCrop(self.images.shape[1], padding=4),
                                             transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                                             transforms.Normalize(data.mean, data.std)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i], i


class Baseline:
    """The RepDistiller-style loop over a DataLoader with 2 worker processes (kept alive between epochs)."""

    def __init__(self, setup, data: TensorSplits, batch_size: int):
        self.setup = setup
        self.student = student_like(setup)
        self.teacher = copy.deepcopy(setup.distiller.teacher).to(memory_format=torch.contiguous_format)
        self.objective = setup.distiller.objective
        self.loader = DataLoader(UInt8Images(data), batch_size=batch_size, shuffle=True, num_workers=2,
                                 persistent_workers=True, pin_memory=setup.device.type == "cuda", drop_last=True)
        params = list(self.student.parameters()) + [p for p in self.objective.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4, foreach=False)

    def epoch(self) -> int:
        device, reads, seen = self.setup.device, self.setup.distiller.reads, 0
        self.student.train()
        for x, y, index in self.loader:
            x, y, index = (t.to(device, non_blocking=True) for t in (x, y, index))
            with torch.no_grad():
                t = run_model(self.teacher, x, reads.teacher)
            s = run_model(self.student, x, reads.student)
            loss = sum(self.objective(s, t, Batch(x, y, index, None)).values())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            seen += len(y)
        return seen


class Engine:
    """kdzoo's engine: one ``Trainer.train_epoch`` per call, each a new epoch number, or epoch 1 every time with
    ``same_epoch`` (so that a teacher cache filled by the first call is read by the later ones)."""

    def __init__(self, cfg: RunConfig, folder: Path, same_epoch: bool = False):
        folder.mkdir()
        self.setup = build(cfg)
        self.trainer = Trainer(self.setup, folder, RunLogger(folder, tensorboard=False, quiet=True))
        self.same_epoch = same_epoch
        self.count = 0

    def epoch(self) -> int:
        self.count = 1 if self.same_epoch else self.count + 1
        self.trainer.train_epoch(self.count)
        return self.setup.data.num_train


class Floor:
    """The step alone on one resident batch, with the settings of ``setup`` (kdzoo's defaults for the device)."""

    def __init__(self, setup, batches: int):
        self.setup, self.batches = setup, batches
        self.student = student_like(setup)
        plan = setup.speed
        if plan.channels_last:
            self.student = self.student.to(memory_format=torch.channels_last)
        compile_networks(plan, self.student)
        batch = next(iter(setup.data.train.epoch(1)))
        self.batch = batch
        objective = setup.distiller.objective
        params = list(self.student.parameters()) + [p for p in objective.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=5e-4, **optimizer_options(plan))

    def epoch(self) -> int:
        distiller = self.setup.distiller
        self.student.train()
        for _ in range(self.batches):
            student_out, teacher_out = run_networks(self.student, distiller.teacher, [self.batch.images],
                                                    distiller.reads, distiller.runtime)
            loss = sum(distiller.objective(student_out, teacher_out, self.batch).values())
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return self.batches * self.batch.labels.numel()


def student_like(setup) -> torch.nn.Module:
    """A new student of ``setup``'s architecture and data shape, on its device."""
    data = setup.data
    return create_model(setup.cfg.model, num_classes=data.num_classes, in_channels=data.in_channels).to(setup.device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="resnet32x4")
    parser.add_argument("--student", default="resnet8x4")
    parser.add_argument("--method", default="kd")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=8, help="batches per timed epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compile-mode", default="default")
    parser.add_argument("--dataset-shape", default="cifar100", choices=SHAPES,
                        help="synthetic data of this dataset's classes, channels and image size")
    parser.add_argument("--variants", nargs="+",
                        default=["baseline", "kdzoo", "compiled", "floor"],
                        choices=["baseline", "kdzoo", "kdzoo-fp32", "cache-fill", "cache-read", "cache-unverified",
                                 "compiled", "floor"])
    parser.add_argument("--dry", action="store_true", help="tiny networks and data, one round: checks the script")
    args = parser.parse_args()
    if args.dry:
        args.teacher, args.student, args.batch_size, args.batches, args.rounds = "resnet8", "resnet8", 8, 2, 1
    device = resolve_device(args.device)
    folder = Path(tempfile.mkdtemp(prefix="kdzoo-speed-"))
    torch.manual_seed(0)
    shape = DATASETS.get(args.dataset_shape).info
    classes, channels, size = shape["classes"], shape["in_channels"], shape["image_size"][0]
    teacher_file = folder / "teacher.pt"
    torch.save({"model": create_model(args.teacher, num_classes=classes, in_channels=channels).state_dict()},
               teacher_file)
    num_train = args.batches * args.batch_size
    synthetic = {"num_classes": classes, "num_train": num_train, "num_test": 2, "image_size": size,
                 "channels": channels}
    common = dict(model=args.student, teacher=str(teacher_file), teacher_arch=args.teacher, method=args.method,
                  dataset="synthetic", dataset_options=synthetic,
                  batch_size=args.batch_size, device=str(device), schedule="constant", progress=False,
                  tensorboard=False, eval_teacher=False, epochs=1000, lr=0.05,
                  method_options={"nce_k": 4096} if args.method == "crd" and not args.dry else {})
    configs = {"kdzoo": RunConfig(**common), "kdzoo-fp32": RunConfig(**common, amp="none", channels_last=False),
               "cache-fill": RunConfig(**common, teacher_cache=str(folder / "cache-fill.cache")),
               "cache-read": RunConfig(**common, teacher_cache=str(folder / "cache-read.cache")),
               "cache-unverified": RunConfig(**common, teacher_cache=str(folder / "cache-unverified.cache"),
                                             teacher_cache_verify="none"),
               "compiled": RunConfig(**common, compile=True, compile_mode=args.compile_mode)}
    engines = {name: Engine(configs[name], folder / name, same_epoch=name in ("cache-read", "cache-unverified"))
               for name in {"kdzoo", *args.variants} & set(configs)}
    data = generate(classes, num_train, 2, size, channels, 0)  # the synthetic dataset's images, for the baseline
    others = {"baseline": lambda: Baseline(engines["kdzoo"].setup, data, args.batch_size),
              "floor": lambda: Floor(engines["kdzoo"].setup, args.batches)}
    runners, warmup_s = {}, {}
    for name in args.variants:
        runners[name] = engines[name] if name in engines else others[name]()
        start = time.perf_counter()
        runners[name].epoch()  # warm-up: worker start, autotuning, compilation
        synchronize(device)
        warmup_s[name] = time.perf_counter() - start
    print(f"{args.teacher} -> {args.student}, {args.method}, batch {args.batch_size}, {args.dataset_shape}-shaped "
          f"data ({classes} classes, {channels} x {size} x {size}), device {device}, {torch.get_num_threads()} "
          f"threads, torch {torch.__version__}; {args.rounds} rounds of {args.batches} batches per variant")
    caches = {name: runner.trainer.teacher_cache for name, runner in runners.items()
              if isinstance(runner, Engine) and runner.trainer.teacher_cache is not None}
    before = {name: (cache.hits, cache.misses) for name, cache in caches.items()}
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for round_ in range(args.rounds):
        for name, runner in runners.items():
            start = time.perf_counter()
            seen = runner.epoch()
            synchronize(device)
            rates[name].append(seen / (time.perf_counter() - start))
        print(f"round {round_ + 1}: " + ", ".join(f"{n} {r[-1]:.1f}" for n, r in rates.items()) + " images/s",
              flush=True)
    print(f"{'variant':<17}{'images/s':>10}{'warm-up s':>11}{'/ baseline':>12}{'/ kdzoo':>9}{'/ floor':>9}")
    for name, r in rates.items():
        ratios = [ratio_text(rates, name, ref) for ref in ("baseline", "kdzoo", "floor")]
        print(f"{name:<17}{statistics.median(r):>10.1f}{warmup_s[name]:>11.1f}{ratios[0]:>12}{ratios[1]:>9}"
              f"{ratios[2]:>9}")
    print("ratios: median over rounds of the per-round images/s ratio (higher is faster)")
    for name, cache in caches.items():
        print(f"{name}: {cache.hits - before[name][0]} batches read from the teacher cache (hits), "
              f"{cache.misses - before[name][1]} computed and written (misses) in the timed epochs "
              f"(--teacher-cache-verify {cache.verify})")
    if {"baseline", "floor"} <= rates.keys():
        print(f"no loop that runs this arithmetic on this device passes the floor: at most "
              f"{ratio_text(rates, 'floor', 'baseline')}x the baseline here without cheaper arithmetic")


def ratio_text(rates: dict[str, list[float]], name: str, ref: str) -> str:
    if ref not in rates:
        return "-"
    return f"{statistics.median(a / b for a, b in zip(rates[name], rates[ref], strict=True)):.2f}"


if __name__ == "__main__":
    main()
