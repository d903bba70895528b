"""The run header: what runs (networks, method, weights, temperatures, data, schedule, device, run folder), the
parameters the method adds, warnings, and lines about settings a user did not type: the dataset recipe's values,
the dataset's own option defaults, and a method's init stage (which runs before the main epochs)."""

from __future__ import annotations

from pathlib import Path

from .. import __version__, distributed
from ..config import RunConfig, dataset_recipe, option_text, recipe_values
from ..data import dataset_info
from ..text_table import plural
from .build import Setup


def run_description(setup: Setup, run_dir: Path) -> str:
    """The header's first lines: what runs and where, the method's extra parameters, then the warnings."""
    cfg, distiller = setup.cfg, setup.distiller
    objective, teacher = distiller.objective, distiller.teacher
    head = f"kdzoo {__version__}: "
    if not cfg.has_method:
        head += f"training {cfg.model}"
    elif teacher is None:
        head += f"self-distilling {cfg.model} with {cfg.method} ({objective.weights.describe()})"
    else:
        head += (f"distilling {teacher.kdzoo_arch} -> {cfg.model} with {cfg.method} "
                 f"({objective.weights.describe()}, T_s {objective.t_student:g}, "
                 f"T_t {objective.t_teacher:g}{', logit standardization' if cfg.logit_std else ''})")
    procs = f" per process x {distributed.world_size()} processes" if distributed.is_distributed() else ""
    data = setup.data
    lines = [f"{head} on {data.name} ({data.num_train} train images, {len(data.train)} batches of "
             f"{cfg.batch_size}{procs}), {plural(cfg.epochs, 'epoch')}, lr {setup.lr:g} ({cfg.schedule}), "
             f"device {setup.device}"]
    if cfg.has_method:
        lines.append(extra_parameters_line(cfg.method, cfg.model, distiller.extra_parameters(),
                                           distiller.student_params))
    record = setup.teacher_file
    if record and "name" in record:  # a published teacher
        lines.append(f"teacher: {record['name']} = {record['file']} (SHA-256 {record['sha256']}, from "
                     f"{record['source']})")
    elif record:
        lines.append(f"teacher: {record['file']} (SHA-256 {record['sha256']})")
    lines.append(f"run folder: {run_dir}")
    return "\n".join(lines + [f"warning: {note}" for note in setup.caveats])


def extra_parameters_line(method: str, model: str, extra: int, student: int) -> str:
    """How many trainable parameters the method adds to the student (connectors, embeddings, heads, exits)."""
    return (f"extra parameters: {method} adds {extra:,} trainable parameters to {model}'s {student:,} "
            f"(+{100 * extra / max(student, 1):.1f}%; the frozen teacher is not counted)")


def recipe_line(cfg: RunConfig) -> str | None:
    """Every value that came from the dataset's recipe (``kdzoo/configs/recipes/<dataset>.yaml``)."""
    used = recipe_values(cfg)
    if not used:
        return None
    recipe = dataset_recipe(cfg.dataset)
    parts = []
    for key, value in used.items():
        text = f"{key} {option_text(value)}"
        if key == "milestones" and value != recipe["milestones"]:
            text += (f" (the recipe's {option_text(recipe['milestones'])} of "
                     f"{recipe.get('epochs', RunConfig.epochs)} epochs, scaled to {cfg.epochs})")
        parts.append(text)
    return (f"recipe for {cfg.dataset}: {', '.join(parts)} (`kdzoo list datasets`; flags or --config override "
            f"them)")


def dataset_options_line(cfg: RunConfig) -> str | None:
    """The dataset options left at their defaults (e.g. imagefolder's image_size=224)."""
    defaults = {k: v for k, v in dataset_info(cfg.dataset)["options"].items() if k not in cfg.dataset_options}
    if not defaults:
        return None
    return (f"{cfg.dataset} options by default: {', '.join(f'{k}={v!r}' for k, v in defaults.items())} "
            f"(--dataset-opt KEY=VALUE)")


def init_stage_line(cfg: RunConfig, epochs: int, lr: float) -> str:
    """The init stage of AB, FT and FSP, which trains before the run's main epochs."""
    return (f"init stage: {plural(epochs, 'epoch')} of {cfg.method}'s init training (lr {lr:g}) before the "
            f"{plural(cfg.epochs, 'main epoch')}; --method-opt init_epochs=N changes it")


def header_notes(cfg: RunConfig, init_epochs: int, init_lr: float) -> list[str]:
    """The lines above, those that apply."""
    lines = [recipe_line(cfg), dataset_options_line(cfg)]
    if init_epochs:
        lines.append(init_stage_line(cfg, init_epochs, init_lr))
    return [line for line in lines if line]
