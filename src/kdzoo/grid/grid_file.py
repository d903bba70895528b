"""Grid files of ``kdzoo bench``: which teacher/student pairs, methods, seeds and axes to run.

A grid file is YAML (read safely by :mod:`kdzoo.yaml_load`; it names things and never runs code)::

    description: one line shown by `kdzoo list grids`
    common: {dataset: fashion_mnist, train_subset: 4000}  # run options for every run (kdzoo's flag names)
    teachers: train            # or {arch: path | train}, or a path template with {arch} ('pretrained:{arch}':
                               # the published CIFAR-100 teachers)
    teacher_training: {epochs: 8}   # extra options for teachers the runner trains (epochs here: no budget)
    teacher_seed: 0
    pairs: [resnet20 -> resnet8]    # or [[resnet20, resnet8]]
    methods:                        # rows of the report, in order
      - vanilla                     # the student trained alone (one run per student and seed)
      - kd
      - {label: kd+ls, method: kd, logit_std: true}       # any run options
      - {label: dkd, method: dkd, config: "cifar100/dkd_{teacher}_{student}"}   # a config file per pair
      - {method: fsp, skip_pairs: [wrn_40_2 -> wrn_40_1]}   # pairs the method cannot handle
    seeds: [0, 1]
    axes: {temperature: [1, 2, 4, 8, 16]}   # every combination; temperature sets t_student and t_teacher
    budget: 0.2                     # epochs (a whole number >= 1) or a fraction of each run's epochs
    published: repdistiller_same_family   # tables `kdzoo report` compares with (default: all)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .. import yaml_load
from ..config import FIELD_NAMES, RUN_OPTIONS, Role, fields_with, option_name
from ..config_checks import check_run_option
from ..declared import check_value
from ..errors import ConfigError, did_you_mean
from ..published import select_tables

GRID_KEYS = ("description", "common", "teachers", "teacher_training", "teacher_seed", "pairs", "methods", "seeds",
             "axes", "budget", "published")
#: Options the runner sets itself for every run (:attr:`Role.RESERVED <kdzoo.config.Role.RESERVED>`).
RESERVED = fields_with(Role.RESERVED)
#: Axis names that set several run options at once.
AXIS_ALIASES = {"temperature": ("t_student", "t_teacher")}
VANILLA = "vanilla"
TRAIN = "train"


@dataclass(frozen=True)
class Variant:
    """One row of the report: a method with its options, or the vanilla student (``method`` None)."""

    label: str
    method: str | None
    config: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    skip_pairs: tuple[tuple[str, str], ...] = ()


@dataclass
class Grid:
    name: str
    description: str
    common: dict[str, Any]
    teachers: str | dict[str, str]
    teacher_training: dict[str, Any]
    teacher_seed: int
    pairs: list[tuple[str, str]]
    variants: list[Variant]
    seeds: list[int]
    axes: dict[str, list[Any]]
    budget: float | None
    published: str | None

    def teacher_source(self, arch: str) -> str:
        """``"train"``, the checkpoint path of the teacher ``arch``, or ``pretrained:NAME``."""
        if isinstance(self.teachers, str):
            return self.teachers.replace("{arch}", arch)
        if arch not in self.teachers:
            raise ConfigError(f"Grid {self.name}: no teacher for {arch!r} under `teachers:`. Add `{arch}: PATH` "
                              f"(a kdzoo run folder or checkpoint, or a RepDistiller file) or `{arch}: train`.")
        return str(self.teachers[arch])


def packaged_grids() -> list[str]:
    """Names of the grids shipped in the package (``bench/NAME``)."""
    root = resources.files("kdzoo") / "configs" / "bench"
    return sorted(f"bench/{p.name[:-5]}" for p in root.iterdir() if p.name.endswith(".yaml"))


def grid_path(spec: str | Path) -> Path:
    """A grid file path, a packaged name (``bench/NAME`` or ``NAME``), or ``configs/bench/NAME.yaml``."""
    path = Path(spec)
    if path.is_file():
        return path
    root = resources.files("kdzoo") / "configs" / "bench"
    candidate = root / f"{path.stem}.yaml"
    if path.parent.name in ("", "bench") and candidate.is_file():
        return Path(str(candidate))
    raise ConfigError(f"Grid file {str(spec)!r} does not exist. Give a path to a YAML grid or a packaged grid: "
                      f"{', '.join(packaged_grids())} (`kdzoo list grids`).")


def check_grid_run_options(values: Any, where: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run options given in a grid (``common:``, a ``methods:`` item, ``--set``) with '-' spelled '_': each a
    RunConfig field, not one the runner sets, holding a value its declaration accepts; ``extra`` names other
    keys allowed there (their values are checked by the caller)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must be a mapping of option: value, got {values!r}.")
    out = {}
    for key, value in values.items():
        name = _run_option_name(key, where, extra)
        if name in RUN_OPTIONS:
            check_run_option(name, value, RUN_OPTIONS, where)
        out[name] = value
    return out


def _run_option_name(key: Any, where: str, extra: tuple[str, ...] = ()) -> str:
    """The run option ``key`` names (or one of ``extra``); unknown and reserved ones refused."""
    name = option_name(key)
    if name in RESERVED:
        raise ConfigError(f"{where}: {key!r} is set by the runner from `pairs:`/`seeds:`/`teachers:`; remove it.")
    if name not in FIELD_NAMES and name not in extra:
        hint = did_you_mean(name, [*FIELD_NAMES, *extra], n=1, cutoff=0.6)
        raise ConfigError(f"{where}: unknown option {key!r}.{hint} Run options are kdzoo's flag names: "
                          f"{', '.join(FIELD_NAMES)}.")
    return name


def _pair(item: Any, where: str) -> tuple[str, str]:
    if isinstance(item, str) and "->" in item:
        teacher, student = (s.strip() for s in item.split("->", 1))
    elif isinstance(item, (list, tuple)) and len(item) == 2:
        teacher, student = map(str, item)
    else:
        raise ConfigError(f"{where}: a pair is 'teacher -> student' or [teacher, student], got {item!r}.")
    return teacher, student


def _variant(item: Any, where: str) -> Variant:
    if isinstance(item, str):
        return Variant(item, None if item == VANILLA else item)
    options = check_grid_run_options(item, where, extra=("label", "method", "config", "skip_pairs"))
    label = options.pop("label", None) or options.get("method")
    if not label:
        raise ConfigError(f"{where}: give the method (`method: kd`) or, for the student alone, `vanilla`.")
    method = options.pop("method", None if label == VANILLA else label)
    config = options.pop("config", None)
    skip = options.pop("skip_pairs", None) or []
    if method is None and (config is not None or skip):
        raise ConfigError(f"{where}: `config:` and `skip_pairs:` are for methods; give the vanilla student run options "
                          f"directly.")
    if not isinstance(skip, list):
        raise ConfigError(f"{where}: `skip_pairs:` must be a list of pairs.")
    return Variant(str(label), method, config, options, tuple(_pair(p, where) for p in skip))


#: A seed as a run option declares it (``RunConfig.seed``: its bounds too).
SEED = RUN_OPTIONS["seed"].spec


def _seeds(values: Any, where: str) -> list[int]:
    """A seed or a non-empty list of them, each one a run's ``seed`` accepts."""
    values = values if isinstance(values, list) else [values]
    if not values:
        raise ConfigError(f"{where} must be a whole number or a non-empty list of them.")
    return [check_value(f"{where} seed", SEED, value) for value in values]


def parse_budget(value: Any) -> float | None:
    """None, a whole number of epochs >= 1, or a fraction in (0, 1) of each run's epochs."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (0 < number < 1 or (number >= 1 and number.is_integer())):
        raise ConfigError(f"budget must be a whole number of epochs (e.g. 5) or a fraction of the recipe's epochs "
                          f"between 0 and 1 (e.g. 0.1), got {value!r}.")
    return number


def parse_grid(data: Any, name: str) -> Grid:
    """Check a grid mapping and turn it into a :class:`Grid`; errors name the key and the fix."""
    if not isinstance(data, dict):
        raise ConfigError(f"Grid {name} must be a mapping with keys {', '.join(GRID_KEYS)}.")
    unknown = sorted(set(data) - set(GRID_KEYS))
    if unknown:
        raise ConfigError(f"Grid {name}: unknown key {', '.join(map(repr, unknown))}; grid keys: "
                          f"{', '.join(GRID_KEYS)}.")
    for key in ("pairs", "methods"):
        if not isinstance(data.get(key), list) or not data[key]:
            raise ConfigError(f"Grid {name}: `{key}:` must be a non-empty list.")
    teachers = data.get("teachers", TRAIN)
    if not isinstance(teachers, (str, dict)):
        raise ConfigError(f"Grid {name}: `teachers:` is `train`, a path template with {{arch}}, or a mapping arch: "
                          f"path|train.")
    axes = data.get("axes") or {}
    if not isinstance(axes, dict):
        raise ConfigError(f"Grid {name}: `axes:` must map an option (or `temperature`) to a list of values.")
    for axis, values in axes.items():
        options = AXIS_ALIASES.get(axis) or (_run_option_name(axis, f"Grid {name} `axes:`"),)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"Grid {name}: axis {axis!r} needs a non-empty list of values.")
        for option in options:
            for value in values:
                check_run_option(option, value, RUN_OPTIONS, f"Grid {name} `axes:` {axis}")
    variants = [_variant(item, f"Grid {name} `methods:` item {i + 1}") for i, item in enumerate(data["methods"])]
    labels = [v.label for v in variants]
    if len(set(labels)) < len(labels):
        twice = next(x for x in labels if labels.count(x) > 1)
        raise ConfigError(f"Grid {name}: two methods have the label {twice!r}; "
                          f"give each a distinct `label:`.")
    seeds = _seeds(data.get("seeds", [0]), f"Grid {name} `seeds:`")
    if data.get("published") is not None:
        select_tables(str(data["published"]))  # a misspelt table name fails now, not at report time
    return Grid(
        name=name, description=str(data.get("description", "")),
        common=check_grid_run_options(data.get("common") or {}, f"Grid {name} `common:`"),
        teachers=teachers,
        teacher_training=check_grid_run_options(data.get("teacher_training") or {},
                                                f"Grid {name} `teacher_training:`"),
        teacher_seed=check_value(f"Grid {name} `teacher_seed:`", SEED, data.get("teacher_seed", 0)),
        pairs=[_pair(p, f"Grid {name} `pairs:`") for p in data["pairs"]], variants=variants, seeds=seeds,
        axes=axes, budget=parse_budget(data.get("budget")), published=data.get("published"),
    )


def load_grid(spec: str | Path) -> Grid:
    """Read and check the grid ``spec`` (see :func:`grid_path`)."""
    path = grid_path(spec)
    try:
        data = yaml_load.load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_grid(data, path.stem)
