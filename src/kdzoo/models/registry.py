"""The model registry: `create_model(name, num_classes, in_channels)` and `list_models()`."""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(name: str, *, family: str, lr: float = 0.05, source: str = "repdistiller"):
    """Register a model factory ``factory(num_classes, in_channels) -> nn.Module``.

    ``lr`` is the RepDistiller recipe's initial learning rate for this architecture (0.01 for
    MobileNetV2 and the ShuffleNets, 0.05 otherwise).
    """
    return MODELS.register(name, family=family, lr=lr, source=source)


def create_model(name: str, num_classes: int = 100, in_channels: int = 3, **kwargs) -> nn.Module:
    """Build a registered model. Unknown names raise an error that lists the known ones."""
    model = MODELS.get(name).factory(num_classes=num_classes, in_channels=in_channels, **kwargs)
    model.kdzoo_arch = name  # remembered in checkpoints so teachers reload without guessing
    return model


def list_models() -> list[str]:
    return MODELS.names()


def model_info(name: str) -> dict:
    return dict(MODELS.get(name).info)
