"""Warnings for runs shorter than what they carry: a method's warm-up, curriculum or init stage that outlasts
the run, and a default step schedule whose decays crowd into its last epochs."""

from __future__ import annotations

from ..config import RunConfig
from ..methods import method_options
from .optim import describe_schedule, lr_per_epoch

#: The run length the methods' epoch options were set for (RepDistiller's CIFAR-100 recipe).
REFERENCE_EPOCHS = 240


def scaled_to_run(value: int, epochs: int) -> int:
    """A method's ``*_epochs`` default (set for :data:`REFERENCE_EPOCHS`-epoch runs) scaled to an ``epochs``-epoch
    run, at least 1 where it was set: the one rule for init stages, warm-ups and curricula of shortened runs."""
    return max(1, round(value * epochs / REFERENCE_EPOCHS)) if value else 0


def epoch_option_warnings(cfg: RunConfig) -> list[str]:
    """Each ``*_epochs`` method option longer than the run, with the value scaled to the run's length: a warm-up
    or curriculum that never completes, or an init stage (AB, FT, FSP) that trains longer before the main epochs
    than they last."""
    notes = []
    for key, default in method_options(cfg.run_method).items():
        value = cfg.method_options.get(key, default)
        if key.endswith("_epochs") and isinstance(value, (int, float)) and value > cfg.epochs:
            scaled = scaled_to_run(value, cfg.epochs)
            effect = (f": its init stage trains {value:g} epochs before the main epochs start"
                      if key == "init_epochs" else ", so it never completes")
            notes.append(f"{cfg.method}'s {key}={value:g} is longer than this {cfg.epochs}-epoch run{effect}. It was "
                         f"set for {REFERENCE_EPOCHS}-epoch runs; scaled to this one: --method-opt {key}={scaled}.")
    return notes


def crowded_decay_warning(cfg: RunConfig, lr: float) -> list[str]:
    """The default step schedule (no milestones given) on a run too short for its three decays to fall on
    separate epochs: they crowd into the last epochs."""
    milestones = cfg.resolved_milestones()
    crowded = len(set(milestones)) < len(milestones)
    if cfg.schedule != "step" or cfg.milestones is not None or cfg.epochs < 2 or not crowded:
        return []
    return [f"this {cfg.epochs}-epoch run is too short for the default step schedule: its decays crowd into the "
            f"last epochs ({describe_schedule(lr_per_epoch(cfg, lr))}). For short runs --schedule cosine decays "
            f"smoothly; --milestones sets the decays yourself."]


def short_run_warnings(cfg: RunConfig, lr: float) -> list[str]:
    """All warnings of this module."""
    return epoch_option_warnings(cfg) + crowded_decay_warning(cfg, lr)
