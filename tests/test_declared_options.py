"""Run, dataset, method and grid options are declared once (``Annotated[T, Range(...)]``, ``OneOf(...)``) and
checked by one checker: every bound below is enforced from its declaration, and the CLI help states it."""

import argparse
import re
import typing

import pytest
import yaml

from kdzoo.commands import build_parser
from kdzoo.config import RUN_OPTIONS, RunConfig, build_config
from kdzoo.config_checks import RULES, flag
from kdzoo.data import build_data, dataset_info, list_datasets
from kdzoo.data.registry import DATASETS
from kdzoo.declared import OneOf, Range, declared, declared_options
from kdzoo.errors import ConfigError
from kdzoo.grid.grid_file import load_grid
from kdzoo.methods import list_methods, method_class, method_options
from kdzoo.methods.options import check_method_options
from kdzoo.methods.options import declared_options as method_declarations


def outside(bounds: Range | OneOf, kind: type):
    """A value of ``kind`` just outside ``bounds``."""
    if isinstance(bounds, OneOf):
        return "no-such-choice"
    step = 1 if kind is int else 0.5
    for low in (bounds.ge, bounds.gt):
        if low is not None:
            return kind(low - step) if low == bounds.ge else kind(low)
    return kind((bounds.le if bounds.le is not None else bounds.lt) + step)


BOUNDED = {name: option.spec for name, option in RUN_OPTIONS.items() if option.spec.range is not None}


def test_run_options_declare_the_bounds_the_old_hand_checks_held():
    assert {"epochs", "batch_size", "eval_batch_size", "lr", "momentum", "weight_decay", "lr_decay", "dot_delta",
            "warmup_epochs", "t_student", "t_teacher", "gamma", "alpha", "beta", "train_subset", "test_subset",
            "num_workers", "data_seed", "optimizer", "schedule", "amp", "compile_mode"} <= set(BOUNDED)
    assert BOUNDED["optimizer"].range.values == ("sgd", "adamw", "dot")


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_every_declared_run_bound_is_enforced_with_the_flag_the_bound_and_the_value(name):
    spec = BOUNDED[name]
    bad = outside(spec.range, spec.item or spec.kind)
    value = [bad] if spec.item is not None else bad
    with pytest.raises(ConfigError, match=f"^{re.escape(flag(name))} must be ") as err:
        build_config(None, {"model": "resnet8", name: value})
    message = str(err.value)
    assert message.startswith(f"{flag(name)} must be {spec.expected()}") and f"got {value!r}" in message, message


def test_a_bound_that_only_a_rule_held_before_is_now_declared():
    # dot_delta was checked only with --optimizer dot; its declaration refuses a negative value for every optimiser
    with pytest.raises(ConfigError, match=r"--dot-delta must be a finite number >= 0, got -0\.1\. In a config file: "
                                          r"`dot_delta: VALUE`"):
        build_config(None, {"model": "resnet8", "dot_delta": -0.1})
    with pytest.raises(ConfigError, match=r"--eval-batch-size must be a whole number >= 1, got 0\."):
        build_config(None, {"model": "resnet8", "eval_batch_size": 0})
    with pytest.raises(ConfigError, match=r"--compile-mode must be one of 'default', 'reduce-overhead', "
                                          r"'max-autotune', 'max-autotune-no-cudagraphs', got 'fast'"):
        build_config(None, {"model": "resnet8", "compile_mode": "fast"})


def test_rules_join_fields_and_are_named():
    assert [r.__name__ for r in RULES][:1] == ["model_given"]
    with pytest.raises(ConfigError, match=r"--dot-delta must be >= 0 and below --momentum \(0\.5\), got 0\.6"):
        build_config(None, {"model": "resnet8", "teacher": "t.pth", "optimizer": "dot", "momentum": 0.5,
                            "dot_delta": 0.6})


def _help(command: str) -> dict[str, str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest: a.help for a in sub._actions if a.help}


def test_help_states_the_declared_bounds_and_choices():
    helps = _help("distill")
    for name, spec in BOUNDED.items():
        limits = spec.limits()
        assert helps[name].endswith(f". {limits[0].upper()}{limits[1:]}."), (name, helps[name])
    assert helps["epochs"].endswith("). Must be >= 1.")
    assert helps["momentum"] == "SGD momentum (default: 0.9). Must be >= 0 and < 1."
    assert helps["optimizer"].endswith("(default: sgd). One of sgd, adamw, dot.")


def test_flags_are_typed_by_their_declarations():
    parser = build_parser()
    args = parser.parse_args(["train", "--model", "resnet8", "--epochs", "3", "--lr", "0.5", "--milestones", "1", "2",
                              "--feature-layers", "a,b"])
    assert (args.epochs, args.lr, args.milestones, args.feature_layers) == (3, 0.5, [1, 2], ["a", "b"])
    assert typing.get_type_hints(RunConfig)["epochs"] is int


def test_one_reader_of_options_for_methods_datasets_and_runs():
    for name in list_methods():
        declared_ = method_declarations(method_class(name))
        assert {k: v.default for k, v in declared_.items() if k in method_options(name)} == method_options(name)
    for name in list_datasets():
        assert dataset_info(name)["options"] == {k: v.default for k, v in
                                                 declared_options(DATASETS.get(name).factory).items()}
    assert RUN_OPTIONS["epochs"] == (declared(typing.Annotated[int, RUN_OPTIONS["epochs"].spec.range]), 240)


@pytest.mark.parametrize("options,message", [
    ({"num_classes": 1}, "synthetic option num_classes must be a whole number >= 2, got 1."),
    ({"image_size": 4.0}, "synthetic option image_size must be a whole number >= 8, got 4.0."),
    ({"generator_seed": -1}, "synthetic option generator_seed must be a whole number between 0 and "
                             "9223372036854775807 (2**63-1 is the largest seed torch takes), got -1."),
])
def test_dataset_options_are_checked_from_the_factory_signature(options, message):
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$") as err:
        build_data("synthetic", **options)
    assert str(err.value) == message


def test_build_data_arguments_are_checked_from_its_signature():
    with pytest.raises(ConfigError, match=r"^eval_batch_size must be a whole number >= 1, got 0\.$"):
        build_data("synthetic", eval_batch_size=0)
    with pytest.raises(ConfigError, match=r"^num_workers must be a whole number >= 0, or null, got -2\.$"):
        build_data("synthetic", num_workers=-2)


def test_imagefolder_choice_names_both_choices_and_what_they_do():
    with pytest.raises(ConfigError, match=r"imagefolder option unreadable must be 'stop' or 'skip' \(stop: an "
                                          r"unreadable image ends the run.*skip: it is left out.*got 'ignore'"):
        build_data("imagefolder", root="/nonexistent", unreadable="ignore")


def _grid(tmp_path, **changes):
    grid = {"common": {"dataset": "synthetic", "epochs": 1}, "pairs": ["resnet14 -> resnet8"], "methods": ["kd"],
            **changes}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid), encoding="utf-8")
    return path


@pytest.mark.parametrize("changes,message", [
    ({"common": {"epochs": 0}}, "Grid grid `common:`: epochs must be a whole number >= 1"),
    ({"teacher_training": {"lr": -1}},
     "Grid grid `teacher_training:`: lr must be a finite number > 0 and <= 10, or null"),
    ({"methods": [{"method": "kd", "t_student": 0}]},
     "Grid grid `methods:` item 1: t_student must be a finite number > 0, or null (a temperature"),
    ({"axes": {"temperature": [2, -4]}}, "Grid grid `axes:` temperature: t_student must be a finite number > 0"),
    ({"axes": {"optimizer": ["sgd", "adam"]}},
     "Grid grid `axes:` optimizer: optimizer must be one of 'sgd', 'adamw', 'dot'"),
])
def test_grid_run_options_are_checked_against_the_run_declarations_when_the_grid_loads(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        load_grid(_grid(tmp_path, **changes))
    assert message in str(err.value), str(err.value)


@pytest.mark.parametrize("method,option,value,expected", [
    ("ctkd", "mode", "local", "'global' or 'instance'"),
    ("ctkd", "curve", "step", "'cosine' or 'linear'"),
    ("byot", "hint", "l1", "'masked' or 'l2'"),
    ("crd", "mode", "approx", "'exact' or 'relax'"),
    ("sdd", "base", "crd", "one of 'kd', 'dkd', 'nkd'"),
    ("uskd", "rank_by", "logit", "'log_prob' or 'prob'"),
])
def test_method_choices_are_declared_and_refused_before_the_method_is_built(method, option, value, expected):
    spec = method_declarations(method_class(method))[option].spec
    assert isinstance(spec.range, OneOf) and spec.expected() == expected
    with pytest.raises(ConfigError, match=rf"^{method}'s option {option} must be {expected} \(reference: .*\), got "
                                          rf"'{value}'\. Set it with --method-opt {option}=VALUE"):
        check_method_options(method_class(method), method, {option: value})
