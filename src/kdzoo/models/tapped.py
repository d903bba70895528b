"""Any ``nn.Module`` with kdzoo's feature protocol, through forward hooks: :class:`TappedModel`.

A user's own network, a timm model or a torchvision model becomes a student or teacher for every
method that its layers allow. The taps are named modules:

- stages: the outputs of ``feature_layers`` (e.g. ``["layer1", "layer2", "layer3", "layer4"]``);
- stem: what enters the first stage (its input), so ``feats = [stem, *stages, pooled]`` as in the zoo;
- pooled vector: what enters the classifier (its input, flattened; averaged over space for a 1x1 convolution
  classifier such as SqueezeNet's);
- head map: the output of ``head_layer`` (default: the last stage), the map pooled into the classifier.

Token sequences (``N x L x C``, vision transformers) become maps for map-based methods: the
``prefix_tokens`` (class/register tokens) are dropped and the rest reshaped to the patch grid
``N x C x h x w``. Channels-last maps (``N x H x W x C``, e.g. timm's Swin) are permuted when
``channels`` says how many channels each stage has. Hooks are added for one call and removed
after it, so the wrapped model is left as it was; without a feature request the model runs plainly.

Hook taps are module outputs, so pre-activation maps (taken before a ReLU inside a block) and the
BatchNorm before each stage's last ReLU are not available: methods that need them (AB, OFD, and
ReviewKD's teacher) are refused with the reason. The state dict and the checkpoint entries hold the wrapped
model's own keys, so they load into the user's class, and timm/torchvision checkpoints load unchanged.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor, nn

from ..errors import ConfigError
from .features import TAPS, FeatureRequest, Features, FeatureSupport, speaks_taps
from .layers import FeatureModel
from .stage_search import Probe, find_classifier, find_stages, last_evenly_spaced, run_probe


class TappedModel(FeatureModel):
    """``model`` with feature taps at named modules (see the module docstring). Stages and classifier that are not
    named are found on the first call that needs them (:mod:`kdzoo.models.stage_search`), with that call's input
    size (or ``input_shape``): plain training and logit methods never look for them."""

    def __init__(self, model: nn.Module, feature_layers: list[str] | None = None, classifier: str | None = None,
                 head_layer: str | None = None, prefix_tokens: int | None = None,
                 channels: list[int] | None = None, name: str | None = None,
                 input_shape: tuple[int, ...] | None = None):
        super().__init__()
        if feature_layers is not None and not feature_layers:
            raise ConfigError("feature_layers must name at least one module (a stage) of the model.")
        self.model = model
        self.kdzoo_arch = name or getattr(model, "kdzoo_arch", None) or type(model).__name__
        for layer in (*(feature_layers or ()), classifier, head_layer):
            if layer is not None:
                find_module(model, layer, self.kdzoo_arch)
        self._layers = list(feature_layers) if feature_layers else None
        self._classifier = classifier
        self._head_layer = head_layer
        self.prefix_tokens = prefix_tokens
        self.channels = channels
        self.input_shape = input_shape
        self._probe: Probe | None = None
        # The state dict holds the wrapped model's own keys, so it loads into the user's class (and timm's,
        # torchvision's builders) as it is.
        self.register_state_dict_post_hook(_drop_model_prefix)
        self.register_load_state_dict_pre_hook(_add_model_prefix)

    # -- what is tapped, found on first need ---------------------------------------------------------------------
    def probe(self) -> Probe:
        """The probe pass of the stage search, run once, at ``input_shape``."""
        if self._probe is None:
            if self.input_shape is None:
                raise ConfigError(f"{self.kdzoo_arch}: the stage search needs the input size; run the model on a "
                                  f"batch through kdzoo.models.extract first, or wrap it with input_shape=(C, H, W).")
            self._probe = run_probe(self.model, self.input_shape)
        return self._probe

    @property
    def classifier_name(self) -> str:
        if self._classifier is None:
            self._classifier = find_classifier(self.model, self.probe(), self.kdzoo_arch)
        return self._classifier

    @property
    def feature_layers(self) -> list[str]:
        if self._layers is None:
            self._layers, self.channels = find_stages(self.model, self.probe(), self.classifier_name,
                                                      self.kdzoo_arch)
        return self._layers

    @property
    def head_layer(self) -> str:
        return self._head_layer or self.feature_layers[-1]

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
        if self.input_shape is None:
            self.input_shape = tuple(x.shape[1:])
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
        pooled = seen["pooled"]
        pooled = pooled.mean(dim=(2, 3)) if pooled.dim() == 4 else pooled.flatten(1)  # a 1x1 conv classifier's map
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
                              classifier=isinstance(self.classifier_module, nn.Linear),
                              note="hook taps are module outputs; pre-activation maps and the BatchNorm "
                                   "before each stage's last ReLU are inside the blocks")

    def get_classifier(self) -> nn.Module:
        """The module that produces the logits (an ``nn.Linear``, or SqueezeNet's 1x1 convolution)."""
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
    default whatever exceeds the largest square number <= L), reshape the rest to a square grid. A square sequence
    that the prefix would leave non-square has no prefix tokens yet: the blocks before the class token joins
    (XCiT's patch blocks, ConViT's local blocks; their ``num_prefix_tokens`` counts it all the same)."""
    n, length, c = tokens.shape
    if prefix_tokens is None or (_is_square(length) and not _is_square(length - prefix_tokens)):
        prefix_tokens = length - math.isqrt(length) ** 2
    side = math.isqrt(length - prefix_tokens)
    if side * side != length - prefix_tokens:
        raise ConfigError(f"Cannot reshape {length - prefix_tokens} patch tokens (of {length}, {prefix_tokens} prefix "
                          f"tokens dropped) into a square grid; pass prefix_tokens=... to wrap_model.")
    return tokens[:, prefix_tokens:].transpose(1, 2).reshape(n, c, side, side)


def _is_square(count: int) -> bool:
    return count >= 0 and math.isqrt(count) ** 2 == count


def find_module(model: nn.Module, name: str, arch: str) -> nn.Module:
    """``model``'s submodule ``name``, or a ConfigError listing the top-level names."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = ", ".join(n for n, _ in model.named_children())
        raise ConfigError(f"{arch} has no module {name!r}. Its top-level modules: {names} (nested ones as 'a.b.c'; "
                          f"print(model) shows them all).") from None


def _drop_model_prefix(module, state_dict, prefix, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "model.")]:
        state_dict[prefix + key[len(prefix) + len("model."):]] = state_dict.pop(key)


def _add_model_prefix(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                      error_msgs) -> None:
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(prefix + "model.")]:
        state_dict[prefix + "model." + key[len(prefix):]] = state_dict.pop(key)


def wrap_model(model: nn.Module, feature_layers: list[str] | None = None, *, classifier: str | None = None,
               head_layer: str | None = None, prefix_tokens: int | None = None, channels: list[int] | None = None,
               input_shape: tuple[int, ...] | None = None, name: str | None = None) -> nn.Module:
    """``model`` with kdzoo's feature protocol. Without ``feature_layers``, networks that have it are returned
    unchanged, timm models take their stages from ``model.feature_info``, and other models get theirs from the
    stage search when a method first reads them (:mod:`kdzoo.models.stage_search`, at ``input_shape`` or the
    first batch's size). With ``feature_layers`` the taps are those modules, whatever the network (a wrapped
    model is wrapped anew)."""
    if isinstance(model, TappedModel) and feature_layers is not None:
        model, name = model.model, name or model.kdzoo_arch
    elif speaks_taps(model) and feature_layers is None:
        return model
    if feature_layers is None:
        timm_layers = timm_stage_layers(model)
        if timm_layers is not None:
            feature_layers, channels = timm_layers
            prefix_tokens = getattr(model, "num_prefix_tokens", prefix_tokens)
    if prefix_tokens is None and hasattr(model, "class_token"):  # torchvision's VisionTransformer
        prefix_tokens = 1
    return TappedModel(model, feature_layers, classifier=classifier, head_layer=head_layer,
                       prefix_tokens=prefix_tokens, channels=channels, name=name, input_shape=input_shape)


def unwrap(model: nn.Module) -> nn.Module:
    """The network a user gave, out of kdzoo's hook-tap wrapper (and DistributedDataParallel's): your own module,
    trained, to save or deploy as it is. SimKD's head and BYOT's exits stay with the wrapper that adds them."""
    while isinstance(model, (TappedModel, nn.parallel.DistributedDataParallel)):
        model = model.model if isinstance(model, TappedModel) else model.module
    return model


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

