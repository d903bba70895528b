"""FitNet: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015 (RepDistiller's ``hint``).

    L = MSE(r(F_s[h]), F_t[h])

with ``h`` the hint layer (an index into ``feats``, default 2) and ``r`` a trainable ``ConvReg``
(conv + BN + ReLU) from the student map's shape to the teacher map's. As in RepDistiller (and
mdistiller) the hint is trained jointly with the cross-entropy in one stage, not in the paper's
separate hint stage.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from ..errors import KdzooError
from ..losses.fitnet import fitnet_loss
from ..models.features import Features
from .base import FEATURE_READS, LossWeights, Method
from .connectors import ConvReg
from .options import Range
from .registry import register_method

HINT_LAYERS = range(5)  # RepDistiller's --hint_layer choices


@register_method("fitnet")
class FitNet(Method):
    """Hint learning: MSE between a regressed student map and the teacher's map at the hint layer."""

    paper = "Romero, Ballas, Kahou, Chassang, Gatta, Bengio. FitNets: Hints for Thin Deep Nets. ICLR 2015"
    uses = "feat[hint_layer] (default feat[2]) through a ConvReg regressor"
    reads = FEATURE_READS
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=100.0)

    def __init__(self, student: Features, teacher: Features, *, hint_layer: Annotated[int, Range(ge=0, le=4)] = 2):
        super().__init__(student, teacher)
        for who, f in (("student", student), ("teacher", teacher)):
            shapes = [tuple(x.shape[1:]) for x in f.feats]
            if hint_layer >= len(shapes) or len(shapes[hint_layer]) != 3:
                maps = [i for i, s in enumerate(shapes) if len(s) == 3 and i in HINT_LAYERS]
                raise KdzooError(
                    f"FitNet's hint_layer={hint_layer} is not a feature map of the {who} (its features: "
                    f"{', '.join(f'[{i}] {s}' for i, s in enumerate(shapes))}). Use hint_layer in "
                    f"{maps} for this pair (--method-opt hint_layer=...)."
                )
        self.hint_layer = hint_layer
        self.regressor = ConvReg(student.feats[hint_layer].shape, teacher.feats[hint_layer].shape)

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        h = self.hint_layer
        return {"fitnet": fitnet_loss(self.regressor(student.feats[h]), teacher.feats[h])}
