"""One feature API for every network: ``model.forward_taps(x, request) -> Features``.

Semantics follow RepDistiller's ``forward(x, is_feat=True, preact=...)``: ``feats[0]`` is the stem
output, ``feats[1:-1]`` the stage outputs, ``feats[-1]`` the pooled penultimate vector (the
classifier input). With ``preact=True`` the stage maps are taken before their final ReLU (the
per-architecture rules are in the zoo modules' docstrings). ``Features.head_map`` is the map that is
globally pooled into the classifier (after WRN's final BN-ReLU, MobileNetV2's ``conv2``, ShuffleV2's
``conv2``/``bn2``): SDD pools it into cells, SimKD projects it.

Every network kdzoo trains answers the same protocol, like timm's ``forward_intermediates`` /
``forward_head``:

- ``forward(x) -> logits`` (the zoo also keeps RepDistiller's ``forward(x, is_feat=True, preact=...)``);
- ``forward_taps(x, request) -> Features`` (:class:`FeatureRequest` says what to compute), also reachable as
  ``forward(x, request=request)`` so that wrappers like DistributedDataParallel see the call;
- ``get_classifier()`` (the final ``nn.Linear``), and ``feature_support()`` (:class:`FeatureSupport`:
  which requests it can answer, so a method that needs more is refused before training).

The zoo implements it natively; :class:`~kdzoo.models.TappedModel` implements it with forward hooks
for any other ``nn.Module`` (timm, torchvision, a user's own); a multi-exit network
(:class:`~kdzoo.models.MultiExitNet`) also answers ``request.exits``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils._pytree import register_dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class FeatureRequest:
    """What one network must compute for a method, beyond its logits: each field changes what runs.

    ``taps``: run through ``forward_taps`` for the stem, the stage maps, the pooled vector and the head map (the
    map pooled into the classifier); ``preact``: stage maps before their last ReLU; ``exits``: every exit of a
    multi-exit network. How the network runs (OFD's teacher in batch statistics) is the method's
    :class:`~kdzoo.methods.Reads`, not the request's.
    """

    taps: bool = False
    preact: bool = False
    exits: bool = False

    @property
    def needs_taps(self) -> bool:
        """Whether the network must run through ``forward_taps`` (False: ``forward`` gives the logits)."""
        return self.taps or self.preact or self.exits


LOGITS = FeatureRequest()
TAPS = FeatureRequest(taps=True)


@dataclass(frozen=True)
class FeatureSupport:
    """Which parts of a :class:`FeatureRequest` (and which layers) a network can provide."""

    preact: bool = True
    exits: bool = False
    bn_before_relu: bool = True
    classifier: bool = True
    #: Why pre-activation taps are missing, shown in refusals.
    note: str = ""

    def missing(self, request: FeatureRequest) -> list[str]:
        """What ``request`` asks for that this network cannot give, in words."""
        gaps = []
        if request.preact and not self.preact:
            gaps.append("pre-activation stage maps (taken before each stage's last ReLU)")
        if request.exits and not self.exits:
            gaps.append("exits (a multi-exit network)")
        return gaps


@dataclass
class Features:
    """A network's outputs for one batch: logits, the list of feature taps, the map globally pooled
    into the classifier (``head_map``: what the classifier head reads); for a multi-exit network asked for its
    exits, every exit's outputs as ``Features(logits, [feature])`` (``.pooled`` is the exit's feature), the deepest
    last."""

    logits: Tensor
    feats: list[Tensor]
    head_map: Tensor | None = None
    exits: list[Features] | None = None

    @property
    def pooled(self) -> Tensor:
        """The pooled penultimate vector (``feats[-1]``)."""
        return self.feats[-1]

    @property
    def stages(self) -> list[Tensor]:
        """The stage maps (``feats[1:-1]``)."""
        return self.feats[1:-1]

    @staticmethod
    def cat(parts: list[Features]) -> Features:
        """The outputs of several batches as one (concatenated along the batch dimension)."""
        if len(parts) == 1:
            return parts[0]
        head_map = torch.cat([p.head_map for p in parts]) if parts[0].head_map is not None else None
        exits = ([Features.cat(list(e)) for e in zip(*(p.exits for p in parts), strict=True)]
                 if parts[0].exits is not None else None)
        feats = [torch.cat(f) for f in zip(*(p.feats for p in parts), strict=True)]
        return Features(torch.cat([p.logits for p in parts]), feats, head_map, exits)

    def float(self) -> Features:
        """The same features in float32 (itself when they already are): losses run in full precision."""
        tensors = (self.logits, *self.feats) + ((self.head_map,) if self.head_map is not None else ())
        if all(x.dtype == torch.float32 for x in tensors) and all(e is e.float() for e in self.exits or ()):
            return self
        return Features(self.logits.float(), [f.float() for f in self.feats],
                        self.head_map.float() if self.head_map is not None else None,
                        [e.float() for e in self.exits] if self.exits is not None else None)


# Features is a pytree node (like a tuple of its tensors), so DistributedDataParallel and torch.compile traverse it.
register_dataclass(Features)


def speaks_taps(model: nn.Module) -> bool:
    """Whether ``model`` answers kdzoo's feature protocol (``forward_taps``)."""
    return callable(getattr(model, "forward_taps", None))


def model_name(model: nn.Module) -> str:
    """The name a model is known by in messages: its registry name, else its class name."""
    return getattr(model, "kdzoo_arch", None) or type(model).__name__


def support_of(model: nn.Module) -> FeatureSupport:
    """The model's :class:`FeatureSupport` (the zoo's default when it declares none)."""
    support = getattr(model, "feature_support", None)
    return support() if callable(support) else FeatureSupport()


def run_model(model: nn.Module, x: Tensor, request: FeatureRequest = LOGITS) -> Features:
    """The model's logits, plus what ``request`` asks for. Taps are asked through ``model(x, request=...)``, so a
    wrapper such as DistributedDataParallel sees the call; plain ``model(x)`` when only the logits are needed."""
    if not request.needs_taps:
        return Features(model(x), [])
    return model(x, request=request)


def extract(model: nn.Module, x: Tensor, preact: bool = False, exits: bool = False) -> Features:
    """Run ``model`` on ``x`` and return its logits, feature taps and head map (and every exit's logits and
    feature with ``exits``, for a multi-exit network)."""
    if not speaks_taps(model):
        raise ConfigError(f"{model_name(model)} does not expose feature taps; wrap it first: "
                          f"kdzoo.models.wrap_model(model, feature_layers=[...]) (or pass it to kdzoo.Distiller, "
                          f"which wraps it).")
    return model.forward_taps(x, FeatureRequest(taps=True, preact=preact, exits=exits))


def feature_shapes(model: nn.Module, input_shape: tuple[int, ...], request: FeatureRequest = TAPS) -> Features:
    """Features of a 2-sample random batch, computed in eval mode without gradients.

    Used to size the extra modules of a method (connectors, embeddings) from a real forward pass
    at the actual input size, rather than a hard-coded 32x32 dummy. A request for more than the logits gets
    every tap (plus exits when asked) from networks that have them; a request for the logits alone, or a network
    without taps, gets the logits (a logit method never makes the network look for its stages).
    """
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    model.eval()
    try:
        with torch.no_grad():
            x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))  # leaves the global RNG alone
            if speaks_taps(model) and request.needs_taps:
                request = FeatureRequest(taps=True, preact=request.preact, exits=request.exits)
            return run_model(model, x.to(device), request)
    finally:
        model.train(was_training)
