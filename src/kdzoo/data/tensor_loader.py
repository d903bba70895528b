"""In-memory datasets: uint8 image tensors kept on the device, batches gathered there by index."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import Tensor

from .augment import BatchAugment
from .loader import BatchLoader, DataBundle
from .registry import DataSpec
from .sampling import EpochOrder


@dataclass
class TensorSplits:
    """A whole dataset in memory: uint8 N x C x H x W images and int64 labels per split."""

    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    train_files: tuple[str, ...] = ()  # the files the training split was read from (DataBundle.train_files)


class TensorLoader(BatchLoader):
    """Batches of ``images[index]`` / ``labels[index]``; both tensors live on the loader's device."""

    def __init__(self, images: Tensor, labels: Tensor, order: EpochOrder, batch_size: int, mean, std,
                 augment: BatchAugment | None = None):
        super().__init__(order, batch_size, mean, std, images.device, augment)
        self.images = images
        self.labels = labels

    def _batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        for index in self.order(epoch).to(self.device).split(self.batch_size):
            yield self.images[index], self.labels[index], index


def _take(images: Tensor, labels: Tensor, keep: Tensor | None) -> tuple[Tensor, Tensor]:
    return (images, labels) if keep is None else (images[keep], labels[keep])


def tensor_bundle(name: str, splits: TensorSplits, spec: DataSpec) -> DataBundle:
    """Subset, move to the device once, and wrap ``splits`` in a train and a test loader."""
    train_x, train_y = _take(splits.train_images, splits.train_labels, spec.subset("train", len(splits.train_labels)))
    test_x, test_y = _take(splits.test_images, splits.test_labels, spec.subset("test", len(splits.test_labels)))
    train_x, train_y, test_x, test_y = (t.to(spec.device) for t in (train_x, train_y, test_x, test_y))
    train = TensorLoader(train_x, train_y, spec.train_order(len(train_y)), spec.batch_size, splits.mean, splits.std,
                         BatchAugment(padding=4, flip=True) if spec.augment else None)
    test = TensorLoader(test_x, test_y, spec.test_order(len(test_y)), spec.eval_batch_size, splits.mean, splits.std)
    return DataBundle(name, train, test, num_classes=len(splits.class_names), in_channels=train_x.shape[1],
                      image_size=tuple(train_x.shape[2:]), mean=splits.mean, std=splits.std,
                      class_names=splits.class_names, train_files=splits.train_files)
