"""Networks from outside the zoo as students and teachers: hook taps on any module (wrap_model), timm/ and
torchvision/ names with their own state-dict keys, their checkpoints as teachers, and from the CLI and grids.
(The Distiller: test_distiller.py; every method on every kind of network: test_support_table.py.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import TINY, images
from kdzoo.engine.checkpoint import load_teacher, read_checkpoint
from kdzoo.errors import ConfigError
from kdzoo.models import TappedModel, create_model, extract, model_info, tokens_to_map, wrap_model
from kdzoo.support_table import ExampleNet


# -- hook taps ------------------------------------------------------------------------------------
def test_hook_taps_are_the_named_modules_outputs():
    torch.manual_seed(0)
    net = ExampleNet().eval()
    tapped = wrap_model(net, ["layer1", "layer2", "layer3"])
    x = images(4, seed=0)
    with torch.no_grad():
        out = extract(tapped, x)
        stem = net.stem(x)
        l1 = net.layer1(stem)
        l2 = net.layer2(l1)
        l3 = net.layer3(l2)
        assert torch.allclose(out.logits, net(x))
    for got, want in zip(out.feats, [stem, l1, l2, l3, l3.mean(dim=(2, 3))], strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    assert torch.equal(out.head_map, out.stages[-1])
    assert not net.layer1._forward_hooks and not net.fc._forward_pre_hooks  # hooks are removed after the call
    assert tapped(x).shape == (4, 10) and torch.equal(tapped(x), net(x))  # plain forward: just the model


def test_hook_taps_carry_gradients_to_the_model():
    net = ExampleNet()
    out = extract(wrap_model(net, ["layer1", "layer2", "layer3"]), images(4, seed=0))
    out.stages[0].sum().backward()
    assert net.layer1[0].weight.grad is not None and net.layer3[0].weight.grad is None


def test_tokens_become_patch_maps():
    tokens = torch.arange(2 * 17 * 3, dtype=torch.float32).reshape(2, 17, 3)  # 1 class token + 4x4 patches
    grid = tokens_to_map(tokens)
    assert grid.shape == (2, 3, 4, 4)
    assert torch.equal(grid[1, 2, 0, 1], tokens[1, 2, 2]) and torch.equal(grid[0, :, 3, 3], tokens[0, 16])
    assert tokens_to_map(tokens[:, 1:], prefix_tokens=0).shape == (2, 3, 4, 4)
    # Blocks before the class token joins (XCiT's, ConViT's local ones) give the patches alone: nothing dropped.
    assert torch.equal(tokens_to_map(tokens[:, 1:], prefix_tokens=1), grid)
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
    out = extract(wrap_model(net, ["identity"], channels=[8]), images(2, seed=0))
    assert out.stages[0].shape == (2, 8, 16, 16)


def test_bad_layer_names_and_missing_classifier_are_clear_errors():
    with pytest.raises(ConfigError, match="has no module 'layer9'.*stem, layer1, layer2, layer3, pool, fc"):
        wrap_model(ExampleNet(), ["layer1", "layer9"])
    convs = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3))
    with pytest.raises(ConfigError, match=r"gives a tensor of shape \(2, 4, 26, 26\), not logits"):
        extract(wrap_model(convs, ["0"]), images(4, seed=0))

    class Sliced(ExampleNet):  # no module gives the 5 logits: they are cut out of the classifier's 10
        def forward(self, x):
            return super().forward(x)[:, :5]

    with pytest.raises(ConfigError, match="no module produces its 5 logits.*classifier=..."):
        extract(wrap_model(Sliced(), ["layer1", "layer2"]), images(4, seed=0))
    with pytest.raises(ConfigError, match="wrap it first"):
        extract(ExampleNet(), images(4, seed=0))


# -- timm/ and torchvision/ names -------------------------------------------------------------------
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
    assert [tuple(f.shape[1:]) for f in extract(vit.eval(), images(2, seed=0)).stages] == [(192, 4, 4)] * 4
    tv = create_model("torchvision/efficientnet_b0", num_classes=7)
    assert list(tv.checkpoint_entries()["model"]) == list(
        torchvision.models.efficientnet_b0(num_classes=7).state_dict())
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
        assert torch.allclose(teacher(images(2, seed=0)), source(images(2, seed=0)), atol=1e-6)


# -- from the CLI and grids ----------------------------------------------------------------------
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


def test_bench_grids_take_timm_and_torchvision_names(cli, tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("common: {dataset: synthetic, epochs: 1}\nteachers: train\n"
                    "pairs: [timm/convnext_atto -> torchvision/mobilenet_v3_small]\n"
                    "methods: [vanilla, at]\nseeds: [0]\n")
    code, out, err = cli("bench", "--grid", grid, "--out", tmp_path / "runs", "--dry-run")
    assert code == 0, err
    assert "teacher_timm-convnext_atto_seed0" in out
    assert "timm-convnext_atto-torchvision-mobilenet_v3_small_at_seed0" in out
