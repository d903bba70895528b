"""ResNet50 with a CIFAR stem (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016).

Bottleneck blocks [3, 4, 6, 3] (widths 64/128/256/512, expansion 4, strides 1/2/2/2) after a
3x3 stride-1 stem conv + BN + ReLU (no max-pool), global average pooling and ``linear``. The
module layout mirrors RepDistiller's ``models/resnetv2.py`` so its released ``ResNet50`` teacher
loads with a strict ``load_state_dict``.

Feature taps: stem output (after ReLU), the four stage outputs, the pooled vector; with
``preact=True`` a stage tap is the residual sum of the stage's last block before its ReLU.
(RepDistiller returns ``[feats, logits]`` as a list in that case; kdzoo returns a tuple, which
unpacks the same way.)
"""

from __future__ import annotations

from torch import Tensor, nn

from .layers import Stage, StagedNet, conv1x1, conv3x3, conv_bn_shortcut, init_kaiming, reject_kwargs, relu_tap
from .registry import register_model


class Bottleneck(nn.Module):
    """1x1-BN-ReLU, 3x3(stride)-BN-ReLU, 1x1-BN (x4 channels) + shortcut, ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        needs_proj = stride != 1 or in_planes != out_planes
        self.shortcut = conv_bn_shortcut(in_planes, out_planes, stride) if needs_proj else nn.Sequential()

    def forward(self, x: Tensor, preact: bool = False):
        out = relu_tap(self.bn1(self.conv1(x)), keep_pre=False)
        out = relu_tap(self.bn2(self.conv2(out)), keep_pre=False)
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        post = relu_tap(out, keep_pre=preact)
        return (post, out) if preact else post


class ResNetBottleneck(StagedNet):
    """RepDistiller's ``ResNet(Bottleneck, num_blocks)`` of ``resnetv2.py`` (zero_init_residual=False)."""

    def __init__(self, num_blocks: list[int], num_classes: int = 100, in_channels: int = 3):
        super().__init__()
        self.conv1 = conv3x3(in_channels, 64)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        stages = []
        for planes, n, stride in zip((64, 128, 256, 512), num_blocks, (1, 2, 2, 2), strict=True):
            blocks = []
            for i in range(n):
                blocks.append(Bottleneck(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes * Bottleneck.expansion
            stages.append(Stage(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.linear = nn.Linear(in_planes, num_classes)
        init_kaiming(self)

    stage_names = ("layer1", "layer2", "layer3", "layer4")

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [stage[-1].bn3 for stage in self.stages()]


@register_model("ResNet50", family="resnet_bottleneck", lr=0.05)
def ResNet50(num_classes: int = 100, in_channels: int = 3, **kwargs) -> ResNetBottleneck:
    """RepDistiller's ResNet50 for CIFAR: bottleneck blocks [3, 4, 6, 3]."""
    reject_kwargs("ResNet50", kwargs)
    return ResNetBottleneck([3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels)
