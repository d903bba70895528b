"""Config layering (defaults < recipe < file < flags), validation errors, and the packaged configs."""

import pytest
import torch

from kdzoo.config import RunConfig, build_config, packaged_configs, read_yaml
from kdzoo.docgen.methods import commands as method_commands
from kdzoo.errors import ConfigError
from kdzoo.methods import create_method
from kdzoo.models import create_model


def test_defaults_are_repdistillers_cifar100_recipe():
    cfg = build_config(None, {"model": "resnet8x4"})
    assert (cfg.dataset, cfg.epochs, cfg.batch_size, cfg.optimizer, cfg.momentum, cfg.weight_decay) == (
        "cifar100", 240, 64, "sgd", 0.9, 5e-4)
    assert cfg.resolved_milestones() == [150, 180, 210]
    assert cfg.temperatures() == (4.0, 4.0)
    assert build_config(None, {"model": "resnet8", "teacher": "t.pt", "logit_std": True}).temperatures() == (2.0, 2.0)


def test_milestones_scale_with_epochs_unless_given():
    assert build_config(None, {"model": "resnet8", "epochs": 40}).resolved_milestones() == [25, 30, 35]
    assert build_config(None, {"model": "resnet8", "milestones": [3, 4]}).resolved_milestones() == [3, 4]


def test_layers_recipe_file_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: resnet20\nepochs: 7\nbatch-size: 16\nlr: 0.02\n")
    cfg = build_config(path, {"epochs": 3, "dataset": "synthetic"})
    assert (cfg.model, cfg.epochs, cfg.batch_size, cfg.lr) == ("resnet20", 3, 16, 0.02)
    assert cfg.eval_batch_size == 128  # from the synthetic recipe


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: resnet8\nepoch: 3\n")
    with pytest.raises(ConfigError, match="unknown option 'epoch'.*Did you mean 'epochs'"):
        build_config(path)


def test_yaml_cannot_execute_code(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("model: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(path)


@pytest.mark.parametrize("overrides,match", [
    ({"epochs": 0}, "--epochs must be a whole number >= 1"),
    ({"batch_size": 0}, "--batch-size"),
    ({"lr": -1.0}, "--lr must be a finite number > 0"),
    ({"t_student": 0.0}, "temperature"),
    ({"amp": "fp8"}, "--amp must be one of"),
    ({"warmup_epochs": 300}, "--warmup-epochs"),
])
def test_invalid_values_are_refused(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_config(None, {"model": "resnet8", **overrides})


def test_a_method_without_its_teacher_is_refused_before_any_data_is_read():
    from kdzoo.engine.build import check_names

    with pytest.raises(ConfigError, match="--method kd needs a teacher"):
        check_names(build_config(None, {"model": "resnet8", "method": "kd"}))


def test_missing_model_and_missing_config_file():
    with pytest.raises(ConfigError, match="No model given"):
        build_config(None, {})
    with pytest.raises(ConfigError, match="does not exist"):
        build_config("no/such/file.yaml")


def test_packaged_config_by_name():
    cfg = build_config("cifar100/kd", {"model": "resnet8x4", "teacher": "t.pth"})
    assert cfg.method == "kd" and cfg.dataset == "cifar100"


@pytest.mark.parametrize("name", [n for n in packaged_configs()
                                  if n.startswith("cifar100/") and n != "cifar100/teacher"])
def test_packaged_method_configs_build(name):
    cfg = build_config(name, {"teacher": "t.pt", "model": read_yaml(name).get("model", "resnet8")})
    student = create_model(cfg.model, num_classes=100)
    method = create_method(cfg.method, student, create_model("resnet32x4", num_classes=100),
                           train_labels=torch.arange(100), logit_std=cfg.logit_std, **cfg.method_options)
    assert method.method_name == cfg.method


def test_the_cifar100_mgd_config_is_the_authors_cifar100_setting():
    cfg = build_config("cifar100/mgd", {"model": "resnet8x4", "teacher": "t.pth"})
    assert (cfg.method, cfg.dataset, cfg.gamma, cfg.alpha, cfg.beta) == ("mgd", "cifar100", 1.0, 0.0, 1.0)
    assert cfg.method_options == {"alpha_mgd": 1.2e-3, "lambda_mgd": 0.15}  # not MGDLoss's ImageNet 7e-5
    assert method_commands("mgd")[1].startswith("kdzoo distill --config cifar100/mgd ")  # docs/methods/mgd.md's


def test_round_trip_through_dict():
    cfg = build_config(None, {"model": "resnet8", "method_options": {"a": 1}, "teacher": "x", "method": "kd"})
    assert RunConfig(**cfg.to_dict()) == cfg


def test_milestones_that_cannot_take_effect_are_warned_about_with_the_resulting_schedule():
    from kdzoo.engine.build import build
    from kdzoo.engine.optim import schedule_warnings

    cfg = build_config(None, {"model": "resnet8", "dataset": "synthetic", "device": "cpu", "epochs": 3, "lr": 0.1,
                              "milestones": [2, 5], "dataset_options": {"num_train": 64, "num_test": 32}})
    assert ("--milestones 5 lie beyond --epochs 3: they never decay the lr. The schedule: lr 0.1 for epochs 1-2, "
            "0.01 for epoch 3.") in build(cfg).caveats  # printed as a warning when the run starts
    warm = build_config(None, {"model": "resnet8", "epochs": 4, "warmup_epochs": 1, "milestones": [1, 3]})
    assert schedule_warnings(warm, 0.1) == ["--milestones 1 fall inside the 1-epoch warm-up: ignored. The schedule: "
                                            "lr 0.05 for epoch 1, 0.1 for epochs 2-3, 0.01 for epoch 4."]
    cosine = build_config(None, {"model": "resnet8", "schedule": "cosine", "milestones": [3]})
    assert schedule_warnings(cosine, 0.1) == ["--milestones only apply to --schedule step; with --schedule cosine "
                                              "they are ignored."]
    assert schedule_warnings(build_config(None, {"model": "resnet8", "epochs": 4, "milestones": [2, 4]}), 0.1) == []


def test_every_flag_name_is_a_config_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("student: resnet8\nteacher: t.pt\nmethod-opt: {warmup_epochs: 2}\ndataset_opt: {num_train: 64}\n")
    cfg = build_config(path, {"dataset": "synthetic"})
    assert (cfg.model, cfg.method_options, cfg.dataset_options) == ("resnet8", {"warmup_epochs": 2}, {"num_train": 64})
    path.write_text("student: resnet8\nmodel: resnet20\n")
    with pytest.raises(ConfigError, match="'student' and 'model' both set model; keep one"):
        build_config(path)


def test_numbers_in_exponent_form_are_floats_in_flags_and_files(tmp_path):
    """YAML 1.1 reads ``7e-05`` (no decimal point) as a string; kdzoo reads it as Python does, so a value copied from
    `kdzoo list methods` (``alpha_mgd=7e-05``) or written in a config file is a number."""
    from kdzoo.commands.arguments import key_value

    assert key_value("alpha_mgd=7e-05") == ("alpha_mgd", 7e-05) and key_value("eps=1E-5") == ("eps", 1e-05)
    assert key_value("name=e5") == ("name", "e5") and key_value("k=16") == ("k", 16)
    path = tmp_path / "run.yaml"
    path.write_text("model: resnet8\nlr: 1e-3\nmethod_options: {alpha_mgd: 7e-05}\n", encoding="utf-8")
    cfg = build_config(str(path), {})
    assert cfg.lr == 1e-3 and cfg.method_options == {"alpha_mgd": 7e-05}
