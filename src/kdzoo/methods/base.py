"""The method contract.

A method is an ``nn.Module`` that owns its trainable extra parts (connectors, embeddings, memory
banks) and declares what it needs. Given the student's and the teacher's :class:`Features` and the
batch, ``forward`` returns a dict of *unweighted* named loss terms; :class:`Objective` adds the
cross-entropy and the KD term and applies the weights

    L = gamma * CE(z_s, y) + alpha * KD(z_s, z_t) + beta * sum(method terms).

Adding a method = one file with a subclass decorated by ``@register_method(name)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from ..models.features import Features


@dataclass(frozen=True)
class LossWeights:
    """Weights of ``gamma*CE + alpha*KD + beta*method`` (never None)."""

    gamma: float = 1.0
    alpha: float = 0.0
    beta: float = 1.0


class Method(nn.Module):
    """Base class of every distillation method.

    Class attributes declare the method for the engine and for ``kdzoo list methods``:
    ``paper`` (citation), ``uses`` (which features, in words), ``needs_features`` (False: logits
    only, so the engine skips the feature taps), ``preact`` (pre-activation stage maps),
    ``needs_index`` (dataset indices of the batch), ``default_weights`` (the reference values).

    Subclasses receive the feature shapes of a real forward pass (``student``/``teacher``
    :class:`Features` of a 2-sample batch) to size their extra modules, plus their options.
    """

    paper: ClassVar[str] = ""
    uses: ClassVar[str] = "logits"
    needs_features: ClassVar[bool] = False
    preact: ClassVar[bool] = False
    needs_index: ClassVar[bool] = False
    default_weights: ClassVar[LossWeights] = LossWeights()

    def __init__(self, student: Features, teacher: Features, **options: Any):
        super().__init__()

    def forward(self, student: Features, teacher: Features, batch: Any) -> dict[str, Tensor]:
        """Unweighted loss terms of the method (empty when the method has no term of its own)."""
        return {}

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        """Hook called before each epoch (1-based), e.g. for curricula or warm-ups."""
