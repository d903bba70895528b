"""Checkpoints: kdzoo round trip, RepDistiller/mdistiller teacher files, and clear errors."""

import argparse
from pathlib import Path

import pytest
import torch

from kdzoo import load_teacher
from kdzoo.engine.checkpoint import BEST, arch_from_folder, load_model, save_atomic
from kdzoo.errors import CheckpointError
from kdzoo.models import create_model


def repdistiller_file(root: Path, arch: str, folder: str | None = None, drop_bn_counters: bool = False,
                      **extra) -> Path:
    """A teacher file laid out as RepDistiller's train_teacher.py writes it."""
    model = create_model(arch, num_classes=100)
    state = model.state_dict()
    if drop_bn_counters:  # files written by PyTorch < 0.4.1
        state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = root / (folder or f"{arch}_vanilla") / "ckpt_epoch_240.pth"
    path.parent.mkdir(parents=True)
    torch.save({"epoch": 240, "model": state, "accuracy": torch.tensor(79.42),
                "optimizer": {"state": {}, "param_groups": []}, **extra}, path)
    return path


def same_outputs(a, b):
    x = torch.randn(2, 3, 32, 32)
    return torch.allclose(a.eval()(x), b.eval()(x))


@pytest.mark.parametrize("arch,folder", [
    ("resnet8x4", None), ("wrn_16_1", None), ("resnet8", "resnet8_cifar100_lr_0.05_decay_0.0005_trial_0"),
])
def test_repdistiller_teacher_loads_with_arch_from_folder(tmp_path, arch, folder):
    path = repdistiller_file(tmp_path, arch, folder)
    assert arch_from_folder(path) == arch
    teacher = load_teacher(path)
    assert teacher.kdzoo_arch == arch and not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    reference = create_model(arch, num_classes=100)
    reference.load_state_dict(torch.load(path, weights_only=True)["model"])
    assert same_outputs(teacher, reference)


def test_old_files_without_bn_counters_and_dataparallel_prefixes_load(tmp_path):
    path = repdistiller_file(tmp_path, "resnet8", drop_bn_counters=True)
    load_teacher(path)
    model = create_model("resnet8", num_classes=10)
    prefixed = tmp_path / "dp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in model.state_dict().items()}}, prefixed)
    assert same_outputs(load_teacher(prefixed, arch="resnet8"), model)


def test_bare_state_dict_needs_arch(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(create_model("resnet8", num_classes=10).state_dict(), path)
    with pytest.raises(CheckpointError, match="--teacher-arch"):
        load_teacher(path)
    assert load_teacher(path, arch="resnet8").fc.out_features == 10


def test_wrong_architecture_names_keys_and_shapes(tmp_path):
    path = repdistiller_file(tmp_path, "resnet8x4")
    with pytest.raises(CheckpointError, match="do not fit architecture 'resnet8'.*shape mismatches"):
        load_teacher(path, arch="resnet8")
    with pytest.raises(CheckpointError, match="missing keys"):
        load_teacher(path, arch="vgg8")


def test_truncated_missing_and_non_checkpoint_files(tmp_path):
    path = repdistiller_file(tmp_path, "resnet8")
    truncated = tmp_path / "resnet8_vanilla" / "truncated.pth"
    truncated.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated, corrupt"):
        load_teacher(truncated)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_teacher(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    torch.save([1, 2, 3], junk)
    with pytest.raises(CheckpointError, match="not a model checkpoint"):
        load_teacher(junk, arch="resnet8")


def test_files_holding_python_objects_are_refused_with_advice(tmp_path):
    path = repdistiller_file(tmp_path, "resnet8", opt=argparse.Namespace(model="resnet8"))
    with pytest.raises(CheckpointError, match="weights_only=True.*ckpt_epoch_N.pth"):
        load_teacher(path)


def test_unknown_folder_name_asks_for_arch(tmp_path):
    path = repdistiller_file(tmp_path, "resnet8", folder="S-resnet8_T-resnet32x4_kd")
    with pytest.raises(CheckpointError, match="Cannot tell the architecture"):
        load_teacher(path)


def test_kdzoo_checkpoint_round_trip_and_atomic_write(tmp_path):
    model = create_model("resnet8", num_classes=10, in_channels=1)
    save_atomic({"format": "kdzoo", "arch": "resnet8", "num_classes": 10, "in_channels": 1,
                 "model": model.state_dict()}, tmp_path / BEST)
    assert [p.name for p in tmp_path.iterdir()] == [BEST]  # no temporary file left behind
    loaded, data = load_model(tmp_path)  # a run folder resolves to its checkpoint
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(loaded.eval()(x), model.eval()(x)) and data["arch"] == "resnet8"
