"""Every bad input a clear error: the CLI (train, distill, eval, bench, report, temperature, list), YAML
configs, checkpoints, datasets, options, run folders and grids, each tried in-process.

Each case asserts a non-zero exit, no traceback, a message that names the bad value, and that the
finished runs and files already on disk are byte for byte as before.
"""

import argparse
import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY
from kdzoo.commands import main
from kdzoo.engine.checkpoint import LAST
from kdzoo.run_folder import CONFIG, SUMMARY


class RunsCode:
    """Unpickling this calls ``os.system``: a checkpoint that tries to run code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def image_folder(root: Path, classes=("cat", "dog"), bad: str | None = None, val_classes=None) -> Path:
    """ROOT/{train,val}/<class>/*.png with 2 images per class (``val_classes``: other classes in val);
    ``bad`` names a 10-byte file added to train/cat."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    for split, names in (("train", classes), ("val", val_classes or classes)):
        for name in names:
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")
    if bad:
        (root / "train" / "cat" / bad).write_bytes(b"not an img")
    return root


@pytest.fixture(scope="module")
def p(tmp_path_factory, tiny_teacher):
    """Everything the cases point at: finished runs (in ``runs``), damaged copies of them, bad files and folders."""
    root = tmp_path_factory.mktemp("bad_inputs")
    runs = root / "runs"
    done = runs / "done"  # a finished run: a copy of the session's tiny teacher run (resnet14, 1 epoch)
    shutil.copytree(tiny_teacher, done)

    def copy(name, edit=None, keep_summary=False):
        target = runs / name
        shutil.copytree(done, target)
        if not keep_summary:
            (target / SUMMARY).unlink()
        if edit:
            edit(target)
        return target

    def edit_config(**changes):
        def apply(folder):
            values = yaml.safe_load((folder / CONFIG).read_text())
            (folder / CONFIG).write_text(yaml.safe_dump({**values, **changes}))
        return apply

    files = root / "files"
    (files / "resnet8_vanilla").mkdir(parents=True)
    good = torch.load(done / LAST, weights_only=True)["model"]
    (files / "empty.pth").write_bytes(b"")
    (files / "truncated.pth").write_bytes((done / LAST).read_bytes()[:3000])
    (files / "notes.pth").write_text("these are my notes, not weights\n")
    (files / "random.pth").write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    shutil.make_archive(str(files / "archive"), "zip", root_dir=files, base_dir="notes.pth")
    (files / "archive.zip").rename(files / "archive.pth")
    torch.save({"model": RunsCode(root / "code_ran")}, files / "runs_code.pth")
    torch.save({"model": good, "opt": argparse.Namespace(model="resnet8"), "epoch": 240},
               files / "resnet8_vanilla" / "resnet8_last.pth")
    torch.save([1, 2, 3], files / "list.pth")
    torch.save({"model": {"conv1.weight": "not a tensor"}}, files / "strings.pth")
    torch.save(good, files / "bare.pth")

    data = root / "data"
    for name in ("empty", "cifar"):
        (data / name).mkdir(parents=True)
    return SimpleNamespace(
        root=root, runs=runs, done=done, teacher=tiny_teacher, files=files,
        edited=copy("edited", edit_config(lr=0.5)),
        resumable=copy("resumable"),
        finished=done,
        bad_yaml=copy("bad_yaml", lambda f: (f / CONFIG).write_text("model: resnet8\nepochs: [1\n")),
        unknown_key=copy("unknown_key", edit_config(learning_rate=0.1)),
        bad_type=copy("bad_type", edit_config(epochs="ten")),
        no_epoch=copy("no_epoch", lambda f: [(f / n).unlink() for n in (LAST, "checkpoint_best.pt")]),
        swapped=copy("swapped", lambda f: (f / LAST).write_bytes((files / "random.pth").read_bytes())),
        bad_summary=copy("bad_summary", lambda f: (f / SUMMARY).write_text("{not json"), keep_summary=True),
        not_a_run=folder(runs / "not_a_run"),
        output_file=text_file(root / "a_file"),
        config=write_configs(root / "configs"),
        grid=write_grids(root / "grids"),
        one_class=image_folder(data / "one_class", classes=("cat",)),
        differ=image_folder(data / "differ", val_classes=("cat", "wolf")),
        unreadable=image_folder(data / "unreadable", bad="broken.png"),
        data=data,
    )


def write_configs(folder: Path) -> SimpleNamespace:
    folder.mkdir()
    texts = {"invalid": "model: resnet8\nlr: [0.1\n", "a_list": "- model\n- resnet8\n",
             "typo": "model: resnet8\nlearning_rate: 0.1\n", "text_epochs": "model: resnet8\nepochs: ten\n",
             "scalar_milestones": "model: resnet8\nmilestones: 150\n",
             "options_scalar": "model: resnet8\nmethod: kd\nmethod_options: 3\n",
             "nan_lr": "model: resnet8\nlr: .nan\n", "student_and_model": "student: resnet8\nmodel: resnet20\n"}
    for name, text in texts.items():
        (folder / f"{name}.yaml").write_text(text)
    return SimpleNamespace(**{name: folder / f"{name}.yaml" for name in texts})


def write_grids(folder: Path) -> SimpleNamespace:
    folder.mkdir()
    base = {"common": {"dataset": "synthetic", "device": "cpu"}, "teachers": "train", "pairs": ["resnet14 -> resnet8"],
            "methods": ["kd"]}
    grids = {"unknown_method": {**base, "methods": ["kdd"]}, "empty_axis": {**base, "axes": {"temperature": []}},
             "unknown_key": {**base, "sweeps": [1]}, "no_pairs": {**base, "pairs": []},
             "unknown_common": {**base, "common": {"learning_rate": 0.1}},
             "bad_method_option": {**base, "methods": [{"method": "crd", "method_options": {"nce_k": "many"}}]}}
    for name, grid in grids.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(grid))
    return SimpleNamespace(**{name: folder / f"{name}.yaml" for name in grids})


def folder(path: Path) -> Path:
    path.mkdir()
    return path


def text_file(path: Path) -> Path:
    path.write_text("not a folder\n")
    return path


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under ``folders`` with a hash of its bytes (new, changed and removed files all show)."""
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for folder in folders for f in sorted(folder.rglob("*"))
            if f.is_file()}


def distill(p, *args):
    return ["distill", "--teacher", p.teacher, "--student", "resnet8", *TINY, "--epochs", "1", "--output-dir", p.runs,
            *args]


def train(p, *args):
    return ["train", "--model", "resnet8", *TINY, "--epochs", "1", "--output-dir", p.runs, *args]


def folder_data(p, dataset, root, *args):
    """A training run on a dataset from disk (TINY's synthetic options do not apply)."""
    return ["train", "--model", "resnet8", "--dataset", dataset, "--data-root", root, "--epochs", "1", "--no-progress",
            "--no-tensorboard", "--device", "cpu", "--output-dir", p.runs, *args]


def method_opt(p, method, option):
    return distill(p, "--method", method, "--method-opt", option)


# case id -> (arguments, texts the message must hold: the bad value and what to do)
CASES = {
    # -- command line: names and choices
    "unknown model": (lambda p: train(p, "--model", "resnet9"), ["'resnet9'", "Did you mean"]),
    "unknown method": (lambda p: distill(p, "--method", "fitnett"), ["'fitnett'", "fitnet"]),
    "unknown dataset": (lambda p: train(p, "--dataset", "cifar1000"), ["'cifar1000'", "cifar100"]),
    "unknown device": (lambda p: train(p, "--device", "banana"), ["'banana'", "cpu"]),
    "absent GPU": (lambda p: train(p, "--device", "cuda:7"), ["cuda:7"]),
    "unknown amp": (lambda p: train(p, "--amp", "fp17"), ["'fp17'", "bf16"]),
    "unknown optimizer": (lambda p: train(p, "--optimizer", "adam"), ["'adam'", "adamw"]),
    "unknown schedule": (lambda p: train(p, "--schedule", "linear"), ["'linear'", "cosine"]),
    "distill without teacher": (lambda p: ["distill", "--student", "resnet8", *TINY], ["--teacher"]),
    "teacher for self-distillation": (lambda p: distill(p, "--method", "byot"), ["byot", "drop --teacher"]),
    "list of nothing": (lambda p: ["list", "teachers"], ["'teachers'"]),
    # -- numeric options: 0, negative, NaN, inf, text
    "epochs 0": (lambda p: train(p, "--epochs", "0"), ["--epochs", "0"]),
    "epochs negative": (lambda p: train(p, "--epochs", "-3"), ["--epochs", "-3"]),
    "epochs text": (lambda p: train(p, "--epochs", "ten"), ["--epochs", "'ten'"]),
    "batch size 0": (lambda p: train(p, "--batch-size", "0"), ["--batch-size", "0"]),
    "batch size 1": (lambda p: train(p, "--batch-size", "1"), ["batches of 1", "BatchNorm"]),
    "last batch of 1": (lambda p: train(p, "--dataset-opt", "num_train=33"), ["33 image", "BatchNorm"]),
    "lr 0": (lambda p: train(p, "--lr", "0"), ["--lr", "0"]),
    "lr negative": (lambda p: train(p, "--lr", "-0.1"), ["--lr", "-0.1"]),
    "lr nan": (lambda p: train(p, "--lr", "nan"), ["lr", "nan"]),
    "lr inf": (lambda p: train(p, "--lr", "inf"), ["lr", "inf"]),
    "lr text": (lambda p: train(p, "--lr", "fast"), ["--lr", "'fast'"]),
    "momentum negative": (lambda p: train(p, "--momentum", "-0.5"), ["--momentum", "-0.5"]),
    "momentum 1.5": (lambda p: train(p, "--momentum", "1.5"), ["--momentum", "1.5"]),
    "momentum nan": (lambda p: train(p, "--momentum", "nan"), ["momentum", "nan"]),
    "nesterov without momentum": (lambda p: train(p, "--nesterov", "--momentum", "0"), ["--nesterov", "--momentum"]),
    "weight decay negative": (lambda p: train(p, "--weight-decay", "-0.001"), ["--weight-decay", "-0.001"]),
    "weight decay inf": (lambda p: train(p, "--weight-decay", "inf"), ["weight_decay", "inf"]),
    "lr decay 0": (lambda p: train(p, "--lr-decay", "0"), ["--lr-decay", "0"]),
    "lr decay 10": (lambda p: train(p, "--lr-decay", "10"), ["--lr-decay", "10"]),
    "warm-up too long": (lambda p: train(p, "--warmup-epochs", "5"), ["--warmup-epochs", "5"]),
    "train subset 0": (lambda p: train(p, "--train-subset", "0"), ["--train-subset", "0"]),
    "train subset too large": (lambda p: train(p, "--train-subset", "1000"), ["1000", "larger"]),
    "temperature 0": (lambda p: distill(p, "--t-student", "0"), ["--t-student", "0"]),
    "temperature inf": (lambda p: distill(p, "--t-teacher", "inf"), ["t_teacher", "inf"]),
    "weight negative": (lambda p: distill(p, "--alpha", "-1"), ["--alpha", "-1"]),
    "weight nan": (lambda p: distill(p, "--beta", "nan"), ["beta", "nan"]),
    "dot delta above momentum": (lambda p: distill(p, "--optimizer", "dot", "--dot-delta", "0.95"),
                                 ["--dot-delta", "0.95"]),
    # -- milestones
    "milestones unsorted": (lambda p: train(p, "--epochs", "4", "--milestones", "3", "1"), ["3 1", "--milestones 1 3"]),
    "milestones repeated": (lambda p: train(p, "--epochs", "4", "--milestones", "2", "2"),
                            ["repeats 2", "--milestones 2"]),
    "milestone 0": (lambda p: train(p, "--epochs", "4", "--milestones", "0", "2"), ["--milestones 0 2", ">= 1"]),
    "milestone negative": (lambda p: train(p, "--epochs", "4", "--milestones", "-1"), ["-1", ">= 1"]),
    # -- method options, checked against each method's signature
    "nce_k text": (lambda p: method_opt(p, "crd", "nce_k=abc"), ["nce_k", "'abc'", "whole number >= 1"]),
    "feat_dim fraction": (lambda p: method_opt(p, "crd", "feat_dim=1.5"), ["feat_dim", "1.5", "whole number"]),
    "temperature list": (lambda p: method_opt(p, "dkd", "temperature=[1, 2]"), ["temperature", "[1, 2]", "number > 0"]),
    "temperature nan option": (lambda p: method_opt(p, "dkd", "temperature=.nan"), ["temperature", "nan"]),
    "temperature inf option": (lambda p: method_opt(p, "nkd", "temperature=.inf"), ["temperature", "inf"]),
    "warm-up negative": (lambda p: method_opt(p, "dkd", "warmup_epochs=-1"), ["warmup_epochs", "-1", "20"]),
    "beta negative option": (lambda p: method_opt(p, "dkd", "dkd_beta=-1"), ["dkd_beta", "-1", "2-8 per pair"]),
    "hint layer out of range": (lambda p: method_opt(p, "fitnet", "hint_layer=7"),
                                ["hint_layer", "7", "between 0 and 4"]),
    "bool option as text": (lambda p: method_opt(p, "ab", "main_loss=maybe"),
                            ["main_loss", "'maybe'", "true or false"]),
    "unknown method option": (lambda p: method_opt(p, "dkd", "temp=2"), ["temp", "temperature"]),
    "method option without =": (lambda p: method_opt(p, "dkd", "temperature"), ["KEY=VALUE", "'temperature'"]),
    "unknown dataset option": (lambda p: train(p, "--dataset-opt", "colour=1"), ["'colour'", "num_train"]),
    # -- YAML configs
    "config missing": (lambda p: ["train", "--config", p.root / "nope.yaml"], ["nope.yaml", "packaged"]),
    "config invalid YAML": (lambda p: ["train", "--config", p.config.invalid, *TINY],
                            ["invalid.yaml", "not valid YAML"]),
    "config not a mapping": (lambda p: ["train", "--config", p.config.a_list, *TINY], ["a_list.yaml", "mapping"]),
    "config unknown key": (lambda p: ["train", "--config", p.config.typo, *TINY], ["'learning_rate'", "Known options"]),
    "config epochs text": (lambda p: ["train", "--config", p.config.text_epochs, *TINY], ["epochs", "'ten'"]),
    "config milestones scalar": (lambda p: ["train", "--config", p.config.scalar_milestones, *TINY],
                                 ["milestones", "150", "list of whole numbers"]),
    "config method options scalar": (lambda p: ["train", "--config", p.config.options_scalar, *TINY],
                                     ["method_options", "3", "mapping"]),
    "config lr nan": (lambda p: ["train", "--config", p.config.nan_lr, *TINY], ["lr", "nan"]),
    "config student and model": (lambda p: ["train", "--config", p.config.student_and_model, *TINY],
                                 ["'student' and 'model' both set model"]),
    # -- checkpoints as --teacher, to eval, to temperature
    "teacher missing": (lambda p: distill(p, "--teacher", p.files / "nope.pth"), ["nope.pth", "does not exist"]),
    "teacher empty": (lambda p: distill(p, "--teacher", p.files / "empty.pth"), ["empty.pth", "empty (0 bytes)"]),
    "teacher truncated": (lambda p: distill(p, "--teacher", p.files / "truncated.pth"),
                          ["truncated.pth", "truncated, corrupt"]),
    "teacher text file": (lambda p: distill(p, "--teacher", p.files / "notes.pth"),
                          ["notes.pth", "expected a PyTorch file"]),
    "teacher random bytes": (lambda p: distill(p, "--teacher", p.files / "random.pth"),
                             ["random.pth", "expected a PyTorch file"]),
    "eval text file": (lambda p: ["eval", p.files / "notes.pth", "--arch", "resnet8"],
                       ["notes.pth", "expected a PyTorch file"]),
    "eval zip of other files": (lambda p: ["eval", p.files / "archive.pth", "--arch", "resnet8"],
                                ["archive.pth", "torch.save"]),
    "teacher that runs code": (lambda p: distill(p, "--teacher", p.files / "runs_code.pth"),
                               ["runs_code.pth", "system", "never run code"]),
    "RepDistiller last file": (lambda p: distill(p, "--teacher", p.files / "resnet8_vanilla" / "resnet8_last.pth"),
                               ["resnet8_last.pth", "argparse.Namespace", "ckpt_epoch_N.pth"]),
    "not a model checkpoint": (lambda p: ["eval", p.files / "list.pth", "--arch", "resnet8"],
                               ["list.pth", "not a model checkpoint"]),
    "weights that are not tensors": (lambda p: ["eval", p.files / "strings.pth", "--arch", "resnet8"],
                                     ["strings.pth", "not a model"]),
    "bare weights without architecture": (lambda p: ["eval", p.files / "bare.pth", "--dataset", "synthetic"],
                                          ["bare.pth", "--teacher-arch"]),
    "wrong architecture": (lambda p: distill(p, "--teacher-arch", "vgg8"), ["'vgg8'", "missing keys"]),
    "eval wrong architecture": (lambda p: ["eval", p.done, "--arch", "resnet20"],
                                ["'resnet20'", "missing keys", "--arch"]),
    "wrong number of classes": (lambda p: distill(p, "--dataset-opt", "num_classes=5"), ["10 classes", "has 5"]),
    "wrong number of channels": (lambda p: distill(p, "--dataset-opt", "channels=1"), ["1x32x32", "another dataset"]),
    "temperature with a bad teacher": (lambda p: ["temperature", "--teacher", p.files / "random.pth"], ["random.pth"]),
    # -- other commands
    "eval test subset below 0": (lambda p: ["eval", p.done, "--test-subset", "-1"], ["--test-subset", ">= 0"]),
    "eval thresholds above 1": (lambda p: ["eval", p.done, "--thresholds", "1.5"], ["1.5", "between 0 and 1"]),
    "eval thresholds on a plain network": (lambda p: ["eval", p.done, "--thresholds", "0.5", "--device", "cpu"],
                                           ["--thresholds", "byot"]),
    "temperature 0 for the tool": (lambda p: ["temperature", "--temperatures", "0"], ["must be positive", "0"]),
    "temperature classes mismatch": (lambda p: ["temperature", "--logits", "1", "2", "--classes", "a"],
                                     ["1 classes", "2 values"]),
    "temperature student without teacher": (lambda p: ["temperature", "--student", p.done], ["--teacher"]),
    "report of an empty folder": (lambda p: ["report", p.runs / "not_a_run"], ["not_a_run", "No finished run"]),
    "report of a file": (lambda p: ["report", p.output_file], ["a_file", "not a folder"]),
    "report of a damaged summary": (lambda p: ["report", p.runs, "--no-plots", "--out", p.root / "report"],
                                    ["bad_summary", "summary.json", "not a kdzoo run summary"]),
    "report metric": (lambda p: ["report", p.runs, "--metric", "middle"], ["'middle'"]),
    "bench budget": (lambda p: ["bench", "--grid", "bench/fashion_mnist_small", "--budget", "1.5", "--dry-run"],
                     ["1.5"]),
    "bench jobs 0": (lambda p: ["bench", "--grid", "bench/fashion_mnist_small", "--jobs", "0", "--dry-run"],
                     ["--jobs", "0"]),
    # -- datasets
    "dataset not downloaded": (lambda p: folder_data(p, "cifar10", p.data / "empty"), ["empty", "--download"]),
    "image folder missing": (lambda p: folder_data(p, "imagefolder", p.data / "nope"), ["nope", "--data-root"]),
    "image folder wrong level": (lambda p: folder_data(p, "imagefolder", p.data / "one_class" / "train"),
                                 ["one_class", "ROOT/train/<class>"]),
    "image folder one class": (lambda p: folder_data(p, "imagefolder", p.one_class),
                               ["1 class folder", "cat", "at least 2"]),
    "image folder classes differ": (lambda p: folder_data(p, "imagefolder", p.differ),
                                    ["only in train: dog; only in val: wolf"]),
    "image folder unreadable image": (lambda p: folder_data(p, "imagefolder", p.unreadable, "--dataset-opt",
                                                            "image_size=16", "--batch-size", "3", "--num-workers", "0",
                                                            "--output-dir", p.root / "scratch"),
                                      ["broken.png", "unreadable=skip"]),
    "image folder unreadable choice": (lambda p: folder_data(p, "imagefolder", p.unreadable,
                                                             "--dataset-opt", "unreadable=ignore"),
                                       ["'ignore'", "skip"]),
    "one training image": (lambda p: train(p, "--dataset-opt", "num_train=1"), ["1 image", "BatchNorm"]),
    # -- run folders
    "resume of a finished run": (lambda p: ["train", "--resume", p.finished], ["already finished", "--epochs N"]),
    "resume with another command": (lambda p: ["distill", "--resume", p.done],
                                    ["`kdzoo train` run", "kdzoo train --resume"]),
    "resume of a folder that is not a run": (lambda p: ["train", "--resume", p.not_a_run],
                                             ["not_a_run", "config.yaml"]),
    "resume of a hand-edited config": (lambda p: ["train", "--resume", p.edited],
                                       ["lr: None in the checkpoint, 0.5 now"]),
    "resume changing a setting by flag": (lambda p: ["train", "--resume", p.resumable, "--seed", "4"],
                                          ["seed: 0 in the checkpoint, 4 now"]),
    "resume of invalid YAML": (lambda p: ["train", "--resume", p.bad_yaml], ["bad_yaml", "not valid YAML"]),
    "resume with an unknown key": (lambda p: ["train", "--resume", p.unknown_key], ["'learning_rate'"]),
    "resume with a value of the wrong type": (lambda p: ["train", "--resume", p.bad_type], ["epochs", "'ten'"]),
    "resume before the first epoch ended": (lambda p: ["train", "--resume", p.no_epoch],
                                            ["nothing finished yet", "no checkpoint_last.pt",
                                             "`kdzoo train --config ", "config.yaml --name no_epoch-restart`"]),
    "resume of a finished run for more epochs": (lambda p: ["train", "--resume", p.finished, "--epochs", "3"],
                                                 ["already finished its 1 epoch (", "add --extend",
                                                  "lr of its last epoch"]),
    "extend of an unfinished run": (lambda p: ["train", "--resume", p.resumable, "--epochs", "3", "--extend"],
                                    ["has not finished", "drop --extend"]),
    "extend without resume": (lambda p: ["train", "--model", "resnet8", "--extend"], ["--extend", "--resume RUN_DIR"]),
    "resume of a replaced checkpoint": (lambda p: ["train", "--resume", p.swapped],
                                        ["swapped", "expected a PyTorch file"]),
    "name reused": (lambda p: train(p, "--name", "done"), ["done", "already holds a run", "--resume"]),
    "output folder is a file": (lambda p: train(p, "--output-dir", p.output_file), ["a_file"]),
    # -- grids
    "grid missing": (lambda p: ["bench", "--grid", p.root / "nope.yaml"], ["nope.yaml", "packaged grid"]),
    "grid unknown method": (lambda p: ["bench", "--grid", p.grid.unknown_method, "--dry-run"], ["'kdd'", "kd"]),
    "grid empty axis": (lambda p: ["bench", "--grid", p.grid.empty_axis, "--dry-run"],
                        ["'temperature'", "non-empty list"]),
    "grid unknown key": (lambda p: ["bench", "--grid", p.grid.unknown_key, "--dry-run"], ["'sweeps'", "grid keys"]),
    "grid without pairs": (lambda p: ["bench", "--grid", p.grid.no_pairs, "--dry-run"], ["pairs", "non-empty list"]),
    "grid unknown run option": (lambda p: ["bench", "--grid", p.grid.unknown_common, "--dry-run"], ["'learning_rate'"]),
    "grid bad method option": (lambda p: ["bench", "--grid", p.grid.bad_method_option, "--dry-run"],
                               ["nce_k", "'many'"]),
    "bench --set unknown option": (lambda p: ["bench", "--grid", "bench/fashion_mnist_small", "--set", "speed=2",
                                              "--dry-run"],
                                   ["'speed'"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_clearly_and_changes_nothing(case, p, capsys):
    make_args, texts = CASES[case]
    args = [str(a) for a in make_args(p)]
    before = snapshot(p.runs, p.files, p.teacher)
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse refuses malformed flags itself (usage line + error, exit 2)
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert "Traceback" not in err and "kdzoo" in err and "error: " in err, err
    for text in texts:
        assert text in err, (text, err)
    assert snapshot(p.runs, p.files, p.teacher) == before
    assert not (p.root / "code_ran").exists()

