"""AT's attention maps of one image, stage by stage (Zagoruyko & Komodakis, ICLR 2017): what ``kdzoo maps`` draws.

A stage's map F (C x H x W) becomes A = mean over channels of |F|^p (p = 2), L2-normalised: the function AT
trains with (:func:`kdzoo.losses.at.attention_map`), shaped back to H x W. The distance between a student's and
the teacher's maps at a stage is AT's loss term for that stage (:func:`kdzoo.losses.at.at_loss`, before β).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .losses.at import at_loss, attention_map
from .models import extract


@torch.no_grad()
def stage_outputs(model: nn.Module, image: Tensor) -> list[Tensor]:
    """The stage maps (``feat[1:-1]``, the maps AT pairs) of ``model`` on ``image`` (1 x C x H x W)."""
    return extract(model, image).stages


def attention_maps(stages: list[Tensor], p: float = 2) -> list[Tensor]:
    """The H x W attention map of each stage map of one image."""
    return [attention_map(f, p).reshape(f.shape[-2:]) for f in stages]


def at_distances(student: list[Tensor], teacher: list[Tensor], p: float = 2) -> list[float]:
    """AT's loss term of each zipped stage pair of one image (the larger map pooled to the smaller, as AT does)."""
    return [float(at_loss([s], [t], p)) for s, t in zip(student, teacher, strict=False)]
