"""Which method runs on which kind of network: the support table of docs/guide/any-network.md
(``kdzoo list support``).

Each method is built through :class:`kdzoo.Distiller` on one small network of each family, once as the
student (teacher: a zoo ResNet) and once as the teacher (student: a zoo ResNet), exactly as a user
would. A cell says where the family can stand, or why the method refuses it (the refusal's first
words). The tests build the same table and train two steps on every pair it allows.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch
from torch import nn

from .errors import KdzooError
from .methods import list_methods
from .models import create_model

NUM_CLASSES = 10
INPUT_SHAPE = (3, 32, 32)


class ExampleNet(nn.Module):
    """A user's own network: a stem, three conv stages with names, pooling and a Linear classifier.
    Any module works the same way: ``Distiller(ExampleNet(), teacher, "at", student_layers=["layer1",
    "layer2", "layer3"])``."""

    def __init__(self, num_classes: int = NUM_CLASSES, in_channels: int = 3, width: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = _conv_stage(width, width, 1)
        self.layer2 = _conv_stage(width, 2 * width, 2)
        self.layer3 = _conv_stage(2 * width, 4 * width, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.pool(x).flatten(1))


def _conv_stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


@dataclass(frozen=True)
class Family:
    """A kind of network, an example of it, and how a user hands it to the Distiller."""

    name: str
    build: Callable[[], nn.Module]
    layers: tuple[str, ...] | None = None  # feature layers a user names (None: found automatically)


FAMILIES = (
    Family("kdzoo zoo", lambda: create_model("resnet8", num_classes=NUM_CLASSES)),
    Family("timm CNN", lambda: create_model("timm/convnext_atto", num_classes=NUM_CLASSES)),
    Family("timm ViT", lambda: create_model("timm/vit_tiny_patch16_224", num_classes=NUM_CLASSES, img_size=32,
                                            patch_size=8, depth=2)),
    Family("torchvision MobileNetV3", lambda: create_model("torchvision/mobilenet_v3_small", num_classes=NUM_CLASSES)),
    Family("own nn.Module", ExampleNet, ("layer1", "layer2", "layer3")),
)
PARTNER = Family("zoo partner", lambda: create_model("resnet14", num_classes=NUM_CLASSES))
#: Options that keep the table's examples small (CRD's negatives) or fit them.
SMALL_OPTIONS = {"crd": {"nce_k": 16}}


@cache
def example(family: Family) -> nn.Module:
    """One network of ``family`` (built once; callers get copies)."""
    torch.manual_seed(0)
    return family.build()


def distiller_for(method: str, student: Family, teacher: Family | None):
    """A :class:`kdzoo.Distiller` of ``method`` between fresh copies of the two families' examples."""
    from .distiller import Distiller

    return Distiller(copy.deepcopy(example(student)), copy.deepcopy(example(teacher)) if teacher else None, method,
                     input_shape=INPUT_SHAPE, train_labels=torch.arange(64) % NUM_CLASSES,
                     student_layers=list(student.layers) if student.layers else None,
                     teacher_layers=list(teacher.layers) if teacher and teacher.layers else None,
                     **SMALL_OPTIONS.get(method, {}))


def refusal(method: str, student: Family, teacher: Family | None) -> str | None:
    """None when ``method`` builds for the pair, else the reason it refuses."""
    try:
        distiller_for(method, student, teacher)
    except KdzooError as exc:
        return str(exc)
    return None


def cell(method: str, family: Family) -> str:
    """Where ``family`` can stand for ``method``: both, student only, teacher only, or the refusal."""
    from .methods import method_needs

    if not method_needs(method).needs_teacher:
        return cell_text(refusal(method, family, None), None, self_distillation=True)
    return cell_text(refusal(method, family, PARTNER), refusal(method, PARTNER, family))


def cell_text(as_student: str | None, as_teacher: str | None, self_distillation: bool = False) -> str:
    """A table cell from the refusals (None: it builds) with the family as student and as teacher."""
    if self_distillation:
        return "yes (no teacher)" if as_student is None else f"no: {short(as_student)}"
    if as_student is None and as_teacher is None:
        return "yes"
    if as_student is None or as_teacher is None:
        side, reason = ("student only", as_teacher) if as_student is None else ("teacher only", as_student)
        return f"{side}: {short(reason)}"
    return f"no: {short(as_student)}"


def short(reason: str) -> str:
    """The part of a refusal that says what is missing."""
    if " reads " in reason and " has none" in reason:
        return "no " + reason.split(" reads ", 1)[1].split(" of the ", 1)[0].split(" (")[0]
    if "sit between the pooling and the classifier" in reason:
        return "its classifier does not read its pooled last map"
    return reason.split(", but")[0].split(". ")[0].rstrip(".")


def support_table() -> str:
    """The methods x families table in Markdown."""
    header = "| method | " + " | ".join(f.name for f in FAMILIES) + " |"
    rows = [header, "|" + "---|" * (len(FAMILIES) + 1)]
    for method in list_methods():
        rows.append(f"| `{method}` | " + " | ".join(cell(method, f) for f in FAMILIES) + " |")
    return "\n".join(rows)
