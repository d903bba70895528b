"""--data-seed: the subsets depend on it alone (not on --seed); runs record it; resume keeps the subsets,
also for run folders saved before it existed (drawn from their run seed, with a note); eval says which
images it used."""

import json

import pytest
import torch
import yaml

import kdzoo.engine.build as engine_build
from conftest import TINY
from kdzoo.data import build_data

SUBSETS = ["--train-subset", "40", "--test-subset", "20"]


@pytest.fixture
def built(monkeypatch):
    """The data of every run started in the test, in order."""
    bundles = []

    def spy(*args, **kwargs):
        bundles.append(build_data(*args, **kwargs))
        return bundles[-1]

    monkeypatch.setattr(engine_build, "build_data", spy)
    return bundles


@pytest.fixture
def train(cli, tmp_path):
    """``kdzoo train`` of a resnet8 for 1 epoch on subsets of the tiny data into ``tmp_path/NAME``."""

    def run(name, *args):
        code, out, err = cli("train", "--model", "resnet8", *TINY, *SUBSETS, "--schedule", "constant", "--epochs", "1",
                             "--output-dir", tmp_path, "--name", name, *args)
        assert code == 0, err
        return tmp_path / name, out

    return run


def same_images(a, b) -> bool:
    return torch.equal(a.train.images, b.train.images) and torch.equal(a.test.images, b.test.images)


def test_runs_with_other_seeds_see_the_same_subsets_and_record_the_data_seed(train, built):
    run, _ = train("seed0")
    train("seed1", "--seed", "1")
    train("data1", "--seed", "1", "--data-seed", "1")
    assert same_images(built[0], built[1]) and not same_images(built[1], built[2])
    assert (built[0].num_train, built[0].test.num_samples) == (40, 20)
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["seed"], summary["data_seed"], summary["train_subset"], summary["test_subset"]) == (0, 0, 40, 20)
    assert yaml.safe_load((run / "config.yaml").read_text())["data_seed"] == 0


def test_resume_keeps_the_subsets(cli, train, built):
    run, _ = train("run", "--data-seed", "3")
    code, out, err = cli("train", "--resume", run, "--epochs", "2", "--extend")
    assert code == 0, err
    assert same_images(built[0], built[1]) and "before --data-seed" not in out
    assert json.loads((run / "summary.json").read_text())["data_seed"] == 3


def test_a_run_saved_before_data_seed_resumes_with_the_subsets_of_its_run_seed(cli, train, built):
    # an older kdzoo drew the subsets from the run seed and called the synthetic generator's seed data_seed
    run, _ = train("old", "--seed", "1", "--data-seed", "1", "--dataset-opt", "generator_seed=2")
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["data_seed"]
    saved["dataset_options"]["data_seed"] = saved["dataset_options"].pop("generator_seed")
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    code, out, err = cli("train", "--resume", run, "--epochs", "2", "--extend")
    assert code == 0, err
    assert same_images(built[0], built[1])
    assert (f"note: {run} was saved before --data-seed existed; its subsets stay drawn from its run seed: "
            "data seed 1.") in out
    resaved = yaml.safe_load((run / "config.yaml").read_text())
    assert resaved["data_seed"] == 1 and resaved["dataset_options"]["generator_seed"] == 2
    assert json.loads((run / "summary.json").read_text())["data_seed"] == 1


def test_eval_uses_and_names_the_runs_subset(cli, train, tiny_teacher):
    run, _ = train("run", "--data-seed", "3")
    code, out, err = cli("eval", run, "--device", "cpu")
    assert code == 0, err
    assert "resnet8 on synthetic (test subset of 20 images, data seed 3): top-1" in out
    code, out, err = cli("eval", run, "--device", "cpu", "--data-seed", "4", "--test-subset", "10")
    assert code == 0, err
    assert "(test subset of 10 images, data seed 4)" in out
    code, out, err = cli("eval", run, "--device", "cpu", "--test-subset", "0")
    assert code == 0, err
    assert "resnet8 on synthetic (whole test split): top-1" in out
    code, out, err = cli("eval", tiny_teacher, "--device", "cpu")
    assert code == 0, err
    assert "resnet14 on synthetic (whole test split): top-1" in out


@pytest.mark.parametrize("args,message", [
    (["--data-seed", "-1"], "--data-seed must be a whole number between 0 and 9223372036854775807 (2**63-1 is the "
                            "largest seed torch takes), got -1"),
    (["--dataset-opt", "data_seed=1"], "data_seed is a run option, not a dataset option: use --data-seed N"),
])
def test_bad_data_seeds_are_refused(cli, tmp_path, args, message):
    code, _, err = cli("train", "--model", "resnet8", *TINY, "--epochs", "1", "--output-dir", tmp_path, *args)
    assert code == 2 and err.startswith("kdzoo: error: ") and "Traceback" not in err
    assert message in err
