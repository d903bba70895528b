"""The Distiller (kdzoo's Python API for a training loop of your own): what it trains and never trains, what a
method needs from the call, OFD's teacher statistics; and its examples in docs/guide/own-loop.md run as written."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch

from conftest import docs_page_with, images
from kdzoo import Distiller
from kdzoo.errors import ConfigError
from kdzoo.models import create_model, extract
from kdzoo.support_table import ExampleNet

ROOT = Path(__file__).resolve().parents[1]
#: The pages whose Python blocks are examples for users: the front pages and the guide, in both languages.
USER_PAGES = [ROOT / "README.md", ROOT / "README.zh-CN.md", *sorted((ROOT / "docs" / "guide").rglob("*.md")),
              *sorted((ROOT / "docs" / "zh-CN").rglob("*.md"))]

# -- the Distiller ----------------------------------------------------------------------------------
def test_dir_lists_the_lazy_public_names():
    import kdzoo

    names = dir(kdzoo)
    assert {"Distiller", "load_teacher", "__version__"} <= set(names)
    assert names == sorted(names)
    assert all(getattr(kdzoo, name) is not None for name in kdzoo.__all__)


def test_a_teacher_of_other_classes_is_refused_when_the_distiller_is_built():
    """A 100-class teacher with a 10-class student: refused at construction with the command line's rule, not a
    shape error at the first step; a network that cannot run on input_shape is named."""
    from kdzoo.errors import KdzooError

    student, teacher = create_model("resnet8", num_classes=10), create_model("resnet20", num_classes=100)
    with pytest.raises(KdzooError, match=r"^The teacher predicts 100 classes but the student has 10\. .*"
                                         r"num_classes=100\.$"):
        Distiller(student, teacher, "kd")
    with pytest.raises(KdzooError, match=r"^The student \(resnet8\) cannot run on input_shape images \(1x32x32\)"):
        Distiller(student, create_model("resnet20", num_classes=10), "kd", input_shape=(1, 32, 32))


def test_distiller_trains_the_student_and_its_connectors_never_the_teacher():
    import torchvision

    torch.manual_seed(0)
    teacher = create_model("resnet14", num_classes=10)
    student = torchvision.models.mobilenet_v3_small(num_classes=10)
    distiller = Distiller(student, teacher, "fitnet", input_shape=(3, 32, 32))
    names = {n for n, _ in distiller.named_parameters()}
    assert names and all(n.startswith(("student.", "objective.method.")) for n in names)
    assert not any(k.startswith("teacher") for k in distiller.state_dict())
    teacher_before = copy.deepcopy(teacher.state_dict())
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.05, momentum=0.9)
    student_before = [p.detach().clone() for p in distiller.student.parameters()]
    distiller.train()
    assert not distiller.teacher.training
    for step in range(2):
        losses = distiller(images(8, seed=step), torch.arange(8) % 10)
        assert set(losses) == {"ce", "fitnet"}
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(student_before, distiller.student.parameters(), strict=True))
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
    distiller.double()
    assert next(distiller.teacher.parameters()).dtype == torch.float64  # moved with the distiller


def test_distiller_says_what_a_method_needs_from_the_call():
    s, t = ExampleNet(), create_model("resnet14", num_classes=10)
    crd = Distiller(s, t, "crd", student_layers=["layer1", "layer2", "layer3"], train_labels=torch.arange(64) % 10,
                    nce_k=16)
    with pytest.raises(ConfigError, match=r"index=idx"):
        crd(images(4, seed=0), torch.arange(4))
    assert torch.isfinite(sum(crd(images(4, seed=0), torch.arange(4), index=torch.arange(4)).values()))
    mlkd = Distiller(ExampleNet(), t, "mlkd")
    with pytest.raises(ConfigError, match="strong_images"):
        mlkd(images(4, seed=0), torch.arange(4))
    dkd = Distiller(ExampleNet(), t, "dkd")
    dkd.on_epoch_start(1, 240)
    first = dkd(images(4, seed=0), torch.arange(4))["dkd_nckd"]
    dkd.on_epoch_start(20, 240)
    # warm-up
    assert dkd(images(4, seed=0), torch.arange(4))["dkd_nckd"].item() == pytest.approx(20 * first.item(), rel=1e-5)


def test_ofd_reference_teacher_uses_batch_statistics_and_keeps_its_weights():
    torch.manual_seed(0)
    teacher = create_model("resnet14", num_classes=10)
    teacher.train()
    for _ in range(3):  # running statistics that differ from a fresh batch's
        teacher(images(16, seed=9) * 3 + 1)
    teacher.eval()
    before = copy.deepcopy(teacher.state_dict())
    distiller = Distiller(create_model("resnet8", num_classes=10), teacher, "ofd")
    x = images(8, seed=0)
    from kdzoo.distiller import run_networks

    _, t_out = run_networks(None, distiller.teacher, [x], distiller.reads)
    reference = copy.deepcopy(teacher).train()
    with torch.no_grad():
        expected = extract(reference, x, preact=True).stages
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(t_out.stages, expected, strict=True))
    distiller(x, torch.arange(8))
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items()) and not teacher.training
    eval_variant = Distiller(create_model("resnet8", num_classes=10), teacher, "ofd", variant="eval")
    _, t_eval = run_networks(None, teacher, [x], eval_variant.reads)
    with torch.no_grad():
        assert torch.allclose(t_eval.stages[0], extract(teacher, x, preact=True).stages[0])


# -- the docs' examples (docs/guide/own-loop.md) -------------------------------------------------------------
def example(marker: str):
    """The Python block right after ``<!-- marker -->``, compiled with the name of the docs page that holds it."""
    page = docs_page_with(f"<!-- {marker} -->")
    block = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)
    assert block, f"{page.name}: the example right after <!-- {marker} --> is a ```python block"
    return compile(block.group(1), str(page.relative_to(ROOT)), "exec")


def test_the_training_loop_example_runs_as_written(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.chdir(tmp_path)  # the example saves student.pt where it runs
    namespace: dict = {}
    exec(example("distiller-example"), namespace)
    assert namespace["losses"] and all(torch.isfinite(v) for v in namespace["losses"].values())
    assert namespace["mine"] is namespace["student"]
    saved = torch.load(tmp_path / "student.pt", weights_only=True)
    torchvision.models.mobilenet_v3_small(num_classes=10).load_state_dict(saved)  # strict: the user's own class


def test_every_python_block_of_the_front_pages_and_the_guide_is_an_example_a_test_runs():
    for page in USER_PAGES:
        text = page.read_text(encoding="utf-8")
        marked = re.findall(r"<!-- (?:distiller|lightning)-example -->\n```python", text)
        assert text.count("```python") == len(marked), f"{page.name}: a Python block no test runs"


def test_the_lightning_example_runs_as_written(tmp_path, monkeypatch):
    pytest.importorskip("lightning")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(example("distiller-example"), namespace)
    exec(example("lightning-example"), namespace)
    assert namespace["trainer"].current_epoch == 2
