"""Networks from other libraries by name: ``timm/<name>`` and ``torchvision/<name>``.

- ``timm/<name>`` (``pip install kdzoo[timm]``): ``timm.create_model(name, num_classes=..., in_chans=...)``
  with any extra options (``--model-opt img_size=32 --model-opt patch_size=4`` for a ViT on 32 px
  images); stages from timm's ``feature_info``.
- ``torchvision/<name>``: ``torchvision.models.get_model(name, weights=None, num_classes=...)``; the
  first convolution is rebuilt for ``in_channels`` other than 3. ResNets and MobileNetV2 use kdzoo's
  native adapter (pre-activation taps, BN before ReLU); other models (EfficientNet, ConvNeXt,
  RegNet, ViT, ...) get hook taps at the last block of each resolution.

Both become :class:`~kdzoo.models.TappedModel` (or the adapter), so every method whose features the
network has can use them. ``pretrained=True`` (an option) loads the library's own weights, which
needs network access; nothing is downloaded otherwise.

Input size: these networks down-sample 32 times (ViT/16: 16 times), so a 32 px image ends at a 1x1
map (ViT/16: 2x2 patches). They work on CIFAR/Fashion-MNIST sizes but are built for 224 px; for a
ViT on small images pass a smaller patch (``--model-opt patch_size=4 --model-opt img_size=32``).
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import ConfigError, did_you_mean
from .tapped import wrap_model

SOURCES = ("timm", "torchvision")
#: The initial learning rate used when none is given (SGD, like the zoo's recipe).
DEFAULT_LR = 0.05


def is_external(name: str) -> bool:
    """Whether ``name`` names a network of another library (``timm/...`` or ``torchvision/...``)."""
    return "/" in name and name.split("/", 1)[0] in SOURCES


def _timm():
    try:
        return importlib.import_module("timm")
    except ImportError:
        raise ConfigError("timm models need the optional extra: pip install 'kdzoo[timm]' (or pip install "
                          "timm).") from None


def external_info(name: str) -> dict[str, Any]:
    """Registry-style facts of an external name; an unknown name is an :class:`UnknownNameError`."""
    source, arch = name.split("/", 1)
    known = _timm().list_models() if source == "timm" else _torchvision_names()
    if arch not in known:
        hint = did_you_mean(arch, known, cutoff=0.6, shown=lambda c: f"{source}/{c}")
        raise ConfigError(f"Unknown {source} model {arch!r}.{hint} {listing_hint(source, arch, known)}")
    return {"family": source, "lr": DEFAULT_LR, "source": source}


def listing_hint(source: str, arch: str, known: list[str]) -> str:
    """How to list the names of ``source``, each call with the count of names it lists: timm's for a pattern
    made of the typed name's leading letters (``mobilenetv3_smal`` -> ``*mobilenetv*``) when any match, and all."""
    everything = "timm.list_models()" if source == "timm" else "torchvision.models.list_models()"
    every = f"{everything} lists all {len(known)} names."
    stem = re.match(r"[a-z]*", arch.lower()).group()
    matching = fnmatch.filter(known, f"*{stem}*") if source == "timm" and stem else []
    if not matching:
        return every
    return f"timm.list_models('*{stem}*') lists the {len(matching)} names that match; {every}"


def _torchvision_names() -> list[str]:
    from torchvision import models

    return models.list_models(module=models)


def create_external(name: str, num_classes: int, in_channels: int, **options: Any) -> nn.Module:
    """Build ``timm/<name>`` or ``torchvision/<name>`` with kdzoo's feature protocol."""
    external_info(name)
    source, arch = name.split("/", 1)
    if source == "timm":
        timm = _timm()
        model = with_options(lambda **o: timm.create_model(arch, num_classes=num_classes, in_chans=in_channels, **o),
                             options, name)
        return wrap_model(model, name=name)
    return _create_torchvision(name, arch, num_classes, in_channels, options)


def with_options(build: Callable[..., nn.Module], options: dict[str, Any], name: str) -> nn.Module:
    """``build(**options)``; an option the constructor does not take, or one its builder sets itself, is a
    ConfigError that lists the ones it takes (the keywords with defaults of the class that ``build()`` makes without
    options); a value the builder refuses (``ValueError``: ``BasicBlock only supports groups=1``) is a ConfigError
    that quotes it."""
    try:
        return build(**options)
    except ValueError as exc:
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        raise ConfigError(f"{name} refuses its options ({given or 'none given'}): {exc}.") from None
    except TypeError as exc:
        refused = {"unexpected keyword argument": "does not take {}", "got multiple values for": "sets {} itself"}
        why = next((words for text, words in refused.items() if text in str(exc)), None)
        if why is None:
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in options.items())
        cls = type(build())
        accepted = [p.name for p in inspect.signature(cls.__init__).parameters.values()  # the builder sets the rest
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not p.empty]
        raise ConfigError(f"{name} {why.format(str(exc).rsplit(' ', 1)[-1])} (given: {given}); its constructor "
                          f"{cls.__name__} takes: {', '.join(accepted) or 'no options'}.") from None


def _create_torchvision(name: str, arch: str, num_classes: int, in_channels: int, options: dict[str, Any]) -> nn.Module:
    from torchvision import models

    from .torchvision_adapter import FeatureAdapter, check_builder_options, replace_first_conv

    pretrained = bool(options.pop("pretrained", False))
    builder = models.get_model_builder(arch)
    options = check_builder_options(name, builder, options, also=("pretrained",))
    built = inspect.signature(builder).return_annotation
    if isinstance(built, type) and "aux_logits" in inspect.signature(built).parameters:
        options = {"aux_logits": False, **options}  # GoogLeNet, Inception v3: one output, the logits, in training too
    if pretrained:
        model = with_options(lambda **o: builder(weights="DEFAULT", **o), options, name)
        reset_classifier(model, num_classes, name)
    else:
        model = with_options(lambda **o: builder(weights=None, num_classes=num_classes, **o), options, name)
    if in_channels != 3:
        first = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d))
        model.set_submodule(first, replace_first_conv(model.get_submodule(first), in_channels))
    if isinstance(model, (models.ResNet, models.MobileNetV2)):
        adapter = FeatureAdapter(model)
        adapter.kdzoo_arch = name
        return adapter
    side = getattr(model, "image_size", None)  # torchvision's ViT runs at its own image size only
    return wrap_model(model, input_shape=(in_channels, side, side) if side else None, name=name)


def reset_classifier(model: nn.Module, num_classes: int, name: str) -> None:
    """Replace the model's last Linear by a fresh one for ``num_classes`` (pretrained weights, new classes)."""
    last = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ConfigError(f"{name} has no nn.Linear classifier to resize for {num_classes} classes.")
    old = model.get_submodule(last[-1])
    if old.out_features != num_classes:
        model.set_submodule(last[-1], nn.Linear(old.in_features, num_classes))
