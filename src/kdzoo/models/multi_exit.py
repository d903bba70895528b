"""Multi-exit networks: an exit (bottleneck + classifier) after every stage of a zoo model but the
last, as in BYOT (Zhang, Song, Gao, Chen, Bao, Ma, "Be Your Own Teacher: Improve the Performance
of Convolutional Neural Networks via Self Distillation", ICCV 2019).

Exit i reads stage map i (post-activation, ``Features.stages[i]``) and computes

    F_i = GAP(ReLU(BN(Conv1x1_{c/4 -> c}( ReLU(BN(Conv_{k x k, stride k}( ReLU(BN(Conv1x1_{c_i -> c/4}(x)))))) ))))
    z_i = W_i F_i + b_i

with c the width of the network's own pooled vector (so F_i and the deepest exit's feature F_C can
be compared) and k the ratio of stage i's map size to the last stage's, so the strided conv lands on
the last stage's size (BYOT's ``branchBottleNeck``: k = 8, 4, 2 on ResNet18). Where a map is larger
than, but not a multiple of, the last stage's size, it is first average-pooled (adaptively) to
k times that size; where it is not larger, k = 1 (the global pooling takes care of the size).
Convs are bias-free (each is followed by BN; the reimplementation's conv biases are redundant).
The deepest exit is the backbone's own classifier.

:class:`MultiExitNet` keeps the feature protocol (``forward`` and ``get_classifier`` are the
backbone's, so training, evaluation and distillation see the deepest exit); a request with
``exits=True`` also fills ``Features.exits`` with every exit's logits and feature, deepest last
(``extract(net, x, exits=True)``). Its checkpoint entries are the backbone's plus the exits under
``exits`` (specs and weights).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import Tensor, nn

from ..errors import ConfigError
from .entries import checkpoint_entries, load_checkpoint_entries
from .features import TAPS, FeatureRequest, Features, FeatureSupport, feature_shapes, model_name, support_of
from .layers import FeatureModel, global_pool


class ExitHead(nn.Module):
    """One BYOT exit: bottleneck (1x1 -> k x k stride k -> 1x1, each BN-ReLU), global pooling, Linear.

    ``forward(stage_map) -> (logits, feature)`` with ``feature`` the pooled bottleneck output."""

    def __init__(self, in_channels: int, out_channels: int, num_classes: int, kernel: tuple[int, int],
                 pool_to: tuple[int, int] | None = None):
        super().__init__()
        mid = max(out_channels // 4, 1)
        reduce = [nn.AdaptiveAvgPool2d(tuple(pool_to))] if pool_to is not None else []
        self.bottleneck = nn.Sequential(
            nn.Conv2d(in_channels, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            *reduce,
            nn.Conv2d(mid, mid, tuple(kernel), stride=tuple(kernel), bias=False), nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(out_channels, num_classes)
        self.spec = {"in_channels": in_channels, "out_channels": out_channels, "num_classes": num_classes,
                     "kernel": tuple(kernel), "pool_to": tuple(pool_to) if pool_to is not None else None}

    def forward(self, stage_map: Tensor) -> tuple[Tensor, Tensor]:
        feature = global_pool(self.bottleneck(stage_map))
        return self.classifier(feature), feature


def exit_specs(backbone: nn.Module, input_shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """The :class:`ExitHead` arguments for an exit after every stage of ``backbone`` but the last,
    sized from a real forward pass at ``input_shape``."""
    arch = model_name(backbone)
    shapes = feature_shapes(backbone, input_shape)
    stages = shapes.stages
    if len(stages) < 2 or any(s.dim() != 4 for s in stages):
        raise ConfigError(f"{arch} cannot take exits: a multi-exit network needs at least two stages with (C, H, W) "
                          f"maps, and {arch}'s stage taps are {[tuple(s.shape[1:]) for s in stages]}. Use a network "
                          f"with stages (`kdzoo list models`) or name its stage layers (feature_layers=[...]).")
    last = shapes.head_map.shape[-2:]
    specs = []
    for stage in stages[:-1]:
        size = stage.shape[-2:]
        kernel = tuple(max(s // t, 1) for s, t in zip(size, last, strict=True))
        fits = all(s <= t or s == k * t for s, t, k in zip(size, last, kernel, strict=True))
        pool_to = None if fits else tuple(k * t if s > t else s for s, t, k in zip(size, last, kernel, strict=True))
        specs.append({"in_channels": stage.shape[1], "out_channels": shapes.pooled.shape[1],
                      "num_classes": shapes.logits.shape[1], "kernel": kernel, "pool_to": pool_to})
    return specs


class MultiExitNet(FeatureModel):
    """A zoo model (the backbone) with an :class:`ExitHead` after every stage but the last; the
    deepest exit is the backbone's classifier. See the module docstring."""

    def __init__(self, backbone: nn.Module, specs: list[dict[str, Any]]):
        super().__init__()
        self.backbone = backbone
        self.exit_heads = nn.ModuleList(ExitHead(**spec) for spec in specs)
        self.kdzoo_arch = model_name(backbone)

    @classmethod
    def build(cls, backbone: nn.Module, input_shape: tuple[int, ...]) -> MultiExitNet:
        """Add exits to ``backbone``, sized for inputs of ``input_shape`` (C, H, W)."""
        param = next(backbone.parameters())
        return cls(backbone, exit_specs(backbone, input_shape)).to(param.device)

    @property
    def num_exits(self) -> int:
        """Exits including the deepest (the backbone's classifier)."""
        return len(self.exit_heads) + 1

    def forward_taps(self, x: Tensor, request: FeatureRequest = TAPS) -> Features:
        """The backbone's features; with ``request.exits`` also every exit's ``Features(logits, [feature])`` in
        ``Features.exits``, the deepest (the backbone's ``logits``, ``pooled``) last."""
        if not request.exits:
            return self.backbone.forward_taps(x, request)
        if request.preact:
            raise ValueError("The exits read the stage outputs; pre-activation taps cannot be combined with exits.")
        out = self.backbone.forward_taps(x, TAPS)
        outputs = [exit_head(stage) for exit_head, stage in zip(self.exit_heads, out.stages[:-1], strict=True)]
        exits = [Features(logits, [feature]) for logits, feature in outputs] + [Features(out.logits, [out.pooled])]
        return Features(out.logits, out.feats, out.head_map, exits)

    def feature_support(self) -> FeatureSupport:
        return replace(support_of(self.backbone), exits=True)

    def get_classifier(self) -> nn.Linear:
        return self.backbone.get_classifier()

    def get_feat_modules(self) -> nn.ModuleList:
        return self.backbone.get_feat_modules()

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return self.backbone.get_bn_before_relu()

    def checkpoint_entries(self) -> dict[str, Any]:
        """The backbone's entries plus the exits: their specs and weights (what :func:`attach_exits` rebuilds)."""
        entry = {"specs": [dict(h.spec) for h in self.exit_heads], "state": self.exit_heads.state_dict()}
        return {**checkpoint_entries(self.backbone), "exits": entry}

    def load_checkpoint_entries(self, data: dict[str, Any], load_weights) -> None:
        load_checkpoint_entries(self.backbone, data, load_weights)
        self.exit_heads.load_state_dict(data["exits"]["state"])


def attach_exits(backbone: nn.Module, entry: dict[str, Any]) -> MultiExitNet:
    """Rebuild a :class:`MultiExitNet` from a checkpoint's ``exits`` entry (weights loaded)."""
    model = MultiExitNet(backbone, entry["specs"])
    model.exit_heads.load_state_dict(entry["state"])
    return model.to(next(backbone.parameters()).device)
