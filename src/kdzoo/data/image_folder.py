"""ImageNet-style folders (``ROOT/train/<class>/*.jpg``, ``ROOT/val/<class>/*.jpg``), streamed from disk.

Workers decode each image and crop it (training: ``RandomResizedCrop``; evaluation: resize to
``image_size * 256/224`` then ``CenterCrop``), returning uint8 tensors; flip and normalisation run
batched on the device. ImageNet's mean and std.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..errors import KdzooError
from .augment import BatchAugment
from .batch import DataBundle
from .paths import data_root
from .registry import DATASETS, DataSpec, check_int
from .sampling import derive_seed
from .stream_loader import StreamLoader
from .workers import default_num_workers

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class ImageFiles(Dataset):
    """``(path, label)`` pairs; item ``(position, epoch)`` -> (uint8 3 x S x S image, label, position).

    The transform's randomness comes from torch's RNG reseeded with (seed, epoch, position) inside
    ``fork_rng``, so it is reproducible and the caller's RNG state is left as it was.
    """

    def __init__(self, samples: list[tuple[str, int]], transform, seed: int):
        self.samples = samples
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int, int]:
        position, epoch = key
        path, label = self.samples[position]
        with Image.open(path) as image:
            image = image.convert("RGB")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, epoch, position))
            image = self.transform(image)
        return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1), label, position


def scan(folder: Path):
    """torchvision's ``ImageFolder`` listing of ``folder`` (classes and (path, label) samples)."""
    from torchvision.datasets import ImageFolder

    if not folder.is_dir():
        raise KdzooError(f"Image folder {folder} not found. The imagefolder dataset expects ROOT/train/<class>/*.jpg and "
                         f"ROOT/val/<class>/*.jpg; pass --data-root ROOT.")
    try:
        return ImageFolder(str(folder))
    except (FileNotFoundError, OSError) as exc:
        raise KdzooError(f"Cannot read the image folder {folder}: {exc}") from None


def split_files(spec: DataSpec, found, split: str) -> list[tuple[str, int]]:
    keep = spec.subset(split, len(found.samples))
    return found.samples if keep is None else [found.samples[i] for i in keep.tolist()]


@DATASETS.register("imagefolder", description="ImageNet-style folder ROOT/train/<class>/*, ROOT/val/<class>/*, streamed",
                   classes="from folder", image_size=(224, 224), in_channels=3, source="--data-root folder")
def imagefolder(spec: DataSpec, image_size: int = 224) -> DataBundle:
    from torchvision import transforms

    check_int("imagefolder option image_size", image_size, 8)
    root = data_root(spec.root)
    train, val = scan(root / "train"), scan(root / "val")
    if train.classes != val.classes:
        raise KdzooError(f"{root / 'train'} and {root / 'val'} hold different class folders "
                         f"({len(train.classes)} vs {len(val.classes)}); both need the same <class> subfolders.")
    evaluation = transforms.Compose([transforms.Resize(round(image_size * 256 / 224)), transforms.CenterCrop(image_size)])
    workers = spec.num_workers if spec.num_workers is not None else default_num_workers()
    train_files = ImageFiles(split_files(spec, train, "train"),
                             transforms.RandomResizedCrop(image_size) if spec.augment else evaluation, spec.seed)
    test_files = ImageFiles(split_files(spec, val, "test"), evaluation, spec.seed)
    train_loader = StreamLoader(train_files, spec.train_order(len(train_files)), spec.batch_size, MEAN, STD, spec.device,
                                workers, BatchAugment(padding=0, flip=True) if spec.augment else None)
    test_loader = StreamLoader(test_files, spec.test_order(len(test_files)), spec.eval_batch_size, MEAN, STD, spec.device,
                               (workers + 1) // 2)
    return DataBundle("imagefolder", train_loader, test_loader, num_classes=len(train.classes), in_channels=3,
                      image_size=(image_size, image_size), mean=MEAN, std=STD, class_names=tuple(train.classes))
