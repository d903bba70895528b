"""ShuffleNet v1 (Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network for
Mobile Devices", CVPR 2018), CIFAR variant.

``ShuffleV1``: groups 3, stage widths 240/480/960 with 4/8/4 blocks, a 1x1 stride-1 stem conv
3 -> 24 + BN + ReLU, global average pooling and ``linear``. The first block of each stage has
stride 2 and concatenates an ``AvgPool2d(3, 2, 1)`` shortcut; the first 1x1 conv of the network's
first block is ungrouped. The layout mirrors RepDistiller's ``models/ShuffleNetv1.py`` so its
checkpoints load with a strict ``load_state_dict``. Default PyTorch initialisation.

Feature taps: stem output, the three stage outputs, the pooled vector; with ``preact=True`` a stage
tap is the last block's ``branch + shortcut`` before its ReLU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import KdzooError
from .features import FeatureSupport
from .layers import Stage, StagedNet, channel_shuffle, conv1x1, conv3x3, reject_kwargs, relu_tap
from .registry import register_model


class Bottleneck(nn.Module):
    """Grouped 1x1-BN-ReLU, channel shuffle, depthwise 3x3(stride)-BN, grouped 1x1-BN; then
    ``relu(branch + x)`` (stride 1) or ``relu(cat(branch, avgpool(x)))`` (stride 2)."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int):
        super().__init__()
        mid = out_planes // 4
        self.stride = stride
        self.groups1 = 1 if in_planes == 24 else groups  # the network's first 1x1 conv is ungrouped
        self.conv1 = conv1x1(in_planes, mid, groups=self.groups1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = conv3x3(mid, mid, stride, groups=mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = conv1x1(mid, out_planes, groups=groups)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else None

    def forward(self, x: Tensor, preact: bool = False):
        out = relu_tap(self.bn1(self.conv1(x)), keep_pre=False)
        out = channel_shuffle(out, self.groups1)
        out = relu_tap(self.bn2(self.conv2(out)), keep_pre=False)
        out = self.bn3(self.conv3(out))
        if self.shortcut is not None:
            out = torch.cat([out, self.shortcut(x)], 1)
        else:
            out += x
        post = relu_tap(out, keep_pre=preact)
        return (post, out) if preact else post


class ShuffleNetV1(StagedNet):
    """RepDistiller's ``ShuffleNet(cfg)``; the defaults give the registered ``ShuffleV1``."""

    def __init__(self, num_classes: int = 100, in_channels: int = 3, out_planes=(240, 480, 960),
                 num_blocks=(4, 8, 4), groups: int = 3):
        super().__init__()
        self.conv1 = conv1x1(in_channels, 24)
        self.bn1 = nn.BatchNorm2d(24)
        in_planes = 24
        stages = []
        for planes, n in zip(out_planes, num_blocks, strict=True):
            blocks = []
            for i in range(n):
                # the stride-2 block's branch makes out - in channels; the shortcut adds in
                branch = planes - in_planes if i == 0 else planes
                blocks.append(Bottleneck(in_planes, branch, 2 if i == 0 else 1, groups))
                in_planes = planes
            stages.append(Stage(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(in_planes, num_classes)


    def feature_support(self) -> FeatureSupport:
        return FeatureSupport(bn_before_relu=False, note="half of each block's output bypasses the branch and the "
                              "channels are shuffled")

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        raise KdzooError(
            "ShuffleV1 has no BN directly before each stage's final ReLU (the last block adds the "
            "identity shortcut after bn3), so methods that need get_bn_before_relu() (OFD) cannot "
            "use it; pick a ResNet, WRN, VGG or MobileNetV2 model instead."
        )


@register_model("ShuffleV1", family="shufflenet", lr=0.01)
def ShuffleV1(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ShuffleNetV1:
    """RepDistiller's ShuffleNetV1 for CIFAR."""
    reject_kwargs("ShuffleV1", kwargs)
    return ShuffleNetV1(num_classes=num_classes, in_channels=in_channels)
