"""The support table: every registered method on every kind of network (timm CNN, timm ViT, torchvision, a user's
module) trains two finite steps or refuses clearly, and the guide's support table (docs/guide/any-network.md) says the
same."""

from __future__ import annotations

import re

import pytest
import torch

from conftest import docs_page_with, images
from kdzoo.coverage import names
from kdzoo.errors import KdzooError
from kdzoo.methods import list_methods, method_class
from kdzoo.support_table import FAMILIES, PARTNER, cell, cell_text, distiller_for

SUPPORT_MARKER = "<!-- support-table:"


# -- every method on every kind of network ----------------------------------------------------------
def readme_support_rows() -> dict[str, str]:
    """The rows of the docs' support table (the block after its marker)."""
    text = docs_page_with(SUPPORT_MARKER).read_text(encoding="utf-8")
    table = text.split(SUPPORT_MARKER, 1)[1].split("\n\n", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_0-9]+)` \|.*\|$", table, re.M)}


@pytest.mark.parametrize("method", list_methods())
def test_every_method_on_every_family_trains_or_refuses_clearly(method):
    """Two optimisation steps with a finite loss on eight cross-family pairs (timm CNN, timm ViT, torchvision,
    a user's module; each as student and as teacher of a zoo ResNet), or a refusal that names the method and what
    is missing; the docs' support table says the same (its zoo column is tested on the RepDistiller pairs)."""
    self_distill = not method_class(method).reads.needs_teacher
    cells = []
    for family in FAMILIES[1:]:
        pairs = [(family, None)] if self_distill else [(family, PARTNER), (PARTNER, family)]
        reasons = [trained_or_refused(method, student, teacher) for student, teacher in pairs]
        cells.append(cell_text(reasons[0], None, self_distillation=True) if self_distill else cell_text(*reasons))
    expected = f"| `{method}` | " + " | ".join([cell(method, FAMILIES[0]), *cells]) + " |"
    assert readme_support_rows().get(method) == expected, "regenerate the table: python -m kdzoo list support"


def trained_or_refused(method: str, student, teacher) -> str | None:
    """None after two finite optimisation steps of ``method`` on the pair, else its refusal."""
    try:
        distiller = distiller_for(method, student, teacher)
    except KdzooError as exc:
        # the method named as a word: not the "at" of "patch"
        assert names(str(exc), method) and "Traceback" not in str(exc), str(exc)
        return str(exc)
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.01, momentum=0.9)
    distiller.train()
    for step in range(2):
        x = images(4, seed=step)
        extra = {"index": torch.arange(4)} if distiller.reads.index else {}
        if distiller.reads.strong_view:
            extra["strong_images"] = x.flip(-1)
        loss = sum(distiller(x, torch.arange(4), **extra).values())
        assert torch.isfinite(loss), (method, student.name, teacher and teacher.name)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return None
