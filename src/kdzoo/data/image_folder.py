"""ImageNet-style folders (``ROOT/train/<class>/*.jpg``, ``ROOT/val/<class>/*.jpg``), streamed from disk.

Workers decode each image and crop it (training: ``RandomResizedCrop``; evaluation: resize to
``image_size * 256/224`` then ``CenterCrop``), returning uint8 tensors; flip and normalisation run
batched on the device. ImageNet's mean and std. Any image mode is converted to RGB.

A file PIL cannot read (truncated, not an image) never kills a worker: the worker marks it, and the
loader stops with an error naming the file (``unreadable=stop``, the default) or leaves it out of its
batch and prints how many it left out at the end of the pass (``unreadable=skip``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from ..declared import OneOf, Range
from ..errors import KdzooError
from ..memory_bound import check_fits_memory
from .augment import BatchAugment
from .loader import DataBundle
from .paths import data_root
from .registry import DATASETS, DataSpec
from .sampling import derive_seed
from .stream_loader import StreamLoader
from .workers import default_num_workers

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: Bytes a pixel of a batch takes at least: the uint8 batch the workers decode and the float32 one normalised from it.
BATCH_BYTES_PER_PIXEL = 1 + 4
UNREADABLE = OneOf("stop", "skip", reference="stop: an unreadable image ends the run with its name; skip: it is left "
                                         "out, counted after each pass")


def read_rgb(path: str) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


class ImageFiles(Dataset):
    """``(path, label)`` pairs; item ``(position, epoch)`` -> (uint8 3 x S x S image, label, position, readable).

    The transform's randomness comes from torch's RNG reseeded with (seed, epoch, position) inside
    ``fork_rng``, so it is reproducible and the caller's RNG state is left as it was. A file that
    cannot be read gives a black image and ``readable`` False.
    """

    def __init__(self, samples: list[tuple[str, int]], transform, seed: int, image_size: int):
        self.samples = samples
        self.transform = transform
        self.seed = seed
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int, int, bool]:
        position, epoch = key
        path, label = self.samples[position]
        try:
            image = read_rgb(path)
        except Exception:  # PIL raises many types on bad files; the loader reports the reason
            return torch.zeros(3, self.image_size, self.image_size, dtype=torch.uint8), label, position, False
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, epoch, position))
            image = self.transform(image)
        return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1), label, position, True


def unreadable_reason(path: str) -> str:
    """Why ``path`` cannot be read (read again in the main process: workers only mark the file)."""
    try:
        read_rgb(path)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "it could not be read at the time"


class ImageFolderLoader(StreamLoader):
    """A :class:`StreamLoader` of :class:`ImageFiles` that stops at, or skips, unreadable files."""

    def __init__(self, files: ImageFiles, *args, unreadable: str, split: str, **kwargs):
        super().__init__(files, *args, **kwargs)
        self.files, self.unreadable, self.split = files, unreadable, split

    def _batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        skipped: list[str] = []
        for images, labels, index, readable in super()._batches(epoch):
            if not bool(readable.all()):
                paths = [self.files.samples[i][0] for i in index[~readable].tolist()]
                if self.unreadable == "stop":
                    raise KdzooError(f"Cannot read the image {paths[0]} ({unreadable_reason(paths[0])}). Replace "
                                     f"or delete the file, or pass --dataset-opt unreadable=skip to leave unreadable "
                                     f"images out (their number is printed after each pass over the {self.split} "
                                     f"split).")
                skipped += paths
                images, labels, index = images[readable], labels[readable], index[readable]
                if not len(index):
                    continue
            yield images, labels, index
        if skipped:
            print(f"kdzoo: left out {len(skipped)} unreadable image(s) of the {self.split} split in this pass "
                  f"(unreadable=skip), e.g. {skipped[0]}.", file=sys.stderr, flush=True)


def scan(folder: Path):
    """torchvision's ``ImageFolder`` listing of ``folder`` (classes and (path, label) samples)."""
    from torchvision.datasets import ImageFolder

    if not folder.is_dir():
        raise KdzooError(f"Image folder {folder} not found. The imagefolder dataset expects ROOT/train/<class>/*.jpg "
                         f"and ROOT/val/<class>/*.jpg; pass --data-root ROOT.")
    try:
        found = ImageFolder(str(folder))
    except (FileNotFoundError, OSError) as exc:
        raise KdzooError(f"Cannot read the image folder {folder}: {exc}") from None
    if len(found.classes) < 2:
        raise KdzooError(f"{folder} holds {len(found.classes)} class folder ({', '.join(found.classes)}); a "
                         f"classifier needs at least 2: one subfolder of images per class, ROOT/train/<class>/*.jpg.")
    return found


def split_files(spec: DataSpec, found, split: str) -> list[tuple[str, int]]:
    keep = spec.subset(split, len(found.samples))
    return found.samples if keep is None else [found.samples[i] for i in keep.tolist()]


@DATASETS.register("imagefolder",
                   description="ImageNet-style folder ROOT/train/<class>/*, ROOT/val/<class>/*, streamed",
                   classes="from folder", image_size=(224, 224), in_channels=3, source="--data-root folder")
def imagefolder(spec: DataSpec, image_size: Annotated[int, Range(ge=8)] = 224,
                unreadable: Annotated[str, UNREADABLE] = "stop") -> DataBundle:
    from torchvision import transforms

    batch = max(spec.batch_size, spec.eval_batch_size)
    check_fits_memory(f"imagefolder option image_size={image_size} (batches of {batch} images of 3x{image_size}x"
                      f"{image_size})", batch * 3 * image_size**2 * BATCH_BYTES_PER_PIXEL,
                      "Lower image_size (--dataset-opt image_size=N; 224 is ImageNet's) or the batch size.")
    root = data_root(spec.root)
    train, val = scan(root / "train"), scan(root / "val")
    if train.classes != val.classes:
        only = lambda a, b: ", ".join(sorted(set(a.classes) - set(b.classes))) or "none"  # noqa: E731
        raise KdzooError(f"{root / 'train'} and {root / 'val'} hold different class folders (only in train: "
                         f"{only(train, val)}; only in val: {only(val, train)}); both need the same <class> "
                         f"subfolders.")
    evaluation = transforms.Compose([transforms.Resize(round(image_size * 256 / 224)),
                                     transforms.CenterCrop(image_size)])
    workers = spec.num_workers if spec.num_workers is not None else default_num_workers()
    train_transform = transforms.RandomResizedCrop(image_size) if spec.augment else evaluation
    train_files = ImageFiles(split_files(spec, train, "train"), train_transform, spec.seed, image_size)
    test_files = ImageFiles(split_files(spec, val, "test"), evaluation, spec.seed, image_size)
    train_loader = ImageFolderLoader(train_files, spec.train_order(len(train_files)), spec.batch_size, MEAN, STD,
                                     spec.device, workers, BatchAugment(padding=0, flip=True) if spec.augment else None,
                                     unreadable=unreadable, split="train")
    test_loader = ImageFolderLoader(test_files, spec.test_order(len(test_files)), spec.eval_batch_size, MEAN, STD,
                                    spec.device, (workers + 1) // 2, unreadable=unreadable, split="val")
    return DataBundle("imagefolder", train_loader, test_loader, num_classes=len(train.classes), in_channels=3,
                      image_size=(image_size, image_size), mean=MEAN, std=STD, class_names=tuple(train.classes),
                      train_files=tuple(path for path, _ in train_files.samples))
