"""Fashion-MNIST (Xiao et al., 2017): 28x28 grey images of 10 clothing classes, zero-padded to 32x32
so that the CIFAR model zoo fits."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import KdzooError
from .idx import read_idx
from .loader import DataBundle
from .paths import DATA_ENV, data_root
from .registry import DATASETS, DataSpec
from .tensor_loader import TensorSplits, tensor_bundle

#: Where Debian's ``dataset-fashion-mnist`` package installs the files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MEAN, STD = (0.2860,), (0.3530,)


def search_folders(root) -> list[Path]:
    """Folders to look in, in order: ``root`` (default ``./data``), ``$KDZOO_DATA``, Debian's folder."""
    folders = [data_root(root)]
    if os.environ.get(DATA_ENV):
        folders.append(Path(os.environ[DATA_ENV]).expanduser())
    folders.append(DEBIAN_DIR)
    return list(dict.fromkeys(folders))


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four IDX files (gzipped or not) in ``folder`` or in torchvision's ``folder/FashionMNIST/raw``."""
    for place in (folder, folder / "FashionMNIST" / "raw"):
        found = {}
        for key, stem in FILES.items():
            found[key] = next((p for p in (place / f"{stem}.gz", place / stem) if p.is_file()), None)
        if all(found.values()):
            return found
    return None


def locate(root, download: bool) -> dict[str, Path]:
    folders = search_folders(root)
    for folder in folders:
        files = find_files(folder)
        if files:
            return files
    if download:
        from torchvision.datasets import FashionMNIST

        try:
            for train in (True, False):
                FashionMNIST(data_root(root), train=train, download=True)
        except (OSError, RuntimeError) as exc:
            raise KdzooError(f"Downloading Fashion-MNIST into {data_root(root)} failed: {exc}") from None
        files = find_files(data_root(root))
        if files:
            return files
    raise KdzooError(
        f"Fashion-MNIST not found: looked for {FILES['train_images']}.gz and the other three IDX files in "
        f"{', '.join(map(str, folders))} (and FashionMNIST/raw below each). Fixes: `sudo apt-get install "
        f"dataset-fashion-mnist` (Debian/Ubuntu), or pass --download to fetch it with torchvision, or "
        f"--data-root FOLDER (or ${DATA_ENV}) naming a folder that holds the files."
    )


def load(root, download: bool) -> TensorSplits:
    files = locate(root, download)
    arrays = {key: torch.from_numpy(read_idx(path).copy()) for key, path in files.items()}
    images = {split: F.pad(arrays[f"{split}_images"].unsqueeze(1), (2, 2, 2, 2)) for split in ("train", "test")}
    return TensorSplits(images["train"], arrays["train_labels"].long(), images["test"], arrays["test_labels"].long(),
                        MEAN, STD, CLASSES, train_files=(str(files["train_images"]), str(files["train_labels"])))


@DATASETS.register("fashion_mnist",
                   description="Fashion-MNIST, 28x28 grey clothing images zero-padded to 32x32 (60k/10k)",
                   classes=10, image_size=(32, 32), in_channels=1,
                   source="data root, $KDZOO_DATA, Debian dataset-fashion-mnist, or --download")
def fashion_mnist(spec: DataSpec) -> DataBundle:
    return tensor_bundle("fashion_mnist", load(spec.root, spec.download), spec)
