"""The training loop, shared by teacher training (`kdzoo train`) and distillation (`kdzoo distill`).

One epoch = for each batch: student (and frozen teacher) forward, named loss terms from the
:class:`~kdzoo.methods.Objective`, backward, step. After each epoch: evaluate, log, and write the
resume checkpoint atomically, so an interruption never loses a finished epoch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import __version__, distributed
from ..config import RunConfig
from ..errors import CheckpointError, ConfigError, KdzooError
from ..models import checkpoint_entries
from ..published import released_teacher_top1
from ..run_folder import INIT_METRICS, create_run_dir, save_config, write_summary
from . import checkpoint as ckpt
from .build import Setup, build
from .checkpoint_errors import reason
from .dot import DOT
from .epoch_sums import EpochSums
from .evaluate import absurd_loss_warning, evaluate, reports_top5
from .finite_watch import NonFiniteWatch, non_finite_message
from .interrupts import Interrupted
from .logger import RunLogger, rewrite_metrics
from .optim import beyond_schedule_note, build_optimizer, build_scheduler, hold_lr
from .progress import LOG_EVERY, EpochProgress
from .resume import check_same_teacher, resume_config
from .run_header import header_notes, run_description
from .run_lock import RunLock
from .runtime import isolated_run, rng_state, set_rng_state
from .speed import describe_speed, optimizer_options
from .teacher_cache import TeacherCache, key_fields


def train(cfg: RunConfig | None = None, resume: str | Path | None = None, overrides: dict[str, Any] | None = None,
          extend: bool = False) -> dict[str, Any]:
    """Run ``cfg``, or resume the run folder ``resume`` (its saved config plus ``overrides``; ``extend``: a
    finished run, for ``overrides["epochs"]`` epochs in all, the extra ones at its last lr).

    Returns the summary also written to ``summary.json``. The process's torch, NumPy and Python settings the run
    changes (deterministic kernels, cuDNN flags, threads, random generators...) are restored when it ends
    (:func:`~kdzoo.engine.runtime.isolated_run`), so runs in one process do not leak into each other."""
    with isolated_run():  # the deterministic switch, RNGs, threads... as they were once the run ends
        note = recorded_teacher = None
        if resume is not None:
            cfg, note, recorded_teacher = resume_config(Path(resume), overrides or {}, extend)
        setup = build(cfg)
        cfg = setup.cfg
        teacher_arch = getattr(setup.distiller.teacher, "kdzoo_arch", None)
        main = distributed.is_main()
        if resume is not None:
            run_dir = Path(resume)
            check_same_teacher(run_dir, recorded_teacher, setup.teacher_file)
        else:  # rank 0 creates the folder (its name has a time stamp); the other ranks use the same one
            run_dir = Path(distributed.broadcast_object(str(create_run_dir(cfg, teacher_arch)) if main else None))
        lock = RunLock.claim(run_dir, new=resume is None) if main else None
        try:
            log = RunLogger(run_dir, tensorboard=cfg.tensorboard, quiet=False, enabled=main)
            trainer = Trainer(setup, run_dir, log)
            try:
                if resume is not None:
                    trainer.restore()
                if note:
                    log.info(f"note: {run_dir} {note}")
                if main:  # a resumed run's config only once its saved state has loaded
                    save_config(run_dir, cfg, setup.teacher_file)
                return trainer.fit()
            finally:
                log.close()
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: name the folder to resume
            raise Interrupted.in_run(exc, run_dir) from None
        finally:
            if lock is not None:
                lock.release()


class Trainer:
    """Holds the optimisation state of one run (built by :func:`~kdzoo.engine.build.build`); ``fit`` runs the
    remaining epochs."""

    def __init__(self, setup: Setup, run_dir: Path, log: RunLogger):
        self.setup = setup
        self.run_dir = run_dir
        self.log = log
        cfg, distiller = setup.cfg, setup.distiller
        self.distiller = distiller
        self.optimizer = build_optimizer(cfg, [distiller], setup.lr, optimizer_options(setup.speed))
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.schedule_epochs = cfg.epochs  # the epochs the lr schedule spans (fewer in an extended run)
        self.scaler = torch.amp.GradScaler(setup.device.type, enabled=setup.speed.amp == "fp16")
        stage = distiller.init_stage(setup.lr)
        if stage is not None and stage.epochs > 0:
            self.init = stage
            self.init_optimizer = torch.optim.SGD(stage.parameters, lr=stage.lr or setup.lr, momentum=0.9,
                                                  weight_decay=5e-4)
        else:
            self.init = self.init_optimizer = None
        # What the training steps call: DDP wrappers under torchrun (the teacher has no gradients: not
        # wrapped). SimKD's student leaves its own classifier unused, init-stage modules rest in the main
        # stage, and the objective's buffers (CRD's banks) are kept identical by the method itself.
        distiller.set_runners(
            distributed.wrap(distiller.student, setup.device,
                             find_unused=getattr(distiller.student, "ddp_find_unused", False)),
            distributed.wrap(distiller.objective, setup.device, find_unused=stage is not None,
                             broadcast_buffers=False))
        self.init_epoch = 0
        self.init_history: list[dict[str, float]] = []
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.best = {"top1": -1.0, "epoch": 0}
        self.teacher_eval: dict[str, float] | None = None
        self.loss_warned = False  # the absurd evaluation loss warning, once per run
        self.teacher_cache = open_teacher_cache(setup, log)

    # -- checkpoints ---------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        cfg, data = self.setup.cfg, self.setup.data
        return {"format": ckpt.FORMAT, "kdzoo_version": __version__, "arch": cfg.model,
                "num_classes": data.num_classes, "in_channels": data.in_channels, "dataset": cfg.dataset,
                "arch_options": cfg.model_options, "feature_layers": cfg.feature_layers, "config": cfg.to_dict(),
                "teacher_file": self.setup.teacher_file}

    def save(self, top1: float | None, improved: bool) -> None:
        """Write ``checkpoint_last.pt`` (everything ``--resume`` needs) and, when ``improved``,
        ``checkpoint_best.pt``; rank 0 only."""
        if not distributed.is_main():
            return
        setup = self.setup
        model_state = checkpoint_entries(self.distiller.student)
        if improved:
            ckpt.save_atomic({**self._meta(), "epoch": self.epoch, "accuracy": top1, **model_state},
                             self.run_dir / ckpt.BEST)
        ckpt.save_atomic({
            **self._meta(), "epoch": self.epoch, "accuracy": top1, **model_state,
            "objective": self.distiller.objective.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng_state(setup.device), "history": self.history, "best": self.best,
            "teacher_eval": self.teacher_eval, "init_epoch": self.init_epoch, "init_history": self.init_history,
            "init_optimizer": self.init_optimizer.state_dict() if self.init_optimizer else None,
            "schedule_epochs": self.schedule_epochs,
            "teacher_cache": self.teacher_cache.state_dict() if self.teacher_cache else None,
        }, self.run_dir / ckpt.LAST)

    def restore(self) -> None:
        """Load ``checkpoint_last.pt`` of the run folder: networks, optimizers, RNG, history; the metrics files are
        cut back to the epochs it holds."""
        setup, cfg = self.setup, self.setup.cfg
        path = self.run_dir / ckpt.LAST
        data = ckpt.read_checkpoint(path, map_location=setup.device)
        if data.get("arch") != cfg.model:
            raise ConfigError(f"{path} holds a {data.get('arch')} but the run's config says {cfg.model}; "
                              f"cannot resume.")
        ckpt.load_entries(self.distiller.student, data, str(path), cfg.model)
        try:
            self.distiller.objective.load_state_dict(data["objective"])
            self.optimizer.load_state_dict(data["optimizer"])
            self.scheduler.load_state_dict(data["scheduler"])
            self.scaler.load_state_dict(data["scaler"])
            if self.init_optimizer is not None:
                self.init_optimizer.load_state_dict(data["init_optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path} does not fit the run its config.yaml describes ({reason(exc)}): it was "
                                  f"written by another kdzoo version or for other settings. Start a new run.") from None
        set_rng_state(data["rng"], setup.device)
        self.epoch, self.history, self.best = data["epoch"], data["history"], data["best"]
        self.teacher_eval = data["teacher_eval"]
        self.init_epoch, self.init_history = data["init_epoch"], data["init_history"]
        self.schedule_epochs = data.get("schedule_epochs", data["config"]["epochs"])
        if self.teacher_cache is not None and data.get("teacher_cache"):
            self.teacher_cache.load_state_dict(data["teacher_cache"])
        if self.epoch >= self.schedule_epochs:  # an extended run: the schedule's last lr from now on
            hold_lr(self.optimizer, self.history[self.schedule_epochs - 1]["lr"])
        if distributed.is_main():
            rewrite_metrics(self.run_dir, self.history)
            rewrite_metrics(self.run_dir, self.init_history, INIT_METRICS)
        in_init = self.init and self.init_epoch < self.init.epochs
        done = (f"init epoch {self.init_epoch} of {self.init.epochs}" if in_init
                else f"epoch {self.epoch} of {cfg.epochs}")
        self.log.info(f"Resuming {self.run_dir} after {done}."
                      + beyond_schedule_note(self.schedule_epochs, cfg.epochs, self.history))

    # -- loop ----------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Run the epochs not done yet -- the method's init stage first (AB, FT, FSP), then the main ones --
        checkpointing after each; write ``summary.json`` and return the summary. A new run first logs its header
        (:func:`~kdzoo.engine.run_header.run_description`), and the teacher is evaluated once."""
        setup, cfg = self.setup, self.setup.cfg
        if self.epoch == 0:
            self.log.info(run_description(setup, self.run_dir))
            for line in header_notes(cfg, self.init.epochs if self.init else 0, self.init_lr()):
                self.log.info(line)
        self.log.info(describe_speed(setup.speed, cfg))
        if self.teacher_cache is not None:
            self.log.info(self.teacher_cache.describe(cfg.epochs, len(self.setup.data.train)))
        if self.distiller.teacher is not None and cfg.eval_teacher and self.teacher_eval is None:
            self.evaluate_teacher()
        if self.init is not None:
            for epoch in range(self.init_epoch + 1, self.init.epochs + 1):
                self.init_epoch_step(epoch)
        for epoch in range(self.epoch + 1, cfg.epochs + 1):
            self.main_epoch_step(epoch)
        if self.teacher_cache is not None:
            self.log.info(self.teacher_cache.report())
        summary = self.summary()
        if distributed.is_main():
            write_summary(self.run_dir, summary)
        return summary

    def evaluate_teacher(self) -> None:
        """The teacher's test accuracy, logged beside the released teacher's (RepDistiller's, on CIFAR-100)."""
        setup, teacher = self.setup, self.distiller.teacher
        self.teacher_eval = evaluate(teacher, setup.data.test, setup.device, setup.speed.amp)
        ref = released_teacher_top1(teacher.kdzoo_arch, setup.cfg.dataset)
        ref_text = f" (RepDistiller's released {teacher.kdzoo_arch}: {ref:.2f})" if ref else ""
        self.log.info(f"Teacher test top-1 {self.teacher_eval['top1']:.2f}%{ref_text}")

    def init_epoch_step(self, epoch: int) -> None:
        """Train, checkpoint and log one init-stage epoch."""
        row = self.init_epoch_run(epoch)
        self.init_epoch = epoch
        self.init_history.append(row)
        self.save(None, False)
        self.log.epoch(row, INIT_METRICS)
        self.log.info(f"init epoch {epoch}/{self.init.epochs}  loss {row['init_loss']:.4f}  "
                      f"{row['images_per_s']:.0f} img/s  lr {row['lr']:.4g}")

    def main_epoch_step(self, epoch: int) -> None:
        """Train and evaluate one main epoch, then checkpoint it and log its row."""
        setup, cfg = self.setup, self.setup.cfg
        row = self.train_epoch(epoch)
        self.advance_schedule(epoch)
        test = evaluate(self.distiller.student, setup.data.test, setup.device, setup.speed.amp, epoch)
        improved = test["top1"] > self.best["top1"]
        if improved:
            self.best = {"top1": test["top1"], "epoch": epoch}
        row.update({"test_top1": test["top1"], "test_top5": test["top5"], "test_loss": test["loss"]})
        self.epoch = epoch
        self.history.append(row)
        self.save(test["top1"], improved)
        self.log.epoch(row)
        self.log.info(
            f"epoch {epoch}/{cfg.epochs}  loss {row['train_loss']:.4f}  train {row['train_top1']:.2f}%  "
            f"test {test['top1']:.2f}% (best {self.best['top1']:.2f}% @ {self.best['epoch']})  "
            f"{row['images_per_s']:.0f} img/s  lr {row['lr']:.4g}"
            + "".join(f"  {k[5:]} {v:.4g}" for k, v in row.items() if k.startswith("stat_"))
        )
        warning = absurd_loss_warning(test["loss"], setup.data.num_classes)
        if warning and not self.loss_warned:
            self.loss_warned = True
            self.log.info(warning)

    def init_epoch_run(self, epoch: int) -> dict[str, float]:
        """One epoch of the method's init stage: only ``init.modules`` train, on the Distiller's ``init_loss``.

        Batches come from the loader's epoch ``-epoch``, so they differ from the main epochs'."""
        init, distiller = self.init, self.distiller
        distiller.student.eval()
        for module in init.modules:
            module.train()

        def step(batch) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
            loss = distiller.init_loss(init, batch.images, batch.labels, batch.index)
            self.init_optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            distributed.average_gradients(init.parameters)  # the init modules train outside DDP
            self.scaler.step(self.init_optimizer)
            self.scaler.update()
            return {"init": loss}, {"init_loss": loss}, {}

        totals, seen, elapsed = self.run_epoch(self.setup.data.train.epoch(-epoch), step,
                                               f"init epoch {epoch}/{init.epochs}", epoch, stage="init epoch")
        return {"init_epoch": epoch, "lr": self.init_optimizer.param_groups[0]["lr"],
                "init_loss": totals.get("init_loss", 0.0) / max(seen, 1), "images_per_s": seen / max(elapsed, 1e-9),
                "epoch_time_s": elapsed}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One main epoch over the training split: each step is the Distiller's (the networks, the objective's
        weighted terms), then backward and the optimizer; returns the epoch's ``metrics.csv`` row (mean of every
        loss term, train top-1, images/s, times, the method's ``stat_*`` values), summed over the processes of a
        distributed run. The caller steps the lr schedule."""
        cfg, distiller = self.setup.cfg, self.distiller
        distiller.on_epoch_start(epoch, cfg.epochs)
        distiller.train()
        lr = self.optimizer.param_groups[0]["lr"]
        cache = self.teacher_cache
        if cache is not None:
            cache.start_epoch(epoch, len(self.setup.data.train))

        def step(batch) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
            teacher_out = None if cache is None else cache.outputs(lambda: distiller.teacher_outputs(batch))
            terms, student_out = distiller.step(batch, teacher_out)
            loss = sum(terms.values())
            self.backward_step(terms, loss)
            correct = (student_out.logits[:batch.labels.numel()].argmax(1) == batch.labels).sum()  # the first view's
            return terms, {"loss": loss, **terms}, {"correct": correct}

        totals, seen, elapsed = self.run_epoch(self.setup.data.train.epoch(epoch), step, f"epoch {epoch}/{cfg.epochs}",
                                               epoch, all_ranks=True)
        if cache is not None:
            cache.finish_epoch()
        correct = totals.pop("correct", 0.0)
        means = {f"train_{k}": v / max(seen, 1) for k, v in totals.items()}
        stats = {f"stat_{k}": v for k, v in distiller.method.epoch_stats().items()}
        previous_time = self.history[-1]["train_time_s"] if self.history else 0.0
        return {"epoch": epoch, "lr": lr, **means, "train_top1": 100.0 * correct / max(seen, 1),
                "images_per_s": seen / max(elapsed, 1e-9), "epoch_time_s": elapsed,
                "train_time_s": previous_time + elapsed, **stats}

    def run_epoch(self, batches, step, description: str, epoch: int, stage: str = "epoch",
                  all_ranks: bool = False) -> tuple[dict[str, float], int, float]:
        """The loop of both stages: ``step(batch) -> (terms, means, counts)`` on every batch; the epoch's sums stay
        on the device (``means`` per sample, ``counts`` as totals) and the host looks once per logging interval,
        to update the progress bar and to stop, before anything of this epoch is saved, when a term was not
        finite. Returns the sums (over every process with ``all_ranks``), the images seen and the seconds."""
        setup = self.setup
        sums = EpochSums(setup.device)
        progress = EpochProgress(len(setup.data.train), description,
                                 enabled=setup.cfg.progress and distributed.is_main())
        watch = NonFiniteWatch(setup.device, LOG_EVERY)
        start = time.perf_counter()
        for i, batch in enumerate(batches):
            terms, means, counts = step(batch)
            watch.record(i, terms)
            sums.add(batch.labels.numel(), means, counts)
            if watch.due(i):  # the host reads device values only here: one sync per logging interval
                self.stop_if_non_finite(watch, epoch, stage)
                if progress.enabled:
                    totals, seen = sums.totals()
                    first = next(iter(means))
                    shown = {first: totals[first] / seen, "img_s": seen / (time.perf_counter() - start)}
                    if "correct" in totals:
                        shown["acc"] = 100.0 * totals["correct"] / seen
                    progress.show(**shown)
            progress.step()
        progress.close()
        self.stop_if_non_finite(watch, epoch, stage)
        elapsed = time.perf_counter() - start
        totals, seen = sums.totals(all_ranks=all_ranks)
        return totals, seen, elapsed

    def init_lr(self) -> float:
        """The init stage's learning rate (the run's, when the stage names none)."""
        return self.init_optimizer.param_groups[0]["lr"] if self.init_optimizer else self.setup.lr

    def advance_schedule(self, epoch: int) -> None:
        """Step the lr schedule after ``epoch``; from its last epoch on (an extended run) the lr stays as it is."""
        if epoch < self.schedule_epochs:
            self.scheduler.step()

    def stop_if_non_finite(self, watch: NonFiniteWatch, epoch: int, stage: str = "epoch") -> None:
        """Raise (before anything of this epoch is saved) when a step of the epoch had a non-finite loss."""
        bad = watch.first_bad()
        if bad is not None:
            step, values = bad
            saved = 0 if stage == "init epoch" else self.epoch
            raise KdzooError(non_finite_message(epoch, step, values, self.run_dir, saved, stage))

    def backward_step(self, terms: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``; DOT takes the distillation and the cross-entropy gradients apart."""
        self.optimizer.zero_grad(set_to_none=True)
        if isinstance(self.optimizer, DOT):
            distill = [v for k, v in terms.items() if k != "ce" and v.requires_grad]
            if distill:
                sum(distill).backward(retain_graph="ce" in terms)
                self.optimizer.store_distill_grads()
            if "ce" in terms:
                terms["ce"].backward()
            self.optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds: the run, its settings, best and last accuracy, times, throughput."""
        setup, cfg, distiller = self.setup, self.setup.cfg, self.distiller
        last = self.history[-1]
        init_time = sum(r["epoch_time_s"] for r in self.init_history)  # AB/FT/FSP's init stage
        summary = {
            "run": self.run_dir.name, "run_dir": str(self.run_dir),
            "kind": "distill" if cfg.has_method else "train",
            "model": cfg.model, "params": sum(p.numel() for p in distiller.student.parameters()),
            "extra_params": distiller.extra_parameters(),
            "dataset": cfg.dataset, "method": cfg.method if cfg.has_method else None,
            "teacher": str(cfg.teacher) if cfg.teacher else None,
            "teacher_arch": getattr(distiller.teacher, "kdzoo_arch", None),
            "teacher_file": setup.teacher_file,
            "teacher_top1": self.teacher_eval["top1"] if self.teacher_eval else None,
            "seed": cfg.seed, "data_seed": cfg.data_seed, "train_subset": cfg.train_subset,
            "test_subset": cfg.test_subset, "epochs": cfg.epochs, "schedule_epochs": self.schedule_epochs,
            "init_epochs": self.init.epochs if self.init else 0,
            "best_top1": self.best["top1"], "best_epoch": self.best["epoch"], "last_top1": last["test_top1"],
            **({"best_top5": max(r["test_top5"] for r in self.history), "last_top5": last["test_top5"]}
               if reports_top5(setup.data.num_classes) else {}),
            "train_time_s": init_time + last["train_time_s"], "init_time_s": init_time,
            "images_per_s": sum(r["images_per_s"] for r in self.history) / len(self.history),
            "device": str(setup.device), "kdzoo_version": __version__,
        }
        if self.teacher_cache is not None:
            summary["teacher_cache"] = self.teacher_cache.summary()
        if cfg.has_method:
            w = distiller.objective.weights
            summary["weights"] = {"gamma": w.gamma, "alpha": w.alpha, "beta": w.beta}
        return summary


def open_teacher_cache(setup: Setup, log: RunLogger) -> TeacherCache | None:
    """The run's teacher-output cache (``--teacher-cache``), keyed by everything that determines the teacher's
    outputs for its batches (:func:`~kdzoo.engine.teacher_cache.key_fields`); None without one."""
    cfg, distiller = setup.cfg, setup.distiller
    if cfg.teacher_cache is None or distiller.teacher is None:
        return None
    fields = key_fields(cfg, distiller.teacher, setup.device, distiller.runtime.amp,
                        setup.speed.teacher_channels_last, setup.speed.compile,
                        views=2 if distiller.reads.strong_view else 1, num_train=setup.data.num_train,
                        train_files=setup.data.fingerprint())
    exact = setup.device.type == "cpu" or cfg.deterministic  # deterministic numerics: compared bit for bit
    return TeacherCache(cfg.teacher_cache, fields, cfg.teacher_cache_verify, exact, setup.device, log.info)
