"""The training loop, shared by teacher training (`kdzoo train`) and distillation (`kdzoo distill`).

One epoch = for each batch: student (and frozen teacher) forward, named loss terms from the
:class:`~kdzoo.methods.Objective`, backward, step. After each epoch: evaluate, log, and write the
resume checkpoint atomically, so an interruption never loses a finished epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__, distributed
from ..config import RunConfig
from ..data import build_data, dataset_info
from ..errors import CheckpointError, ConfigError, KdzooError
from ..distiller import Distiller, run_networks
from ..methods import LossWeights, Objective, Reads, method_class
from ..models import Features, checkpoint_entries, create_model, is_external, model_info
from . import checkpoint as ckpt
from .evaluate import check_fits, evaluate
from .interrupts import Interrupted
from .logger import INIT_METRICS, RunLogger, rewrite_metrics
from .dot import DOT
from .checkpoint_errors import reason
from .optim import beyond_schedule_note, build_optimizer, build_scheduler, hold_lr, schedule_warnings
from .preflight import check_no_single_image_batch
from .finite_watch import NonFiniteWatch
from .progress import LOG_EVERY, EpochProgress
from .resume import resume_config
from .run_header import header_notes
from .short_runs import short_run_warnings
from .run_dir import create_run_dir, save_config, write_summary
from .run_lock import RunLock
from .runtime import amp_dtype, resolve_device, rng_state, seed_everything, set_rng_state
from .speed import SpeedPlan, compile_networks, describe_speed, optimizer_options, plan_speed

#: Test top-1 of RepDistiller's released CIFAR-100 teachers (its README), printed next to ours.
REFERENCE_TEACHER_TOP1 = {"wrn_40_2": 75.61, "resnet56": 72.34, "resnet110": 74.31, "resnet32x4": 79.42, "vgg13": 74.64, "ResNet50": 79.34}


@dataclass
class Setup:
    """Everything built from a config before the first step. ``distiller`` holds the student, the frozen
    teacher and the method (None for plain training); ``reads`` is what the networks compute each step."""

    cfg: RunConfig
    device: torch.device
    data: Any
    student: nn.Module
    teacher: nn.Module | None
    objective: Objective
    distiller: Distiller | None
    reads: Reads
    lr: float
    caveats: list[str]
    speed: SpeedPlan


def check_names(cfg: RunConfig) -> None:
    """Fail on unknown model, dataset or method names, and on a method without the teacher it needs,
    before any data is read."""
    model_info(cfg.model)
    dataset_info(cfg.dataset)
    if cfg.method is not None and method_class(cfg.method).reads.needs_teacher and not cfg.distilling:
        raise ConfigError(f"--method {cfg.method} needs a teacher: pass --teacher PATH (a kdzoo run folder or checkpoint, "
                          f"or a RepDistiller teacher file).")
    if cfg.method is not None and not method_class(cfg.method).reads.needs_teacher and cfg.distilling:
        raise ConfigError(f"--method {cfg.method} is self-distillation and uses no teacher: drop --teacher "
                          f"(kdzoo distill --student {cfg.model} --method {cfg.method}).")
    if cfg.teacher_arch:
        model_info(cfg.teacher_arch)
    if cfg.teacher_pretrained and (cfg.teacher or not cfg.teacher_arch or not is_external(cfg.teacher_arch)):
        raise ConfigError("--teacher-pretrained loads timm's or torchvision's own weights instead of a file: give the "
                          "teacher as --teacher-arch timm/NAME or torchvision/NAME without --teacher (zoo teachers "
                          "come from a checkpoint: --teacher PATH).")


def build(cfg: RunConfig) -> Setup:
    if cfg.distilling and cfg.method is None:
        cfg = replace(cfg, method="kd")
    check_names(cfg)
    device = distributed.setup(resolve_device(cfg.device))
    check_distributed(cfg, device)
    speed = plan_speed(cfg, device)  # refuses fp16 without CUDA before anything is loaded
    seed_everything(cfg.seed, cfg.deterministic)
    teacher = ckpt.load_teacher(cfg.teacher, arch=cfg.teacher_arch, device=device,
                                options=cfg.teacher_options) if cfg.teacher else None
    data = build_data(
        cfg.dataset, root=cfg.data_root, download=cfg.download, batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size, device=device, seed=cfg.seed, data_seed=cfg.data_seed,
        train_subset=cfg.train_subset, test_subset=cfg.test_subset, augment=cfg.augment, num_workers=cfg.num_workers,
        rank=distributed.rank(), world_size=distributed.world_size(),
        strong_view=cfg.has_method and method_class(cfg.method).reads.strong_view, **cfg.dataset_options,
    )
    check_no_single_image_batch(data.train, cfg.batch_size)
    if cfg.teacher_pretrained:
        teacher = pretrained_teacher(cfg, data, device)
    student = create_model(cfg.model, num_classes=data.num_classes, in_channels=data.in_channels,
                           **cfg.model_options).to(device)
    lr = cfg.lr if cfg.lr is not None else model_info(cfg.model)["lr"]
    if cfg.scale_lr:
        lr *= distributed.world_size()
    if not cfg.has_method:
        distiller = None
        objective = Objective(None, LossWeights(gamma=1.0, alpha=0.0, beta=0.0))
        reads, caveats = Reads(teacher=None), []
    else:
        if teacher is not None:
            check_fits(teacher, data, "teacher")
        distiller = Distiller(student, teacher, cfg.method, input_shape=(data.in_channels, *data.image_size),
                              gamma=cfg.gamma, alpha=cfg.alpha, beta=cfg.beta, t_student=cfg.t_student,
                              t_teacher=cfg.t_teacher, logit_std=cfg.logit_std, train_labels=data.train_labels,
                              **cfg.method_options).to(device)
        student, objective, reads = distiller.student, distiller.objective, distiller.reads
        caveats = distiller.method.caveats(cfg.batch_size, beta_given=cfg.beta is not None)
    caveats = caveats + schedule_warnings(cfg, lr) + short_run_warnings(cfg, lr)
    if cfg.sync_bn:
        student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
    if speed.channels_last:
        student = student.to(memory_format=torch.channels_last)
    if speed.teacher_channels_last and teacher is not None:
        teacher = teacher.to(memory_format=torch.channels_last)
    compile_networks(speed, student, teacher, objective)
    return Setup(cfg, device, data, student, teacher, objective, distiller, reads, lr, caveats, speed)


def pretrained_teacher(cfg: RunConfig, data, device: torch.device) -> nn.Module:
    """``--teacher-pretrained``: the library's own pretrained weights for ``--teacher-arch`` (timm/torchvision),
    with a classifier for the dataset's classes (a new one, untrained, when they differ from the pretraining's)."""
    teacher = create_model(cfg.teacher_arch, num_classes=data.num_classes, in_channels=data.in_channels,
                           pretrained=True, **cfg.teacher_options)
    return teacher.to(device).eval().requires_grad_(False)


def check_distributed(cfg: RunConfig, device: torch.device) -> None:
    """Settings that only make sense, or are not supported, with several processes."""
    if cfg.sync_bn and (not distributed.is_distributed() or device.type != "cuda"):
        raise ConfigError("--sync-bn synchronises BatchNorm across the processes of a torchrun job on CUDA GPUs; "
                          "this run is not one (PyTorch's SyncBatchNorm has no CPU implementation).")
    if cfg.optimizer == "dot" and distributed.is_distributed():
        raise ConfigError("--optimizer dot takes two backward passes per step, which DistributedDataParallel does not "
                          "support; use --optimizer sgd under torchrun.")


def train(cfg: RunConfig | None = None, resume: str | Path | None = None, overrides: dict[str, Any] | None = None,
          extend: bool = False) -> dict[str, Any]:
    """Run ``cfg``, or resume the run folder ``resume`` (its saved config plus ``overrides``; ``extend``: a
    finished run, for ``overrides["epochs"]`` epochs in all, the extra ones at its last lr).

    Returns the summary also written to ``summary.json``."""
    note = None
    if resume is not None:
        cfg, note = resume_config(Path(resume), overrides or {}, extend)
    setup = build(cfg)
    cfg = setup.cfg
    teacher_arch = getattr(setup.teacher, "kdzoo_arch", None)
    main = distributed.is_main()
    if resume is not None:
        run_dir = Path(resume)
    else:  # rank 0 creates the folder (its name has a time stamp); the other ranks use the same one
        run_dir = Path(distributed.broadcast_object(str(create_run_dir(cfg, teacher_arch)) if main else None))
    lock = RunLock.claim(run_dir, new=resume is None) if main else None
    try:
        log = RunLogger(run_dir, tensorboard=cfg.tensorboard, quiet=False, enabled=main)
        state = Trainer(setup, run_dir, log)
        try:
            if resume is not None:
                state.restore()
            if note:
                log.info(f"note: {run_dir} {note}")
            if main:  # a resumed run's config only once its saved state has loaded
                save_config(run_dir, cfg)
            return state.fit()
        finally:
            log.close()
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: name the folder to resume
        raise Interrupted.in_run(exc, run_dir) from None
    finally:
        if lock is not None:
            lock.release()


class Trainer:
    """Holds the optimisation state of one run; ``fit`` runs the remaining epochs."""

    def __init__(self, setup: Setup, run_dir: Path, log: RunLogger):
        self.s = setup
        self.run_dir = run_dir
        self.log = log
        cfg = setup.cfg
        trainable = [setup.student] + ([setup.objective] if setup.objective.method is not None else [])
        self.optimizer = build_optimizer(cfg, trainable, setup.lr, optimizer_options(setup.speed))
        self.scheduler = build_scheduler(cfg, self.optimizer)
        self.schedule_epochs = cfg.epochs  # the epochs the lr schedule spans (fewer in an extended run)
        self.scaler = torch.amp.GradScaler(setup.device.type, enabled=setup.speed.amp == "fp16")
        stage = setup.distiller.init_stage(setup.lr) if setup.distiller is not None else None
        if stage is not None and stage.epochs > 0:
            self.init = stage
            self.init_optimizer = torch.optim.SGD(stage.parameters, lr=stage.lr or setup.lr, momentum=0.9, weight_decay=5e-4)
        else:
            self.init = self.init_optimizer = None
        # What the training steps call: DDP wrappers under torchrun (the teacher has no gradients: not
        # wrapped). SimKD's student leaves its own classifier unused, init-stage modules rest in the main
        # stage, and the objective's buffers (CRD's banks) are kept identical by the method itself.
        self.train_student = distributed.wrap(setup.student, setup.device,
                                              find_unused=getattr(setup.student, "ddp_find_unused", False))
        self.train_objective = distributed.wrap(setup.objective, setup.device, find_unused=stage is not None,
                                                broadcast_buffers=False)
        self.init_epoch = 0
        self.init_history: list[dict[str, float]] = []
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.best = {"top1": -1.0, "epoch": 0}
        self.teacher_eval: dict[str, float] | None = None

    # -- checkpoints ---------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        s = self.s
        return {"format": ckpt.FORMAT, "kdzoo_version": __version__, "arch": s.cfg.model,
                "num_classes": s.data.num_classes, "in_channels": s.data.in_channels, "dataset": s.cfg.dataset,
                "arch_options": s.cfg.model_options, "config": s.cfg.to_dict()}

    def save(self, top1: float | None, improved: bool) -> None:
        if not distributed.is_main():
            return
        s = self.s
        model_state = checkpoint_entries(s.student)
        if improved:
            ckpt.save_atomic({**self._meta(), "epoch": self.epoch, "accuracy": top1, **model_state}, self.run_dir / ckpt.BEST)
        ckpt.save_atomic({
            **self._meta(), "epoch": self.epoch, "accuracy": top1, **model_state,
            "objective": s.objective.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": rng_state(s.device), "history": self.history, "best": self.best,
            "teacher_eval": self.teacher_eval, "init_epoch": self.init_epoch, "init_history": self.init_history,
            "init_optimizer": self.init_optimizer.state_dict() if self.init_optimizer else None,
            "schedule_epochs": self.schedule_epochs,
        }, self.run_dir / ckpt.LAST)

    def restore(self) -> None:
        s = self.s
        path = self.run_dir / ckpt.LAST
        data = ckpt.read_checkpoint(path, map_location=s.device)
        if data.get("arch") != s.cfg.model:
            raise ConfigError(f"{path} holds a {data.get('arch')} but the run's config says {s.cfg.model}; cannot resume.")
        ckpt.load_entries(s.student, data, str(path), s.cfg.model)
        try:
            s.objective.load_state_dict(data["objective"])
            self.optimizer.load_state_dict(data["optimizer"])
            self.scheduler.load_state_dict(data["scheduler"])
            self.scaler.load_state_dict(data["scaler"])
            if self.init_optimizer is not None:
                self.init_optimizer.load_state_dict(data["init_optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{path} does not fit the run its config.yaml describes ({reason(exc)}): it was written "
                                  f"by another kdzoo version or for other settings. Start a new run.") from None
        set_rng_state(data["rng"], s.device)
        self.epoch, self.history, self.best = data["epoch"], data["history"], data["best"]
        self.teacher_eval = data["teacher_eval"]
        self.init_epoch, self.init_history = data["init_epoch"], data["init_history"]
        self.schedule_epochs = data.get("schedule_epochs", data["config"]["epochs"])
        if self.epoch >= self.schedule_epochs:  # an extended run: the schedule's last lr from now on
            hold_lr(self.optimizer, self.history[self.schedule_epochs - 1]["lr"])
        if distributed.is_main():
            rewrite_metrics(self.run_dir, self.history)
            rewrite_metrics(self.run_dir, self.init_history, INIT_METRICS)
        done = f"init epoch {self.init_epoch} of {self.init.epochs}" if self.init and self.init_epoch < self.init.epochs else f"epoch {self.epoch} of {s.cfg.epochs}"
        self.log.info(f"Resuming {self.run_dir} after {done}." + beyond_schedule_note(self.schedule_epochs, s.cfg.epochs, self.history))

    # -- loop ----------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        s, cfg = self.s, self.s.cfg
        if self.epoch == 0:
            self.log.info(describe(s, self.run_dir))
            for line in header_notes(cfg, self.init.epochs if self.init else 0, self.init_lr()):
                self.log.info(line)
        self.log.info(describe_speed(s.speed, cfg))
        if s.teacher is not None and cfg.eval_teacher and self.teacher_eval is None:
            self.teacher_eval = evaluate(s.teacher, s.data.test, s.device, s.speed.amp)
            ref = REFERENCE_TEACHER_TOP1.get(s.teacher.kdzoo_arch) if cfg.dataset == "cifar100" else None
            ref_text = f" (RepDistiller's released {s.teacher.kdzoo_arch}: {ref:.2f})" if ref else ""
            self.log.info(f"Teacher test top-1 {self.teacher_eval['top1']:.2f}%{ref_text}")
        if self.init is not None:
            for epoch in range(self.init_epoch + 1, self.init.epochs + 1):
                row = self.init_epoch_run(epoch)
                self.init_epoch = epoch
                self.init_history.append(row)
                self.save(None, False)
                self.log.epoch(row, INIT_METRICS)
                self.log.info(f"init epoch {epoch}/{self.init.epochs}  loss {row['init_loss']:.4f}  "
                              f"{row['images_per_s']:.0f} img/s  lr {row['lr']:.4g}")
        for epoch in range(self.epoch + 1, cfg.epochs + 1):
            row = self.train_epoch(epoch)
            test = evaluate(s.student, s.data.test, s.device, s.speed.amp, epoch)
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
        summary = self.summary()
        if distributed.is_main():
            write_summary(self.run_dir, summary)
        return summary

    def init_epoch_run(self, epoch: int) -> dict[str, float]:
        """One epoch of the method's init stage: only ``init.modules`` train, on ``method.init_loss``.

        Batches come from the loader's epoch ``-epoch``, so they differ from the main epochs'."""
        s, cfg, init = self.s, self.s.cfg, self.init
        s.student.eval()
        for module in init.modules:
            module.train()
        total = torch.zeros((), device=s.device)
        seen = 0
        progress = EpochProgress(len(s.data.train), f"init epoch {epoch}/{init.epochs}",
                                 enabled=cfg.progress and distributed.is_main())
        watch = NonFiniteWatch(s.device, LOG_EVERY)
        start = time.perf_counter()
        for step, batch in enumerate(s.data.train.epoch(-epoch)):
            loss = s.distiller.init_loss(init, batch.images, batch.labels, batch.index, student=s.student,
                                         amp=amp_dtype(s.device, s.speed.amp), channels_last=s.speed.channels_last,
                                         teacher_channels_last=s.speed.teacher_channels_last)
            watch.record(step, {"init": loss})
            self.init_optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            distributed.average_gradients(init.parameters)  # the init modules train outside DDP
            self.scaler.step(self.init_optimizer)
            self.scaler.update()
            total += loss.detach() * batch.labels.numel()
            seen += batch.labels.numel()
            if watch.due(step):  # the host reads device values only here: one sync per logging interval
                self.stop_if_non_finite(watch, epoch, stage="init epoch")
                if progress.enabled:
                    progress.show(init_loss=float(total) / seen)
            progress.step()
        progress.close()
        self.stop_if_non_finite(watch, epoch, stage="init epoch")
        elapsed = time.perf_counter() - start
        return {"init_epoch": epoch, "lr": self.init_optimizer.param_groups[0]["lr"],
                "init_loss": float(total) / max(seen, 1), "images_per_s": seen / max(elapsed, 1e-9),
                "epoch_time_s": elapsed}

    def train_epoch(self, epoch: int) -> dict[str, float]:
        s, cfg = self.s, self.s.cfg
        if s.objective.method is not None:
            s.objective.method.on_epoch_start(epoch, cfg.epochs)
        s.student.train()
        s.objective.train()
        lr = self.optimizer.param_groups[0]["lr"]
        sums: dict[str, torch.Tensor] = {}
        correct = torch.zeros((), device=s.device)
        seen = 0
        progress = EpochProgress(len(s.data.train), f"epoch {epoch}/{cfg.epochs}", enabled=cfg.progress and distributed.is_main())
        watch = NonFiniteWatch(s.device, LOG_EVERY)
        start = time.perf_counter()
        for step, batch in enumerate(s.data.train.epoch(epoch)):
            student_out, teacher_out = self.networks(batch)
            terms = self.train_objective(student_out, teacher_out, batch)
            loss = sum(terms.values())
            watch.record(step, terms)
            self.backward_step(terms, loss)
            n = batch.labels.numel()
            seen += n
            for name, value in {"loss": loss, **terms}.items():
                sums[name] = sums.get(name, 0.0) + value.detach() * n
            correct += (student_out.logits[:n].argmax(1) == batch.labels).sum()  # the first view's
            if watch.due(step):  # the host reads device values only here: one sync per logging interval
                self.stop_if_non_finite(watch, epoch)
                if progress.enabled:
                    progress.show(loss=float(sums["loss"]) / seen, acc=100.0 * float(correct) / seen,
                                  img_s=seen / (time.perf_counter() - start))
            progress.step()
        self.stop_if_non_finite(watch, epoch)
        names = list(sums)  # epoch totals over all ranks: loss terms, correct predictions, samples
        totals = distributed.all_reduce_sum(torch.stack([*(sums[k] for k in names), correct,
                                                         torch.tensor(float(seen), device=s.device)]).float())
        *term_sums, correct, seen = totals.tolist()
        means = {f"train_{k}": v / max(seen, 1) for k, v in zip(names, term_sums)}
        method = s.objective.method
        stats = {f"stat_{k}": v for k, v in method.epoch_stats().items()} if method is not None else {}
        elapsed = time.perf_counter() - start
        progress.close()
        self.advance_schedule(epoch)
        previous_time = self.history[-1]["train_time_s"] if self.history else 0.0
        return {"epoch": epoch, "lr": lr, **means, "train_top1": 100.0 * float(correct) / max(seen, 1),
                "images_per_s": seen / max(elapsed, 1e-9), "epoch_time_s": elapsed,
                "train_time_s": previous_time + elapsed, **stats}

    def init_lr(self) -> float:
        """The init stage's learning rate (the run's, when the stage names none)."""
        return self.init_optimizer.param_groups[0]["lr"] if self.init_optimizer else self.s.lr

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

    def networks(self, batch) -> tuple[Features, Features | None]:
        """The student's (and the frozen teacher's) outputs on the batch, for what the method reads."""
        s = self.s
        views = [batch.images] if batch.strong_images is None else [batch.images, batch.strong_images]
        return run_networks(self.train_student, s.teacher, views, s.reads, amp_dtype(s.device, s.speed.amp),
                            s.speed.channels_last, s.speed.teacher_channels_last)

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
        s, cfg = self.s, self.s.cfg
        last = self.history[-1]
        init_time = sum(r["epoch_time_s"] for r in self.init_history)  # AB/FT/FSP's init stage
        summary = {
            "run": self.run_dir.name, "run_dir": str(self.run_dir), "kind": "distill" if s.objective.method is not None else "train",
            "model": cfg.model, "params": sum(p.numel() for p in s.student.parameters()),
            "dataset": cfg.dataset, "method": cfg.method if s.objective.method is not None else None,
            "teacher": str(cfg.teacher) if cfg.teacher else None,
            "teacher_arch": getattr(s.teacher, "kdzoo_arch", None),
            "teacher_top1": self.teacher_eval["top1"] if self.teacher_eval else None,
            "seed": cfg.seed, "data_seed": cfg.data_seed, "train_subset": cfg.train_subset,
            "test_subset": cfg.test_subset, "epochs": cfg.epochs, "schedule_epochs": self.schedule_epochs, "init_epochs": self.init.epochs if self.init else 0,
            "best_top1": self.best["top1"], "best_epoch": self.best["epoch"],
            "best_top5": max(r["test_top5"] for r in self.history),
            "last_top1": last["test_top1"], "last_top5": last["test_top5"],
            "train_time_s": init_time + last["train_time_s"], "init_time_s": init_time,
            "images_per_s": sum(r["images_per_s"] for r in self.history) / len(self.history),
            "device": str(s.device), "kdzoo_version": __version__,
        }
        if s.objective.method is not None:
            w = s.objective.weights
            summary["weights"] = {"gamma": w.gamma, "alpha": w.alpha, "beta": w.beta}
        return summary


def describe(s: Setup, run_dir: Path) -> str:
    cfg = s.cfg
    head = f"kdzoo {__version__}: "
    if s.objective.method is None:
        head += f"training {cfg.model}"
    elif s.teacher is None:
        w = s.objective.weights
        head += f"self-distilling {cfg.model} with {cfg.method} (gamma {w.gamma:g}, alpha {w.alpha:g}, beta {w.beta:g})"
    else:
        w = s.objective.weights
        head += (f"distilling {s.teacher.kdzoo_arch} -> {cfg.model} with {cfg.method} "
                 f"(gamma {w.gamma:g}, alpha {w.alpha:g}, beta {w.beta:g}, T_s {s.objective.t_student:g}, "
                 f"T_t {s.objective.t_teacher:g}{', logit standardization' if cfg.logit_std else ''})")
    procs = f" per process x {distributed.world_size()} processes" if distributed.is_distributed() else ""
    return (f"{head} on {s.data.name} ({s.data.num_train} train images, {len(s.data.train)} batches of "
            f"{cfg.batch_size}{procs}), {cfg.epochs} epochs, lr {s.lr:g} ({cfg.schedule}), device {s.device}\n"
            f"run folder: {run_dir}" + "".join(f"\nwarning: {note}" for note in s.caveats))


def non_finite_message(epoch: int, step: int, terms: dict[str, float], run_dir: Path, saved_epoch: int,
                       stage: str = "epoch") -> str:
    """``step`` is 0-based; -1 when the non-finite loss was another process's."""
    where = f"{stage} {epoch}, step {step + 1} ({', '.join(f'{k}={v:.4g}' for k, v in terms.items())})" if step >= 0 \
        else f"{stage} {epoch} in another process"
    kept = f"epochs 1-{saved_epoch} are saved in {run_dir}" if saved_epoch else "no main epoch had finished yet"
    return (f"The loss became non-finite at {where}. {kept}. Lower the "
            f"learning rate (--lr) or the loss weights, check the teacher, or avoid --amp fp16; then start "
            f"again, or continue from the last good epoch with --resume {run_dir}.")
