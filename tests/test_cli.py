"""End-to-end CLI runs on tiny synthetic data: train, distill, eval, list, resume, bad input."""

import json

import pytest
import torch

from conftest import ONE_THREAD, TINY, kdzoo_subprocess, one_paragraph_error, wait_for
from kdzoo.data import list_datasets
from kdzoo.engine.checkpoint import BEST, LAST
from kdzoo.methods import list_methods
from kdzoo.models import list_models


def test_train_writes_a_complete_run_folder(tiny_teacher):
    files = {p.name for p in tiny_teacher.iterdir()}
    assert {"config.yaml", "metrics.csv", "summary.json", "log.txt", LAST, BEST} <= files
    summary = json.loads((tiny_teacher / "summary.json").read_text())
    assert summary["model"] == "resnet14" and summary["epochs"] == 1 and summary["kind"] == "train"
    assert 0.0 <= summary["best_top1"] <= 100.0 and summary["images_per_s"] > 0
    assert ":" not in tiny_teacher.name


def test_distill_from_a_run_folder_then_eval(cli, tiny_teacher, tmp_path):
    code, out, err = cli("distill", "--teacher", tiny_teacher, "--student", "resnet8", "--method", "kd",
                         *TINY, "--epochs", "1", "--output-dir", tmp_path, "--name", "kd")
    assert code == 0, err
    assert "distilling resnet14 -> resnet8 with kd (gamma 0.1, alpha 0.9, beta 0" in out
    summary = json.loads((tmp_path / "kd" / "summary.json").read_text())
    assert summary["kind"] == "distill" and summary["teacher_arch"] == "resnet14"
    assert summary["weights"] == {"gamma": 0.1, "alpha": 0.9, "beta": 0.0}
    metrics = (tmp_path / "kd" / "metrics.csv").read_text()
    assert "train_kd" in metrics and "train_ce" in metrics
    code, out, err = cli("eval", tmp_path / "kd", "--device", "cpu")
    assert code == 0, err
    assert "top-1" in out and "top-5" in out


def test_separate_temperatures_and_weight_overrides(cli, tiny_teacher, tmp_path):
    code, out, err = cli("distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY, "--epochs", "1",
                         "--t-student", "2", "--t-teacher", "6", "--alpha", "0.5", "--gamma", "1",
                         "--output-dir", tmp_path, "--name", "temps")
    assert code == 0, err
    assert "gamma 1, alpha 0.5, beta 0, T_s 2, T_t 6" in out


def test_config_file_and_saved_resolved_config(cli, tmp_path):
    cfg = tmp_path / "my config.yaml"
    cfg.write_text("model: resnet8\nepochs: 1\nlr: 0.02\n")
    code, _, err = cli("train", "--config", cfg, *TINY, "--output-dir", tmp_path, "--name", "from file")
    assert code == 0, err
    saved = (tmp_path / "from-file" / "config.yaml").read_text()
    assert "lr: 0.02" in saved and "model: resnet8" in saved


@pytest.mark.parametrize("what,expected", [  # every registered name, and a few known ones by hand
    ("models", ["resnet32x4", "ShuffleV2", "wrn_40_2", "params", *list_models()]),
    ("methods", ["kd", "Hinton", *list_methods()]),
    ("datasets", ["cifar100", "fashion_mnist", "synthetic", *list_datasets()]),
    ("configs", ["cifar100/kd"]),
])
def test_list(cli, what, expected):
    code, out, _ = cli("list", what)
    assert code == 0
    for text in expected:
        assert text in out


@pytest.mark.parametrize("args, last_line", [
    (["distil"], "Did you mean 'distill'?"),
    (["train", "--epocs", "2"], "kdzoo train: error: unrecognized arguments: --epocs 2. Did you mean --epochs?"),
    (["list", "modles"], "Did you mean 'models'?"),
    (["train", "--epocs=2", "--lr-x", "3"], "Did you mean --epochs (for --epocs), --lr (for --lr-x)?"),
])
def test_mistyped_command_choice_or_flag_gets_a_suggestion(capsys, args, last_line):
    from kdzoo.commands import main

    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: kdzoo") and err[-1].endswith(last_line), err
    assert err[-1].count("Did you mean") == 1


def test_a_choice_with_nothing_close_gets_argparse_message_alone(capsys):
    from kdzoo.commands import main

    with pytest.raises(SystemExit) as exit_:
        main(["list", "zzzzzz"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: " in err and "Did you mean" not in err


def test_bad_inputs_give_one_paragraph_errors(cli, tiny_teacher, tmp_path):
    cases = [
        (["train", "--model", "resnet9", *TINY], "Unknown model 'resnet9'"),
        (["distill", "--teacher", tiny_teacher, "--student", "resnet8", "--method", "fitnett", *TINY],
         "Unknown method"),
        (["distill", "--teacher", tiny_teacher, "--teacher-arch", "vgg8", "--student", "resnet8", *TINY],
         "do not fit architecture 'vgg8'"),
        (["train", "--model", "resnet8", "--dataset", "cifar100", "--data-root", tmp_path / "empty", "--device", "cpu"],
         "--download"),
        (["train", "--model", "resnet8", *TINY, "--epochs", "0"], "--epochs must be a whole number >= 1"),
        (["distill", "--student", "resnet8", *TINY], "needs --teacher"),
        (["train", "--model", "resnet8", *TINY, "--dataset", "cifar1000"], "Unknown dataset"),
    ]
    for args, message in cases:
        code, _, err = cli(*args, "--output-dir", tmp_path)
        one_paragraph_error(code, err)
        assert message in err, err


def test_truncated_teacher_checkpoint(cli, tiny_teacher, tmp_path):
    broken = tmp_path / "with space and: colon" / "resnet14_vanilla" / "ckpt_epoch_240.pth"
    broken.parent.mkdir(parents=True)
    broken.write_bytes((tiny_teacher / LAST).read_bytes()[:3000])
    code, _, err = cli("distill", "--teacher", broken, "--student", "resnet8", *TINY, "--output-dir", tmp_path)
    one_paragraph_error(code, err)
    assert "truncated, corrupt" in err


def test_paths_with_spaces_and_colons(cli, tiny_teacher, tmp_path):
    out_dir = tmp_path / "my runs: today"
    code, _, err = cli("distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY, "--epochs", "1",
                       "--output-dir", out_dir, "--name", "S:resnet8_T:resnet14 kd")
    assert code == 0, err
    assert [p.name for p in out_dir.iterdir()] == ["S-resnet8_T-resnet14-kd"]


def test_existing_run_folder_is_not_overwritten(cli, tmp_path):
    args = ["train", "--model", "resnet8", *TINY, "--epochs", "1", "--output-dir", tmp_path, "--name", "x"]
    assert cli(*args)[0] == 0
    code, _, err = cli(*args)
    one_paragraph_error(code, err)
    assert "--resume" in err


def final_weights(run_dir):
    return torch.load(run_dir / LAST, weights_only=True)["model"]


RESUME_CASES = {
    "kd": ["--method", "kd", "--epochs", "2"],
    "crd-banks": ["--method", "crd", "--method-opt", "nce_k=16", "--epochs", "2"],
    "ctkd-learned-temperature": ["--method", "ctkd", "--epochs", "2"],
    "dkd-warm-up": ["--method", "dkd", "--method-opt", "warmup_epochs=2", "--epochs", "2"],
    "ab-init-stage": ["--method", "ab", "--method-opt", "init_epochs=2", "--epochs", "2"],
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_after_kill_matches_an_uninterrupted_run(cli, tiny_teacher, tmp_path, case, one_thread):
    """kill -9 after the first checkpoint, then --resume: the final weights equal a straight run's, bit for bit
    (memory banks, learned temperature, warm-up and init stage included). Only the killed run needs a process."""
    args = ["distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY, *RESUME_CASES[case],
            "--deterministic", "--output-dir", tmp_path]
    code, _, err = cli(*args, "--name", "straight")
    assert code == 0, err

    victim = kdzoo_subprocess(*args, "--name", "killed", env=ONE_THREAD)
    run_dir = tmp_path / "killed"
    wait_for(run_dir / LAST, victim)
    victim.kill()
    victim.wait()
    saved = torch.load(run_dir / LAST, weights_only=True)
    assert saved["epoch"] < 2  # killed part-way (AB: in its init stage)

    code, output, err = cli("distill", "--resume", run_dir)
    assert code == 0, err
    assert f"Resuming {run_dir} after" in output
    a, b = final_weights(tmp_path / "straight"), final_weights(run_dir)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    straight_state = torch.load(tmp_path / "straight" / LAST, weights_only=True)["objective"]
    resumed_state = torch.load(run_dir / LAST, weights_only=True)["objective"]
    for key in straight_state:  # the method's own state too: banks, learned temperature
        assert torch.equal(straight_state[key], resumed_state[key]), key
    for table in ("metrics.csv", "init_metrics.csv"):  # one row per epoch, none duplicated
        assert (run_dir / table).exists() == (tmp_path / "straight" / table).exists()
        if (run_dir / table).exists():
            rows = (run_dir / table).read_text().splitlines()
            assert len(rows) == len((tmp_path / "straight" / table).read_text().splitlines())


def test_non_finite_loss_stops_with_a_clear_error(cli, tiny_teacher, tmp_path):
    # the largest lr taken (a larger one is refused before training) and a KD weight that overflows float32
    code, _, err = cli("distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY, "--epochs", "2",
                       "--lr", "10", "--momentum", "0.99", "--alpha", "1e38", "--output-dir", tmp_path, "--name", "nan")
    one_paragraph_error(code, err)
    assert "became non-finite" in err and "--lr" in err
