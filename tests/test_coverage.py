"""The coverage table: one network per torchvision classification family and per timm family (30+), each at its
smallest input, trains two KD steps and two AT steps as the student and as the teacher of a zoo ResNet, or is
refused with a reason that names the method; the guide's coverage table (docs/guide/any-network.md) says the
same, row by row."""

from __future__ import annotations

import re

import pytest
import torchvision
from torch import nn

from conftest import docs_page_with
from kdzoo.coverage import NETWORKS, Failure, Network, counts, coverage_row, names, outcome
from kdzoo.models import unwrap

MARKER = "<!-- coverage-table:"


def readme_block() -> str:
    """The docs' coverage table and its count lines: the two paragraphs after the marker's line."""
    after = docs_page_with(MARKER).read_text(encoding="utf-8").split(MARKER, 1)[1].split("\n", 1)[1]
    return "\n\n".join(after.split("\n\n")[:2])


def readme_rows() -> dict[str, str]:
    """The README's rows by ``source/builder``."""
    rows = re.finditer(r"^\| (\w+) \| [^|]+ \| `([^`]+)`.*\|$", readme_block(), re.M)
    return {f"{m.group(1)}/{m.group(2)}": m.group(0) for m in rows}


@pytest.mark.parametrize("network", NETWORKS, ids=lambda n: n.name)
def test_network_trains_kd_and_at_or_refuses_clearly(network):
    """Two finite KD steps and two AT steps each way (the student's parameters move), or a refusal that names the
    method; a failure is written as one (``fails as student: ...``), never counted as a refusal. The README's row
    says the same: regenerate it with ``python -m kdzoo list coverage``."""
    if network.source == "timm":  # a timm family is the module the model's class is defined in
        assert type(unwrap(network.build())).__module__ == f"timm.models.{network.family}"
    assert readme_rows().get(network.name) == coverage_row(network), \
        "regenerate the table: python -m kdzoo list coverage"


def test_the_networks_span_the_families():
    """Every torchvision classification builder belongs to a covered family; 30+ distinct timm families; the
    README lists exactly these networks, and its count lines are those of its rows."""
    families = {n.family for n in NETWORKS if n.source == "torchvision"}
    for name in torchvision.models.list_models(module=torchvision.models):
        assert any(name.startswith(family) for family in families), name
    timm_families = [n.family for n in NETWORKS if n.source == "timm"]
    assert len(set(timm_families)) == len(timm_families) >= 30
    rows = readme_rows()
    assert sorted(rows) == sorted(n.name for n in NETWORKS)
    assert readme_block().rstrip().endswith(counts(list(rows.values())))


def test_a_failure_is_never_a_refusal():
    """A refusal names its method (as a word); a network whose stages cannot be found fails, in the table's words."""
    assert names("Method 'at' reads stage maps of the student, and X has none", "at")
    assert not names("Cannot reshape 3 patch tokens (of 4) into a square grid", "at")
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))  # logits, but no map to call a stage
    result = outcome("at", Network("timm", "own", "flat", 32), flat, as_student=True)
    assert isinstance(result, Failure) and "as student: StagesNotFound" in str(result)
    assert outcome("kd", Network("timm", "own", "flat", 32), flat, as_student=True) is None
