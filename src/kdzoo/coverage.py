"""Which torchvision and timm networks train with KD and AT: the coverage table of the guide (docs/guide/any-network.md)
(``kdzoo list coverage``).

One builder per torchvision classification family (its smallest) and one small model from each of 30+ timm
families (a family is the timm module the model's class is defined in, ``type(model).__module__``), each at the
smallest input it accepts. Each is built as the student of a zoo ResNet (:data:`kdzoo.support_table.PARTNER`) and as
its teacher, exactly as a user would (``kdzoo.Distiller``), and trains two KD steps and two AT steps on random
images (finite losses; as the student, its parameters move), or is refused with a reason that names the method.
Anything else (a failed stage search, a shape error) is a failure, written as such: never counted as a refusal.

``input`` is the smallest side of :data:`SIZES` at which the network (with its ``options``) builds and runs a
forward pass, found by :func:`smallest_input` (torchvision's RegNet, whose two steps on batches of two diverge at
it, runs at the next size that trains); the options are there only where the builder needs them for a small input
(a ViT's ``img_size``) or to keep the test fast.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import KdzooError
from .models import create_model, unwrap
from .support_table import NUM_CLASSES, PARTNER, cell_text, short

#: The input sides tried, smallest first: kdzoo's datasets' 32 px up to the 224 px these networks are built for.
SIZES = (32, 48, 64, 75, 96, 128, 160, 192, 224)
METHODS = ("kd", "at")
BATCH = 2
STEPS = 2


@dataclass(frozen=True)
class Network:
    """One covered network: ``source/builder`` with builder ``options``, at ``size`` x ``size`` px."""

    source: str  # "torchvision" or "timm"
    family: str  # torchvision: the family's name; timm: the module its class is defined in
    builder: str
    size: int
    options: tuple[tuple[str, object], ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.source}/{self.builder}"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return 3, self.size, self.size

    def build(self) -> nn.Module:
        return create_model(self.name, num_classes=NUM_CLASSES, **dict(self.options))

    def label(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options)
        return f"`{self.builder}`" + (f" ({options})" if options else "")


def tv(family: str, builder: str, size: int, **options) -> Network:
    return Network("torchvision", family, builder, size, tuple(options.items()))


def timm(family: str, builder: str, size: int, **options) -> Network:
    return Network("timm", family, builder, size, tuple(options.items()))


NETWORKS = (
    # torchvision: the smallest builder of each classification family.
    tv("alexnet", "alexnet", 64),
    tv("convnext", "convnext_tiny", 32),
    tv("densenet", "densenet121", 32),
    tv("efficientnet", "efficientnet_b0", 32),
    tv("googlenet", "googlenet", 32),
    tv("inception", "inception_v3", 75),
    tv("maxvit", "maxvit_t", 224),  # its 7x7 windows tile every stage's grid only at 224 px (input_size=...)
    tv("mnasnet", "mnasnet0_5", 32),
    tv("mobilenet_v2", "mobilenet_v2", 32),
    tv("mobilenet_v3", "mobilenet_v3_small", 32),
    # At 32 px its last stage is 1x1: BatchNorm over the batch's 2 values there blows the gradients up (1e20),
    # a NaN at the second step; at 64 px (2x2) it trains.
    tv("regnet", "regnet_x_400mf", 64),
    tv("resnet", "resnet18", 32),
    tv("resnext", "resnext50_32x4d", 32),
    tv("shufflenet", "shufflenet_v2_x0_5", 32),
    tv("squeezenet", "squeezenet1_1", 32),
    tv("swin", "swin_t", 32),
    tv("vgg", "vgg11", 32),
    tv("vit", "vit_b_16", 32, image_size=32),  # runs at its image_size only
    tv("wide_resnet", "wide_resnet50_2", 32),
    # timm: one small model per module.
    timm("resnet", "resnet10t", 32),
    timm("convnext", "convnext_atto", 32),
    timm("mobilenetv3", "mobilenetv3_small_050", 32),
    timm("efficientnet", "tinynet_e", 32),
    timm("regnet", "regnetx_002", 32),
    timm("ghostnet", "ghostnet_050", 32),
    timm("dla", "dla46_c", 32),
    timm("byobnet", "mobilevit_xxs", 32),
    timm("edgenext", "edgenext_xx_small", 32),
    timm("fastvit", "fastvit_t8", 32),
    timm("rexnet", "rexnet_100", 32),
    timm("senet", "legacy_seresnet18", 32),
    timm("pvt_v2", "pvt_v2_b0", 32),
    timm("xcit", "xcit_nano_12_p16_224", 32, img_size=32),
    timm("eva", "eva02_tiny_patch14_224", 32, img_size=32),
    timm("convit", "convit_tiny", 32, img_size=32),
    timm("vision_transformer", "vit_tiny_patch16_224", 32, img_size=32),
    timm("deit", "deit_tiny_distilled_patch16_224", 32, img_size=32),
    timm("swin_transformer", "swin_tiny_patch4_window7_224", 32, img_size=32, window_size=2),
    timm("hgnet", "hgnetv2_b0", 32),
    timm("vovnet", "ese_vovnet19b_slim", 32),
    timm("cspnet", "cs3darknet_s", 32),
    timm("starnet", "starnet_s050", 32),
    timm("efficientvit_mit", "efficientvit_b0", 32),
    timm("tiny_vit", "tiny_vit_5m_224", 32),
    timm("levit", "levit_128s", 32, img_size=32),
    timm("pit", "pit_ti_224", 32, img_size=32),
    timm("visformer", "visformer_tiny", 32, img_size=32),
    timm("densenet", "densenet121", 32),
    timm("inception_v3", "inception_v3", 75),
    timm("mlp_mixer", "mixer_s16_224", 32, img_size=32),
    timm("dpn", "dpn48b", 32),
    timm("metaformer", "poolformer_s12", 32),
    timm("repvit", "repvit_m0_9", 32),
    timm("mambaout", "mambaout_femto", 32),
)


def smallest_input(network: Network, sizes=SIZES) -> int | None:
    """The smallest side of ``sizes`` at which ``network`` (its options as declared) builds and runs a forward
    pass on two images (how :data:`NETWORKS`' sizes were found; a ViT's ``img_size`` option is set to the size
    tried when it has one)."""
    for size in sizes:
        options = {k: (size if k in ("img_size", "image_size") else v) for k, v in network.options}
        try:
            model = create_model(network.name, num_classes=NUM_CLASSES, **options).eval()
            with torch.no_grad():
                model(torch.zeros(2, 3, size, size))
        except Exception:  # noqa: BLE001 (any failure means: not at this size)
            continue
        return size
    return None


def example(network: Network) -> nn.Module:
    """``network`` built, seeded."""
    torch.manual_seed(0)
    return network.build()


def partner() -> nn.Module:
    """The zoo network on the other side (seeded)."""
    torch.manual_seed(1)
    return PARTNER.build()


def names(message: str, method: str) -> bool:
    """Whether a refusal's ``message`` names ``method``: ``'at'``, ``AT``, or the name in any case first (``SimKD
    applies ...``); not the "at" of "patch" or of "at a 1x1 map"."""
    name = re.escape(method)
    return re.search(rf"'{name}'|\b{name.upper()}\b|^(?i:{name})\b", message) is not None


class Failure(Exception):
    """A run that neither trained nor was refused clearly (its message is the table's cell)."""


def train_steps(method: str, network: Network, model: nn.Module, as_student: bool) -> str | None:
    """None after :data:`STEPS` finite steps of ``method`` with a copy of ``model`` (``network``, built) as the
    student (its first and last parameters move: the loss reaches both ends) or as the teacher of the zoo partner;
    the refusal's text when the method refuses it; :class:`Failure` for anything else."""
    from .distiller import Distiller

    mine, other = copy.deepcopy(model), partner()
    student, teacher = (mine, other) if as_student else (other, mine)
    side = "student" if as_student else "teacher"
    try:
        distiller = Distiller(student, teacher, method, input_shape=network.input_shape)
    except KdzooError as exc:
        if not names(str(exc), method):
            raise Failure(f"as {side}: {type(exc).__name__}: {short(str(exc))}") from exc
        return str(exc)
    except Exception as exc:
        raise Failure(f"as {side}: {type(exc).__name__}: {short(str(exc))}") from exc
    params = list(unwrap(student).parameters())
    ends = [params[0], params[-1]]
    before = [p.detach().clone() for p in ends]
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.01)
    distiller.train()
    generator = torch.Generator().manual_seed(0)
    try:
        for _ in range(STEPS):
            images = torch.randn(BATCH, *network.input_shape, generator=generator)
            loss = sum(distiller(images, torch.arange(BATCH) % NUM_CLASSES).values())
            if not torch.isfinite(loss):
                raise Failure(f"as {side}: a non-finite loss ({loss.item()})")
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    except Failure:
        raise
    except Exception as exc:
        raise Failure(f"as {side}: {type(exc).__name__}: {short(str(exc))}") from exc
    if any(torch.equal(a, b.detach()) for a, b in zip(before, ends, strict=True)):
        raise Failure(f"as {side}: the student's first or last parameters did not move")
    return None


def outcome(method: str, network: Network, model: nn.Module, as_student: bool) -> str | Failure | None:
    """:func:`train_steps`, its failure returned."""
    try:
        return train_steps(method, network, model, as_student)
    except Failure as exc:
        return exc


def coverage_row(network: Network) -> str:
    """The table's row for ``network``: per method, where it trains (as student and as teacher), why it is refused,
    or how it fails. The network is built once; each run starts from a copy of it (training with batches of two
    moves some networks far: a run after another would not test the network as built)."""
    model = example(network)
    runs = {(method, as_student): outcome(method, network, model, as_student)
            for as_student in (True, False) for method in METHODS}
    cells = []
    for method in METHODS:
        sides = runs[method, True], runs[method, False]
        failed = [s for s in sides if isinstance(s, Failure)]
        cells.append(f"fails {failed[0]}" if failed else cell_text(*sides))
    return f"| {network.source} | {network.family} | {network.label()} | {network.size} | " + " | ".join(cells) + " |"


def counts(rows: list[str]) -> str:
    """One line per source: how many of its families train with KD and AT (both sides), from the rows."""
    lines = []
    for source in ("torchvision", "timm"):
        mine = [r.split(" | ") for r in rows if r.startswith(f"| {source} |")]
        good = sum(1 for cells in mine if cells[-2] == "yes" and cells[-1].rstrip(" |") == "yes")
        lines.append(f"{source}: {good} of {len(mine)} families train with KD and AT, as student and as teacher.")
    return "\n".join(lines)


def coverage_table() -> str:
    """The Markdown table, one row per network, and the count lines."""
    rows = [coverage_row(n) for n in NETWORKS]
    header = ["| source | family | builder (options) | input (px) | KD | AT |", "|---|---|---|---|---|---|"]
    return "\n".join(header + rows) + "\n\n" + counts(rows)
