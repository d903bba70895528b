"""Batched image augmentation on the batch's device: random crop with zero padding, horizontal flip,
normalisation; and MLKD's strong view (RandAugment + Cutout).

:class:`BatchAugment` does for a whole batch what torchvision's ``RandomCrop(size, padding=4)`` then
``RandomHorizontalFlip()`` do per image (RepDistiller's CIFAR training transform), with per-sample
offsets and flips, as a single gather: no Python loop over images and no DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def crop_flip(images: Tensor, top: Tensor, left: Tensor, flip: Tensor, padding: int) -> Tensor:
    """Crop each image of ``images`` (N x C x H x W, any dtype) from its zero-padded copy, then flip it.

    Sample ``i`` is ``pad(images[i], padding)[:, top[i]:top[i]+H, left[i]:left[i]+W]``, mirrored left-right
    where ``flip[i]``; offsets lie in ``[0, 2*padding]``. The result has the input's shape and dtype.
    """
    if padding == 0:
        return torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    n, c, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    hp, wp = h + 2 * padding, w + 2 * padding
    cols = torch.arange(w, device=images.device)
    cols = torch.where(flip.view(-1, 1), w - 1 - cols, cols) + left.view(-1, 1)  # N x W
    rows = torch.arange(h, device=images.device) + top.view(-1, 1)  # N x H
    flat = (rows.unsqueeze(2) * wp + cols.unsqueeze(1)).view(n, 1, h * w).expand(n, c, h * w)
    return padded.reshape(n, c, hp * wp).gather(2, flat).view(n, c, h, w)


class BatchAugment:
    """Per-sample random crop (zero ``padding``) and random horizontal flip (probability 1/2) of a batch.

    ``augment(images, generator)`` draws the offsets and flips from ``generator`` (on its device, then
    moved to the images' device) and applies :func:`crop_flip`; the same generator state gives the
    same result on every device. Works on uint8 or float images.
    """

    def __init__(self, padding: int = 4, flip: bool = True):
        self.padding = padding
        self.flip = flip

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """Random ``(top, left, flip)`` for ``batch_size`` images, on the generator's device."""
        offsets = torch.randint(0, 2 * self.padding + 1, (2, batch_size), generator=generator, device=generator.device)
        flip = torch.rand(batch_size, generator=generator, device=generator.device) < 0.5
        return offsets[0], offsets[1], flip & self.flip

    def __call__(self, images: Tensor, generator: torch.Generator) -> Tensor:
        top, left, flip = (t.to(images.device) for t in self.sample(images.shape[0], generator))
        return crop_flip(images, top, left, flip, self.padding)

    def __repr__(self) -> str:
        return f"BatchAugment(padding={self.padding}, flip={self.flip})"


def normalize(images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> Tensor:
    """float32 ``(images - mean) / std`` per channel; uint8 images are first scaled to [0, 1] (like ``ToTensor``)."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(-1, 1, 1)
    x = images.float()
    if images.dtype == torch.uint8:
        x = x.div_(255)
    return (x - mean).div_(std)


def cutout(images: Tensor, length: int, generator: torch.Generator) -> Tensor:
    """Cutout (DeVries & Taylor, 2017): per image, zero rows ``[y - length//2, y + length//2)`` x columns
    ``[x - length//2, x + length//2)`` around a uniformly drawn pixel (y, x), clipped at the borders as
    in the reference code. On normalised images zero is the dataset's mean colour."""
    n, _, h, w = images.shape
    centre = torch.rand(2, n, generator=generator, device=generator.device).to(images.device)
    cy, cx = (centre[0] * h).long().view(n, 1, 1), (centre[1] * w).long().view(n, 1, 1)
    rows = torch.arange(h, device=images.device).view(1, h, 1)
    cols = torch.arange(w, device=images.device).view(1, 1, w)
    half = length // 2
    inside = (rows >= cy - half) & (rows < cy + half) & (cols >= cx - half) & (cols < cx + half)
    return images.masked_fill(inside.unsqueeze(1), 0.0)


class StrongAugment:
    """The strong view of MLKD (Jin et al., CVPR 2023): the loader's own crop/flip (drawn anew),
    RandAugment(2 ops, magnitude 10) per image (torchvision's), normalisation, then Cutout with a
    square of half the image side (16 px at 32x32).

    ``__call__(uint8 images, generator, mean, std)`` returns normalised float32 images. RandAugment
    draws from torch's global RNG, so it runs under a forked RNG seeded from ``generator``: the view
    depends only on the generator's state, never on the rest of the run.
    """

    def __init__(self, crop: BatchAugment | None):
        from torchvision.transforms import v2

        self.crop = crop
        self.rand_augment = v2.RandAugment(num_ops=2, magnitude=10)

    def __call__(self, images: Tensor, generator: torch.Generator, mean: Tensor, std: Tensor) -> Tensor:
        if self.crop is not None:
            images = self.crop(images, generator)
        seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            images = torch.stack([self.rand_augment(image) for image in images])
        return cutout(normalize(images, mean, std), images.shape[-1] // 2, generator)

    def __repr__(self) -> str:
        return f"StrongAugment(crop={self.crop!r}, {self.rand_augment!r}, cutout=half side)"
