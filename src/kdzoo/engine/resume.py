"""What ``--resume RUN_DIR`` may continue, checked before anything is built or written.

A run continues with the settings it started with: its ``config.yaml`` plus the given flags must
match the config recorded in ``checkpoint_last.pt``, except for the options that do not change what
is computed (:data:`RESUMABLE`: the output folder, device, logging, and ``epochs``). The teacher and the data are
part of a run's identity: ``--teacher`` and ``--data-root`` may not change, and the teacher's file must be the one
the run was trained with, byte for byte (its SHA-256, :func:`check_same_teacher`, once the run is built: still
before anything is written). The learning-rate schedule stays
the one the run started with; epochs beyond it run at its last epoch's rate. A finished run is continued
only with ``extend`` (``--extend``). A hand-edited ``config.yaml``, a folder without a finished epoch, a
folder of another command and a resume file that is not kdzoo's each get an error that says what to do
instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import Role, RunConfig, distills, fields_with, upgrade_saved_config, validate
from ..errors import CheckpointError, ConfigError
from ..run_folder import CONFIG, RUNTIME_OPTIONS, SUMMARY, load_run_config, saved_options
from ..text_table import plural
from .checkpoint import LAST, read_checkpoint

#: Options a resumed run may change (:attr:`Role.RESUMABLE <kdzoo.config.Role.RESUMABLE>`).
RESUMABLE = fields_with(Role.RESUMABLE)
#: Runtime options that a resumed run still may not change: what it learns from (the teacher, the data folder).
IDENTITY = RUNTIME_OPTIONS - RESUMABLE
#: What a kdzoo resume checkpoint holds besides the model.
RESUME_ENTRIES = ("config", "epoch", "objective", "optimizer", "scheduler", "scaler", "rng", "history", "best")


def run_command(config: dict[str, Any]) -> str:
    """``train`` or ``distill``: the command that made a run with this saved config (:func:`~kdzoo.config.distills`)."""
    return "distill" if distills(config) else "train"


def check_command(run_dir: str | Path, command: str) -> None:
    """Refuse to continue a ``kdzoo distill`` run with ``kdzoo train`` and the other way round."""
    made_by = run_command(load_run_config(Path(run_dir)))
    if made_by != command:
        raise ConfigError(f"{run_dir} is a `kdzoo {made_by}` run; continue it with "
                          f"`kdzoo {made_by} --resume {run_dir}`.")


def resume_config(run_dir: Path, overrides: dict[str, Any],
                  extend: bool = False) -> tuple[RunConfig, str | None, dict[str, Any] | None]:
    """The config that continues ``run_dir``: its ``config.yaml`` plus ``overrides``, checked against the checkpoint;
    the note on how an older kdzoo's config was completed (:func:`~kdzoo.run_folder.saved_options`); and the
    checkpoint's record of the teacher's file (for :func:`check_same_teacher`; None before kdzoo recorded it).
    ``extend``: train a finished run for more epochs (``overrides["epochs"]`` in all)."""
    options, note = saved_options(run_dir)
    if not (run_dir / LAST).is_file():
        raise ConfigError(f"--resume {run_dir}: nothing finished yet, so there is nothing to continue: the run stopped "
                          f"before its first epoch ended (there is no {LAST}). Start it again with its settings: "
                          f"`kdzoo {run_command(options)} --config {run_dir / CONFIG} --name {run_dir.name}-restart` "
                          f"(or delete {run_dir} and run the original command again).")
    cfg = RunConfig(**{**options, **overrides})
    validate(cfg)
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
    check_epochs(run_dir, saved, cfg.epochs, extend)
    return cfg, note, saved.get("teacher_file")


def check_same_teacher(run_dir: Path, recorded: dict[str, Any] | None, now: dict[str, Any] | None) -> None:
    """The teacher file a resumed run loads (``now``: :attr:`Setup.teacher_file <kdzoo.engine.build.Setup>`) is the
    one its checkpoint recorded: same SHA-256."""
    if recorded and now and recorded.get("sha256") != now.get("sha256"):
        raise ConfigError(f"--resume {run_dir} would change the teacher the run was trained with: its file "
                          f"{recorded['file']} had SHA-256 {recorded['sha256']} in the checkpoint, {now['file']} has "
                          f"SHA-256 {now['sha256']} now. A run continues with its own teacher: put that file back, or "
                          f"start a new run with this teacher.")


def check_epochs(run_dir: Path, saved: dict[str, Any], epochs: int, extend: bool) -> None:
    """``epochs`` may not drop below the epochs done; a finished run trains on only with ``extend``, which an
    unfinished one does not need."""
    done = saved["epoch"]
    finished = (run_dir / SUMMARY).is_file() and done >= saved["config"]["epochs"]
    if epochs < done:
        raise ConfigError(f"--resume {run_dir} --epochs {epochs}: the run has already trained {done} epochs. Pass "
                          f"--epochs {done} or more (or test it as it is with `kdzoo eval {run_dir}`).")
    if finished and epochs == done:
        raise ConfigError(f"--resume {run_dir}: the run already finished its {plural(done, 'epoch')} ({SUMMARY} is "
                          f"there). To test it run `kdzoo eval {run_dir}`; to train it longer, pass --extend "
                          f"--epochs N with N > {done}.")
    if finished and not extend:
        lr = saved["history"][-1]["lr"]
        raise ConfigError(f"--resume {run_dir} --epochs {epochs}: the run already finished its "
                          f"{plural(done, 'epoch')} ({SUMMARY} is there). To train it "
                          f"{plural(epochs - done, 'more epoch')} add --extend: they run at "
                          f"the lr of its last epoch ({lr:.4g}), the schedule is not restarted, and its summary is "
                          f"rewritten. Or start a new run with --epochs {epochs} for a full schedule.")
    if extend and not finished:
        raise ConfigError(f"--extend trains a finished run longer, and {run_dir} has not finished (epoch {done} of "
                          f"{saved['config']['epochs']}): drop --extend to continue it.")
