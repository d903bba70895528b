"""CRD: Tian, Krishnan, Isola, "Contrastive Representation Distillation", ICLR 2020.

The pooled vectors (``feat[-1]``) of both networks are embedded by ``Embed`` (linear + L2 norm,
128-d). Each student embedding is scored against its positive and K negatives in a memory bank of
teacher embeddings, each teacher embedding against a bank of student embeddings, and

    L_CRD = L(P^s) + L(P^t),   P_ik = exp(<M[j_k], z_i> / tau) / Z,

with L the NCE loss of Eq. (18) (:func:`kdzoo.losses.crd_loss`). Negatives come from the other
classes only (RepDistiller's CIFAR sampler); the banks then take a momentum step at the batch's
dataset indices. Z (one per direction) is set once, from the first batch, as in the reference.
Banks and Z are buffers, so checkpoints hold them and a resumed run continues exactly (RepDistiller
cannot resume CRD). Memory grows with the training set: 2 x N x feat_dim float32 (51 MB for
CIFAR-100, 1.3 GB for ImageNet), whatever nce_k; each step's negatives add at most 2 x batch x (nce_k + 1) x
feat_dim float32 (1.1 GB at batch 64 with the default nce_k). ``max_memory_gb`` refuses more than that in all,
before allocating: at construction when one sample's negatives do not fit, else at the first step.
CRD+KD = ``--alpha 1`` (packaged config ``cifar100/crd_kd``).
"""

from __future__ import annotations

import math
from typing import Annotated

from torch import Tensor, nn

from ..distributed import gather_batch, local_rows, world_size
from ..errors import KdzooError
from ..losses.crd import crd_loss
from ..memory_bound import check_fits_memory, physical_memory
from ..models.features import Features
from .base import TAPS, LossWeights, Method, Reads
from .crd_memory import MODES, ContrastMemory, ContrastSampler, bank_bytes, step_bytes
from .options import OneOf, Range
from .registry import register_method


class Embed(nn.Module):
    """RepDistiller's ``Embed``: flatten, ``nn.Linear`` with bias, then x / ||x||_2 (no eps)."""

    def __init__(self, dim_in: int, dim_out: int = 128):
        super().__init__()
        self.linear = nn.Linear(dim_in, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.linear(x.flatten(1))
        return x / x.pow(2).sum(1, keepdim=True).sqrt()


@register_method("crd")
class CRD(Method):
    """Contrastive representation distillation: NCE over memory banks of embedded pooled vectors."""

    paper = "Tian, Krishnan, Isola. Contrastive Representation Distillation. ICLR 2020"
    uses = "feat[-1] (pooled vectors), dataset indices and training labels"
    reads = Reads(student=TAPS, teacher=TAPS, index=True)
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=0.8)

    def __init__(self, student: Features, teacher: Features, *, train_labels: Tensor,
                 feat_dim: Annotated[int, Range(ge=1)] = 128, nce_k: Annotated[int, Range(ge=1)] = 16384,
                 nce_t: Annotated[float, Range(gt=0)] = 0.07, nce_m: Annotated[float, Range(ge=0, le=1)] = 0.5,
                 mode: Annotated[str, OneOf(*MODES, reference="exact: the positive is the sample itself; relax: a "
                                                              "random sample of its class")] = "exact",
                 replacement: bool = False, max_memory_gb: Annotated[float, Range(gt=0)] = 8.0):
        """``nce_k`` negatives per sample, temperature ``nce_t``, memory momentum ``nce_m``; ``mode``
        exact (positive = the sample itself) or relax (a random sample of its class); negatives drawn
        without replacement unless ``replacement``; banks and a step's negatives above ``max_memory_gb`` GB are
        refused (:func:`check_memory`)."""
        super().__init__(student, teacher)
        n_data = len(train_labels)
        check_memory(n_data, feat_dim, nce_k, 1, max_memory_gb)
        self.n_data, self.feat_dim, self.nce_k, self.max_memory_gb = n_data, feat_dim, nce_k, max_memory_gb
        self.checked_batch = 1  # the largest global batch whose negatives are known to fit
        self.embed_s = Embed(student.pooled[0].numel(), feat_dim)
        self.embed_t = Embed(teacher.pooled[0].numel(), feat_dim)
        self.sampler = ContrastSampler(train_labels, nce_k, mode, replacement)
        self.memory = ContrastMemory(n_data, feat_dim, nce_t, nce_m)

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        z_s = self.embed_s(student.pooled)
        z_t = self.embed_t(teacher.pooled.detach())
        index = batch.index.long()
        batch = len(index) * world_size()
        if batch > self.checked_batch:  # a smaller batch needs less: checked once per larger size, not per step
            check_memory(self.n_data, self.feat_dim, self.nce_k, batch, self.max_memory_gb)
            self.checked_batch = batch
        # Negatives are drawn for the global batch (identical on every rank under DDP), then each rank
        # keeps its own rows: the draws equal one process's with the same global batch.
        idx = local_rows(self.sampler(gather_batch(index)))
        p_s, p_t = self.memory(z_s, z_t, idx, index)
        return {"crd": crd_loss(p_s, self.n_data) + crd_loss(p_t, self.n_data)}


def check_memory(n_data: int, feat_dim: int, nce_k: int, batch: int, max_memory_gb: float) -> None:
    """Refuse (:class:`KdzooError`) banks for ``n_data`` samples plus the negatives of a (global) ``batch`` that
    together take more than ``max_memory_gb`` GB, or more than the machine's memory."""
    banks, step = bank_bytes(n_data, feat_dim), step_bytes(batch, nce_k, feat_dim)
    total = banks + step
    what = (f"CRD's memory banks ({banks / 1e9:.3g} GB: 2 x {n_data} training samples x {feat_dim} float32) and the "
            f"negatives of a batch of {batch} ({step / 1e9:.3g} GB: {batch} x (nce_k={nce_k} + 1) x {feat_dim} "
            f"float32, twice)")
    fix = "Lower nce_k (the paper's 16384) or the batch size, or train on a subset (train_subset)"
    if total / 1e9 > max_memory_gb:
        raise_limit = (f"; or raise the limit with --method-opt max_memory_gb={math.ceil(total / 1e9)}"
                       if total <= physical_memory() else "")
        raise KdzooError(f"{what} would take {total / 1e9:.3g} GB, above max_memory_gb={max_memory_gb}. "
                         f"{fix}{raise_limit}.")
    check_fits_memory(what, total, fix + ".")
