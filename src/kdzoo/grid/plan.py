"""Expand a grid into runs: one :class:`Job` per teacher to train, vanilla student, and
(pair, method, axis values, seed), each with its complete, validated :class:`RunConfig`.

Every name (models, dataset, methods, method options) and every given teacher file is checked here,
before any run starts. Run-folder names depend only on (pair, method, axis values, seed), so running
the same grid again finds its runs. The distillation runs a teacher cache can serve share one
(:mod:`~kdzoo.grid.shared_cache`).
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import RunConfig, build_config, read_yaml, scale_milestones, validate
from ..engine.build import check_names
from ..engine.short_runs import scaled_to_run
from ..errors import ConfigError, KdzooError
from ..methods import method_class, method_needs, method_options
from ..methods.options import check_method_options
from ..run_folder import safe_name
from ..teachers import is_pretrained, name_of
from .grid_file import AXIS_ALIASES, TRAIN, Grid, Variant, check_grid_run_options
from .job import DISTILL, SELF, TEACHER, VANILLA, Job
from .shared_cache import FOLDER, cache_folder, fill_first

AXIS_SHORT = {"temperature": "T"}


def apply_budget(cfg: RunConfig, budget: float | None) -> RunConfig:
    """Shorten (or lengthen) a run: ``budget`` >= 1 is the number of epochs, below 1 a fraction of
    ``cfg.epochs``. Explicit milestones, lr warm-up and every ``*_epochs`` method option given (init stages,
    warm-ups) scale by the same factor (at least 1 epoch where they were set); a ``*_epochs`` method option left at
    its default, set for the reference's 240 epochs, scales against those
    (:func:`~kdzoo.engine.short_runs.scaled_to_run`: AB's 30 init epochs are 1 in a 4-epoch run, not 4)."""
    if budget is None:
        return cfg
    epochs = int(budget) if budget >= 1 else max(1, round(cfg.epochs * budget))
    factor = epochs / cfg.epochs

    def scale(n: int) -> int:
        return max(1, round(n * factor)) if n else 0

    options = dict(cfg.method_options)
    for key, default in method_options(cfg.run_method).items():
        if key.endswith("_epochs") and isinstance(options.get(key, default), int):
            options[key] = scale(options[key]) if key in options else scaled_to_run(default, epochs)
    milestones = None if cfg.milestones is None else scale_milestones(cfg.milestones, factor, epochs)
    cfg = dataclasses.replace(cfg, epochs=epochs, milestones=milestones, method_options=options,
                              warmup_epochs=min(scale(cfg.warmup_epochs), epochs - 1))
    validate(cfg)
    return cfg


def _check(cfg: RunConfig) -> RunConfig:
    """Unknown model, dataset, method or method option names, and method option values of the wrong type
    or range, fail here, before any run starts."""
    check_names(cfg)
    method = cfg.run_method
    unknown = sorted(set(cfg.method_options) - set(method_options(method)))
    if unknown:
        raise ConfigError(f"method {method!r} has no option {', '.join(unknown)}; its options: "
                          f"{', '.join(method_options(method)) or 'none'}.")
    check_method_options(method_class(method), method, cfg.method_options)
    return cfg


def _variant_file(variant: Variant, teacher: str, student: str) -> dict[str, Any]:
    if variant.config is None:
        return {}
    return read_yaml(variant.config.replace("{teacher}", teacher).replace("{student}", student))


def _axis_values(axes: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(axes[k] for k in keys))]


def _axis_options(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for axis, value in values.items():
        for option in AXIS_ALIASES.get(axis, (axis,)):
            out[option] = value
    return out


def _axis_text(values: dict[str, Any], sep: str, eq: str) -> str:
    """``_T4`` (folder names) or `` T=4`` (report rows) for ``{"temperature": 4}``."""
    def text(v: Any) -> str:
        return format(v, "g") if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)

    return "".join(f"{sep}{AXIS_SHORT.get(k, k)}{eq}{text(v)}" for k, v in values.items())


def plan(grid: Grid, out_dir: Path, budget: float | None = None, overrides: dict[str, Any] | None = None,
         teachers: str | None = None, teacher_cache: bool = True) -> list[Job]:
    """The grid's runs, teachers first, then seed by seed: vanilla students, then every method and pair
    (self-distillation methods: every student, without a teacher).

    ``budget`` overrides the grid's and applies to every run, except teachers whose ``teacher_training:``
    sets their epochs; ``overrides`` (run options) override its ``common:``; ``teachers`` overrides its
    ``teachers:``. With ``teacher_cache``, the runs it can serve share a teacher cache (the grid's
    ``teacher_cache`` folder, else ``<out_dir>/teacher_cache``), each key's first run filling it before the others
    start."""
    if teachers is not None:
        grid = dataclasses.replace(grid, teachers=teachers)
    common = {**grid.common, **check_grid_run_options(overrides or {}, "--set"), "output_dir": str(out_dir)}
    planner = _Planner(grid, out_dir, grid.budget if budget is None else budget, common,
                       str(out_dir / FOLDER) if teacher_cache else None)
    jobs = planner.teacher_jobs()
    for seed in grid.seeds:
        for index, variant in enumerate(grid.variants, start=1):
            if variant.method is None:
                jobs += planner.vanilla_jobs(variant, seed)
            else:
                jobs += planner.method_jobs(variant, index, seed)
    names = [j.name for j in jobs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"Grid {grid.name}: several runs would share the folder {', '.join(duplicates)}; "
                          f"give the methods distinct labels.")
    fill_first(jobs)
    return jobs


@dataclass
class _Planner:
    """The jobs of one grid, kind by kind; ``teacher_paths`` and ``trained`` (arch -> the job that trains it) are
    filled by :meth:`teacher_jobs` for the distillation runs; ``cache`` is the default teacher cache (None: off)."""

    grid: Grid
    out_dir: Path
    budget: float | None
    common: dict[str, Any]
    cache: str | None
    teacher_paths: dict[str, str] = dataclasses.field(default_factory=dict)
    trained: dict[str, str] = dataclasses.field(default_factory=dict)

    def config(self, values: dict[str, Any], where: str, scaled: bool = True) -> RunConfig:
        """A checked run config from ``values`` (and the budget, when ``scaled``) with its teacher cache
        (:func:`cache_folder`); errors name the grid and run."""
        try:
            cfg = build_config(None, values)
            cfg = dataclasses.replace(cfg, teacher_cache=cache_folder(cfg, self.cache))
            return _check(apply_budget(cfg, self.budget if scaled else None))
        except KdzooError as exc:
            raise ConfigError(f"Grid {self.grid.name}, {where}: {exc}") from None

    def teacher_jobs(self) -> list[Job]:
        """A job per teacher to train; the others must exist as files or be published ones (``pretrained:NAME``,
        fetched by the first run that needs them)."""
        grid, jobs = self.grid, []
        for arch in dict.fromkeys(t for t, _ in grid.pairs):
            source = grid.teacher_source(arch)
            if source == TRAIN:
                name = self.trained[arch] = safe_name(f"teacher_{arch}_seed{grid.teacher_seed}")
                cfg = self.config({**self.common, **grid.teacher_training, "model": arch, "seed": grid.teacher_seed,
                                   "name": name}, f"teacher {arch}", scaled="epochs" not in grid.teacher_training)
                jobs.append(Job(name=name, role=TEACHER, label=TEACHER, variant=TEACHER, pair=None,
                                seed=grid.teacher_seed, axes={}, order=[0], cfg=cfg))
                self.teacher_paths[arch] = str(self.out_dir / name)
            elif is_pretrained(source):
                name_of(source)  # an unknown name fails now
                self.teacher_paths[arch] = source
            elif not Path(source).exists():
                raise ConfigError(f"The teacher for {arch} is missing: {source} does not exist. Put the checkpoint "
                                  f"there (RepDistiller's are save/models/<arch>_vanilla/ckpt_epoch_240.pth), pass "
                                  f"--teachers PATH_WITH_{{arch}}, --teachers 'pretrained:{{arch}}' (the published "
                                  f"CIFAR-100 teachers), or --teachers train to train the teachers first.")
            else:
                self.teacher_paths[arch] = source
        return jobs

    def students(self) -> list[str]:
        return list(dict.fromkeys(s for _, s in self.grid.pairs))

    def vanilla_jobs(self, variant: Variant, seed: int) -> list[Job]:
        """Every student trained alone."""
        jobs = []
        for student in self.students():
            name = safe_name(f"vanilla_{student}_seed{seed}")
            cfg = self.config({**self.common, **variant.options, "model": student, "seed": seed, "name": name},
                              f"vanilla {student}")
            jobs.append(Job(name=name, role=VANILLA, label=variant.label, variant=variant.label, pair=None, seed=seed,
                            axes={}, order=[1], cfg=cfg))
        return jobs

    def method_jobs(self, variant: Variant, index: int, seed: int) -> list[Job]:
        """The method on every pair it takes (self-distillation: on every student) and every axis value."""
        self_distill = not method_needs(variant.method).needs_teacher
        targets = ([(None, s) for s in self.students()] if self_distill
                   else [p for p in self.grid.pairs if p not in variant.skip_pairs])
        jobs = []
        for (teacher, student), (a, values) in itertools.product(targets, enumerate(_axis_values(self.grid.axes))):
            axes = _axis_text(values, "_", "")
            name = safe_name(f"{student}_{variant.label}{axes}_seed{seed}" if self_distill
                             else f"{teacher}-{student}_{variant.label}{axes}_seed{seed}")
            forced = {"model": student, "seed": seed, "name": name, "method": variant.method}
            if not self_distill:
                forced.update(teacher=self.teacher_paths[teacher], teacher_arch=teacher)
                if teacher in self.trained:
                    forced["eval_teacher"] = False  # its accuracy is in its own run folder
            cfg = self.config({**self.common, **_variant_file(variant, teacher or "", student), **variant.options,
                               **_axis_options(values), **forced}, f"{variant.label} {teacher or 'self'} -> {student}")
            jobs.append(Job(name=name, role=SELF if self_distill else DISTILL,
                            label=variant.label + _axis_text(values, " ", "="), variant=variant.label,
                            pair=None if self_distill else (teacher, student), seed=seed, axes=values,
                            order=[index + 1, a], cfg=cfg,
                            after=(self.trained[teacher],) if teacher in self.trained else ()))
        return jobs
