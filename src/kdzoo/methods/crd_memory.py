"""CRD's memory banks and its class-aware negative sampler (no method is registered here).

Both follow RepDistiller: ``ContrastMemory`` is ``crd/memory.py`` (two N x D banks, Z set once from
the first batch), ``ContrastSampler`` replaces the dataset-side sampling of
``CIFAR100InstanceSample`` and runs on the device, vectorised over the batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..distributed import all_reduce_sum, gather_batch, world_size
from ..errors import KdzooError
from ..losses.crd import crd_memory_update, crd_scores

MODES = ("exact", "relax")


class ContrastSampler(nn.Module):
    """Draws the B x (K+1) memory rows of a batch: the positive, then K negatives.

    Positive: the sample's own index (``exact``) or a uniformly drawn index of its class, possibly
    itself (``relax``). Negatives: K indices drawn uniformly from the samples of the *other* classes,
    without replacement (random keys + top-k), or with replacement where that pool has fewer than
    K samples (the reference's ``replace=(K > pool)``) or when ``replacement=True`` (cheaper: no
    B x N keys). Uses the global torch RNG of the device, which the engine saves and restores.
    """

    def __init__(self, labels: Tensor, k: int, mode: str = "exact", replacement: bool = False):
        super().__init__()
        if mode not in MODES:
            raise KdzooError(f"CRD mode {mode!r} does not exist; use mode=exact or mode=relax.")
        labels = torch.as_tensor(labels).long().flatten().cpu()
        count = torch.bincount(labels)
        present = count[count > 0]
        if len(present) < 2:
            raise KdzooError("CRD draws its negatives from the other classes, but the training labels hold a single "
                             "class; it needs at least two.")
        small = (len(labels) - present) < k
        self.k, self.mode = k, mode
        self.replace_all = replacement or bool(small.all())
        self.replace_some = not self.replace_all and bool(small.any())
        self.register_buffer("labels", labels, persistent=False)
        self.register_buffer("order", torch.argsort(labels, stable=True), persistent=False)
        self.register_buffer("count", count, persistent=False)
        self.register_buffer("start", torch.cumsum(count, 0) - count, persistent=False)

    def forward(self, index: Tensor) -> Tensor:
        y = self.labels[index]
        pos = index if self.mode == "exact" else self.order[self.start[y] + _below(self.count[y], 1)[:, 0]]
        return torch.cat([pos[:, None], self._negatives(y)], dim=1)

    def _negatives(self, y: Tensor) -> Tensor:
        if self.replace_all:
            return self._with_replacement(y)
        keys = torch.rand(len(y), len(self.labels), device=y.device)
        keys.masked_fill_(self.labels == y[:, None], 2.0)  # own class last: never among the K smallest
        drawn = keys.topk(self.k, dim=1, largest=False).indices
        if not self.replace_some:
            return drawn
        small = (len(self.labels) - self.count[y]) < self.k
        return torch.where(small[:, None], self._with_replacement(y), drawn)

    def _with_replacement(self, y: Tensor) -> Tensor:
        # position q in the other classes' pool = position in `order` skipping class y's block
        q = _below(len(self.labels) - self.count[y], self.k)
        q += self.count[y][:, None] * (q >= self.start[y][:, None])
        return self.order[q]


def _below(n: Tensor, k: int) -> Tensor:
    """B x k integers, row b uniform in [0, n[b]) (float64 keys: no visible bias for any N)."""
    r = torch.rand(len(n), k, dtype=torch.float64, device=n.device)
    return (r * n[:, None]).long().clamp_(max=n[:, None] - 1)


def bank_bytes(n_data: int, dim: int) -> int:
    """Bytes of :class:`ContrastMemory`'s two N x D float32 banks (what CRD's ``max_memory_gb`` limits)."""
    return 2 * n_data * dim * torch.float32.itemsize


def step_bytes(batch: int, k: int, dim: int) -> int:
    """At most the bytes one step's negatives take (what CRD's ``max_memory_gb`` limits beside the banks): the
    B x (K+1) memory rows of D float32 scored in each of the two directions, and the B x (K+1) drawn rows with their
    float64 draws."""
    return batch * (k + 1) * (2 * dim * torch.float32.itemsize + 2 * 8)


class ContrastMemory(nn.Module):
    """Student and teacher memory banks (N x D buffers) and the normalisation constants Z.

    Banks start uniform in [-a, a], a = 1/sqrt(D/3) (row norm about 1). ``z`` = (Z_s, Z_t) starts at
    -1; on the first forward each is set to N times the mean exp-score of that batch, then fixed.
    All of it is in buffers, so a checkpoint of the state dict resumes with the same banks and Z.
    Under DDP the first batch's mean is averaged over ranks and every rank updates the banks with
    the gathered global batch, so the banks and Z stay identical on every rank.
    """

    def __init__(self, n_data: int, dim: int, temperature: float = 0.07, momentum: float = 0.5):
        super().__init__()
        self.n_data, self.temperature, self.momentum = n_data, temperature, momentum
        a = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory_s", torch.rand(n_data, dim).mul_(2 * a).add_(-a))
        self.register_buffer("memory_t", torch.rand(n_data, dim).mul_(2 * a).add_(-a))
        self.register_buffer("z", torch.full((2,), -1.0))

    def forward(self, z_s: Tensor, z_t: Tensor, idx: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised scores (P^s, P^t) of student/teacher anchors against the teacher/student banks at
        rows ``idx``; then the banks' rows ``index`` (the batch's dataset indices) take a momentum step."""
        e_s = crd_scores(z_s, self.memory_t, idx, self.temperature)
        e_t = crd_scores(z_t, self.memory_s, idx, self.temperature)
        first = all_reduce_sum(torch.stack([e_s.mean(), e_t.mean()]).detach()) * (self.n_data / world_size())
        self.z.copy_(torch.where(self.z < 0, first, self.z))  # no host sync
        z = self.z.clone()
        index = gather_batch(index)
        crd_memory_update(self.memory_s, index, gather_batch(z_s), self.momentum)
        crd_memory_update(self.memory_t, index, gather_batch(z_t), self.momentum)
        return e_s / z[0], e_t / z[1]
