"""The any-network path as a new user walks it: stages looked for only when a method reads them, found where a person
would say they are (top-level siblings, nested trunks, 1x1-convolution classifiers), named from the command line
when the search cannot find them, errors that name the fix in the caller's terms, and a deployed student whose state
dict loads into the user's own class."""

from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

from conftest import TINY, images
from kdzoo import Distiller
from kdzoo.engine.checkpoint import read_checkpoint
from kdzoo.errors import ConfigError
from kdzoo.models import create_model, extract, unwrap, wrap_model
from kdzoo.models.registry import MODELS
from kdzoo.models.stage_search import StagesNotFound, run_probe, stage_end
from kdzoo.registry import Entry
from kdzoo.support_table import ExampleNet


class Siblings(nn.Module):
    """A user's network whose stages sit side by side at the top level (``block1``, ``block2``, ``block3``)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.block1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.block2 = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
        self.block3 = nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU())
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.head(self.block3(self.block2(self.block1(self.stem(x)))).mean(dim=(2, 3)))


class OneResolution(nn.Module):
    """No stages to find: every map keeps the image's size."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.fixture
def zoo_entries(monkeypatch):
    """The two networks above under zoo names for the command line (for this test only)."""
    for name, factory in (("test_siblings", Siblings), ("test_one_resolution", OneResolution)):
        monkeypatch.setitem(MODELS._entries, name, Entry(name, factory, {"family": "test", "lr": 0.05}))


# -- where the stages are ------------------------------------------------------------------------------------------
def test_stages_side_by_side_at_the_top_level_are_found():
    net = wrap_model(Siblings())
    out = extract(net.eval(), images(2, seed=0))
    assert net.feature_layers == ["block1", "block2", "block3"]
    assert [tuple(f.shape[1:]) for f in out.stages] == [(8, 32, 32), (16, 16, 16), (32, 8, 8)]
    assert out.feats[0].shape == (2, 8, 32, 32) and out.pooled.shape == (2, 32)  # stem: what enters block1


def test_torchvision_stages_are_what_a_person_calls_them():
    """ShuffleNetV2's stage2..4 (top-level siblings, its 1x1 conv5 head stepped over), VGG's trunk inside
    ``features``, SqueezeNet's classifier: a 1x1 convolution, pooled."""
    shuffle = create_model("torchvision/shufflenet_v2_x0_5", num_classes=10)
    extract(shuffle.eval(), images(2, seed=0))
    assert shuffle.feature_layers == ["stage2", "stage3", "stage4"] and shuffle.classifier_name == "fc"
    squeeze = create_model("torchvision/squeezenet1_0", num_classes=10).eval()
    out = extract(squeeze, images(2, seed=0))
    assert squeeze.classifier_name == "classifier.1" and out.pooled.shape == (2, 512)
    assert [f.shape[-1] for f in out.stages] == [13, 6, 3, 1] and not squeeze.feature_support().classifier
    assert torch.equal(out.logits, squeeze(images(2, seed=0)))


def test_a_stage_ends_before_pooling_and_a_pointwise_head():
    conv3, conv1 = nn.Conv2d(4, 4, 3), nn.Conv2d(4, 8, 1)
    assert stage_end([conv3, nn.ReLU(), nn.AdaptiveAvgPool2d(1)]) == 1  # the ReLU ends the stage, pooling does not
    assert stage_end([conv3, conv1, nn.BatchNorm2d(8), nn.ReLU()]) == 0  # 1x1 head with its norm and activation
    assert stage_end([nn.MaxPool2d(2), conv1]) is None


def test_the_probe_leaves_the_network_as_it_was():
    net = ExampleNet().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    probe = run_probe(net, (3, 32, 32))
    assert probe.logits == (2, 10) and probe.last("layer3").output == (2, 64, 8, 8)
    assert net.training and not net.layer1._forward_hooks and not net.layer1._forward_pre_hooks
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BatchNorm statistics untouched


# -- only when a method reads them ---------------------------------------------------------------------------------
def test_plain_training_and_logit_methods_never_look_for_stages(cli, tmp_path, zoo_entries):
    teacher = create_model("resnet8", num_classes=10)
    distiller = Distiller(OneResolution(), teacher, "dkd", input_shape=(3, 32, 32))
    sum(distiller(images(4, seed=0), torch.arange(4)).values()).backward()
    shuffle = create_model("torchvision/shufflenet_v2_x0_5", num_classes=10)
    Distiller(shuffle, teacher, "kd", input_shape=(3, 32, 32))
    assert shuffle._probe is None and shuffle._layers is None  # built, run, never searched
    for args in (("train", "--model", "test_one_resolution"),
                 ("distill", "--student", "test_one_resolution", "--teacher-arch", "test_one_resolution",
                  "--teacher", tmp_path / "train", "--method", "kd")):
        code, out, err = cli(*args, *TINY, "--epochs", "1", "--output-dir", tmp_path, "--name", args[0])
        assert code == 0, err


# -- the fix in the caller's terms ---------------------------------------------------------------------------------
def test_a_failed_search_names_the_distiller_keyword_of_that_network():
    teacher = create_model("resnet8", num_classes=10)
    with pytest.raises(StagesNotFound, match=r"stages of the student OneResolution.*student_layers=\['a', 'b', "
                                             r"'c'\].*its top-level modules: conv, fc"):
        Distiller(OneResolution(), teacher, "at", input_shape=(3, 32, 32))
    with pytest.raises(StagesNotFound, match=r"stages of the teacher OneResolution.*teacher_layers="):
        Distiller(create_model("resnet8", num_classes=10), OneResolution(), "fitnet", input_shape=(3, 32, 32))
    with pytest.raises(StagesNotFound, match="student_layers="):
        Distiller(OneResolution(), None, "byot", input_shape=(3, 32, 32))  # exits need the stages too
    distiller = Distiller(OneResolution(), teacher, "at", input_shape=(3, 32, 32), student_layers=["conv"])
    assert torch.isfinite(sum(distiller(images(4, seed=0), torch.arange(4)).values()))


def test_feature_layers_from_the_command_line_are_used_and_saved(cli, tmp_path, zoo_entries):
    code, out, err = cli("train", "--model", "test_one_resolution", *TINY, "--epochs", "1", "--output-dir", tmp_path,
                         "--name", "teacher")
    assert code == 0, err
    common = ("--teacher", tmp_path / "teacher", "--method", "at", *TINY, "--epochs", "1", "--output-dir", tmp_path)
    code, out, err = cli("distill", "--student", "test_one_resolution", *common, "--name", "refused")
    assert code == 2 and "Traceback" not in err
    assert "stages of the student test_one_resolution" in err and "--feature-layers a,b,c" in err
    code, out, err = cli("distill", "--student", "test_siblings", *common, "--name", "refused")
    assert code == 2 and "stages of the teacher test_one_resolution" in err and "--teacher-feature-layers" in err
    code, out, err = cli("distill", "--student", "test_one_resolution", "--feature-layers", "conv",
                         "--teacher-feature-layers", "conv", *common, "--name", "student")
    assert code == 0, err
    run = tmp_path / "student"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["feature_layers"] == ["conv"] and saved["teacher_feature_layers"] == ["conv"]
    checkpoint = read_checkpoint(run / "checkpoint_last.pt")
    assert checkpoint["feature_layers"] == ["conv"] and "conv.weight" in checkpoint["model"]
    code, out, err = cli("eval", run, "--device", "cpu")
    assert code == 0 and "top-1" in out, err
    code, out, err = cli("distill", "--student", "test_siblings", "--teacher", run, "--method", "fitnet",
                         "--method-opt", "hint_layer=1", *TINY, "--epochs", "1", "--output-dir", tmp_path,
                         "--name", "from_saved")
    assert code == 0, err  # the teacher's stages come from its checkpoint


def test_an_unknown_builder_option_is_one_line_with_the_accepted_ones(cli, tmp_path):
    code, out, err = cli("train", "--model", "torchvision/resnet18", "--model-opt", "nosuch=3", *TINY,
                         "--output-dir", tmp_path)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "torchvision/resnet18 does not take 'nosuch'" in err and "zero_init_residual" in err
    assert "block," not in err  # what the builder itself sets is not offered
    with pytest.raises(ConfigError, match="timm/resnet10t does not take 'nosuch'.*drop_rate"):
        create_model("timm/resnet10t", nosuch=3)
    with pytest.raises(ConfigError, match="has no module 'layer9'"):
        create_model("torchvision/resnet18", feature_layers=["layer1", "layer9"])


# -- the deployed student is the user's network --------------------------------------------------------------------
def test_the_trained_student_loads_into_the_users_own_class():
    torch.manual_seed(0)
    mine = ExampleNet()
    distiller = Distiller(mine, create_model("resnet8", num_classes=10), "at", input_shape=(3, 32, 32))
    optimizer = torch.optim.SGD(distiller.parameters(), lr=0.1)
    sum(distiller(images(4, seed=0), torch.arange(4)).values()).backward()
    optimizer.step()
    assert unwrap(distiller.student) is mine
    fresh = ExampleNet()
    fresh.load_state_dict(distiller.student.state_dict())  # strict: the same keys as the user's class
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), mine.state_dict().values(), strict=True))
    again = wrap_model(ExampleNet())
    again.load_state_dict(fresh.state_dict())
    assert torch.equal(again.model.fc.weight, mine.fc.weight)


def test_timm_and_torchvision_checkpoints_load_into_their_own_builders(cli, tmp_path):
    import timm
    import torchvision

    for arch, build in (("timm/resnet10t", lambda: timm.create_model("resnet10t", num_classes=10)),
                        ("torchvision/shufflenet_v2_x0_5",
                         lambda: torchvision.models.get_model("shufflenet_v2_x0_5", num_classes=10))):
        name = arch.replace("/", "_")
        code, out, err = cli("train", "--model", arch, *TINY, "--epochs", "1",
                             "--output-dir", tmp_path, "--name", name)
        assert code == 0, err
        saved = read_checkpoint(tmp_path / name / "checkpoint_last.pt")["model"]
        network = build()
        network.load_state_dict(saved)  # strict
        assert all(torch.equal(network.state_dict()[k], v) for k, v in saved.items())
