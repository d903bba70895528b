"""What a data loader hands to the engine for one step: :class:`Batch`."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


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
