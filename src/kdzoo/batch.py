"""What a data loader hands to the engine for one step, and what a method sees of it: :class:`Batch`.

It lives at the package's root, below ``methods/`` and ``data/`` alike, so that methods can name its type."""

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

    def views(self) -> list[Tensor]:
        """The images each network runs on: the batch, and its strong view when it has one (MLKD)."""
        return [self.images] if self.strong_images is None else [self.images, self.strong_images]
