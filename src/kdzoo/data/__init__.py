"""Datasets as device-side loaders: ``build_data(name, ...) -> DataBundle``.

In-memory datasets (CIFAR-10/100, Fashion-MNIST, synthetic) live on the device as uint8 tensors and
are augmented in whole batches; ImageNet-style folders are streamed through DataLoader workers.
Order and augmentation depend only on (seed, epoch), so a resumed run sees the same batches.
"""

from ..batch import Batch
from . import cifar, fashion_mnist, image_folder, synthetic  # noqa: F401  (register the datasets)
from .augment import BatchAugment, crop_flip, normalize
from .loader import DataBundle
from .registry import DATASETS, build_data, dataset_info, list_datasets

__all__ = ["DATASETS", "Batch", "BatchAugment", "DataBundle", "build_data", "crop_flip", "dataset_info",
           "list_datasets", "normalize"]
