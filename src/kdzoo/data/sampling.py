"""Seeded randomness for data: generators derived from (seed, epoch, ...), epoch orders, subsets.

Everything here draws from local ``torch.Generator`` objects on the CPU, never from the global RNG,
so the same arguments give the same numbers on any device and in any process.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import torch
from torch import Tensor


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that depends only on ``parts`` (stable across processes and platforms)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def seeded_generator(*parts: int | str) -> torch.Generator:
    """A fresh CPU generator seeded with :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def subset_indices(size: int, count: int, seed: int, split: str) -> Tensor:
    """``count`` distinct indices of ``range(size)``, chosen at random from ``seed``, in increasing order."""
    return torch.randperm(size, generator=seeded_generator(seed, split, "subset"))[:count].sort().values


@dataclass(frozen=True)
class EpochOrder:
    """The sample order of one rank in each epoch.

    With ``shuffle`` the order is a permutation drawn from (seed, epoch), identical on every rank;
    rank ``r`` takes every ``world_size``-th sample from position ``r``. With ``pad`` the permutation is
    first extended by its own beginning, as torch's ``DistributedSampler`` does, so that every rank
    gets the same number of samples (and of batches); without it the ranks split the samples exactly.
    """

    num_samples: int
    seed: int = 0
    shuffle: bool = False
    pad: bool = False
    rank: int = 0
    world_size: int = 1

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.num_samples / self.world_size)
        return len(range(self.rank, self.num_samples, self.world_size))

    def __call__(self, epoch: int) -> Tensor:
        """int64 CPU tensor of this rank's sample indices for ``epoch``."""
        n = self.num_samples
        if self.shuffle:
            order = torch.randperm(n, generator=seeded_generator(self.seed, epoch, "order"))
        else:
            order = torch.arange(n)
        if self.pad:
            total = len(self) * self.world_size
            order = order.repeat(math.ceil(total / n))[:total]
        return order[self.rank :: self.world_size]
