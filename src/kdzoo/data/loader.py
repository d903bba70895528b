"""The loader contract the engine relies on (:class:`BatchLoader`), the device-side steps every loader shares,
and :class:`DataBundle`, a dataset's two loaders with the facts models need."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..batch import Batch
from .augment import BatchAugment, StrongAugment, normalize
from .fingerprint import files_fingerprint
from .sampling import EpochOrder, seeded_generator


class BatchLoader(ABC):
    """Batches of one split: ``len(loader)`` batches per epoch, from ``loader.epoch(e)``.

    Subclasses yield raw ``(images, labels, index)`` on the device from :meth:`_batches`, in the order
    given by ``order``; this class then augments (training) and normalises them. Order and
    augmentation depend only on ``(seed, epoch, rank)``: a resumed run sees the same batches. The last
    batch of an epoch may be short (no ``drop_last``). ``labels`` holds every sample's label (int64,
    indexed by ``Batch.index``), set by subclasses. With ``strong`` set (see :meth:`add_strong_view`)
    every batch also carries a strongly augmented view (``Batch.strong_images``).
    """

    labels: Tensor
    strong: StrongAugment | None = None

    def __init__(self, order: EpochOrder, batch_size: int, mean: Sequence[float], std: Sequence[float],
                 device: torch.device, augment: BatchAugment | None = None):
        self.order = order
        self.batch_size = batch_size
        self.device = device
        self.augment = augment
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.tensor(std, dtype=torch.float32, device=device)

    @property
    def num_samples(self) -> int:
        """Samples in the split, over all ranks."""
        return self.order.num_samples

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        """This rank's batches of ``epoch``."""
        generator = seeded_generator(self.order.seed, epoch, self.order.rank, "augment")
        strong_generator = seeded_generator(self.order.seed, epoch, self.order.rank, "strong")
        for raw, labels, index in self._batches(epoch):
            images = self.augment(raw, generator) if self.augment is not None else raw
            strong = self.strong(raw, strong_generator, self.mean, self.std) if self.strong is not None else None
            yield Batch(normalize(images, self.mean, self.std), labels, index, strong)

    def add_strong_view(self) -> None:
        """Give every batch a second, strongly augmented view of its images (:class:`StrongAugment`)."""
        self.strong = StrongAugment(self.augment)

    @abstractmethod
    def _batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """Raw ``(uint8 images, labels, index)`` batches of ``epoch`` on the device, in order."""


@dataclass
class DataBundle:
    """A dataset ready for training: its two loaders and the facts models need."""

    name: str
    train: BatchLoader
    test: BatchLoader
    num_classes: int
    in_channels: int
    image_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    #: The files the training images are read from (the order they are listed in): none for data made in memory.
    train_files: tuple[str, ...] = ()

    def fingerprint(self) -> str | None:
        """The digest of :attr:`train_files` as they are now (:func:`~kdzoo.data.fingerprint.files_fingerprint`):
        what the teacher cache's key knows of the training images beyond the run's options."""
        return files_fingerprint(self.train_files)

    @property
    def num_train(self) -> int:
        """Training samples (after ``train_subset``), over all ranks."""
        return self.train.num_samples

    @property
    def train_labels(self) -> Tensor:
        """The label of every training sample, indexed by ``Batch.index`` (CRD's sampler needs them)."""
        return self.train.labels
