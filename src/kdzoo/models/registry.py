"""The model registry: `create_model(name, num_classes, in_channels)` and `list_models()`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..registry import Registry
from .external import create_external, external_info, is_external
from .tapped import wrap_model

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(name: str, *, family: str, lr: float = 0.05, source: str = "repdistiller"):
    """Register a model factory ``factory(num_classes, in_channels) -> nn.Module``.

    ``lr`` is the RepDistiller recipe's initial learning rate for this architecture (0.01 for
    MobileNetV2 and the ShuffleNets, 0.05 otherwise).
    """
    return MODELS.register(name, family=family, lr=lr, source=source)


def create_model(name: str, num_classes: int = 100, in_channels: int = 3, feature_layers: list[str] | None = None,
                 **kwargs) -> nn.Module:
    """Build a registered model, or ``timm/<name>`` / ``torchvision/<name>`` (:mod:`kdzoo.models.external`;
    ``kwargs`` go to that library's builder). Unknown names raise an error that lists the known ones.
    ``feature_layers`` (kdzoo's, never the builder's): the modules tapped as stages by feature methods
    (:func:`~kdzoo.models.wrap_model`), instead of the network's own stages or those the stage search finds."""
    if is_external(name):
        model = create_external(name, num_classes, in_channels, **kwargs)
    else:
        model = MODELS.get(name).factory(num_classes=num_classes, in_channels=in_channels, **kwargs)
    if feature_layers is not None:
        model = wrap_model(model, feature_layers, name=name)
    model.kdzoo_arch = name  # remembered in checkpoints so teachers reload without guessing
    return model


def list_models() -> list[str]:
    """The zoo's names (``timm/<name>`` and ``torchvision/<name>`` come from those libraries)."""
    return MODELS.names()


def model_info(name: str) -> dict:
    """``family``, ``lr`` (the recipe's initial learning rate) and ``source`` of a model name."""
    return external_info(name) if is_external(name) else dict(MODELS.get(name).info)


def family_of(model: nn.Module) -> str:
    """A network's architecture family: the zoo's (``resnet``, ``wrn``, ...), else the class of the wrapped
    network (``ConvNeXt``, ``VisionTransformer``, a user's class), so same-family rules work for any pair."""
    name = getattr(model, "kdzoo_arch", None)
    if name in MODELS:
        return MODELS.get(name).info["family"]
    inner = getattr(model, "model", getattr(model, "backbone", model))
    return type(inner).__name__ if inner is not model else type(model).__name__
