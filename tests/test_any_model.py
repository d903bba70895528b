"""Any network as student or teacher: hook taps, timm/torchvision names, the Distiller and the support table."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import TINY
from kdzoo import Distiller
from kdzoo.engine.checkpoint import load_teacher, read_checkpoint
from kdzoo.errors import ConfigError, KdzooError
from kdzoo.methods import list_methods, method_class
from kdzoo.models import TappedModel, create_model, extract, model_info, tokens_to_map, wrap_model
from kdzoo.support import FAMILIES, PARTNER, ExampleNet, cell, cell_text, distiller_for

README = Path(__file__).resolve().parents[1] / "README.md"


def x_batch(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


# -- hook taps ------------------------------------------------------------------------------------
def test_hook_taps_are_the_named_modules_outputs():
    torch.manual_seed(0)
    net = ExampleNet().eval()
    tapped = wrap_model(net, ["layer1", "layer2", "layer3"])
    x = x_batch()
    with torch.no_grad():
        out = extract(tapped, x)
        stem = net.stem(x)
        l1 = net.layer1(stem)
        l2 = net.layer2(l1)
        l3 = net.layer3(l2)
        assert torch.allclose(out.logits, net(x))
    for got, want in zip(out.feats, [stem, l1, l2, l3, l3.mean(dim=(2, 3))]):
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.equal(out.head_map, out.stages[-1])
    assert not net.layer1._forward_hooks and not net.fc._forward_pre_hooks  # hooks are removed after the call
    assert tapped(x).shape == (4, 10) and torch.equal(tapped(x), net(x))  # plain forward: just the model


def test_hook_taps_carry_gradients_to_the_model():
    net = ExampleNet()
    out = extract(wrap_model(net, ["layer1", "layer2", "layer3"]), x_batch())
    out.stages[0].sum().backward()
    assert net.layer1[0].weight.grad is not None and net.layer3[0].weight.grad is None


def test_tokens_become_patch_maps():
    tokens = torch.arange(2 * 17 * 3, dtype=torch.float32).reshape(2, 17, 3)  # 1 class token + 4x4 patches
    grid = tokens_to_map(tokens)
    assert grid.shape == (2, 3, 4, 4)
    assert torch.equal(grid[1, 2, 0, 1], tokens[1, 2, 2]) and torch.equal(grid[0, :, 3, 3], tokens[0, 16])
    assert tokens_to_map(tokens[:, 1:], prefix_tokens=0).shape == (2, 3, 4, 4)
    with pytest.raises(ConfigError, match="square grid"):
        tokens_to_map(tokens, prefix_tokens=2)


def test_channels_last_stage_outputs_are_permuted():
    class NHWC(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Conv2d(3, 8, 3, stride=2, padding=1)
            self.head = nn.Linear(8, 5)

        def forward(self, x):
            return self.head(self.stage(self.body(x)).mean(dim=(1, 2)))

        def stage(self, x):
            return self.identity(x.permute(0, 2, 3, 1))

    net = NHWC()
    net.identity = nn.Identity()
    out = extract(wrap_model(net, ["identity"], channels=[8]), x_batch(2))
    assert out.stages[0].shape == (2, 8, 16, 16)


def test_bad_layer_names_and_missing_classifier_are_clear_errors():
    with pytest.raises(ConfigError, match="has no module 'layer9'.*stem, layer1, layer2, layer3, pool, fc"):
        wrap_model(ExampleNet(), ["layer1", "layer9"])
    with pytest.raises(ConfigError, match="no nn.Linear classifier"):
        wrap_model(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3)), ["0"])
    with pytest.raises(ConfigError, match="wrap it first"):
        extract(ExampleNet(), x_batch())


def test_timm_and_torchvision_names_build_with_their_own_state_dict_keys():
    import timm
    import torchvision

    net = create_model("timm/convnext_atto", num_classes=7, in_channels=1)
    assert isinstance(net, TappedModel) and net.feature_layers == ["stages.0", "stages.1", "stages.2", "stages.3"]
    assert list(net.checkpoint_entries()["model"]) == list(timm.create_model("convnext_atto", num_classes=7,
                                                                             in_chans=1).state_dict())
    out = extract(net.eval(), torch.randn(2, 1, 32, 32))
    assert [f.shape[1] for f in out.stages] == [40, 80, 160, 320] and out.logits.shape == (2, 7)
    vit = create_model("timm/vit_tiny_patch16_224", num_classes=7, img_size=32, patch_size=8, depth=4)
    assert [tuple(f.shape[1:]) for f in extract(vit.eval(), x_batch(2)).stages] == [(192, 4, 4)] * 4
    tv = create_model("torchvision/efficientnet_b0", num_classes=7)
    assert list(tv.checkpoint_entries()["model"]) == list(torchvision.models.efficientnet_b0(num_classes=7).state_dict())
    assert model_info("torchvision/resnet18")["family"] == "torchvision"


def test_unknown_external_names_and_a_missing_timm_are_clear(monkeypatch):
    with pytest.raises(ConfigError, match="Unknown timm model 'convnext_atom'.*timm/convnext_atto"):
        model_info("timm/convnext_atom")
    with pytest.raises(ConfigError, match="Unknown torchvision model 'resnet19'"):
        create_model("torchvision/resnet19")
    import importlib

    real = importlib.import_module
    monkeypatch.setattr(importlib, "import_module", lambda name, *a: (_ for _ in ()).throw(ImportError(name))
                        if name == "timm" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'kdzoo\[timm\]'"):
        create_model("timm/resnet18")


def test_a_timm_state_dict_loads_as_a_teacher(tmp_path):
    import timm

    torch.manual_seed(0)
    source = timm.create_model("convnext_atto", num_classes=10).eval()
    path = tmp_path / "convnext_atto.pth"
    torch.save(source.state_dict(), path)
    teacher = load_teacher(path, arch="timm/convnext_atto")
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    with torch.no_grad():
        assert torch.allclose(teacher(x_batch(2)), source(x_batch(2)), atol=1e-6)


# -- the Distiller ----------------------------------------------------------------------------------
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
        losses = distiller(x_batch(8, step), torch.arange(8) % 10)
        assert set(losses) == {"ce", "fitnet"}
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(student_before, distiller.student.parameters()))
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in teacher_before.items())
    distiller.double()
    assert next(distiller.teacher.parameters()).dtype == torch.float64  # moved with the distiller


def test_distiller_says_what_a_method_needs_from_the_call():
    s, t = ExampleNet(), create_model("resnet14", num_classes=10)
    crd = Distiller(s, t, "crd", student_layers=["layer1", "layer2", "layer3"], train_labels=torch.arange(64) % 10,
                    nce_k=16)
    with pytest.raises(ConfigError, match=r"index=idx"):
        crd(x_batch(4), torch.arange(4))
    assert torch.isfinite(sum(crd(x_batch(4), torch.arange(4), index=torch.arange(4)).values()))
    mlkd = Distiller(ExampleNet(), t, "mlkd")
    with pytest.raises(ConfigError, match="strong_images"):
        mlkd(x_batch(4), torch.arange(4))
    dkd = Distiller(ExampleNet(), t, "dkd")
    dkd.on_epoch_start(1, 240)
    first = dkd(x_batch(4), torch.arange(4))["dkd_nckd"]
    dkd.on_epoch_start(20, 240)
    assert dkd(x_batch(4), torch.arange(4))["dkd_nckd"].item() == pytest.approx(20 * first.item(), rel=1e-5)  # warm-up


def test_ofd_reference_teacher_uses_batch_statistics_and_keeps_its_weights():
    torch.manual_seed(0)
    teacher = create_model("resnet14", num_classes=10)
    teacher.train()
    for _ in range(3):  # running statistics that differ from a fresh batch's
        teacher(x_batch(16, 9) * 3 + 1)
    teacher.eval()
    before = copy.deepcopy(teacher.state_dict())
    distiller = Distiller(create_model("resnet8", num_classes=10), teacher, "ofd")
    x = x_batch(8)
    from kdzoo.distiller import run_networks

    _, t_out = run_networks(None, distiller.teacher, [x], distiller.reads)
    reference = copy.deepcopy(teacher).train()
    with torch.no_grad():
        expected = extract(reference, x, preact=True).stages
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(t_out.stages, expected))
    distiller(x, torch.arange(8))
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items()) and not teacher.training
    eval_variant = Distiller(create_model("resnet8", num_classes=10), teacher, "ofd", variant="eval")
    _, t_eval = run_networks(None, teacher, [x], eval_variant.reads)
    with torch.no_grad():
        assert torch.allclose(t_eval.stages[0], extract(teacher, x, preact=True).stages[0])


# -- every method on every kind of network ----------------------------------------------------------
def readme_support_rows() -> dict[str, str]:
    """The rows of the README's support table (the block after its marker)."""
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- support-table:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([a-z_]+)` \|.*\|$", table, re.M)}


@pytest.mark.parametrize("method", list_methods())
def test_every_method_on_every_family_trains_or_refuses_clearly(method):
    """Two optimisation steps with a finite loss on eight cross-family pairs (timm CNN, timm ViT, torchvision,
    a user's module; each as student and as teacher of a zoo ResNet), or a refusal that names the method and what
    is missing; the README's support table says the same (its zoo column is tested on the RepDistiller pairs)."""
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
        assert method.lower() in str(exc).lower() and "Traceback" not in str(exc), str(exc)
        return str(exc)
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.01, momentum=0.9)
    distiller.train()
    for step in range(2):
        x = x_batch(4, step)
        extra = {"index": torch.arange(4)} if distiller.reads.index else {}
        if distiller.reads.strong_view:
            extra["strong_images"] = x.flip(-1)
        loss = sum(distiller(x, torch.arange(4), **extra).values())
        assert torch.isfinite(loss), (method, student.name, teacher and teacher.name)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return None


def test_the_cli_distills_between_timm_and_torchvision_networks(cli, tmp_path):
    code, out, err = cli("train", "--model", "timm/convnext_atto", *TINY, "--epochs", "1", "--output-dir", tmp_path,
                         "--name", "teacher")
    assert code == 0, err
    code, out, err = cli("distill", "--teacher", tmp_path / "teacher", "--student", "torchvision/mobilenet_v3_small",
                         "--method", "at", *TINY, "--epochs", "1", "--output-dir", tmp_path, "--name", "student")
    assert code == 0, err
    assert "distilling timm/convnext_atto -> torchvision/mobilenet_v3_small with at" in out
    saved = read_checkpoint(tmp_path / "student" / "checkpoint_last.pt")
    assert saved["arch"] == "torchvision/mobilenet_v3_small" and "features.0.0.weight" in saved["model"]
    code, out, err = cli("eval", tmp_path / "student", "--device", "cpu")
    assert code == 0 and "top-1" in out, err
    code, out, err = cli("distill", "--teacher", tmp_path / "teacher", "--student", "timm/convnext_atto",
                         "--method", "ofd", *TINY, "--epochs", "1", "--output-dir", tmp_path, "--name", "refused")
    assert code == 2 and "pre-activation" in err and "Traceback" not in err
    assert not (tmp_path / "refused").exists()


def test_vit_options_reach_the_builder_and_are_remembered(cli, tmp_path):
    code, out, err = cli("train", "--model", "timm/vit_tiny_patch16_224", "--model-opt", "img_size=32",
                         "--model-opt", "patch_size=8", "--model-opt", "depth=2", *TINY, "--epochs", "1",
                         "--output-dir", tmp_path, "--name", "vit")
    assert code == 0, err
    teacher = load_teacher(tmp_path / "vit")  # rebuilt with its options from the checkpoint
    assert len(teacher.model.blocks) == 2 and teacher.model.patch_embed.patch_size == (8, 8)


def test_teacher_pretrained_needs_an_external_architecture(cli):
    code, out, err = cli("distill", "--teacher-pretrained", "--teacher-arch", "resnet32x4", "--student", "resnet8",
                         *TINY, "--epochs", "1")
    assert code == 2 and "timm/NAME or torchvision/NAME" in err


def readme_block(marker: str) -> str:
    """The README's Python block right after ``<!-- marker -->``."""
    block = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block, f"the README's example is marked with <!-- {marker} -->"
    return block.group(1)


def test_readme_training_loop_example_runs_as_written():
    namespace: dict = {}
    exec(compile(readme_block("distiller-example"), "README.md", "exec"), namespace)
    assert namespace["losses"] and all(torch.isfinite(v) for v in namespace["losses"].values())


def test_every_readme_python_block_is_an_example_a_test_runs():
    text = README.read_text(encoding="utf-8")
    assert text.count("```python") == len(re.findall(r"<!-- (?:distiller|lightning)-example -->\n```python", text))


def test_readme_lightning_example_runs_as_written():
    pytest.importorskip("lightning")
    namespace: dict = {}
    exec(compile(readme_block("distiller-example"), "README.md", "exec"), namespace)
    exec(compile(readme_block("lightning-example"), "README.md", "exec"), namespace)
    assert namespace["trainer"].current_epoch == 2


def test_bench_grids_take_timm_and_torchvision_names(cli, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("common: {dataset: synthetic, epochs: 1}\nteachers: train\n"
                    "pairs: [timm/convnext_atto -> torchvision/mobilenet_v3_small]\nmethods: [vanilla, at]\nseeds: [0]\n")
    code, out, err = cli("bench", "--grid", grid, "--out", tmp_path / "runs", "--dry-run")
    assert code == 0, err
    assert "teacher_timm-convnext_atto_seed0" in out and "timm-convnext_atto-torchvision-mobilenet_v3_small_at_seed0" in out
