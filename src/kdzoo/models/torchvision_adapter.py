"""torchvision classification models with kdzoo's feature interface.

:class:`FeatureAdapter` wraps a torchvision ``ResNet`` or ``MobileNetV2`` so that it answers
``forward_taps(x, request)`` (and ``forward(x, is_feat, preact)``) like the CIFAR zoo: ``feats[0]`` is the stem output,
then one map per stage, then the pooled vector (the classifier input).

- ResNet: stem = conv1-bn1-relu-maxpool (stride 4); stages = ``layer1..layer4``; with
  ``preact=True`` a stage tap is the last block's residual sum before its ReLU (recomputed from the
  block's own modules, so torchvision's in-place ReLU cannot overwrite it).
- MobileNetV2: stem = ``features[0]`` (stride 2); stages end at ``features[3]``, ``[6]``, ``[13]``,
  ``[17]`` (24/32/96/320 channels, strides 4/8/16/32: the same blocks as the CIFAR MobileNetV2's
  taps); the pooled vector is the 1280-d ``features[18]`` output. ``preact`` is ignored (linear
  bottleneck outputs have no ReLU), as for the CIFAR MobileNetV2.

The adapter adopts the wrapped model's child modules as its own, so **its state-dict keys are
exactly torchvision's** (``conv1.weight``, ``layer1.0.bn1.running_mean``, ``fc.weight``, ...):
torchvision/ImageNet weights load with ``adapter.load_state_dict(torchvision_state_dict)`` (with
``strict=False`` or after dropping ``fc.*``/``classifier.*`` when ``num_classes`` differs).

The zoo's ``tv_*`` names (:mod:`kdzoo.models.tv_models`) and ``torchvision/<name>``
(:mod:`kdzoo.models.external`) build their ResNets and MobileNetV2 with it, and check the options they pass to
torchvision's builders with :func:`check_builder_options` (values of the kinds the model class declares; a class
or function, such as ``norm_layer``, never from text).
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision import models as tvm
from torchvision.models.resnet import BasicBlock as TVBasicBlock

from ..declared import check_value, declared
from ..errors import ConfigError, KdzooError
from .features import TAPS, FeatureRequest, Features
from .layers import FeatureModel

_MOBILENET_STAGES = ((1, 4), (4, 7), (7, 14), (14, 18))  # features[a:b] per stage


class FeatureAdapter(FeatureModel):
    """Wrap a torchvision ``ResNet`` or ``MobileNetV2`` (see the module docstring)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if isinstance(model, tvm.ResNet):
            self.kind = "resnet"
        elif isinstance(model, tvm.MobileNetV2):
            self.kind = "mobilenet_v2"
        else:
            raise KdzooError(
                f"FeatureAdapter supports torchvision ResNet and MobileNetV2 models, not {type(model).__name__}."
            )
        for name, child in model.named_children():  # same keys as the torchvision model
            self.add_module(name, child)

    # -- structure -------------------------------------------------------------------------------
    def _stem(self) -> list[nn.Module]:
        if self.kind == "resnet":
            return [self.conv1, self.bn1, self.relu, self.maxpool]
        return [self.features[0]]

    def _stages(self) -> list[nn.Sequential]:
        if self.kind == "resnet":
            return [self.layer1, self.layer2, self.layer3, self.layer4]
        return [self.features[a:b] for a, b in _MOBILENET_STAGES]

    # -- forward ---------------------------------------------------------------------------------
    def forward_taps(self, x: Tensor, request: FeatureRequest = TAPS) -> Features:
        keep = request.preact and self.kind == "resnet"
        for m in self._stem():
            x = m(x)
        taps = [x]
        for stage in self._stages():
            if keep:
                x, pre = _resnet_stage_preact(stage, x)
                taps.append(pre)
            else:
                x = stage(x)
                taps.append(x)
        if self.kind == "mobilenet_v2":
            x = self.features[18](x)
        pooled = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        logits = self.fc(pooled) if self.kind == "resnet" else self.classifier(pooled)  # with its Dropout
        return Features(logits, [*taps, pooled], x)

    def get_classifier(self) -> nn.Linear:
        """The final Linear (MobileNetV2's classifier is Dropout then Linear)."""
        return self.fc if self.kind == "resnet" else self.classifier[-1]

    def get_feat_modules(self) -> nn.ModuleList:
        return nn.ModuleList([*self._stem(), *self._stages()])

    def get_bn_before_relu(self) -> list[nn.BatchNorm2d]:
        if self.kind == "resnet":
            return [s[-1].bn2 if isinstance(s[-1], TVBasicBlock) else s[-1].bn3 for s in self._stages()]
        return [s[-1].conv[-1] for s in self._stages()]


def _resnet_stage_preact(stage: nn.Sequential, x: Tensor) -> tuple[Tensor, Tensor]:
    """Run a torchvision ResNet stage; return ``(output, last block's residual sum before ReLU)``."""
    for block in stage[:-1]:
        x = block(x)
    b = stage[-1]
    identity = x if b.downsample is None else b.downsample(x)
    out = b.relu(b.bn1(b.conv1(x)))
    if isinstance(b, TVBasicBlock):
        out = b.bn2(b.conv2(out))
    else:
        out = b.bn3(b.conv3(b.relu(b.bn2(b.conv2(out)))))
    pre = out + identity
    return F.relu(pre), pre


def replace_first_conv(old: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A fresh first convolution like ``old`` for ``in_channels`` inputs (He initialisation)."""
    new = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                    old.dilation, old.groups, bias=old.bias is not None)
    nn.init.kaiming_normal_(new.weight, mode="fan_out", nonlinearity="relu")
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    return new


#: What a value written as text (``--model-opt KEY=VALUE``, YAML) can be: a number, true/false, text, or a list of them.
SCALARS = (int, float, bool, str)


def check_builder_options(name: str, builder: Callable[..., nn.Module], options: dict[str, Any],
                          also: tuple[str, ...] = ()) -> dict[str, Any]:
    """``options`` for torchvision's ``builder`` (of model ``name``), each checked against the annotation of the
    parameter of the model class it builds: a number, true/false, text or list by its declared kind, converted; a
    class or function (``norm_layer``, ``block``) only as a Python object, never as text. ``also``: the options the
    caller takes itself (``pretrained``), listed in the refusals. Options the class lacks, and those the builder sets
    itself, are left to the builder's own error (:func:`~kdzoo.models.external.with_options`)."""
    built = inspect.signature(builder).return_annotation
    if not isinstance(built, type):
        return options
    params = inspect.signature(built.__init__).parameters
    try:
        hints = typing.get_type_hints(built.__init__)
    except Exception:  # an annotation torchvision's module cannot resolve: leave the values to the builder
        return options
    from_text = [k for k, p in params.items() if k != "num_classes" and p.default is not p.empty
                 and _written_as_text(hints.get(k, Any))] + list(also)
    listing = f"From KEY=VALUE text {name} takes {', '.join(from_text) or 'no options'}."
    checked = dict(options)
    for key, value in options.items():
        tp = hints.get(key, Any) if key in params else Any
        if _written_as_text(tp):
            checked[key] = check_value(f"{name} option {key}", declared(tp), value, fix=f" {listing}")
        elif _takes_code(tp) and not callable(value):
            settable = params[key].default is not params[key].empty  # else the builder sets it
            python = f" Pass it from Python: create_model({name!r}, {key}=...)." if settable else ""
            raise ConfigError(f"{name} option {key} takes a class or function ({_kind(tp)}), which text cannot "
                              f"give; got {value!r} (nothing is imported or run).{python} {listing}")
    return checked


def _written_as_text(tp: Any) -> bool:
    """Whether a value of annotation ``tp`` can be written as text: a scalar, or a list or tuple of one scalar kind."""
    spec = declared(tp)
    return spec.kind in SCALARS or (spec.kind in (list, tuple) and spec.item in SCALARS)


def _takes_code(tp: Any) -> bool:
    """Whether annotation ``tp`` (or a part of it) is a callable or a class."""
    return typing.get_origin(tp) in (collections.abc.Callable, type) or any(map(_takes_code, typing.get_args(tp)))


def _kind(tp: Any) -> str:
    """An annotation without its modules' names: ``Optional[Callable[..., Module]]``."""
    return re.sub(r"\b(?:\w+\.)+(\w+)", r"\1", str(tp))
