"""Wide residual networks (Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016).

wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2: pre-activation basic blocks (BN-ReLU-conv), ``(depth - 4)
/ 6`` blocks per stage, widths 16k/32k/64k, final BN + ReLU, global average pooling and ``fc``,
no dropout. The module layout mirrors RepDistiller's ``models/wrn.py`` (``block{1,2,3}.layer.{i}``,
``convShortcut`` only where channels change) so its released ``wrn_40_2`` teacher loads with a
strict ``load_state_dict``.

Feature taps (``forward(x, is_feat=True, preact=...)``), as in RepDistiller:

- ``feats[0]`` is the **raw** stem conv output (no BN, no ReLU) and ``feats[1:4]`` the raw block
  outputs (residual sums of a pre-activation network); ``feats[4]`` is pooled after the final
  ``bn1`` + ReLU.
- ``preact=True`` replaces ``f1``, ``f2``, ``f3`` by ``block2.layer[0].bn1(f1)``,
  ``block3.layer[0].bn1(f2)`` and ``bn1(f3)`` (BN applied, before ReLU). RepDistiller calls those
  BNs a second time after the forward, which updates their running statistics twice per training
  step; here the same values are kept from the normal forward (the BN output, before the ReLU),
  so the taps are numerically identical and every BN runs exactly once.
"""

from __future__ import annotations

from torch import Tensor, nn

from .features import TAPS, FeatureRequest, Features
from .layers import FeatureModel, global_pool, init_he_normal, reject_kwargs, relu_tap
from .registry import register_model


class BasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3 + shortcut.

    The shortcut is the raw input when in == out channels, else ``convShortcut`` (1x1, stride)
    applied to the pre-activated input ``relu(bn1(x))``, as in RepDistiller.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = (
            None if self.equal_in_out else nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)
        )

    def forward(self, x: Tensor, keep_bn1: bool = False):
        """Returns the block output, or ``(output, bn1(x))`` when ``keep_bn1``."""
        a = self.bn1(x)
        act = relu_tap(a, keep_pre=keep_bn1)
        out = self.conv2(relu_tap(self.bn2(self.conv1(act)), keep_pre=False))
        out = out + (x if self.equal_in_out else self.convShortcut(act))
        return (out, a) if keep_bn1 else out


class NetworkBlock(nn.Module):
    """A stage: ``layer`` = Sequential of ``BasicBlock``s (keys ``block{s}.layer.{i}.*``)."""

    def __init__(self, nb_layers: int, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[
            BasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
            for i in range(nb_layers)
        ])

    def forward(self, x: Tensor, keep_bn1: bool = False):
        """Returns the stage output, or ``(output, layer[0].bn1(x))`` when ``keep_bn1``."""
        first, *rest = list(self.layer)
        if keep_bn1:
            x, a = first(x, keep_bn1=True)
        else:
            x = first(x)
        for block in rest:
            x = block(x)
        return (x, a) if keep_bn1 else x


class WideResNet(FeatureModel):
    """RepDistiller's ``WideResNet(depth, num_classes, widen_factor, dropRate=0.0)``."""

    def __init__(self, depth: int, widen_factor: int, num_classes: int = 100, in_channels: int = 3):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, ch[0], 3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 2)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.fc = nn.Linear(ch[3], num_classes)
        init_he_normal(self)

    def forward_taps(self, x: Tensor, request: FeatureRequest = TAPS) -> Features:
        keep = request.preact
        f0 = self.conv1(x)
        f1 = self.block1(f0)
        if keep:
            f2, f1_pre = self.block2(f1, keep_bn1=True)
            f3, f2_pre = self.block3(f2, keep_bn1=True)
        else:
            f2 = self.block2(f1)
            f3 = self.block3(f2)
        f3_pre = self.bn1(f3)
        head_map = relu_tap(f3_pre, keep_pre=keep)
        pooled = global_pool(head_map)
        feats = [f0, f1_pre, f2_pre, f3_pre, pooled] if keep else [f0, f1, f2, f3, pooled]
        return Features(self.fc(pooled), feats, head_map)

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def get_feat_modules(self) -> nn.ModuleList:
        return nn.ModuleList([self.conv1, self.block1, self.block2, self.block3])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [self.block2.layer[0].bn1, self.block3.layer[0].bn1, self.bn1]


def _build(name: str, depth: int, k: int, num_classes: int, in_channels: int, kwargs: dict) -> WideResNet:
    reject_kwargs(name, kwargs)
    return WideResNet(depth, k, num_classes=num_classes, in_channels=in_channels)


@register_model("wrn_16_1", family="wrn", lr=0.05)
def wrn_16_1(num_classes: int = 100, in_channels: int = 3, **kwargs) -> WideResNet:
    """RepDistiller's wide ResNet WRN-16-1 (depth 16, widen factor 1)."""
    return _build("wrn_16_1", 16, 1, num_classes, in_channels, kwargs)


@register_model("wrn_16_2", family="wrn", lr=0.05)
def wrn_16_2(num_classes: int = 100, in_channels: int = 3, **kwargs) -> WideResNet:
    """RepDistiller's wide ResNet WRN-16-2 (depth 16, widen factor 2)."""
    return _build("wrn_16_2", 16, 2, num_classes, in_channels, kwargs)


@register_model("wrn_40_1", family="wrn", lr=0.05)
def wrn_40_1(num_classes: int = 100, in_channels: int = 3, **kwargs) -> WideResNet:
    """RepDistiller's wide ResNet WRN-40-1 (depth 40, widen factor 1)."""
    return _build("wrn_40_1", 40, 1, num_classes, in_channels, kwargs)


@register_model("wrn_40_2", family="wrn", lr=0.05)
def wrn_40_2(num_classes: int = 100, in_channels: int = 3, **kwargs) -> WideResNet:
    """RepDistiller's wide ResNet WRN-40-2 (depth 40, widen factor 2)."""
    return _build("wrn_40_2", 40, 2, num_classes, in_channels, kwargs)
