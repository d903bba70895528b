"""VGG with batch norm (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale
Image Recognition", ICLR 2015), CIFAR variant.

vgg8, vgg11, vgg13, vgg16, vgg19 are RepDistiller's ``vgg*_bn``: five ``block{0..4}`` Sequentials
of [conv3x3 (with bias), BN, ReLU] whose trailing ReLU is dropped (it is applied functionally in
``forward``, so pre-ReLU maps are the block outputs), max-pools between blocks, global average
pooling and a single ``Linear(512, n)`` ``classifier``. The layout mirrors RepDistiller's
``models/vgg.py`` so its released ``vgg13`` teacher loads with a strict ``load_state_dict``.

``pool3`` (between block3 and block4) is applied only when the input height is 64, exactly as in
RepDistiller; at 32x32 both ``feats[3]`` and ``feats[4]`` are 4x4.

Feature taps: block0 after ReLU (also with ``preact=True``), blocks 1-4 after ReLU (``preact=True``:
the block's BN output before the ReLU), the pooled vector.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .features import TAPS, FeatureRequest, Features
from .layers import FeatureModel, global_pool, init_he_normal, reject_kwargs, relu_tap
from .registry import register_model

_CFGS = {
    "S": [[64], [128], [256], [512], [512]],
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "D": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "E": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def _make_block(widths: list[int], in_channels: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for w in widths:
        layers += [nn.Conv2d(in_channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        in_channels = w
    return nn.Sequential(*layers[:-1])  # trailing ReLU applied in forward


class VGG(FeatureModel):
    """RepDistiller's ``VGG(cfg, batch_norm=True)``."""

    def __init__(self, cfg: list[list[int]], num_classes: int = 100, in_channels: int = 3):
        super().__init__()
        ins = [in_channels] + [c[-1] for c in cfg[:-1]]
        self.block0, self.block1, self.block2, self.block3, self.block4 = (
            _make_block(widths, c) for widths, c in zip(cfg, ins, strict=True)
        )
        self.pool0 = nn.MaxPool2d(2, 2)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.pool3 = nn.MaxPool2d(2, 2)
        self.pool4 = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cfg[-1][-1], num_classes)
        init_he_normal(self, linear_std=0.01)

    def forward_taps(self, x: Tensor, request: FeatureRequest = TAPS) -> Features:
        keep = request.preact
        h = x.shape[2]
        f0 = F.relu(self.block0(x), inplace=True)
        taps = [f0]
        x = f0
        stages = [(self.pool0, self.block1), (self.pool1, self.block2), (self.pool2, self.block3),
                  (self.pool3 if h == 64 else None, self.block4)]
        for pool, block in stages:
            if pool is not None:
                x = pool(x)
            pre = block(x)
            x = relu_tap(pre, keep_pre=keep)
            taps.append(pre if keep else x)
        pooled = global_pool(x)
        return Features(self.classifier(pooled), [*taps, pooled], x)

    def get_classifier(self) -> nn.Linear:
        return self.classifier

    def get_feat_modules(self) -> nn.ModuleList:
        return nn.ModuleList([self.block0, self.pool0, self.block1, self.pool1, self.block2, self.pool2,
                              self.block3, self.pool3, self.block4, self.pool4])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        return [self.block1[-1], self.block2[-1], self.block3[-1], self.block4[-1]]


def _build(name: str, cfg: str, num_classes: int, in_channels: int, kwargs: dict) -> VGG:
    reject_kwargs(name, kwargs)
    return VGG(_CFGS[cfg], num_classes=num_classes, in_channels=in_channels)


@register_model("vgg8", family="vgg", lr=0.05)
def vgg8(num_classes: int = 100, in_channels: int = 3, **kwargs) -> VGG:
    """RepDistiller's CIFAR VGG-8 with BatchNorm."""
    return _build("vgg8", "S", num_classes, in_channels, kwargs)


@register_model("vgg11", family="vgg", lr=0.05)
def vgg11(num_classes: int = 100, in_channels: int = 3, **kwargs) -> VGG:
    """RepDistiller's CIFAR VGG-11 with BatchNorm."""
    return _build("vgg11", "A", num_classes, in_channels, kwargs)


@register_model("vgg13", family="vgg", lr=0.05)
def vgg13(num_classes: int = 100, in_channels: int = 3, **kwargs) -> VGG:
    """RepDistiller's CIFAR VGG-13 with BatchNorm."""
    return _build("vgg13", "B", num_classes, in_channels, kwargs)


@register_model("vgg16", family="vgg", lr=0.05)
def vgg16(num_classes: int = 100, in_channels: int = 3, **kwargs) -> VGG:
    """RepDistiller's CIFAR VGG-16 with BatchNorm."""
    return _build("vgg16", "D", num_classes, in_channels, kwargs)


@register_model("vgg19", family="vgg", lr=0.05)
def vgg19(num_classes: int = 100, in_channels: int = 3, **kwargs) -> VGG:
    """RepDistiller's CIFAR VGG-19 with BatchNorm."""
    return _build("vgg19", "E", num_classes, in_channels, kwargs)
