"""DIST: Huang, You, Wang, Qian, Xu, "Knowledge Distillation from A Stronger Teacher", NeurIPS 2022.

    L = CE + 2 * (beta_inter * L_inter + gamma_intra * L_intra)

with L_inter / L_intra = tau^2 * (1 - mean Pearson correlation) of the softened class
distributions per sample / per class across the batch (losses in :mod:`kdzoo.losses.dist`), as the
official code: tau 4 on CIFAR-100 (1 on ImageNet), beta_inter = gamma_intra = 1, objective weight 2
(the paper's beta = gamma = 2). The tau^2 factor follows the code; the paper's pseudo-code omits it
(equivalent to dividing the weight by tau^2). The two parts are returned (and logged) apart.
"""

from __future__ import annotations

from typing import Annotated

from torch import Tensor

from ..errors import ConfigError
from ..losses.dist import dist_inter_loss, dist_intra_loss
from ..models.features import Features
from .base import LossWeights, Method
from .options import Range
from .registry import register_method


@register_method("dist")
class DIST(Method):
    """Inter- and intra-class Pearson correlation between softened student and teacher distributions."""

    paper = "Huang, You, Wang, Qian, Xu. Knowledge Distillation from A Stronger Teacher. NeurIPS 2022"
    uses = "logits"
    default_weights = LossWeights(gamma=1.0, alpha=0.0, beta=2.0)

    def __init__(self, student: Features, teacher: Features, *, beta_inter: Annotated[float, Range(ge=0)] = 1.0,
                 gamma_intra: Annotated[float, Range(ge=0)] = 1.0,
                 tau: Annotated[float, Range(gt=0, reference="4 on CIFAR-100, 1 on ImageNet")] = 4.0):
        super().__init__(student, teacher)
        self.beta_inter, self.gamma_intra, self.tau = beta_inter, gamma_intra, tau
        if self.beta_inter == 0 and self.gamma_intra == 0:
            raise ConfigError("DIST with beta_inter=0 and gamma_intra=0 has no loss term; give at least one a "
                              "positive weight.")

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        terms = {}
        if self.beta_inter:
            terms["dist_inter"] = self.beta_inter * dist_inter_loss(student.logits, teacher.logits, self.tau)
        if self.gamma_intra:
            terms["dist_intra"] = self.gamma_intra * dist_intra_loss(student.logits, teacher.logits, self.tau)
        return terms
