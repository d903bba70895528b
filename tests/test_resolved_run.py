"""The run resolved once (kdzoo issue 33, item 2): one frozen object made from the config that build, the teacher
cache and the grid receive; one rule for "is this a distillation run"; the teacher-cache key's options read once."""

from dataclasses import FrozenInstanceError, replace

import pytest
import torch

from kdzoo.config import RunConfig, build_config, distills
from kdzoo.engine.build import build
from kdzoo.engine.resume import run_command
from kdzoo.engine.teacher_cache import RESOLVED_IN_KEY, key_fields, key_options, shared_key
from kdzoo.models import create_model
from kdzoo.resolved import resolve_run
from kdzoo.run_folder import default_run_name

TEACHER = {"model": "resnet8", "teacher": "t.pt", "dataset": "synthetic"}


@pytest.mark.parametrize("options,command", [
    ({"model": "resnet8"}, "train"),
    ({"model": "resnet8", "teacher": "t.pt"}, "distill"),
    ({"model": "resnet8", "method": "byot"}, "distill"),
    ({"model": "resnet8", "teacher_arch": "timm/resnet18", "teacher_pretrained": True}, "distill"),
])
def test_one_rule_says_whether_a_run_distils(options, command):
    """The config, a run's saved options (resume), the resolved run and the grid's verb agree; a run distilling
    a library-pretrained teacher (``--teacher-pretrained``, no ``--teacher``) was a `train` run to ``--resume``."""
    cfg = RunConfig(**options)
    assert run_command(cfg.to_dict()) == command
    assert distills(cfg.to_dict()) == cfg.has_method == resolve_run(cfg).distills == (command == "distill")


def test_a_run_named_before_it_is_built_names_the_method_its_teacher_defaults_to():
    cfg = build_config(overrides=TEACHER)
    assert cfg.method is None
    assert default_run_name(cfg, "resnet14").startswith("kd_resnet8_from_resnet14_synthetic_seed0_")
    assert default_run_name(RunConfig(model="resnet8", method="byot"), None).startswith("byot_resnet8_self_")


def test_the_resolved_run_is_frozen_and_defaults_the_method():
    run = resolve_run(build_config(overrides={**TEACHER, "method_options": {}}))
    assert (run.method, run.cfg.method, run.distills, run.views) == ("kd", "kd", True, 1)
    assert resolve_run(replace(run.cfg, method="mlkd")).views == 2  # a strong second view
    with pytest.raises(FrozenInstanceError):
        run.method = "dkd"
    with pytest.raises(TypeError):
        run.key_options["seed"] = 1


def test_build_resolves_the_run_once_and_keeps_it():
    cfg = build_config(None, {"model": "resnet8", "dataset": "synthetic", "device": "cpu", "epochs": 1,
                              "dataset_options": {"num_train": 32, "num_test": 16}})
    setup = build(cfg)
    assert setup.run.cfg is setup.cfg and setup.run.method == "vanilla" and not setup.run.distills
    assert setup.distiller.reads == setup.run.needs


def test_both_cache_keys_read_the_options_once():
    """``key_fields`` (the key a run's cache folder is named by) holds each key option as given or as what it
    resolves to, and ``shared_key`` (the grid's, before any teacher is loaded) holds the same options."""
    cfg = build_config(overrides=TEACHER)
    fields = key_fields(cfg, create_model("resnet14", num_classes=10), torch.device("cpu"), None, False, None,
                        views=1, num_train=96)
    given = {k: v for k, v in key_options(cfg).items() if k not in RESOLVED_IN_KEY}
    assert given and all(fields[k] == v for k, v in given.items())
    assert RESOLVED_IN_KEY < set(key_options(cfg))
    for name, value in (("augment", False), ("batch_size", 16), ("data_seed", 3)):
        changed = replace(cfg, **{name: value})
        assert shared_key(changed) != shared_key(cfg) and key_options(changed)[name] == value
