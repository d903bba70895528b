"""CTKD: Li, Li, Yang, Zhao, Song, Luo, Li, Yang, "Curriculum Temperature for Knowledge Distillation", AAAI 2023.

The KD temperature is learned adversarially: tau = t_start + t_end * sigmoid(theta), in
(t_start, t_start + t_end) = (1, 21) by default, and

    L = gamma * CE + beta * tau^2 * KL(softmax(z_t / tau) || softmax(z_s / tau))

is minimised by the student while theta receives the gradient through a gradient-reversal layer
scaled by lambda(epoch) in [-1, 0] (:mod:`kdzoo.losses.ctkd`: cosine curriculum 0 -> -1 over
``curriculum_epochs`` = 10 epochs, 5 on ImageNet), so the temperature moves to *raise* the loss,
ever more strongly: easy to hard. theta (init 1, tau_0 = 15.62) is trained by the run's optimiser,
as in zhengli97/CTKD. Weights: CE 0.1, KD 0.9 (the RepDistiller-style scripts' gamma/alpha; here
the learned-temperature KD is the method's term, so it is beta). The mean temperature and lambda
of each epoch are logged (``stat_temperature``, ``stat_reversal`` in ``metrics.csv``).

``mode=instance``: the paper's instance-wise variant (not in the official code): a 2-layer MLP on
the concatenated softmax outputs of student and teacher (detached: only the MLP is trained through
the reversal) gives each sample its own tau; its last layer starts at zero weight and bias theta_0 = 1,
so every tau starts at the global variant's tau_0.

With ``--logit-std`` (LS, CVPR 2024) the KL is computed on z-scored logits at the learned
temperature with the LS setting beta 9 and t_start 2 (the published CTKD+LS logs level off at
tau = 2). The LS code's ``--logit_stand`` flag is inverted there (it turns standardisation off), but
its CTKD script does not pass it (and the first version of that code always standardised), so its
runs standardise, as kdzoo does.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses.ctkd import curriculum_lambda, reverse_gradient
from ..losses.kd import kd_loss
from ..models.features import Features
from .base import LogitStdDefaults, LossWeights, Method
from .options import OneOf, Range
from .registry import register_method

#: theta's initial value in the official code (``Global_T``: ``nn.Parameter(torch.ones(1))``).
THETA_0 = 1.0
MODE = OneOf("global", "instance", reference="global: one learned temperature; instance: one per sample")
CURVE = OneOf("cosine", "linear", reference="cosine, the reference's")


class GlobalTemperature(nn.Module):
    """One learnable scalar theta for the whole dataset."""

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(THETA_0))

    def forward(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        return self.theta


class InstanceTemperature(nn.Module):
    """theta per sample from ``Linear(2K, hidden) - ReLU - Linear(hidden, 1)`` on both softmax outputs."""

    def __init__(self, num_classes: int, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * num_classes, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.constant_(self.mlp[-1].bias, THETA_0)

    def forward(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        probs = torch.cat([F.softmax(logits_s.detach(), dim=1), F.softmax(logits_t.detach(), dim=1)], dim=1)
        return self.mlp(probs).squeeze(1)


@register_method("ctkd")
class CTKD(Method):
    """KD with a learned temperature, trained adversarially (gradient reversal) under a cosine curriculum."""

    paper = "Li, Li, Yang, Zhao, Song, Luo, Li, Yang. Curriculum Temperature for Knowledge Distillation. AAAI 2023"
    uses = "logits (learned temperature)"
    default_weights = LossWeights(gamma=0.1, alpha=0.0, beta=0.9)
    logit_std_defaults = LogitStdDefaults(LossWeights(gamma=0.1, alpha=0.0, beta=9.0), {"t_start": 2.0})

    def __init__(self, student: Features, teacher: Features, *, mode: Annotated[str, MODE] = "global",
                 t_start: Annotated[float, Range(gt=0)] = 1.0, t_end: Annotated[float, Range(gt=0)] = 20.0,
                 curriculum_epochs: Annotated[int, Range(ge=1, reference="10 on CIFAR, 5 on ImageNet")] = 10,
                 curve: Annotated[str, CURVE] = "cosine", hidden: Annotated[int, Range(ge=1)] = 256):
        super().__init__(student, teacher)
        self.t_start, self.t_end = t_start, t_end
        self.curriculum_epochs, self.curve = curriculum_epochs, curve
        num_classes = student.logits.shape[1]
        self.temperature_module = GlobalTemperature() if mode == "global" else InstanceTemperature(num_classes, hidden)
        self.reversal = curriculum_lambda(1, curriculum_epochs, curve)  # set again at every epoch start
        self.register_buffer("tau_sum", torch.zeros(()))
        self.register_buffer("tau_count", torch.zeros(()))

    def temperature(self, logits_s: Tensor, logits_t: Tensor) -> Tensor:
        """tau = t_start + t_end * sigmoid(theta), theta behind the gradient reversal (scalar or per sample)."""
        theta = reverse_gradient(self.temperature_module(logits_s, logits_t), self.reversal)
        return self.t_start + self.t_end * torch.sigmoid(theta)

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        self.reversal = curriculum_lambda(epoch, self.curriculum_epochs, self.curve)
        self.tau_sum.zero_()
        self.tau_count.zero_()

    def forward(self, student: Features, teacher: Features, batch) -> dict[str, Tensor]:
        logits_s, logits_t = self.distill_logits(student, teacher)
        tau = self.temperature(logits_s, logits_t)
        with torch.no_grad():
            self.tau_sum += tau.sum()
            self.tau_count += tau.numel()
        return {"ctkd": kd_loss(logits_s, logits_t, tau, tau)}

    def epoch_stats(self) -> dict[str, float]:
        mean = float(self.tau_sum / self.tau_count) if self.tau_count > 0 else float("nan")
        return {"temperature": mean, "reversal": self.reversal}
