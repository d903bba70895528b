"""One feature API for every model: ``extract(model, x, preact=False) -> Features``.

Semantics follow RepDistiller's ``forward(x, is_feat=True, preact=...)``: ``feats[0]`` is the stem
output, ``feats[1:-1]`` the stage outputs, ``feats[-1]`` the pooled penultimate vector (the
classifier input). With ``preact=True`` the stage maps are taken before their final ReLU (the
per-architecture rules are in the zoo modules' docstrings).

Every model in the registry implements ``forward(x, is_feat=False, preact=False, head_map=False)``
and ``get_classifier()`` (its final ``nn.Linear``): the CIFAR zoo natively, torchvision models
through :class:`kdzoo.models.torchvision_adapter.FeatureAdapter`. ``head_map=True`` also returns
the map that is globally pooled into the classifier (the last stage's output, after WRN's final
BN-ReLU, MobileNetV2's ``conv2``, ShuffleV2's ``conv2``/``bn2``): SDD pools it into cells.
A multi-exit network (:class:`kdzoo.models.MultiExitNet`) also answers ``exits=True``:
``extract(..., exits=True)`` fills ``Features.exits`` with every exit's logits and feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class Features:
    """A network's outputs for one batch: logits, the list of feature taps and, when asked for
    (``extract(..., head_map=True)``), the map that is globally pooled into the classifier; for a
    multi-exit network with ``extract(..., exits=True)``, every exit's outputs as
    ``Features(logits, [feature])`` (``.pooled`` is the exit's feature), the deepest last."""

    logits: Tensor
    feats: list[Tensor]
    head: Tensor | None = None
    exits: list["Features"] | None = None

    @property
    def pooled(self) -> Tensor:
        """The pooled penultimate vector (``feats[-1]``)."""
        return self.feats[-1]

    @property
    def stages(self) -> list[Tensor]:
        """The stage maps (``feats[1:-1]``)."""
        return self.feats[1:-1]

    @staticmethod
    def cat(parts: list["Features"]) -> "Features":
        """The outputs of several batches as one (concatenated along the batch dimension)."""
        if len(parts) == 1:
            return parts[0]
        head = torch.cat([p.head for p in parts]) if parts[0].head is not None else None
        exits = [Features.cat(list(e)) for e in zip(*(p.exits for p in parts))] if parts[0].exits is not None else None
        return Features(torch.cat([p.logits for p in parts]), [torch.cat(f) for f in zip(*(p.feats for p in parts))], head,
                        exits)

    def float(self) -> "Features":
        """The same features in float32 (itself when they already are): losses run in full precision."""
        tensors = (self.logits, *self.feats) + ((self.head,) if self.head is not None else ())
        if all(x.dtype == torch.float32 for x in tensors) and all(e is e.float() for e in self.exits or ()):
            return self
        return Features(self.logits.float(), [f.float() for f in self.feats],
                        self.head.float() if self.head is not None else None,
                        [e.float() for e in self.exits] if self.exits is not None else None)


def extract(model: nn.Module, x: Tensor, preact: bool = False, head_map: bool = False, exits: bool = False) -> Features:
    """Run ``model`` on ``x`` and return its logits and feature taps (and head map with ``head_map``;
    and every exit's logits and feature with ``exits``, for a multi-exit network)."""
    if exits:
        feats, logits, head, outputs = model(x, is_feat=True, preact=preact, head_map=True, exits=True)
        return Features(logits=logits, feats=list(feats), head=head if head_map else None,
                        exits=[Features(z, [f]) for z, f in outputs])
    if head_map:
        feats, logits, head = model(x, is_feat=True, preact=preact, head_map=True)
        return Features(logits=logits, feats=list(feats), head=head)
    feats, logits = model(x, is_feat=True, preact=preact)
    return Features(logits=logits, feats=list(feats))


def feature_shapes(model: nn.Module, input_shape: tuple[int, ...], preact: bool = False,
                   head_map: bool = False) -> Features:
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
            return extract(model, x.to(device), preact=preact, head_map=head_map)
    finally:
        model.train(was_training)
