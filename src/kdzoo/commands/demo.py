"""``kdzoo demo``: the whole workflow on Fashion-MNIST in a few CPU minutes.

Trains a teacher, then the same student twice -- plain cross-entropy and Hinton KD from that
teacher -- and prints a table (best/last top-1, wall time, images/s) plus an accuracy plot.
Finished runs are reused and interrupted ones resumed, so re-running it is cheap. Run as ``make demo`` runs it
(``.venv/bin/kdzoo demo``, the virtual environment not activated), it ends by saying how to get the ``kdzoo``
command that the README's and the tutorial's next commands type.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..config import build_config
from ..plots import plot_accuracy_curves
from ..text_table import text_table

#: How to continue an interrupted demo: it has no --resume, it resumes its unfinished run when run again.
RUN_AGAIN = "the same `kdzoo demo` command again (it reuses the finished runs and resumes this one)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="teacher, vanilla student and KD student on Fashion-MNIST, with a table")
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--data-root", help="folder with the Fashion-MNIST files (default: found automatically)")
    p.add_argument("--quick", action="store_true", help="a much smaller run (for tests)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..engine.interrupts import Interrupted

    try:
        run_demo(output_dir=args.output_dir, data_root=args.data_root, quick=args.quick, device=args.device)
    except Interrupted as exc:
        exc.continue_with = RUN_AGAIN
        raise
    return 0


@dataclass(frozen=True)
class DemoPlan:
    """The demo's networks and sizes."""

    teacher: str = "resnet20"
    student: str = "resnet8"
    teacher_epochs: int = 7
    student_epochs: int = 5
    train_subset: int | None = 8000
    test_subset: int | None = 2000
    batch_size: int = 128
    schedule: str = "cosine"


QUICK = DemoPlan(teacher="resnet14", student="resnet8", teacher_epochs=1, student_epochs=1,
                 train_subset=512, test_subset=256, batch_size=64, schedule="step")


def _run(run_dir: Path, **options) -> dict:
    """Reuse a finished run, resume an interrupted one, or start it."""
    from ..grid.runner import run_in_process

    return run_in_process(run_dir, build_config(None, {"output_dir": str(run_dir.parent), "name": run_dir.name,
                                                       **options}))


def run_demo(output_dir: str = "runs/demo", data_root: str | None = None, quick: bool = False,
             device: str = "auto") -> list[dict]:
    """Teacher, vanilla student and KD student (each reused when finished), then the table and the plot."""
    plan = QUICK if quick else DemoPlan()
    out = Path(output_dir)
    common = dict(dataset="fashion_mnist", data_root=data_root, train_subset=plan.train_subset,
                  test_subset=plan.test_subset, batch_size=plan.batch_size, schedule=plan.schedule,
                  download=True, device=device, seed=0)
    teacher = _run(out / "teacher", model=plan.teacher, epochs=plan.teacher_epochs, **common)
    vanilla = _run(out / "student_vanilla", model=plan.student, epochs=plan.student_epochs, **common)
    kd = _run(out / "student_kd", model=plan.student, epochs=plan.student_epochs, teacher=str(out / "teacher"),
              method="kd", eval_teacher=False, **common)
    summaries = [("teacher", teacher), ("vanilla student (CE)", vanilla), ("KD student", kd)]
    rows = [[label, s["model"], f"{s['best_top1']:.2f} (ep {s['best_epoch']})", f"{s['last_top1']:.2f}",
             f"{s['train_time_s']:.0f}s", f"{s['images_per_s']:.0f}"] for label, s in summaries]
    print("\nFashion-MNIST demo (test top-1 %, "
          f"{plan.train_subset or 'all'} training images, {plan.test_subset or 'all'} test images)")
    print(text_table(["run", "model", "best top-1", "last top-1", "train time", "images/s"], rows))
    plot = plot_accuracy_curves({label: Path(s["run_dir"]) for label, s in summaries}, out / "accuracy.png",
                                title="Fashion-MNIST demo: test top-1 per epoch")
    print(f"\nrun folders (config.yaml, metrics.csv, log.txt, tensorboard/, checkpoints): {out}/teacher, "
          f"{out}/student_vanilla, {out}/student_kd\naccuracy curves: {plot}\n"
          f"TensorBoard: tensorboard --logdir {out}")
    if hint := command_hint():
        print(f"\n{hint}")
    return [s for _, s in summaries]


def command_hint() -> str | None:
    """How to type ``kdzoo`` in this shell when the ``kdzoo`` on the PATH is not this installation's (``make demo``
    runs ``.venv/bin/kdzoo`` without activating the virtual environment): activate it, or call the script by its
    path; None when ``kdzoo`` already finds this installation."""
    scripts = Path(sysconfig.get_path("scripts"))
    found = shutil.which("kdzoo")
    if found and Path(found).resolve().parent == scripts.resolve():
        return None
    try:
        where = scripts.resolve().relative_to(Path.cwd().resolve())
    except ValueError:  # installed outside this folder
        where = scripts
    kdzoo = where / ("kdzoo.exe" if os.name == "nt" else "kdzoo")
    if sys.prefix == sys.base_prefix:  # not a virtual environment: nothing to activate
        return f"The kdzoo command is not on your PATH: call `{kdzoo}`, or add {where} to PATH."
    activate = str(where / "activate") if os.name == "nt" else f"source {where / 'activate'}"
    return (f"The kdzoo command of the next steps (README, tutorial) is not on your PATH yet: run `{activate}` in "
            f"this shell (it activates the virtual environment), or call `{kdzoo}`.")
