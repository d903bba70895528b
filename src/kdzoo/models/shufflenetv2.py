"""ShuffleNet v2 (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design", ECCV 2018), CIFAR variant.

``ShuffleV2`` (net size 1): a 1x1 stride-1 stem conv 3 -> 24 + BN + ReLU, three stages of one
stride-2 ``DownBlock`` and 3/7/3 ``BasicBlock``s (channel split 0.5, shuffle with 2 groups), widths
116/232/464, a 1x1 ``conv2`` to 1024 + ``bn2`` + ReLU, global average pooling and ``linear``. The
layout mirrors RepDistiller's ``models/ShuffleNetv2.py`` so its checkpoints load with a strict
``load_state_dict``. Default PyTorch initialisation.

Feature taps: stem output, the three stage outputs (after the last block's channel shuffle), the
pooled ``conv2`` vector. With ``preact=True`` a stage tap is ``cat(x1, pre-ReLU branch)`` of the
stage's last block **before** the channel shuffle, so its channel order differs from the
``preact=False`` tap (``post == channel_shuffle(relu(pre), 2)``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..errors import KdzooError
from .features import FeatureSupport
from .layers import Stage, StagedNet, channel_shuffle, conv1x1, conv3x3, reject_kwargs, relu_tap
from .registry import register_model


class BasicBlock(nn.Module):
    """Split channels in halves (x1, x2); x2 -> 1x1-BN-ReLU, dw3x3-BN, 1x1-BN-ReLU; concat; shuffle."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels // 2
        self.conv1 = conv1x1(c, c)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = conv3x3(c, c, groups=c)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = conv1x1(c, c)
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x: Tensor, preact: bool = False):
        c = x.shape[1] // 2
        x1, x2 = x[:, :c], x[:, c:]
        out = relu_tap(self.bn1(self.conv1(x2)), keep_pre=False)
        out = self.bn2(self.conv2(out))
        pre = self.bn3(self.conv3(out))
        post = channel_shuffle(torch.cat([x1, relu_tap(pre, keep_pre=preact)], 1), 2)
        return (post, torch.cat([x1, pre], 1)) if preact else post


class DownBlock(nn.Module):
    """Stride-2 block: left dw3x3(s2)-BN, 1x1-BN-ReLU; right 1x1-BN-ReLU, dw3x3(s2)-BN, 1x1-BN-ReLU;
    concat; shuffle."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        self.conv1 = conv3x3(in_channels, in_channels, stride=2, groups=in_channels)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = conv1x1(in_channels, mid)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = conv1x1(in_channels, mid)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = conv3x3(mid, mid, stride=2, groups=mid)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = conv1x1(mid, mid)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: Tensor) -> Tensor:
        left = relu_tap(self.bn2(self.conv2(self.bn1(self.conv1(x)))), keep_pre=False)
        right = relu_tap(self.bn3(self.conv3(x)), keep_pre=False)
        right = relu_tap(self.bn5(self.conv5(self.bn4(self.conv4(right)))), keep_pre=False)
        return channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(StagedNet):
    """RepDistiller's ``ShuffleNetV2(net_size)``; the defaults give the registered ``ShuffleV2``."""

    def __init__(self, num_classes: int = 100, in_channels: int = 3, out_channels=(116, 232, 464, 1024),
                 num_blocks=(3, 7, 3)):
        super().__init__()
        self.conv1 = conv1x1(in_channels, 24)
        self.bn1 = nn.BatchNorm2d(24)
        c_in = 24
        stages = []
        for c_out, n in zip(out_channels[:3], num_blocks, strict=True):
            stages.append(Stage(DownBlock(c_in, c_out), *[BasicBlock(c_out) for _ in range(n)]))
            c_in = c_out
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = conv1x1(c_in, out_channels[3])
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.linear = nn.Linear(out_channels[3], num_classes)

    def head_map(self, x: Tensor) -> Tensor:
        return relu_tap(self.bn2(self.conv2(x)), keep_pre=False)

    def feature_support(self) -> FeatureSupport:
        return FeatureSupport(bn_before_relu=False, note="half of each block's output bypasses the branch and the "
                              "channels are shuffled")

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        raise KdzooError(
            "ShuffleV2 has no BN directly before each stage's final ReLU (half of each block's "
            "output bypasses the branch and the channels are shuffled), so methods that need "
            "get_bn_before_relu() (OFD) cannot use it; pick a ResNet, WRN, VGG or MobileNetV2 model instead."
        )


@register_model("ShuffleV2", family="shufflenet", lr=0.01)
def ShuffleV2(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ShuffleNetV2:
    """RepDistiller's ShuffleNetV2 for CIFAR."""
    reject_kwargs("ShuffleV2", kwargs)
    return ShuffleNetV2(num_classes=num_classes, in_channels=in_channels)
