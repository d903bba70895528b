"""CIFAR-10 and CIFAR-100 (Krizhevsky, 2009), read with torchvision: 32x32 colour images, 50k/10k."""

from __future__ import annotations

import torch

from ..errors import KdzooError
from .loader import DataBundle
from .paths import DATA_ENV, data_root
from .registry import DATASETS, DataSpec
from .tensor_loader import TensorSplits, tensor_bundle


def _tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's N x H x W x C uint8 array and label list as N x C x H x W and int64 tensors."""
    return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)


def load(name: str, root, download: bool) -> TensorSplits:
    from torchvision import datasets

    cls, folder, mean, std = {
        "cifar10": (datasets.CIFAR10, "cifar-10-batches-py", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
        "cifar100": (datasets.CIFAR100, "cifar-100-python", (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    }[name]
    root = data_root(root)
    try:
        train, test = (cls(str(root), train=split, download=download) for split in (True, False))
    except RuntimeError:  # torchvision: "Dataset not found or corrupted"
        raise KdzooError(
            f"{name} not found (or incomplete) in {root / folder}. Fixes: pass --download to fetch it there "
            f"(about 170 MB), or --data-root FOLDER (or ${DATA_ENV}) naming the folder that holds {folder}/."
        ) from None
    except OSError as exc:
        raise KdzooError(f"Downloading {name} into {root} failed: {exc}. Check the connection, or copy "
                         f"{folder}/ there by hand and drop --download.") from None
    files = tuple(str(root / train.base_folder / name) for name, _ in train.train_list)  # the split's pickles
    return TensorSplits(*_tensors(train), *_tensors(test), mean, std, tuple(train.classes), train_files=files)


@DATASETS.register("cifar10", description="CIFAR-10, 32x32 colour images of 10 classes (50k/10k)",
                   classes=10, image_size=(32, 32), in_channels=3, source="torchvision (--download)")
def cifar10(spec: DataSpec) -> DataBundle:
    return tensor_bundle("cifar10", load("cifar10", spec.root, spec.download), spec)


@DATASETS.register("cifar100",
                   description="CIFAR-100, 32x32 colour images of 100 classes (50k/10k); RepDistiller's benchmark",
                   classes=100, image_size=(32, 32), in_channels=3, source="torchvision (--download)")
def cifar100(spec: DataSpec) -> DataBundle:
    return tensor_bundle("cifar100", load("cifar100", spec.root, spec.download), spec)
