"""The zoo's torchvision networks: ``tv_resnet18``, ``tv_resnet34``, ``tv_resnet50``, ``tv_mobilenet_v2``.

They always build with ``weights=None``: nothing is downloaded. ``num_classes`` sets the classifier and
``in_channels`` replaces the first conv (freshly initialised); any other keyword is passed to the
torchvision builder. Each is a :class:`~kdzoo.models.torchvision_adapter.FeatureAdapter`, so its state-dict
keys are torchvision's.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torchvision import models as tvm

from ..errors import ConfigError
from .external import with_options
from .registry import register_model
from .torchvision_adapter import FeatureAdapter, check_builder_options, replace_first_conv


def _build(name: str, builder: Callable[..., nn.Module], num_classes: int, in_channels: int,
           kwargs: dict) -> FeatureAdapter:
    for bad in ("weights", "pretrained"):
        if bad in kwargs:
            raise ConfigError(
                f"{name} is always built with weights=None (nothing is downloaded); load torchvision "
                f"weights with `model.load_state_dict(state_dict)` instead of passing {bad}=."
            )
    model = with_options(lambda **o: builder(weights=None, num_classes=num_classes, **o),
                         check_builder_options(name, builder, kwargs), name)
    if in_channels != 3:
        if isinstance(model, tvm.ResNet):
            model.conv1 = replace_first_conv(model.conv1, in_channels)
        else:
            model.features[0][0] = replace_first_conv(model.features[0][0], in_channels)
    return FeatureAdapter(model)


@register_model("tv_resnet18", family="torchvision", lr=0.05, source="torchvision")
def tv_resnet18(num_classes: int = 100, in_channels: int = 3, **kwargs) -> FeatureAdapter:
    """torchvision's ResNet-18, untrained, with kdzoo's feature taps."""
    return _build("tv_resnet18", tvm.resnet18, num_classes, in_channels, kwargs)


@register_model("tv_resnet34", family="torchvision", lr=0.05, source="torchvision")
def tv_resnet34(num_classes: int = 100, in_channels: int = 3, **kwargs) -> FeatureAdapter:
    """torchvision's ResNet-34, untrained, with kdzoo's feature taps."""
    return _build("tv_resnet34", tvm.resnet34, num_classes, in_channels, kwargs)


@register_model("tv_resnet50", family="torchvision", lr=0.05, source="torchvision")
def tv_resnet50(num_classes: int = 100, in_channels: int = 3, **kwargs) -> FeatureAdapter:
    """torchvision's ResNet-50, untrained, with kdzoo's feature taps."""
    return _build("tv_resnet50", tvm.resnet50, num_classes, in_channels, kwargs)


@register_model("tv_mobilenet_v2", family="torchvision", lr=0.01, source="torchvision")
def tv_mobilenet_v2(num_classes: int = 100, in_channels: int = 3, **kwargs) -> FeatureAdapter:
    """torchvision's MobileNetV2, untrained, with kdzoo's feature taps."""
    return _build("tv_mobilenet_v2", tvm.mobilenet_v2, num_classes, in_channels, kwargs)
