"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018),
CIFAR variant.

``MobileNetV2`` is RepDistiller's ``mobile_half``: expansion T = 6, width 0.5 (stem 16 channels,
block widths 8/12/16/32/48/80/160), a 3x3 stride-2 stem, seven ``blocks`` stages of inverted
residuals, a 1x1 ``conv2`` to 1280 channels, global average pooling and ``classifier.0`` (Linear).
The layout mirrors RepDistiller's ``models/mobilenetv2.py`` (``conv1.{0,1}``,
``blocks.{s}.{i}.conv.{0,1,3,4,6,7}``, ``conv2.{0,1}``) so its checkpoints load with a strict
``load_state_dict``. Nothing is printed on construction (RepDistiller prints "6 0.5").

Feature taps: ``conv1`` output (16x16 for a 32x32 input), the outputs of ``blocks[1]``, ``[2]``,
``[4]``, ``[6]`` (linear bottlenecks: no ReLU, may be negative) and the pooled 1280-d ``conv2``
output; ``feats[-2]`` and ``feats[-1]`` thus come from different layers. ``preact`` is ignored.
"""

from __future__ import annotations

from torch import Tensor, nn

from .features import TAPS, FeatureRequest, Features
from .layers import FeatureModel, global_pool, init_he_normal, reject_kwargs
from .registry import register_model

# (expansion t, channels c, repeats n, first stride s) before width scaling, T = expansion
_SETTING = [(1, 16, 1, 1), ("T", 24, 2, 1), ("T", 32, 3, 2), ("T", 64, 4, 2),
            ("T", 96, 3, 1), ("T", 160, 3, 2), ("T", 320, 1, 1)]
_TAPPED = (1, 2, 4, 6)  # indices of ``blocks`` whose outputs are feature taps


def _conv_bn_relu(inp: int, oup: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(oup), nn.ReLU(inplace=True)
    )


class InvertedResidual(nn.Module):
    """pw conv-BN-ReLU, dw conv(stride)-BN-ReLU, pw-linear conv-BN; identity added when stride 1
    and in == out channels."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(FeatureModel):
    """RepDistiller's ``MobileNetV2(T, feature_dim=num_classes, width_mult)``; the defaults give the
    registered ``MobileNetV2`` (``mobile_half``)."""

    def __init__(self, num_classes: int = 100, in_channels: int = 3, T: int = 6, width_mult: float = 0.5):
        super().__init__()
        inp = int(32 * width_mult)
        self.conv1 = _conv_bn_relu(in_channels, inp, 3, 2)
        stages = []
        for t, c, n, s in _SETTING:
            t = T if t == "T" else t
            oup = int(c * width_mult)
            blocks = []
            for i in range(n):
                blocks.append(InvertedResidual(inp, oup, s if i == 0 else 1, t))
                inp = oup
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.ModuleList(stages)
        self.last_channel = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv2 = _conv_bn_relu(inp, self.last_channel, 1, 1)
        self.classifier = nn.Sequential(nn.Linear(self.last_channel, num_classes))
        init_he_normal(self, linear_std=0.01)

    def forward_taps(self, x: Tensor, request: FeatureRequest = TAPS) -> Features:
        out = self.conv1(x)
        taps = [out]
        for i, stage in enumerate(self.blocks):
            out = stage(out)
            if i in _TAPPED:
                taps.append(out)
        head_map = self.conv2(out)
        pooled = global_pool(head_map)
        return Features(self.classifier(pooled), [*taps, pooled], head_map)

    def get_classifier(self) -> nn.Linear:
        return self.classifier[0]

    def get_feat_modules(self) -> nn.ModuleList:
        return nn.ModuleList([self.conv1, self.blocks])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [self.blocks[i][-1].conv[-1] for i in _TAPPED]


@register_model("MobileNetV2", family="mobilenet", lr=0.01)
def mobile_half(num_classes: int = 100, in_channels: int = 3, **kwargs) -> MobileNetV2:
    """RepDistiller's ``mobile_half``: T = 6, width 0.5."""
    reject_kwargs("MobileNetV2", kwargs)
    return MobileNetV2(T=6, width_mult=0.5, num_classes=num_classes, in_channels=in_channels)
