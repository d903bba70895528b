"""Small building blocks shared by the CIFAR model zoo (parameter-free, so state dicts are unaffected).

- conv helpers (``conv3x3``, ``conv1x1``) with RepDistiller's bias-free convention;
- the two weight-init schemes of RepDistiller's models (:func:`init_kaiming`, :func:`init_he_normal`);
- :func:`relu_tap`, the pre-/post-ReLU split used for ``preact`` feature taps;
- :class:`Stage`, an ``nn.Sequential`` whose last block can also return its pre-ReLU map;
- :func:`global_pool` (adaptive average pooling, equal to RepDistiller's fixed pools at 32x32) and
  :func:`channel_shuffle` (ShuffleNet v1/v2).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .features import LOGITS, TAPS, FeatureRequest, Features, FeatureSupport


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A 3x3 convolution without bias (padding 1)."""
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, groups=groups, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """A 1x1 convolution without bias."""
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, groups=groups, bias=False)


def conv_bn_shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Sequential:
    """Projection shortcut ``Sequential(1x1 conv, BN)`` (state-dict keys ``.0`` and ``.1``)."""
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


def init_kaiming(model: nn.Module) -> None:
    """ResNet init: Kaiming-normal convs (fan_out, relu), BN weight 1 / bias 0; Linear left default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_he_normal(model: nn.Module, linear_std: float | None = None) -> None:
    """WRN/VGG/MobileNetV2 init: conv weights N(0, sqrt(2 / (k_h * k_w * C_out))), conv bias 0,
    BN weight 1 / bias 0; Linear bias 0 and, if ``linear_std`` is given, weight N(0, linear_std)
    (VGG, MobileNetV2: 0.01; WRN keeps PyTorch's default Linear weight)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


def relu_tap(x: Tensor, keep_pre: bool) -> Tensor:
    """ReLU that leaves ``x`` intact when ``keep_pre`` (so ``x`` can be returned as a pre-activation
    tap) and otherwise works in place (no extra memory when no tap is wanted)."""
    return F.relu(x) if keep_pre else F.relu(x, inplace=True)


def global_pool(x: Tensor) -> Tensor:
    """Global average pool to a ``(N, C)`` vector.

    Equal to RepDistiller's fixed pools (``AvgPool2d(8)``, ``avg_pool2d(4)``, MobileNetV2's
    ``AvgPool2d(2, ceil_mode=True)``) on the map sizes a 32x32 input gives, and valid for any size.
    """
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """ShuffleNet channel shuffle: ``(N, g*c, H, W) -> (N, c*g, H, W)`` interleaving the groups."""
    if groups == 1:
        return x
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class Stage(nn.Sequential):
    """A sequence of blocks (keys ``<stage>.<i>.*``) whose last block can expose its pre-ReLU map.

    Every block implements ``forward(x, preact=False)``; with ``preact=True`` the last block returns
    ``(out, pre)``. ``Stage.forward(x, preact=True)`` returns ``(out, pre)``, otherwise ``out``.
    """

    def forward(self, x: Tensor, preact: bool = False):  # type: ignore[override]
        *body, last = list(self)
        for block in body:
            x = block(x)
        return last(x, preact=preact)


def run_stages(stages, x: Tensor, preact: bool) -> tuple[Tensor, list[Tensor]]:
    """Run ``stages`` in order; returns the output and one tap per stage (its pre-ReLU map when
    ``preact``, else its output)."""
    taps = []
    for stage in stages:
        if preact:
            x, tap = stage(x, preact=True)
        else:
            x = tap = stage(x)
        taps.append(tap)
    return x, taps


class FeatureModel(nn.Module):
    """Base of the zoo's networks: subclasses implement ``forward_taps(x, request) -> Features``; ``forward``
    is RepDistiller's: ``forward(x)`` gives the logits, ``forward(x, is_feat=True, preact=...)`` gives
    ``([stem, *stage taps, pooled], logits)``; ``forward(x, request=...)`` is ``forward_taps``."""

    def forward(self, x: Tensor, is_feat: bool = False, preact: bool = False, request: FeatureRequest | None = None):
        if request is not None:  # the feature protocol through forward(), as DDP-wrapped networks are called
            return self.forward_taps(x, request)
        if not is_feat:
            return self.forward_taps(x, LOGITS).logits
        out = self.forward_taps(x, FeatureRequest(taps=True, preact=preact))
        return out.feats, out.logits

    def feature_support(self) -> FeatureSupport:
        return FeatureSupport()


class StagedNet(FeatureModel):
    """Stem (``conv1``, ``bn1``, ReLU) -> stages -> head map -> pooled vector -> classifier, with
    RepDistiller's feature taps ``[stem, *stage taps, pooled]`` and the head map (the map globally
    pooled into the classifier).

    Subclasses name their stages (``stage_names``) and classifier (``classifier_name``) and may
    override :meth:`head_map` when layers come between the last stage and the global pooling."""

    stage_names: tuple[str, ...] = ("layer1", "layer2", "layer3")
    classifier_name = "linear"

    def stages(self) -> tuple[nn.Module, ...]:
        return tuple(getattr(self, name) for name in self.stage_names)

    def stem(self, x: Tensor) -> Tensor:
        return relu_tap(self.bn1(self.conv1(x)), keep_pre=False)

    def head_map(self, x: Tensor) -> Tensor:
        """The map that is globally pooled into the classifier, from the last stage's output."""
        return x

    def get_classifier(self) -> nn.Linear:
        return getattr(self, self.classifier_name)

    def forward_taps(self, x: Tensor, request: FeatureRequest = TAPS) -> Features:
        f0 = self.stem(x)
        x, taps = run_stages(self.stages(), f0, preact=request.preact)
        x = self.head_map(x)
        pooled = global_pool(x)
        return Features(self.get_classifier()(pooled), [f0, *taps, pooled], x)

    def get_feat_modules(self) -> nn.ModuleList:
        return nn.ModuleList([self.conv1, self.bn1, *self.stages()])


def reject_kwargs(name: str, kwargs: dict) -> None:
    """Model factories take ``num_classes`` and ``in_channels`` only; say so clearly otherwise."""
    if kwargs:
        raise ConfigError(
            f"Model {name!r} got unexpected option(s) {sorted(kwargs)}; it accepts only "
            f"num_classes and in_channels (its architecture is fixed to RepDistiller's)."
        )
