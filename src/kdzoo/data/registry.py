"""The dataset registry and :func:`build_data`, the one entry point the engine and the CLI use."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated, Any

import torch

from ..declared import SEED, Range, check_values, declared_options
from ..errors import ConfigError
from ..registry import Registry
from .loader import DataBundle
from .sampling import EpochOrder, subset_indices

#: name -> ``factory(spec: DataSpec, **options) -> DataBundle``; info: description, classes,
#: image_size, in_channels, source.
DATASETS: Registry = Registry("dataset")


@dataclass(frozen=True)
class DataSpec:
    """The options every dataset takes; see :func:`build_data`.

    ``seed`` (the run's) governs order and augmentation; ``data_seed`` alone chooses the images: the
    subsets, and any other split a dataset draws (from :func:`~kdzoo.data.sampling.subset_indices`)."""

    root: str | os.PathLike | None
    download: bool
    batch_size: int
    eval_batch_size: int
    device: torch.device
    seed: int
    data_seed: int
    train_subset: int | None
    test_subset: int | None
    augment: bool
    num_workers: int | None
    rank: int
    world_size: int

    def subset(self, split: str, size: int) -> torch.Tensor | None:
        """Sorted indices of the ``split`` ("train" or "test") subset of a split of ``size`` (drawn from
        ``data_seed``), or None for all."""
        count = self.train_subset if split == "train" else self.test_subset
        if count is None:
            return None
        if count > size:
            raise ConfigError(f"--{split}-subset {count} is larger than the {split} split ({size} images).")
        return subset_indices(size, count, self.data_seed, split)

    def train_order(self, size: int) -> EpochOrder:
        """Shuffled each epoch; ranks padded to equal length, like ``DistributedSampler``."""
        return EpochOrder(size, self.seed, shuffle=True, pad=True, rank=self.rank, world_size=self.world_size)

    def test_order(self, size: int) -> EpochOrder:
        """Fixed order; ranks split the samples exactly (no sample counted twice)."""
        return EpochOrder(size, self.seed, rank=self.rank, world_size=self.world_size)


def dataset_options(name: str) -> dict[str, Any]:
    """The dataset-specific options of ``name`` with their defaults (those its factory declares after the spec)."""
    return {k: option.default for k, option in declared_options(DATASETS.get(name).factory).items()}


def list_datasets() -> list[str]:
    """Registered dataset names."""
    return DATASETS.names()


def dataset_info(name: str) -> dict[str, Any]:
    """Description, classes, image_size, in_channels, source and options of ``name``."""
    return {**DATASETS.get(name).info, "options": dataset_options(name)}


WHOLE, COUNT = Range(ge=1), Range(ge=0)


def build_data(name: str, *, root: str | os.PathLike | None = None, download: bool = False,
               batch_size: Annotated[int, WHOLE] = 64, eval_batch_size: Annotated[int, WHOLE] = 256,
               device: torch.device | str = "cpu", seed: Annotated[int, SEED] = 0, data_seed: Annotated[int, SEED] = 0,
               train_subset: Annotated[int, WHOLE] | None = None, test_subset: Annotated[int, WHOLE] | None = None,
               augment: bool = True, num_workers: Annotated[int, COUNT] | None = None, rank: Annotated[int, COUNT] = 0,
               world_size: Annotated[int, WHOLE] = 1, strong_view: bool = False, **options: Any) -> DataBundle:
    """Load dataset ``name`` and wrap it in a train and a test loader whose batches arrive on ``device``.

    ``root``: data folder (default ``$KDZOO_DATA`` or ``./data``); ``download``: let torchvision fetch a
    missing dataset; ``seed``: order and augmentation; ``train_subset``/``test_subset``: a fixed random
    subset of N samples, drawn from ``data_seed`` alone (so runs with other seeds see the same images);
    ``augment``: training augmentation; ``num_workers``: decoding processes for streamed datasets (None:
    :func:`~kdzoo.data.workers.default_num_workers`); ``rank``/``world_size``: this process's shard for
    distributed training; ``strong_view``: training batches also carry a strongly augmented view
    (MLKD); ``options``: dataset-specific (``dataset_info(name)``).
    """
    entry = DATASETS.get(name)
    declared = declared_options(entry.factory)
    unknown = sorted(set(options) - set(declared))
    if unknown:
        known = ", ".join(f"{k}={v.default!r}" for k, v in declared.items()) or "none"
        raise ConfigError(f"Dataset {name!r} has no option {', '.join(map(repr, unknown))}; its options: {known}.")
    given = {"batch_size": batch_size, "eval_batch_size": eval_batch_size, "seed": seed, "data_seed": data_seed,
             "train_subset": train_subset, "test_subset": test_subset, "num_workers": num_workers, "rank": rank,
             "world_size": world_size}
    check_values(given, declared_options(build_data), label=str)
    if rank >= world_size:
        raise ConfigError(f"rank must be below world_size ({world_size}), got {rank}.")
    options = check_values(options, declared, label=lambda key: f"{name} option {key}")
    spec = DataSpec(root=root, download=download, batch_size=batch_size, eval_batch_size=eval_batch_size,
                    device=torch.device(device), seed=seed, data_seed=data_seed, train_subset=train_subset,
                    test_subset=test_subset, augment=augment, num_workers=num_workers, rank=rank,
                    world_size=world_size)
    bundle = entry.factory(spec, **options)
    if strong_view:
        bundle.train.add_strong_view()
    return bundle
