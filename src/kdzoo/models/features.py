"""One feature API for every model: ``extract(model, x, preact=False) -> Features``.

Semantics follow RepDistiller's ``forward(x, is_feat=True, preact=...)``: ``feats[0]`` is the stem
output, ``feats[1:-1]`` the stage outputs, ``feats[-1]`` the pooled penultimate vector (the
classifier input). With ``preact=True`` the stage maps are taken before their final ReLU (the
per-architecture rules are in the zoo modules' docstrings).

Every model in the registry implements ``forward(x, is_feat=False, preact=False)``: the CIFAR zoo
natively, torchvision models through :class:`kdzoo.models.torchvision_adapter.FeatureAdapter`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class Features:
    """A network's outputs for one batch: logits and the list of feature taps."""

    logits: Tensor
    feats: list[Tensor]

    @property
    def pooled(self) -> Tensor:
        """The pooled penultimate vector (``feats[-1]``)."""
        return self.feats[-1]

    @property
    def stages(self) -> list[Tensor]:
        """The stage maps (``feats[1:-1]``)."""
        return self.feats[1:-1]

    def float(self) -> "Features":
        """The same features in float32 (itself when they already are): losses run in full precision."""
        if all(x.dtype == torch.float32 for x in (self.logits, *self.feats)):
            return self
        return Features(self.logits.float(), [f.float() for f in self.feats])


def extract(model: nn.Module, x: Tensor, preact: bool = False) -> Features:
    """Run ``model`` on ``x`` and return its logits and feature taps."""
    feats, logits = model(x, is_feat=True, preact=preact)
    return Features(logits=logits, feats=list(feats))


def feature_shapes(model: nn.Module, input_shape: tuple[int, ...], preact: bool = False) -> Features:
    """Features of a 2-sample random batch, computed in eval mode without gradients.

    Used to size the extra modules of a method (connectors, embeddings) from a real forward pass
    at the actual input size, rather than a hard-coded 32x32 dummy.
    """
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    model.eval()
    try:
        with torch.no_grad():
            x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))  # leaves the global RNG alone
            return extract(model, x.to(device), preact=preact)
    finally:
        model.train(was_training)
