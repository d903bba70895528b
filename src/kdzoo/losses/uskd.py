"""USKD, the self-distillation of Yang, Zeng, Li, Zhang, Yuan, Li, "From Knowledge Distillation to
Self-Knowledge Distillation: A Unified Approach with Normalized Loss and Customized Soft Labels",
ICCV 2023 (no teacher).

With t the label, S = softmax(z) of the network, W = softmax(z_w) of a weak head (a Linear on the
pooled penultimate stage map), and S^ the distribution over the C-1 classes i != t:

    L_t    = -p_t * log S_t,          p_t = S_t^2 - mean_batch(S_t^2) + 1          (detached)
    L_non  = -sum_{i!=t} Z^_i log S^_i
    L_weak = CE(z_w, 0.9 * onehot(t) + 0.1 / C)                                    (label smoothing 0.1)

Z^ are Zipf soft labels: every class is ranked (target included) by r_i = W_i/(1 - W_t) + s_i/(1 - s_t),
class at rank k (1 = highest) gets 1/k, the target is dropped and the rest renormalised. The paper
takes s = S (probabilities); the official code (yzd-v/cls_KD ``USKDLoss``) takes s = log S, which
is the default here (``rank_by="log_prob"``; ``"prob"``: the paper's). Both add 1e-6 to the
denominators, as the code. All three terms are batch means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .dkd import split_target

__all__ = ["uskd_non_target_loss", "uskd_target_loss", "uskd_weak_loss", "zipf_soft_labels"]

RANK_BY = ("log_prob", "prob")


def uskd_target_loss(logits: Tensor, target: Tensor) -> Tensor:
    """``-p_t log S_t`` with the detached soft target ``p_t = S_t^2 - mean_batch(S_t^2) + 1``, batch mean."""
    log_s_t, _ = split_target(F.log_softmax(logits, dim=1), target)
    squared = log_s_t.detach().exp() ** 2
    p_t = squared - squared.mean() + 1
    return -(p_t * log_s_t).mean()


def zipf_soft_labels(logits: Tensor, weak_logits: Tensor, target: Tensor, rank_by: str = "log_prob") -> Tensor:
    """The Zipf soft labels Z^ over the non-target classes (B, C-1), in class order, detached."""
    if rank_by not in RANK_BY:
        raise ValueError(f"rank_by must be one of {RANK_BY}, got {rank_by!r}")
    with torch.no_grad():
        w = F.softmax(weak_logits, dim=1)
        s = F.log_softmax(logits, dim=1) if rank_by == "log_prob" else F.softmax(logits, dim=1)
        w_t, _ = split_target(w, target)
        s_t, _ = split_target(s, target)
        score = w / (1 - w_t[:, None] + 1e-6) + s / (1 - s_t[:, None] + 1e-6)
        rank = score.argsort(dim=1, descending=True, stable=True).argsort(dim=1)  # 0 = highest score
        _, zipf = split_target(1.0 / (rank + 1).to(logits.dtype), target)
        return zipf / zipf.sum(dim=1, keepdim=True)


def uskd_non_target_loss(logits: Tensor, weak_logits: Tensor, target: Tensor, rank_by: str = "log_prob") -> Tensor:
    """``-sum_{i!=t} Z^_i log S^_i``, batch mean (S^: the softmax over the non-target logits)."""
    _, other = split_target(logits, target)
    soft = zipf_soft_labels(logits, weak_logits, target, rank_by)
    return -(soft * F.log_softmax(other, dim=1)).sum(dim=1).mean()


def uskd_weak_loss(weak_logits: Tensor, target: Tensor, smoothing: float = 0.1) -> Tensor:
    """Cross-entropy of the weak head against ``(1 - smoothing) * onehot + smoothing / C``, batch mean."""
    return F.cross_entropy(weak_logits, target, label_smoothing=smoothing)
