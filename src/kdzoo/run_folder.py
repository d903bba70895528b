"""Run folders: portable names (letters, digits, '-', '_', '.'; never ':'), and the files others read back:
the saved config, the summary, the per-epoch metrics (which :class:`~kdzoo.engine.logger.RunLogger` writes).

The engine writes run folders; ``kdzoo report``, ``kdzoo plot`` and the grid runner read them with this module
alone, without loading the engine."""

from __future__ import annotations

import csv
import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import yaml

from .atomic_text import write_text_atomic
from .config import Role, RunConfig, fields_with, read_yaml, upgrade_saved_config
from .errors import ConfigError, KdzooError

CONFIG = "config.yaml"
SUMMARY = "summary.json"
METRICS = "metrics"            # <METRICS>.csv: one row per main epoch
INIT_METRICS = "init_metrics"  # <INIT_METRICS>.csv: one row per init-stage epoch (AB, FT, FSP)
#: Options that may differ between a run on disk and the config that reuses it (a grid's runner, the report's groups);
#: a resumed run may change fewer of them (:data:`kdzoo.engine.resume.RESUMABLE`: not its teacher or data).
RUNTIME_OPTIONS = fields_with(Role.RUNTIME)


def safe_name(text: str) -> str:
    """Replace every character outside ``[A-Za-z0-9._-]`` by ``-`` (valid on Windows, macOS, Linux)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def default_run_name(cfg: RunConfig, teacher_arch: str | None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if cfg.distilling:
        parts = [cfg.run_method, cfg.model, "from", teacher_arch or "teacher", cfg.dataset, f"seed{cfg.seed}", stamp]
    elif cfg.has_method:
        parts = [cfg.run_method, cfg.model, "self", cfg.dataset, f"seed{cfg.seed}", stamp]
    else:
        parts = ["train", cfg.model, cfg.dataset, f"seed{cfg.seed}", stamp]
    return safe_name("_".join(str(p) for p in parts))


def create_run_dir(cfg: RunConfig, teacher_arch: str | None) -> Path:
    """The run's folder: ``--name``'s, created if missing (:meth:`RunLock.claim
    <kdzoo.engine.run_lock.RunLock.claim>` then refuses it if it already holds a run); or a new one named by
    :func:`default_run_name`, with ``-2``, ``-3``, ... added when that name is taken (two runs started in the same
    second), created exclusively so that two processes never get the same one."""
    out = Path(cfg.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if cfg.name:
            run_dir = out / safe_name(cfg.name)
            run_dir.mkdir(exist_ok=True)
            return run_dir
        name = default_run_name(cfg, teacher_arch)
        for n in itertools.count(1):
            run_dir = out / (name if n == 1 else f"{name}-{n}")
            try:
                run_dir.mkdir()
                return run_dir
            except FileExistsError:
                continue
    except OSError as exc:
        raise write_refused(Path(exc.filename or out), exc) from None


def write_refused(path: Path, exc: OSError) -> KdzooError:
    """The error for a file or folder of a run that could not be written (a full disk, a read-only folder): the
    path, the reason and what to do."""
    return KdzooError(f"Could not write {path} ({exc.strerror or exc}). Free some space on that disk (or fix its "
                      f"permissions), or write the run to another folder (--output-dir; `kdzoo bench --out`).")


def save_config(run_dir: Path, cfg: RunConfig, teacher_file: dict[str, Any] | None = None) -> None:
    """The run's options as ``config.yaml`` (written whole or not at all), with the record of its teacher's file
    (its path and SHA-256; a published teacher's name and source too) when it has one (a
    :data:`~kdzoo.config.RECORDS` key: not an option)."""
    records = {"teacher_file": teacher_file} if teacher_file else {}
    path = run_dir / CONFIG
    try:
        write_text_atomic(path, yaml.safe_dump({**cfg.to_dict(), **records}, sort_keys=False))
    except OSError as exc:
        raise write_refused(path, exc) from None


def saved_options(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """The options in a run folder's ``config.yaml`` (checked like any config file) and, for a run saved by an
    older kdzoo, a note on how they were completed (:func:`~kdzoo.config.upgrade_saved_config`)."""
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: no {CONFIG} there, so it is not a kdzoo run folder.")
    return upgrade_saved_config(read_yaml(path))


def load_run_config(run_dir: Path) -> dict[str, Any]:
    """The run's saved options (completed as :func:`saved_options` does)."""
    return saved_options(run_dir)[0]


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    write_text_atomic(Path(run_dir) / SUMMARY, json.dumps(summary, indent=2))


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        summary = exc
    if not isinstance(summary, dict):
        raise ConfigError(f"{path} is not a kdzoo run summary (a JSON object written at the end of a run): {summary}. "
                          f"Delete it and run `kdzoo train|distill --resume {run_dir}` to write it again.")
    return summary


def read_metrics(run_dir: Path, table: str = METRICS) -> list[dict[str, float]]:
    """The rows of a run's ``<table>.csv`` as floats."""
    path = Path(run_dir) / f"{table}.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
