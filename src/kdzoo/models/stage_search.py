"""Find a network's stages and classifier from one probe forward pass (for hook taps, :mod:`kdzoo.models.tapped`).

A 2-sample batch of zeros runs through the network in eval mode with a hook on every module, which notes what
each module took and gave. From that:

- **the classifier** is what produces the logits: the last ``nn.Linear`` whose output has the logits' width, or
  the last 1x1 ``nn.Conv2d`` with that many channels, pooled afterwards (SqueezeNet); timm's ``get_classifier()``
  when it is a Linear;
- **the frontier** is the model's children in the order they ran, where a child whose own modules bring the map
  to two or more new resolutions (a trunk: ``features``, ``trunk_output``, a user's ``body``) is replaced by its
  children, recursively; so stages are found side by side at the top level (ShuffleNetV2's ``stage2..4``, a
  user's ``block1``, ``block2``) as inside nested trunks (VGG's, EfficientNet's ``features``);
- **a stage** is the last frontier module at each spatial resolution, stepping back over what only pools or
  reshapes (global pooling, a permute) and over a 1x1 "head" convolution (ShuffleNetV2's ``conv5``); the module
  that reads the image is the stem, never a stage; modules from the classifier on are not stages; the four
  deepest are kept;
- **token sequences** (``N x L x C``, vision transformers): four evenly spaced blocks, ending at the last, of the
  shallowest container of three or more blocks that give tokens of one shape.

Maps may be channels-last (``N x H x W x C``, torchvision's Swin): the layout is told from the image's aspect,
and the stages' channel counts are returned so their taps are permuted to ``N x C x H x W``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.ops.misc import Permute

from ..errors import ConfigError

#: How many stages a search keeps at most (the deepest): the zoo's networks have three or four.
MAX_STAGES = 4


class StagesNotFound(ConfigError):
    """The stage search found no stages in ``model``. ``fix`` says how the caller names them (set by whoever
    knows the caller's terms: the Distiller's keyword, the CLI's flag); ``role`` is student or teacher."""

    def __init__(self, arch: str, reason: str, model: nn.Module):
        super().__init__(reason)
        self.arch, self.reason, self.model = arch, reason, model
        self.fix = "wrap_model(model, feature_layers=[...])"
        self.role: str | None = None

    def __str__(self) -> str:
        names = ", ".join(n for n, _ in self.model.named_children())
        whose = f"the {self.role} " if self.role else ""
        return (f"Cannot find the stages of {whose}{self.arch}: {self.reason}. Name them yourself: {self.fix} "
                f"(its top-level modules: {names}; nested ones as 'a.b.c').")


@dataclass(frozen=True)
class Call:
    """One module's call in the probe pass: the shapes it took and gave (None: not a tensor), in finishing order."""

    name: str
    input: tuple[int, ...] | None
    output: tuple[int, ...] | None
    order: int


@dataclass(frozen=True)
class Probe:
    """What one probe pass saw: every module's calls, the logits' shape and the image's."""

    calls: dict[str, list[Call]]
    logits: tuple[int, ...]
    image: tuple[int, ...]

    def last(self, name: str) -> Call:
        return self.calls[name][-1]

    def resolution(self, shape: tuple[int, ...] | None) -> tuple[int, int, int, bool] | None:
        """``(h, w, channels, channels_last)`` of a 4-d map, told from the image's aspect; None for anything else."""
        if shape is None or len(shape) != 4:
            return None
        height, width = self.image[-2:]
        _, a, b, c = shape
        if abs(b * width - c * height) < max(height, width):
            return b, c, a, False
        if abs(a * width - b * height) < max(height, width):
            return a, b, c, True
        return None


def run_probe(model: nn.Module, input_shape: tuple[int, ...]) -> Probe:
    """Run a 2-sample batch of zeros through ``model`` (eval mode, no gradients, its own state untouched) with a
    hook on every module."""
    calls: dict[str, list[Call]] = {}
    pending: dict[str, tuple[int, ...] | None] = {}

    def before(name):
        def hook(module, args):
            pending[name] = _shape(args[0]) if args else None
        return hook

    def after(name):
        def hook(module, args, output):
            calls.setdefault(name, []).append(Call(name, pending.get(name), _shape(output), len(order)))
            order.append(name)
        return hook

    order: list[str] = []
    modules = [(n, m) for n, m in model.named_modules() if n]
    hooks = [h for n, m in modules for h in (m.register_forward_pre_hook(before(n)), m.register_forward_hook(after(n)))]
    param = next(model.parameters(), None)
    x = torch.zeros(2, *input_shape, device=param.device if param is not None else None)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        what = f"a tensor of shape {tuple(logits.shape)}" if isinstance(logits, Tensor) else type(logits).__name__
        raise ConfigError(f"{type(model).__name__}(x) gives {what}, not logits (batch x classes): kdzoo trains "
                          f"classifiers whose forward returns the logits.")
    return Probe(calls, tuple(logits.shape), tuple(x.shape))


def _shape(value) -> tuple[int, ...] | None:
    return tuple(value.shape) if isinstance(value, Tensor) else None


def find_classifier(model: nn.Module, probe: Probe, arch: str) -> str:
    """The name of the module that produces the logits (see the module docstring)."""
    getter = getattr(model, "get_classifier", None)
    target = getter() if callable(getter) else None
    if isinstance(target, nn.Linear):
        return next(n for n, m in model.named_modules() if m is target)
    width = probe.logits[-1]
    found = [probe.last(n) for n, m in model.named_modules() if n in probe.calls and produces(m, width)]
    if not found:
        raise ConfigError(f"{arch}: no module produces its {width} logits (an nn.Linear with {width} outputs, or a "
                          f"1x1 nn.Conv2d with {width} channels followed by pooling); name the classifier with "
                          f"classifier=...")
    return max(found, key=lambda c: c.order).name


def produces(module: nn.Module, width: int) -> bool:
    """Whether ``module`` could produce ``width`` logits: a Linear to ``width``, or a 1x1 convolution to ``width``
    channels (pooled afterwards)."""
    if isinstance(module, nn.Linear):
        return module.out_features == width
    return isinstance(module, nn.Conv2d) and module.out_channels == width and module.kernel_size == (1, 1)


def find_stages(model: nn.Module, probe: Probe, classifier: str, arch: str) -> tuple[list[str], list[int]]:
    """The stage modules' names and, for channels-last maps, their channel counts (None for the others; see the
    module docstring); :class:`StagesNotFound` if none."""
    frontier = [n for n in _frontier(model, probe, "") if _before(probe, n, classifier)]
    maps = [(n, probe.resolution(probe.last(n).output)) for n in frontier
            if len(probe.calls[n]) == 1 and probe.last(n).input != probe.image]
    maps = [(n, r) for n, r in maps if r is not None]
    stages = _last_per_resolution(model, maps)
    if len(stages) >= 2:
        stages = stages[-MAX_STAGES:]
        return [n for n, _ in stages], [r[2] if r[3] else None for _, r in stages]
    blocks = _token_blocks(model, probe)
    if blocks:
        return blocks, [probe.last(n).output[-1] for n in blocks]
    sizes = sorted({r[:2] for _, r in maps}, reverse=True)
    seen = f"maps at {len(sizes)} resolution{'s' * (len(sizes) != 1)}" if sizes else "no maps"
    raise StagesNotFound(arch, f"along its forward pass, after the stem, its modules give {seen}, and it has no run "
                               f"of transformer blocks", model)


def _frontier(module: nn.Module, probe: Probe, prefix: str) -> list[str]:
    """The frontier below ``module`` (modules that never ran as such, like a ModuleList, are looked into)."""
    names = []
    for child_name, child in module.named_children():
        name = prefix + child_name
        if name not in probe.calls or _is_trunk(child, name, probe):
            names += _frontier(child, probe, name + ".")
        else:
            names.append(name)
    return sorted(names, key=lambda n: probe.last(n).order)


def _is_trunk(module: nn.Module, name: str, probe: Probe) -> bool:
    """Whether ``module``'s own parts (the modules it calls) bring its input map to two or more new resolutions."""
    entry = probe.resolution(probe.calls[name][0].input)
    sizes = {r[:2] for part in _called_parts(module, name + ".", probe)
             if (r := probe.resolution(probe.last(part).output)) is not None}
    return len(sizes - {entry[:2] if entry else None}) >= 2


def _called_parts(module: nn.Module, prefix: str, probe: Probe) -> list[str]:
    """The children of ``module`` that ran, looking into those that never ran as such (a ModuleList)."""
    parts = []
    for child_name, child in module.named_children():
        name = prefix + child_name
        parts += [name] if name in probe.calls else _called_parts(child, name + ".", probe)
    return parts


def _before(probe: Probe, name: str, classifier: str) -> bool:
    """Whether ``name`` ran before the classifier and does not hold it."""
    holds = classifier == name or classifier.startswith(name + ".")
    return not holds and probe.last(name).order < probe.last(classifier).order


def _last_per_resolution(model: nn.Module, maps: list[tuple[str, tuple]]) -> list[tuple[str, tuple]]:
    """Per run of one resolution, the module that ends its stage (:func:`stage_end`); runs without one are dropped,
    and so is a run at a resolution no smaller than an earlier one's."""
    runs: list[list[tuple[str, tuple]]] = []
    for name, res in maps:
        if runs and runs[-1][-1][1][:2] == res[:2]:
            runs[-1].append((name, res))
        else:
            runs.append([(name, res)])
    stages = []
    for run in runs:
        end = stage_end([model.get_submodule(n) for n, _ in run])
        res = run[end][1] if end is not None else None
        if res is not None and (not stages or res[0] * res[1] < stages[-1][1][0] * stages[-1][1][1]):
            stages.append(run[end])
    return stages


def stage_end(run: list[nn.Module]) -> int | None:
    """The index of the module that ends a stage among modules that ran one after the other at one resolution:
    the last one, stepping back over pooling, reshaping and dropout, and over a 1x1 "head" convolution with the
    norms and activations that follow it (ShuffleNetV2's ``conv5``, EfficientNet's last block); None if nothing
    is left."""
    i = len(run) - 1
    while i >= 0:
        if _reshapes(run[i]):
            i -= 1
            continue
        j = i
        while j >= 0 and _leaves_only(run[j], lambda m: isinstance(m, NORMS) or not _weighted(m)):
            j -= 1
        if j < 0 or not _is_pointwise(run[j]):
            return i
        i = j - 1
    return None


def _leaves(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if next(m.children(), None) is None]


def _weighted(module: nn.Module) -> bool:
    return next(module.parameters(recurse=False), None) is not None


def _leaves_only(module: nn.Module, test) -> bool:
    return all(test(m) for m in _leaves(module))


def _reshapes(module: nn.Module) -> bool:
    """Only pools, flattens, permutes or drops out (no weights, no activation)."""
    return _leaves_only(module, lambda m: isinstance(m, RESHAPES) or type(m).__module__ == nn.modules.pooling.__name__)


def _is_pointwise(module: nn.Module) -> bool:
    """A 1x1 convolution, alone or with norms and activations: it mixes channels, nothing more."""
    weighted = [m for m in _leaves(module) if _weighted(m)]
    return any(isinstance(m, nn.Conv2d) for m in weighted) and all(
        isinstance(m, NORMS) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)) for m in weighted)


NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
RESHAPES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.modules.dropout._DropoutNd, Permute)


def _token_blocks(model: nn.Module, probe: Probe) -> list[str]:
    """Four evenly spaced blocks of the shallowest container of 3 or more blocks giving tokens of one shape."""
    containers = []
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Sequential, nn.ModuleList)) or len(module) < 3:
            continue
        blocks = [f"{name}.{n}" if name else n for n, _ in module.named_children()]
        shapes = {probe.last(b).output if b in probe.calls else None for b in blocks}
        if len(shapes) == 1 and (shape := shapes.pop()) is not None and len(shape) == 3:
            containers.append((name.count("."), blocks))
    if not containers:
        return []
    return last_evenly_spaced(min(containers, key=lambda c: c[0])[1])


def last_evenly_spaced(blocks: list, count: int = MAX_STAGES) -> list:
    """Up to ``count`` evenly spaced items of ``blocks``, ending at the last (the stages of a plain ViT's blocks)."""
    step = max(len(blocks) // count, 1)
    return blocks[::-1][::step][:count][::-1]
