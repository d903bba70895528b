"""Any ``nn.Module`` with kdzoo's feature protocol, through forward hooks: :class:`TappedModel`.

A user's own network, a timm model or a torchvision model becomes a student or teacher for every
method that its layers allow. The taps are named modules:

- stages: the outputs of ``feature_layers`` (e.g. ``["layer1", "layer2", "layer3", "layer4"]``);
- stem: what enters the first stage (its input), so ``feats = [stem, *stages, pooled]`` as in the zoo;
- pooled vector: what enters the classifier (its input, flattened);
- head map: the output of ``head_layer`` (default: the last stage), the map pooled into the classifier.

Token sequences (``N x L x C``, vision transformers) become maps for map-based methods: the
``prefix_tokens`` (class/register tokens) are dropped and the rest reshaped to the patch grid
``N x C x h x w``. Channels-last maps (``N x H x W x C``, e.g. timm's Swin) are permuted when
``channels`` says how many channels each stage has. Hooks are added for one call and removed
after it, so the wrapped model is left as it was; without a feature request the model runs plainly.

Hook taps are module outputs, so pre-activation maps (taken before a ReLU inside a block) and the
BatchNorm before each stage's last ReLU are not available: methods that need them (AB, OFD, and
ReviewKD's teacher) are refused with the reason. Checkpoint entries hold the wrapped model's own
state dict (``model``), so timm/torchvision checkpoints load unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .features import TAPS, FeatureRequest, Features, FeatureSupport
from .layers import FeatureModel


class TappedModel(FeatureModel):
    """``model`` with feature taps at named modules (see the module docstring)."""

    def __init__(self, model: nn.Module, feature_layers: list[str], classifier: str | None = None,
                 head_layer: str | None = None, prefix_tokens: int | None = None,
                 channels: list[int] | None = None, name: str | None = None):
        super().__init__()
        if not feature_layers:
            raise ConfigError("feature_layers must name at least one module (a stage) of the model.")
        self.model = model
        self.kdzoo_arch = name or type(model).__name__
        self.feature_layers = list(feature_layers)
        self.classifier_name = classifier or default_classifier(model, self.kdzoo_arch)
        self.head_layer = head_layer or self.feature_layers[-1]
        for name in (*self.feature_layers, self.classifier_name, self.head_layer):
            find_module(model, name, self.kdzoo_arch)
        if not isinstance(self.classifier_module, nn.Linear):
            raise ConfigError(f"{self.kdzoo_arch}: the classifier {self.classifier_name!r} is a "
                              f"{type(self.classifier_module).__name__}, not an nn.Linear; name the final Linear "
                              f"with classifier=...")
        self.prefix_tokens = prefix_tokens
        self.channels = channels

    # The tapped modules are looked up by name (not kept as attributes, which would register them twice).
    @property
    def stage_modules(self) -> list[nn.Module]:
        return [self.model.get_submodule(n) for n in self.feature_layers]

    @property
    def classifier_module(self) -> nn.Module:
        return self.model.get_submodule(self.classifier_name)

    @property
    def head_module(self) -> nn.Module:
        return self.model.get_submodule(self.head_layer)

    def forward_taps(self, x: Tensor, request: FeatureRequest = TAPS) -> Features:
        if not request.needs_taps:
            return Features(self.model(x), [])
        if request.preact:
            raise ConfigError(f"{self.kdzoo_arch} (hook taps) has no pre-activation maps.")
        seen: dict[str, Any] = {}
        stages = self.stage_modules
        hooks = [stages[0].register_forward_pre_hook(_keep_input(seen, "stem")),
                 self.classifier_module.register_forward_pre_hook(_keep_input(seen, "pooled")),
                 self.head_module.register_forward_hook(_keep_output(seen, "head_map"))]
        hooks += [m.register_forward_hook(_keep_output(seen, i)) for i, m in enumerate(stages)]
        try:
            logits = self.model(x)
        finally:
            for hook in hooks:
                hook.remove()
        missing = [n for i, n in enumerate(self.feature_layers) if i not in seen]
        if missing:
            raise ConfigError(f"{self.kdzoo_arch}: the feature layers {missing} did not run in forward(); name modules "
                              f"that the forward pass calls.")
        stages = [self.as_map(seen[i], i) for i in range(len(stages))]
        stem = self.as_map(seen["stem"], 0)
        pooled = seen["pooled"].flatten(1)
        return Features(logits, [stem, *stages, pooled], self.as_map(seen["head_map"], len(stages) - 1))

    def as_map(self, x: Tensor, stage: int) -> Tensor:
        """A stage output as an ``N x C x H x W`` map (token sequences reshaped, channels-last permuted)."""
        if isinstance(x, (tuple, list)):
            x = x[0]
        if x.dim() == 3:
            return tokens_to_map(x, self.prefix_tokens)
        if x.dim() == 4 and self.channels is not None and x.shape[1] != self.channels[stage] == x.shape[-1]:
            return x.permute(0, 3, 1, 2)
        return x

    def feature_support(self) -> FeatureSupport:
        return FeatureSupport(preact=False, bn_before_relu=False,
                              note="hook taps are module outputs; pre-activation maps and the BatchNorm "
                                   "before each stage's last ReLU are inside the blocks")

    def get_classifier(self) -> nn.Linear:
        return self.classifier_module

    def get_feat_modules(self) -> nn.ModuleList:
        """The modules before the classifier (what AB's and FSP's init stages train): every child of the model
        that does not hold the classifier."""
        holders = {id(m) for m in self.model.modules() if any(c is self.classifier_module for c in m.modules())}
        return nn.ModuleList(m for m in self.model.children() if id(m) not in holders)

    def checkpoint_entries(self) -> dict[str, Any]:
        return {"model": self.model.state_dict()}

    def load_checkpoint_entries(self, data: dict[str, Any], load_weights) -> None:
        load_weights(self.model, data["model"])


def _keep_input(store: dict, key):
    def hook(module, args):
        store[key] = args[0]
    return hook


def _keep_output(store: dict, key):
    def hook(module, args, output):
        store[key] = output
    return hook


def tokens_to_map(tokens: Tensor, prefix_tokens: int | None = None) -> Tensor:
    """``N x L x C`` tokens -> ``N x C x h x w`` patch map: drop ``prefix_tokens`` (class/register tokens; by
    default whatever exceeds the largest square number <= L), reshape the rest to a square grid."""
    n, length, c = tokens.shape
    if prefix_tokens is None:
        prefix_tokens = length - math.isqrt(length) ** 2
    side = math.isqrt(length - prefix_tokens)
    if side * side != length - prefix_tokens:
        raise ConfigError(f"Cannot reshape {length - prefix_tokens} patch tokens (of {length}, {prefix_tokens} prefix "
                          f"tokens dropped) into a square grid; pass prefix_tokens=... to wrap_model.")
    return tokens[:, prefix_tokens:].transpose(1, 2).reshape(n, c, side, side)


def find_module(model: nn.Module, name: str, arch: str) -> nn.Module:
    """``model``'s submodule ``name``, or a ConfigError listing the top-level names."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = ", ".join(n for n, _ in model.named_children())
        raise ConfigError(f"{arch} has no module {name!r}. Its top-level modules: {names} (nested ones as 'a.b.c'; "
                          f"print(model) shows them all).") from None


def default_classifier(model: nn.Module, arch: str) -> str:
    """The name of the model's final Linear: timm's ``get_classifier()``, else the last ``nn.Linear``."""
    getter = getattr(model, "get_classifier", None)
    if callable(getter):
        target = getter()
        for name, module in model.named_modules():
            if module is target and isinstance(module, nn.Linear):
                return name
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"{arch} has no nn.Linear classifier; name it with classifier=...")
    return linears[-1]


def probe_stage_layers(model: nn.Module, input_shape: tuple[int, ...], arch: str) -> list[str]:
    """Stage layers found by running a probe batch: among the children of the model's trunk (its shallowest
    Sequential or ModuleList of 3 or more modules, the longest of those), the last one at each spatial size (maps),
    or four evenly spaced ones ending at the last (token sequences)."""
    containers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Sequential, nn.ModuleList))
                  and len(m) >= 3]
    if not containers:
        raise ConfigError(f"Cannot find the stages of {arch}: name them with feature_layers=[...].")
    trunk_name, trunk = min(containers, key=lambda c: (c[0].count("."), -len(c[1])))  # shallowest, then longest
    children = [(f"{trunk_name}.{n}" if trunk_name else n, m) for n, m in trunk.named_children()]
    shapes: dict[str, tuple] = {}
    hooks = [m.register_forward_hook(_record_shape(shapes, n)) for n, m in children]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(2, *input_shape, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    ran = [(n, shapes[n]) for n, _ in children if n in shapes]
    if ran and all(len(s) == 3 for _, s in ran):  # tokens
        return [n for n, _ in last_evenly_spaced(ran)]
    maps = [(n, s) for n, s in ran if len(s) == 4]
    layers = [n for i, (n, s) in enumerate(maps) if i + 1 == len(maps) or maps[i + 1][1][-1] != s[-1]]
    if len(layers) < 2:
        raise ConfigError(f"Cannot find the stages of {arch} (its trunk {trunk_name!r} gives no maps of different "
                          f"sizes): name them with feature_layers=[...].")
    return layers[1:] if len(layers) > 4 else layers


def last_evenly_spaced(blocks: list, count: int = 4) -> list:
    """Up to ``count`` evenly spaced items of ``blocks``, ending at the last (the stages of a plain ViT's blocks)."""
    step = max(len(blocks) // count, 1)
    return blocks[::-1][::step][:count][::-1]


def _record_shape(store: dict, key: str):
    def hook(module, args, output):
        if isinstance(output, Tensor):
            store[key] = tuple(output.shape)
    return hook


def wrap_model(model: nn.Module, feature_layers: list[str] | None = None, *, classifier: str | None = None,
               head_layer: str | None = None, prefix_tokens: int | None = None, channels: list[int] | None = None,
               input_shape: tuple[int, ...] = (3, 32, 32), name: str | None = None) -> nn.Module:
    """``model`` with kdzoo's feature protocol. kdzoo networks are returned unchanged; timm models take their
    stages from ``model.feature_info``; other models take ``feature_layers`` or, without them, the stages a probe
    forward pass at ``input_shape`` finds (:func:`probe_stage_layers`)."""
    if callable(getattr(model, "forward_taps", None)):
        return model
    arch = name or type(model).__name__
    if feature_layers is None:
        timm_layers = timm_stage_layers(model)
        if timm_layers is not None:
            feature_layers, channels = timm_layers
            prefix_tokens = getattr(model, "num_prefix_tokens", prefix_tokens)
        else:
            feature_layers = probe_stage_layers(model, input_shape, arch)
    if prefix_tokens is None and hasattr(model, "class_token"):  # torchvision's VisionTransformer
        prefix_tokens = 1
    return TappedModel(model, feature_layers, classifier=classifier, head_layer=head_layer,
                       prefix_tokens=prefix_tokens, channels=channels, name=name)


def timm_stage_layers(model: nn.Module) -> tuple[list[str], list[int]] | None:
    """Stage names and channels from a timm model's ``feature_info`` (None for other models): the last module at
    each reduction of 4 or more (CNNs), or four evenly spaced blocks ending at the last (ViTs)."""
    info = getattr(model, "feature_info", None)
    if not isinstance(info, list) or not info or not all(isinstance(i, dict) and "module" in i for i in info):
        return None
    entries = [i for i in info if i.get("reduction", 4) >= 4] or info
    if len({i.get("reduction") for i in entries}) == 1:  # a plain ViT: every block at one reduction
        entries = last_evenly_spaced(entries)
    else:
        entries = [e for k, e in enumerate(entries) if k + 1 == len(entries) or
                   entries[k + 1].get("reduction") != e.get("reduction")]
    return [e["module"] for e in entries], [e.get("num_chs") for e in entries]

