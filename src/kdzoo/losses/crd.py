"""Contrastive representation distillation (CRD): scores, loss and memory update.

Y. Tian, D. Krishnan, P. Isola, "Contrastive Representation Distillation", ICLR 2020.

For an anchor embedding z_i (unit norm) and memory rows j_0 (positive), j_1..j_K (negatives) of the
*other* network's memory bank M, the scores are P_{i,k} = exp(<M[j_k], z_i> / tau) / Z, and the NCE
loss of the paper's Eq. (18), with noise probability P_n = 1/N and m = K, is

    L(P) = -1/B sum_i [ log(P_i0 / (P_i0 + m P_n + eps))
                        + sum_{k=1..K} log(m P_n / (P_ik + m P_n + eps)) ],   eps = 1e-7.

CRD sums it over both directions, L(P^s) + L(P^t) (student anchors against the teacher memory and
teacher anchors against the student memory). After scoring, the rows of the batch are updated with
momentum m: M[y] <- normalize(m M[y] + (1 - m) z_y). Written as in RepDistiller's
``crd/criterion.py`` (``ContrastLoss``) and ``crd/memory.py`` (``ContrastMemory``).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["crd_loss", "crd_memory_update", "crd_scores"]

EPS = 1e-7


def crd_scores(anchors: Tensor, memory: Tensor, idx: Tensor, temperature: float = 0.07) -> Tensor:
    """Unnormalised scores ``exp(<memory[idx[i, k]], anchors[i]> / temperature)``, B x (K+1).

    ``anchors`` B x D, ``memory`` N x D (detached: gradients reach only the anchors), ``idx``
    B x (K+1) memory rows, the positive first. When N <= (K+1)*D all N dot products are computed
    and then picked, which is much cheaper than gathering B*(K+1) rows of D floats (CIFAR-100:
    3.2M scores instead of 134M gathered floats); both orders give the same values. The rows used
    are copies, so the memory may be updated in place before the backward pass.
    """
    memory = memory.detach()
    if memory.shape[0] <= idx.shape[1] * memory.shape[1]:
        dots = (anchors @ memory.clone().t()).gather(1, idx)  # the copy costs no more than the product
    else:
        dots = torch.bmm(memory[idx], anchors.unsqueeze(2)).squeeze(2)
    return torch.exp(dots / temperature)


def crd_loss(scores: Tensor, n_data: int) -> Tensor:
    """Eq. (18) on normalised scores ``P = crd_scores(...) / Z``, B x (K+1), the positive in column 0.

    ``n_data`` is N, the size of the memory bank (noise distribution P_n = 1/N). Summed over the
    K+1 pairs, averaged over the batch; a 0-dim tensor (RepDistiller's has shape [1]).
    """
    m = scores.shape[1] - 1
    noise = m * (1.0 / n_data)  # m * P_n, as the reference computes it
    pos, neg = scores[:, 0], scores[:, 1:]
    log_d1 = torch.log(pos / (pos + (noise + EPS)))
    log_d0 = torch.log(noise / (neg + (noise + EPS)))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]


@torch.no_grad()
def crd_memory_update(memory: Tensor, index: Tensor, embeddings: Tensor, momentum: float = 0.5) -> None:
    """In place: ``memory[index] <- normalize2(momentum * memory[index] + (1 - momentum) * embeddings)``."""
    rows = memory[index] * momentum + embeddings.detach() * (1 - momentum)
    memory.index_copy_(0, index, rows / rows.pow(2).sum(1, keepdim=True).sqrt())
