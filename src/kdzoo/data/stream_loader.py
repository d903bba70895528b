"""Streamed datasets: samples decoded by a torch DataLoader (worker processes), finished on the device.

The sampler yields ``(position, epoch)`` keys, so the dataset can seed its random transform per
sample from (seed, epoch, position): the batches of an epoch do not depend on worker count,
worker start method or what earlier epochs did.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from .augment import BatchAugment
from .loader import BatchLoader
from .sampling import EpochOrder


class EpochSampler(Sampler):
    """Yields ``(position, epoch)`` for this rank's :class:`EpochOrder` of the current ``epoch``."""

    def __init__(self, order: EpochOrder):
        self.order = order
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((position, self.epoch) for position in self.order(self.epoch).tolist())


class StreamLoader(BatchLoader):
    """Batches from ``dataset[(position, epoch)] -> (uint8 image, label, position)`` via a DataLoader.

    Workers are kept alive across epochs (``persistent_workers``); nothing relies on ``fork``, the
    dataset only has to be picklable.
    """

    def __init__(self, dataset: Dataset, order: EpochOrder, batch_size: int, mean, std, device: torch.device,
                 num_workers: int, augment: BatchAugment | None = None):
        super().__init__(order, batch_size, mean, std, device, augment)
        self.labels = torch.tensor([label for _, label in dataset.samples], dtype=torch.int64)
        self.sampler = EpochSampler(order)
        self.loader = DataLoader(dataset, batch_size=batch_size, sampler=self.sampler, num_workers=num_workers,
                                 persistent_workers=num_workers > 0, pin_memory=device.type == "cuda")

    def _batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        self.sampler.epoch = epoch
        for batch in self.loader:
            yield tuple(t.to(self.device, non_blocking=True) for t in batch)
