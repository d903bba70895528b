"""What the run header says about settings the user did not type: recipe values, dataset option defaults,
the init stage; and the warnings for runs shorter than their warm-ups or their step schedule."""

import csv
import json

import pytest

from conftest import TINY
from kdzoo.config import build_config
from kdzoo.engine.run_header import dataset_options_line, recipe_line
from kdzoo.engine.short_runs import short_run_warnings


def test_recipe_milestones_scale_with_the_epochs_and_the_header_names_every_recipe_value():
    cfg = build_config(None, {"model": "resnet8", "dataset": "imagefolder", "epochs": 6})
    assert cfg.milestones == [2, 4, 5] and cfg.lr == 0.1
    line = recipe_line(cfg)
    assert line.startswith("recipe for imagefolder: batch_size 256, lr 0.1, milestones 2 4 5 (the recipe's 30 60 90 "
                           "of 100 epochs, scaled to 6), weight_decay 0.0001")
    assert "epochs" not in line.split("milestones")[0]  # the user gave the epochs
    given = build_config(None, {"model": "resnet8", "dataset": "imagefolder", "epochs": 6, "milestones": [3],
                                "lr": 0.05})
    assert given.milestones == [3] and "milestones" not in recipe_line(given) and "lr" not in recipe_line(given)
    assert build_config(None, {"model": "resnet8", "dataset": "imagefolder"}).milestones == [30, 60, 90]
    assert recipe_line(build_config(None, {"model": "resnet8"})) is None  # cifar100 has no recipe


def test_the_header_names_dataset_option_defaults():
    cfg = build_config(None, {"model": "resnet8", "dataset": "imagefolder", "dataset_options": {"unreadable": "skip"}})
    assert dataset_options_line(cfg) == "imagefolder options by default: image_size=224 (--dataset-opt KEY=VALUE)"


@pytest.mark.parametrize("options, expected", [
    ({"method": "dkd", "epochs": 3}, ["dkd's warmup_epochs=20 is longer than this 3-epoch run",
                                      "--method-opt warmup_epochs=1", "too short for the default step schedule",
                                      "lr 0.05 for epochs 1-2, 0.0005 for epoch 3", "--schedule cosine"]),
    ({"method": "ctkd", "epochs": 8, "method_options": {"curriculum_epochs": 10}}, ["curriculum_epochs=10"]),
    ({"method": "dkd", "epochs": 3, "schedule": "cosine", "method_options": {"warmup_epochs": 2}}, []),
    ({"method": "dkd", "epochs": 30}, []),
    ({"method": "kd", "epochs": 3, "milestones": [1, 2]}, []),
    ({"method": "fsp", "epochs": 1}, ["fsp's init_epochs=30 is longer than this 1-epoch run: its init stage trains "
                                      "30 epochs before the main epochs start", "--method-opt init_epochs=1."]),
    ({"method": "ab", "epochs": 16}, ["--method-opt init_epochs=2."]),  # 30 * 16 / 240
    ({"method": "ab", "epochs": 30, "schedule": "cosine"}, []),  # an init stage as long as the run is no surprise
])
def test_short_runs_are_warned_about(options, expected):
    cfg = build_config(None, {"model": "resnet8", "teacher": "t.pt", **options})
    text = " ".join(short_run_warnings(cfg, 0.05))
    assert all(part in text for part in expected), text
    assert bool(text) == bool(expected)


def test_init_stage_in_the_header_and_its_time_in_the_summary(cli, tiny_teacher, tmp_path):
    code, out, err = cli("distill", "--teacher", tiny_teacher, "--student", "resnet8", "--method", "ft",
                         "--method-opt", "init_epochs=2", *TINY, "--epochs", "1", "--output-dir", tmp_path,
                         "--name", "ft")
    assert code == 0, err
    assert "init stage: 2 epochs of ft's init training (lr 0.01) before the 1 main epoch;" in out
    run = tmp_path / "ft"
    summary = json.loads((run / "summary.json").read_text())
    init = [float(r["epoch_time_s"]) for r in csv.DictReader((run / "init_metrics.csv").open())]
    main = [float(r["train_time_s"]) for r in csv.DictReader((run / "metrics.csv").open())]
    assert summary["init_time_s"] == pytest.approx(sum(init)) and summary["init_time_s"] > 0
    assert summary["train_time_s"] == pytest.approx(sum(init) + main[-1])


def test_list_datasets_and_help_show_the_recipes_and_defaults(cli, capsys):
    code, out, _ = cli("list", "datasets")
    assert code == 0
    assert "imagefolder\n    recipe:  epochs 100, batch_size 256, lr 0.1, milestones 30 60 90, weight_decay 0.0001\n" \
           "    options: image_size=224, unreadable='stop'" in out
    with pytest.raises(SystemExit):
        cli("distill", "--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "training epochs (default: 240; dataset recipes: fashion_mnist 30, imagefolder 100, synthetic 2)" in text
    assert "random seed (default: 0)" in text and "--extend with --resume and --epochs N" in text
