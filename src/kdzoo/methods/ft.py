"""FT: Kim, Park, Kwak, "Paraphrasing Complex Network: Network Compression via Factor Transfer",
NeurIPS 2018.

A Paraphraser (conv auto-encoder, C_t -> int(k*C_t) -> C_t) is first trained for ``init_epochs``
epochs to reconstruct the teacher's last stage map ``feat[-2]`` (MSE; lr 0.01 for CIFAR ResNet/WRN
students, else the run's lr, as RepDistiller). In the main stage a trainable Translator maps the
student's ``feat[-2]`` to a factor, the frozen Paraphraser's encoder gives the teacher factor, and

    L = mean |phi(T(F_s)) - phi(P_enc(F_t))|,  phi(F) = normalize_2(vec(1/C sum_c F_c^p1))

(see :func:`kdzoo.losses.ft_loss`). RepDistiller weights: gamma 1, alpha 0, beta 200.

The Paraphraser's parameters require grad only during the init stage: :meth:`FT.init_stage`
enables them, and the main stage's ``train()`` call (the engine's ``objective.train()``) freezes
them again and keeps the Paraphraser in eval mode. Built frozen, it is never in the main optimiser.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import KdzooError
from ..losses import ft_loss
from ..models import model_info
from .base import FEATURE_READS, InitStage, LossWeights, Method
from .options import Range
from .registry import register_method

#: Student families whose FT init stage runs at lr 0.01 (RepDistiller: CIFAR ResNets and WRNs).
INIT_LR_001_FAMILIES = ("resnet", "wrn")


def _block(c_in: int, c_out: int, use_bn: bool, transposed: bool = False) -> list[nn.Module]:
    conv = (nn.ConvTranspose2d if transposed else nn.Conv2d)(c_in, c_out, 3, 1, 1)
    return [conv, nn.BatchNorm2d(c_out) if use_bn else nn.Sequential(), nn.LeakyReLU(0.1, inplace=True)]


class Paraphraser(nn.Module):
    """RepDistiller's ``Paraphraser``: 3x3 conv encoder C_t -> C_t -> C_f -> C_f and transposed-conv
    decoder C_f -> C_f -> C_t -> C_t, LeakyReLU(0.1) after each; ``forward`` is the reconstruction."""

    def __init__(self, c_t: int, c_f: int, use_bn: bool = False):
        super().__init__()
        self.encoder = nn.Sequential(*_block(c_t, c_t, use_bn), *_block(c_t, c_f, use_bn), *_block(c_f, c_f, use_bn))
        self.decoder = nn.Sequential(*_block(c_f, c_f, use_bn, True), *_block(c_f, c_t, use_bn, True),
                                     *_block(c_t, c_t, use_bn, True))

    def forward(self, f: Tensor) -> Tensor:
        return self.decoder(self.encoder(f))


class Translator(nn.Module):
    """RepDistiller's ``Translator``: 3x3 convs C_s -> C_s -> C_f -> C_f, each + BN + LeakyReLU(0.1)."""

    def __init__(self, c_s: int, c_f: int, use_bn: bool = True):
        super().__init__()
        self.encoder = nn.Sequential(*_block(c_s, c_s, use_bn), *_block(c_s, c_f, use_bn), *_block(c_f, c_f, use_bn))

    def forward(self, f: Tensor) -> Tensor:
        return self.encoder(f)


@register_method("ft")
class FT(Method):
    """Factor transfer: L1 between the student's translated and the teacher's paraphrased factors."""

    paper = ("Kim, Park, Kwak. Paraphrasing Complex Network: Network Compression via Factor Transfer. "
             "NeurIPS 2018")
    uses = "feat[-2] (last stage map); Paraphraser (init stage) on the teacher's, Translator on the student's"
    reads = FEATURE_READS
    init_reads = FEATURE_READS  # the teacher's paraphraser trains on the teacher's maps
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=200.0)

    def __init__(self, student, teacher, *, k: Annotated[float, Range(gt=0)] = 0.5,
                 p1: Annotated[float, Range(gt=0)] = 2, p2: Annotated[float, Range(gt=0)] = 1,
                 init_epochs: Annotated[int, Range(ge=0)] = 30):
        super().__init__(student, teacher)
        c_s, c_t = student.feats[-2].shape[1], teacher.feats[-2].shape[1]
        c_f = int(c_t * k)
        if c_f < 1:
            raise KdzooError(f"FT's factor would have int({c_t} * k={k}) = {c_f} channels; use k >= {1 / c_t:.3g}.")
        self.p1, self.p2 = p1, p2
        self.init_epochs = init_epochs
        self.paraphraser = Paraphraser(c_t, c_f).requires_grad_(False)
        self.translator = Translator(c_s, c_f)

    def forward(self, student, teacher, batch):
        factor_s = self.translator(student.feats[-2])
        with torch.no_grad():
            factor_t = self.paraphraser.encoder(teacher.feats[-2])
        return {"ft": ft_loss(factor_s, factor_t, self.p1, self.p2)}

    def init_stage(self, student, lr):
        arch = getattr(student, "kdzoo_arch", None)
        cifar = arch is not None and model_info(arch)["family"] in INIT_LR_001_FAMILIES
        self.paraphraser.requires_grad_(True)
        return InitStage(modules=[self.paraphraser], epochs=self.init_epochs, lr=0.01 if cifar else lr,
                         needs_student=False)

    def init_loss(self, student, teacher, batch):
        f_t = teacher.feats[-2]
        return F.mse_loss(self.paraphraser(f_t), f_t)

    def train(self, mode: bool = True):
        super().train(mode)
        self.paraphraser.eval().requires_grad_(False)  # main stage: frozen, eval mode (RepDistiller)
        return self
