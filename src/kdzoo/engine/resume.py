"""What ``--resume RUN_DIR`` may continue, checked before anything is built or written.

A run continues with the settings it started with: its ``config.yaml`` plus the given flags must
match the config recorded in ``checkpoint_last.pt``, except for the options that do not change what
is computed (:data:`RESUMABLE`: paths, device, logging, and ``epochs`` to train longer). A hand-edited
``config.yaml``, a finished run, a folder without a finished epoch, a folder of another command and a
resume file that is not kdzoo's each get an error that says what to do instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import RunConfig, upgrade_saved_config, validate
from ..errors import CheckpointError, ConfigError
from .checkpoint import LAST, read_checkpoint
from .run_dir import RUNTIME_OPTIONS, SUMMARY, load_run_config, saved_options

#: Options a resumed run may change.
RESUMABLE = RUNTIME_OPTIONS | {"epochs", "eval_batch_size"}
#: What a kdzoo resume checkpoint holds besides the model.
RESUME_ENTRIES = ("config", "epoch", "objective", "optimizer", "scheduler", "scaler", "rng", "history", "best")


def run_command(config: dict[str, Any]) -> str:
    """``train`` or ``distill``: the command that made a run with this saved config."""
    return "distill" if config.get("teacher") or config.get("method") else "train"


def check_command(run_dir: str | Path, command: str) -> None:
    """Refuse to continue a ``kdzoo distill`` run with ``kdzoo train`` and the other way round."""
    made_by = run_command(load_run_config(Path(run_dir)))
    if made_by != command:
        raise ConfigError(f"{run_dir} is a `kdzoo {made_by}` run; continue it with "
                          f"`kdzoo {made_by} --resume {run_dir}`.")


def resume_config(run_dir: Path, overrides: dict[str, Any]) -> tuple[RunConfig, str | None]:
    """The config that continues ``run_dir``: its ``config.yaml`` plus ``overrides``, checked against the checkpoint;
    and the note on how an older kdzoo's config was completed (:func:`~kdzoo.engine.run_dir.saved_options`)."""
    options, note = saved_options(run_dir)
    cfg = RunConfig(**{**options, **overrides})
    validate(cfg)
    if not (run_dir / LAST).is_file():
        raise ConfigError(f"--resume {run_dir}: there is no {LAST}, so no epoch finished before the run stopped. "
                          f"Start it again: delete the folder, or use another --name.")
    saved = read_checkpoint(run_dir / LAST)
    missing = [k for k in RESUME_ENTRIES if k not in saved]
    if missing:
        raise CheckpointError(f"{run_dir / LAST} is not a kdzoo resume checkpoint (it has no {', '.join(missing)}); "
                              f"it may have been replaced by another file. Only a file written by the run can "
                              f"continue it.")
    recorded, now = upgrade_saved_config(saved["config"])[0], cfg.to_dict()  # both as this kdzoo names them
    changed = [k for k in now if k not in RESUMABLE and k in recorded and recorded[k] != now[k]]
    if changed:
        details = "; ".join(f"{k}: {recorded[k]!r} in the checkpoint, {now[k]!r} now" for k in changed)
        raise ConfigError(f"--resume {run_dir} would change settings the run was trained with ({details}). A run "
                          f"continues with its own settings; only {', '.join(sorted(RESUMABLE))} may change. Undo the "
                          f"edit to its config.yaml (or drop the flag), or start a new run with the new settings.")
    if (run_dir / SUMMARY).is_file() and saved["epoch"] >= cfg.epochs:
        raise ConfigError(f"--resume {run_dir}: the run already finished its {saved['epoch']} epochs ({SUMMARY} is "
                          f"there). To train it longer pass --epochs N with N > {saved['epoch']}; to test it run "
                          f"`kdzoo eval {run_dir}`.")
    return cfg, note
