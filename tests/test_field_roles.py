"""Each RunConfig field declares its roles beside its help (kdzoo issue 33, item 1), and every set of option names
the code keeps (the distill-only flags, the runtime and resumable options, the report's settings and method
settings, the teacher-cache key, the grid's reserved options, the flags' aliases) is a view of them."""

from dataclasses import dataclass, field, fields

import pytest

from kdzoo.commands.run_options import DISTILL_ONLY, KEY_VALUE_FLAGS
from kdzoo.config import FLAG_ALIASES, ROLES, Role, RunConfig, build_config, declared_roles, fields_with, option_name
from kdzoo.engine.resume import IDENTITY, RESUMABLE
from kdzoo.engine.teacher_cache import KEY_OPTIONS
from kdzoo.errors import ConfigError
from kdzoo.grid.grid_file import RESERVED
from kdzoo.grid.paired import METHOD_SETTINGS
from kdzoo.grid.run_groups import NOT_SETTINGS
from kdzoo.run_folder import RUNTIME_OPTIONS


def test_every_run_option_declares_its_roles_beside_its_help():
    for f in fields(RunConfig):
        assert f.metadata.get("help"), f.name
        roles = f.metadata.get("roles")
        assert isinstance(roles, tuple) and all(isinstance(r, Role) for r in roles), f.name
    assert set(ROLES) == {f.name for f in fields(RunConfig)}


def test_a_field_without_roles_is_refused_by_name():
    @dataclass
    class Forgotten(RunConfig):
        label: str = field(default="", metadata={"help": "a field added without its roles"})

    with pytest.raises(TypeError, match=r"Forgotten\.label must declare its roles"):
        declared_roles(Forgotten)
    with pytest.raises(TypeError, match=r"Forgotten\.label"):
        fields_with(Role.RUNTIME, Forgotten)


def test_a_new_field_joins_each_view_by_its_roles_alone():
    @dataclass
    class WithLabel(RunConfig):
        label: str = field(default="", metadata={"help": "a logging label", "roles": (Role.RUNTIME, Role.RESUMABLE)})

    assert fields_with(Role.RUNTIME, WithLabel) == RUNTIME_OPTIONS | {"label"}
    assert fields_with(Role.RESUMABLE, WithLabel) == RESUMABLE | {"label"}
    for role in (Role.DISTILL, Role.POOLED, Role.METHOD, Role.CACHE_KEY, Role.RESERVED):
        assert fields_with(role, WithLabel) == fields_with(role)


def test_the_lists_are_the_views_of_the_roles():
    assert DISTILL_ONLY == fields_with(Role.DISTILL)
    assert RUNTIME_OPTIONS == fields_with(Role.RUNTIME)
    assert RESUMABLE == fields_with(Role.RESUMABLE)
    assert NOT_SETTINGS == fields_with(Role.RUNTIME) | fields_with(Role.POOLED)
    assert METHOD_SETTINGS == fields_with(Role.METHOD)
    assert KEY_OPTIONS == fields_with(Role.CACHE_KEY)
    assert RESERVED == fields_with(Role.RESERVED)


def test_what_the_roles_promise_of_each_other():
    """A resumed run may not change what it learns from: of the runtime options, the teacher and the data folder;
    the grid's runner sets the networks, the seed and the folders; every method setting is a flag of distill."""
    assert IDENTITY == {"teacher", "data_root"}
    assert RESUMABLE - RUNTIME_OPTIONS == {"epochs", "eval_batch_size"}
    assert METHOD_SETTINGS <= DISTILL_ONLY
    assert RESERVED == {"model", "teacher", "teacher_arch", "seed", "output_dir", "name"}


def test_the_flag_forms_are_declared_on_their_fields():
    assert KEY_VALUE_FLAGS == {"method_options": "--method-opt", "dataset_options": "--dataset-opt",
                               "model_options": "--model-opt", "teacher_options": "--teacher-opt"}
    assert FLAG_ALIASES == {"student": "model", "method_opt": "method_options", "dataset_opt": "dataset_options",
                            "model_opt": "model_options", "teacher_opt": "teacher_options"}
    assert option_name("student") == "model" and option_name("method-opt") == "method_options"
    cfg = build_config(overrides={"student": "resnet8", "model_opt": {}, "dataset": "synthetic"})
    assert cfg.model == "resnet8"


@pytest.mark.parametrize("name,flag", [("method_options", "--method-opt"), ("dataset_options", "--dataset-opt"),
                                       ("model_options", "--model-opt"), ("teacher_options", "--teacher-opt")])
def test_a_refused_value_names_the_flag_the_field_declares(tmp_path, name, flag):
    """A config file's mapping option holding a number was refused as ``--method-options``, a flag kdzoo has not."""
    path = tmp_path / "bad.yaml"
    path.write_text(f"model: resnet8\n{name}: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{flag} must be a mapping, got 3\. In a config file: `{name}: VALUE`\."):
        build_config(path)
