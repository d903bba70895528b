"""A small learnable dataset for tests and smoke runs: each class is a smooth random prototype image,
each sample its class's prototype plus Gaussian noise. Generated from the option ``generator_seed`` alone
(a local generator), so it is the same for every run seed and data seed, and on every machine. Sizes that would
not fit in the machine's memory while generating are refused before anything is allocated."""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F

from ..declared import SEED, Range
from ..memory_bound import check_fits_memory
from .loader import DataBundle
from .registry import DATASETS, WHOLE, DataSpec
from .sampling import seeded_generator
from .tensor_loader import TensorSplits, tensor_bundle

NOISE = 0.15  # noise std, in units of the [0, 1] pixel range
#: Bytes a pixel of the split being generated takes at the peak: four float32 tensors (the noise, the prototypes
#: gathered per sample, the scaled noise and their sum) before it becomes uint8 (measured: 16.05).
PEAK_BYTES_PER_PIXEL = 16


def generated_bytes(num_classes: int, num_train: int, num_test: int, image_size: int, channels: int) -> int:
    """The peak memory of :func:`generate`: the float32 prototypes, the larger split while it is drawn and the
    other one kept as uint8."""
    pixels = channels * image_size**2
    return pixels * (4 * num_classes + PEAK_BYTES_PER_PIXEL * max(num_train, num_test) + min(num_train, num_test))


def make_split(prototypes: torch.Tensor, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` uint8 samples, classes in turn, and their labels."""
    labels = torch.arange(count) % prototypes.shape[0]
    noise = torch.randn((count, *prototypes.shape[1:]), generator=generator)
    images = (prototypes[labels] + NOISE * noise).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return images, labels


def generate(num_classes: int, num_train: int, num_test: int, image_size: int, channels: int,
             generator_seed: int) -> TensorSplits:
    generator = seeded_generator(generator_seed, "synthetic")
    coarse = torch.rand((num_classes, channels, 4, 4), generator=generator)
    prototypes = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear", align_corners=False)
    train_x, train_y = make_split(prototypes, num_train, generator)
    test_x, test_y = make_split(prototypes, num_test, generator)
    pixels = train_x.float().div_(255).transpose(0, 1).reshape(channels, -1)
    mean, std = pixels.mean(1), pixels.std(1).clamp_min(1e-3)
    return TensorSplits(train_x, train_y, test_x, test_y, tuple(mean.tolist()), tuple(std.tolist()),
                        tuple(f"class{i}" for i in range(num_classes)))


@DATASETS.register("synthetic",
                   description="Random class prototypes plus noise, generated in memory (for tests and smoke runs)",
                   classes=10, image_size=(32, 32), in_channels=3, source="generated")
def synthetic(spec: DataSpec, num_classes: Annotated[int, Range(ge=2)] = 10, num_train: Annotated[int, WHOLE] = 512,
              num_test: Annotated[int, WHOLE] = 256, image_size: Annotated[int, Range(ge=8)] = 32,
              channels: Annotated[int, WHOLE] = 3, generator_seed: Annotated[int, SEED] = 0) -> DataBundle:
    sizes = {"num_classes": num_classes, "num_train": num_train, "num_test": num_test, "image_size": image_size,
             "channels": channels}
    check_fits_memory(f"The synthetic dataset of {', '.join(f'{k}={v}' for k, v in sizes.items())}",
                      generated_bytes(**sizes), "Lower num_train, num_test, image_size,"
                      " channels or num_classes (--dataset-opt KEY=VALUE).")
    return tensor_bundle("synthetic", generate(num_classes, num_train, num_test, image_size, channels, generator_seed),
                         spec)
