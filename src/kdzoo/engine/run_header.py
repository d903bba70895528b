"""Lines the run header adds about settings a user did not type: the dataset recipe's values, the dataset's
own option defaults, and a method's init stage (which runs before the main epochs)."""

from __future__ import annotations

from ..config import RunConfig, dataset_recipe, option_text, recipe_values
from ..data import dataset_info


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
            text += (f" (the recipe's {option_text(recipe['milestones'])} of {recipe.get('epochs', RunConfig.epochs)} epochs, "
                     f"scaled to {cfg.epochs})")
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
    return (f"init stage: {epochs} epochs of {cfg.method}'s init training (lr {lr:g}) before the {cfg.epochs} main "
            f"epochs; --method-opt init_epochs=N changes it")


def header_notes(cfg: RunConfig, init_epochs: int, init_lr: float) -> list[str]:
    """The lines above, those that apply."""
    lines = [recipe_line(cfg), dataset_options_line(cfg)]
    if init_epochs:
        lines.append(init_stage_line(cfg, init_epochs, init_lr))
    return [line for line in lines if line]
