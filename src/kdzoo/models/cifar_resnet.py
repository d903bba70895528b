"""CIFAR ResNets (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

resnet8 ... resnet110 (widths 16/16/32/64) and resnet8x4 / resnet32x4 (32/64/128/256): a 3x3
stem conv + BN + ReLU, three stages of ``(depth - 2) / 6`` basic blocks (strides 1/2/2), global
average pooling and ``fc``. The module layout mirrors RepDistiller's ``models/resnet.py`` so its
released teacher checkpoints load with a strict ``load_state_dict``.

Feature taps (``forward(x, is_feat=True, preact=...)``): stem output (after BN + ReLU), the three
stage outputs, the pooled vector. With ``preact=True`` a stage tap is the residual sum of the
stage's last block before its final ReLU; stem and pooled vector are unchanged.
"""

from __future__ import annotations

from torch import Tensor, nn

from .layers import Stage, StagedNet, conv3x3, conv_bn_shortcut, init_kaiming, reject_kwargs, relu_tap
from .registry import register_model


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU. ``downsample`` = 1x1 conv + BN when needed."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = conv_bn_shortcut(in_planes, planes, stride) if stride != 1 or in_planes != planes else None

    def forward(self, x: Tensor, preact: bool = False):
        out = relu_tap(self.bn1(self.conv1(x)), keep_pre=False)
        out = self.bn2(self.conv2(out))
        out += x if self.downsample is None else self.downsample(x)
        post = relu_tap(out, keep_pre=preact)
        return (post, out) if preact else post


class ResNet(StagedNet):
    """RepDistiller's CIFAR ``ResNet(depth, num_filters, 'basicblock')``."""

    classifier_name = "fc"

    def __init__(self, depth: int, num_filters: list[int], num_classes: int = 100, in_channels: int = 3):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"CIFAR ResNet depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = conv3x3(in_channels, num_filters[0])
        self.bn1 = nn.BatchNorm2d(num_filters[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_stage(num_filters[0], num_filters[1], n, stride=1)
        self.layer2 = self._make_stage(num_filters[1], num_filters[2], n, stride=2)
        self.layer3 = self._make_stage(num_filters[2], num_filters[3], n, stride=2)
        self.fc = nn.Linear(num_filters[3], num_classes)
        init_kaiming(self)

    @staticmethod
    def _make_stage(in_planes: int, planes: int, blocks: int, stride: int) -> Stage:
        return Stage(*[BasicBlock(in_planes if i == 0 else planes, planes, stride if i == 0 else 1)
                       for i in range(blocks)])

    def stem(self, x: Tensor) -> Tensor:
        return self.relu(self.bn1(self.conv1(x)))

    def get_feat_modules(self) -> nn.ModuleList:
        return nn.ModuleList([self.conv1, self.bn1, self.relu, *self.stages()])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [stage[-1].bn2 for stage in (self.layer1, self.layer2, self.layer3)]


_SMALL = [16, 16, 32, 64]
_X4 = [32, 64, 128, 256]


def _build(name: str, depth: int, widths: list[int], num_classes: int, in_channels: int, kwargs: dict) -> ResNet:
    reject_kwargs(name, kwargs)
    return ResNet(depth, widths, num_classes=num_classes, in_channels=in_channels)


@register_model("resnet8", family="resnet", lr=0.05)
def resnet8(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-8: 16/16/32/64 channels."""
    return _build("resnet8", 8, _SMALL, num_classes, in_channels, kwargs)


@register_model("resnet14", family="resnet", lr=0.05)
def resnet14(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-14: 16/16/32/64 channels."""
    return _build("resnet14", 14, _SMALL, num_classes, in_channels, kwargs)


@register_model("resnet20", family="resnet", lr=0.05)
def resnet20(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-20: 16/16/32/64 channels."""
    return _build("resnet20", 20, _SMALL, num_classes, in_channels, kwargs)


@register_model("resnet32", family="resnet", lr=0.05)
def resnet32(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-32: 16/16/32/64 channels."""
    return _build("resnet32", 32, _SMALL, num_classes, in_channels, kwargs)


@register_model("resnet44", family="resnet", lr=0.05)
def resnet44(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-44: 16/16/32/64 channels."""
    return _build("resnet44", 44, _SMALL, num_classes, in_channels, kwargs)


@register_model("resnet56", family="resnet", lr=0.05)
def resnet56(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-56: 16/16/32/64 channels."""
    return _build("resnet56", 56, _SMALL, num_classes, in_channels, kwargs)


@register_model("resnet110", family="resnet", lr=0.05)
def resnet110(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-110: 16/16/32/64 channels."""
    return _build("resnet110", 110, _SMALL, num_classes, in_channels, kwargs)


@register_model("resnet8x4", family="resnet", lr=0.05)
def resnet8x4(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-8, four times wider: 32/64/128/256 channels."""
    return _build("resnet8x4", 8, _X4, num_classes, in_channels, kwargs)


@register_model("resnet32x4", family="resnet", lr=0.05)
def resnet32x4(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNet:
    """RepDistiller's CIFAR ResNet-32, four times wider: 32/64/128/256 channels."""
    return _build("resnet32x4", 32, _X4, num_classes, in_channels, kwargs)
