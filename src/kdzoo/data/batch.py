"""What a data loader hands to the engine: :class:`Batch`, and :class:`DataBundle` for a whole dataset."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from .loader import BatchLoader


@dataclass
class Batch:
    """One batch, on the run's device.

    ``images``: float32 N x C x H x W, normalised (and augmented for training); ``labels``: int64 N;
    ``index``: int64 N, each sample's position in the (subset) split, ``0 .. num_samples-1`` (for CRD's
    memory banks); ``strong_images``: a second, strongly augmented view of the same images (only
    when the data was built with ``strong_view=True``, for MLKD), else None.
    """

    images: Tensor
    labels: Tensor
    index: Tensor
    strong_images: Tensor | None = None


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

    @property
    def num_train(self) -> int:
        """Training samples (after ``train_subset``), over all ranks."""
        return self.train.num_samples

    @property
    def train_labels(self) -> Tensor:
        """The label of every training sample, indexed by ``Batch.index`` (CRD's sampler needs them)."""
        return self.train.labels
