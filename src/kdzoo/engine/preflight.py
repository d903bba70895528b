"""Checks of what a run built, before its first step: problems torch would otherwise report mid-epoch."""

from __future__ import annotations

from ..errors import ConfigError


def check_no_single_image_batch(train, batch_size: int) -> None:
    """Refuse a training batch of one image (``train`` is the training loader): BatchNorm cannot
    normalise it, and every zoo model has BatchNorm."""
    per_process = len(train.order)
    if batch_size == 1 or per_process % batch_size == 1:
        raise ConfigError(f"The training split gives {per_process} image(s) per process in batches of {batch_size}, "
                          f"so a batch holds a single image, which BatchNorm cannot train on. Change --batch-size or "
                          f"--train-subset (or add images) so that no batch has exactly one.")
