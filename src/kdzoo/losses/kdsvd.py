"""SVD-based self-supervised KD: Lee, Kim, Song, "Self-supervised Knowledge Distillation Using
Singular Value Decomposition", ECCV 2018 (RepDistiller's ``KDSVD(k=1)``).

Per map F (B x C x H x W), X = F as B x HW x C; its leading right singular vectors (L2-normalised)
are kept: k for the teacher (V_t), k + 3 for the student, of which the one with the largest |cosine|
to each teacher vector is kept with that cosine's sign (V_s). Both are scaled by the teacher's
L2-normalised leading singular values. Between consecutive layers l-1, l an RBF kernel

    K[b, i, j, n] = exp(-(v_l[b, i, n] - v_{l-1}[b, j, n])^2 / 8)

is built for each network, and L = sum_l sum (K_s - K_t)^2 / B. Non-finite SVD outputs and loss
entries are set to zero, as in the reference. The sign of each singular vector is LAPACK's choice,
so the loss depends on it (as in the reference).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["kdsvd_loss"]


def kdsvd_loss(feats_s: Sequence[Tensor], feats_t: Sequence[Tensor], k: int = 1) -> Tensor:
    """Sum over consecutive layers of the squared RBF-kernel differences of the leading singular
    vectors, divided by the batch size. Student and teacher maps must have equal channel counts."""
    total = feats_s[0].new_zeros(())
    previous = None
    for f_s, f_t in zip(feats_s, feats_t, strict=False):
        v_t, s_t = _singular(f_t, k)
        v_s, _ = _singular(f_s, k + 3)
        v_s = _align(v_s, v_t)
        v_t, v_s = v_t * s_t.unsqueeze(1), v_s * s_t.unsqueeze(1)
        if previous is not None:
            v_sb, v_tb = previous
            k_s = torch.exp(-(v_s.unsqueeze(2) - v_sb.unsqueeze(1)).pow(2) / 8)
            k_t = torch.exp(-(v_t.unsqueeze(2) - v_tb.unsqueeze(1)).pow(2) / 8)
            total = total + _finite((k_s - k_t.detach()).pow(2)).sum() / f_s.shape[0]
        previous = v_s, v_t
    return total


def _finite(x: Tensor) -> Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def _singular(f: Tensor, n: int) -> tuple[Tensor, Tensor]:
    """The ``n`` leading right singular vectors (B x C x n, unit columns) and singular values
    (B x n, unit rows) of ``f`` viewed as B x HW x C.

    The SVD's backward divides by differences of squared singular values, which are zero for the
    repeated (e.g. zero) singular values of rank-deficient maps; non-finite gradient entries are
    therefore zeroed on their way back into the network, the gradient-side twin of the reference's
    zeroing of non-finite outputs. Without it one such step turns the student's weights into NaN."""
    x = _finite(f.flatten(2).transpose(1, 2))
    if x.requires_grad:
        x.register_hook(_finite)
    _, s, vh = torch.linalg.svd(x, full_matrices=False)
    v = _finite(vh.transpose(1, 2))[:, :, :n]
    return F.normalize(v, dim=1), F.normalize(_finite(s)[:, :n], dim=1)


def _align(v_s: Tensor, v_t: Tensor) -> Tensor:
    """For each teacher vector, the student vector of largest |cosine| times the cosine's sign."""
    cosine = v_s.transpose(1, 2) @ v_t
    best = cosine.abs().amax(1, keepdim=True)
    mask = torch.where(cosine.abs() == best, torch.sign(cosine), torch.zeros_like(cosine))
    return v_s @ mask
