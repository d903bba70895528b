"""Build a run from its config: every name checked first, then the device and speed plan, the teacher, the data,
the student and the :class:`~kdzoo.distiller.Distiller` (:func:`build` -> :class:`Setup`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import distributed
from ..config import RunConfig
from ..data import DataBundle, build_data, dataset_info
from ..distiller import Distiller, Runtime
from ..errors import ConfigError
from ..models import StagesNotFound, create_model, is_external, model_info
from ..resolved import ResolvedRun, resolve_run
from ..teachers import is_pretrained, name_of
from . import checkpoint as ckpt
from .evaluate import check_fits
from .optim import schedule_warnings
from .preflight import check_no_single_image_batch
from .runtime import amp_dtype, resolve_device, seed_everything
from .short_runs import short_run_warnings
from .speed import SpeedPlan, compile_networks, plan_speed
from .teacher_cache import check_cache_allowed
from .teacher_fit import check_published_fits, size_warning


@dataclass
class Setup:
    """Everything built from a config before the first step. ``distiller`` is the run: its student, frozen
    teacher, method and objective (plain training: the ``vanilla`` method), laid out, compiled and set to run as
    the speed plan says; ``teacher_file`` what the run records of its teacher's file: its path and SHA-256 (a
    published teacher's, ``pretrained:NAME``, its name and source too); ``run`` the run resolved from ``cfg``
    (:func:`~kdzoo.resolved.resolve_run`; ``cfg`` is ``run.cfg``)."""

    cfg: RunConfig
    device: torch.device
    data: DataBundle
    distiller: Distiller
    lr: float
    caveats: list[str]
    speed: SpeedPlan
    run: ResolvedRun
    teacher_file: dict | None = None


def check_names(cfg: RunConfig, run: ResolvedRun | None = None) -> None:
    """Fail on unknown model, dataset or method names, and on a method without the teacher it needs,
    before any data is read; ``run``: ``cfg``'s, resolved (:func:`~kdzoo.resolved.resolve_run` when not given)."""
    model_info(cfg.model)
    dataset_info(cfg.dataset)
    run = run or resolve_run(cfg)
    needs_teacher = run.needs.needs_teacher
    if needs_teacher and not cfg.distilling:
        raise ConfigError(f"--method {cfg.method} needs a teacher: pass --teacher PATH (a kdzoo run folder or "
                          f"checkpoint, or a RepDistiller teacher file) or --teacher pretrained:NAME (a published "
                          f"CIFAR-100 teacher, fetched once; `kdzoo teachers` lists them).")
    if not needs_teacher and cfg.distilling:
        raise ConfigError(f"--method {cfg.method} is self-distillation and uses no teacher: drop --teacher "
                          f"(kdzoo distill --student {cfg.model} --method {cfg.method}).")
    if cfg.teacher_arch:
        model_info(cfg.teacher_arch)
    if is_pretrained(cfg.teacher):
        name = name_of(cfg.teacher)  # an unknown name fails before anything is downloaded
        if cfg.teacher_arch not in (None, name):
            raise ConfigError(f"--teacher {cfg.teacher} is a {name}, not a {cfg.teacher_arch}: drop --teacher-arch "
                              f"(a published teacher's name is its architecture).")
        check_published_fits(cfg.teacher, cfg.dataset, cfg.dataset_options)  # before it is downloaded
    if cfg.teacher_pretrained and (cfg.teacher or not cfg.teacher_arch or not is_external(cfg.teacher_arch)):
        raise ConfigError("--teacher-pretrained loads timm's or torchvision's own weights instead of a file: give the "
                          "teacher as --teacher-arch timm/NAME or torchvision/NAME without --teacher (zoo teachers "
                          "come from a checkpoint: --teacher PATH).")
    check_cache_allowed(run)


def build(cfg: RunConfig) -> Setup:
    """Everything a run needs from ``cfg``, in the order that fails early: names, device and speed plan, teacher,
    data (:func:`~kdzoo.data.build_data`), student, then the :class:`~kdzoo.distiller.Distiller` (method and
    objective) and the warnings the run header prints; the networks compiled when asked (``--compile``)."""
    run = resolve_run(cfg)
    cfg = run.cfg  # its method defaulted: kd with a teacher
    check_names(cfg, run)
    device = distributed.setup(resolve_device(cfg.device))
    check_distributed(cfg, device)
    speed = plan_speed(cfg, device)  # refuses fp16 without CUDA before anything is loaded
    seed_everything(cfg.seed, cfg.deterministic)
    teacher_file = ckpt.pretrained_file(cfg.teacher) if is_pretrained(cfg.teacher) else None
    teacher, saved = ckpt.read_teacher(teacher_file.path if teacher_file else cfg.teacher, arch=cfg.teacher_arch,
                                       device=device, options=cfg.teacher_options,
                                       feature_layers=cfg.teacher_feature_layers) if cfg.teacher else (None, {})
    data = run_data(cfg, device, run)
    if cfg.teacher_pretrained:
        teacher = pretrained_teacher(cfg, data, device)
    student = create_model(cfg.model, num_classes=data.num_classes, in_channels=data.in_channels,
                           feature_layers=cfg.feature_layers, **cfg.model_options).to(device)
    lr = cfg.lr if cfg.lr is not None else model_info(cfg.model)["lr"]
    if cfg.scale_lr:
        lr *= distributed.world_size()
    runtime = Runtime(amp_dtype(device, speed.amp), speed.channels_last, speed.teacher_channels_last)
    distiller = run_distiller(cfg, student, teacher, data, device, run, runtime)
    caveats = (distiller.method.caveats(cfg.batch_size, beta_given=cfg.beta is not None)
               + schedule_warnings(cfg, lr) + short_run_warnings(cfg, lr))
    if cfg.teacher and (note := size_warning("the teacher", cfg.teacher, saved, data.image_size)):
        caveats.append(note)
    if speed.channels_last:
        distiller.student.to(memory_format=torch.channels_last)
    if speed.teacher_channels_last and teacher is not None:
        teacher.to(memory_format=torch.channels_last)
    compile_networks(speed, distiller.student, teacher, distiller.objective)
    record = teacher_file.record() if teacher_file else ckpt.file_record(cfg.teacher) if cfg.teacher else None
    return Setup(cfg=cfg, device=device, data=data, distiller=distiller, lr=lr, caveats=caveats, speed=speed,
                 run=run, teacher_file=record)


def run_data(cfg: RunConfig, device: torch.device, run: ResolvedRun | None = None) -> DataBundle:
    """The run's dataset on ``device`` (this process's shard under torchrun), with MLKD's strong view when the
    method reads one (``run``: ``cfg``'s, resolved); refused when a training batch would hold one image."""
    run = run or resolve_run(cfg)
    data = build_data(
        cfg.dataset, root=cfg.data_root, download=cfg.download, batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size, device=device, seed=cfg.seed, data_seed=cfg.data_seed,
        train_subset=cfg.train_subset, test_subset=cfg.test_subset, augment=cfg.augment, num_workers=cfg.num_workers,
        rank=distributed.rank(), world_size=distributed.world_size(),
        strong_view=run.needs.strong_view, **cfg.dataset_options,
    )
    check_no_single_image_batch(data.train, cfg.batch_size)
    return data


def run_distiller(cfg: RunConfig, student: nn.Module, teacher: nn.Module | None, data: DataBundle,
                  device: torch.device, run: ResolvedRun | None = None, runtime: Runtime | None = None) -> Distiller:
    """The run's :class:`~kdzoo.distiller.Distiller` with its resolved method (``run``: ``cfg``'s; ``vanilla`` for
    plain training), the teacher checked against the data first; its steps run as ``runtime`` says (default: full
    precision), its student with SyncBatchNorm under ``--sync-bn``."""
    run = run or resolve_run(cfg)
    if teacher is not None:
        check_fits(teacher, data, "teacher")
    try:
        return Distiller(student, teacher, run.method, input_shape=(data.in_channels, *data.image_size),
                         gamma=cfg.gamma, alpha=cfg.alpha, beta=cfg.beta, t_student=cfg.t_student,
                         t_teacher=cfg.t_teacher, logit_std=cfg.logit_std, train_labels=data.train_labels,
                         method_options=cfg.method_options, runtime=runtime or Runtime(),
                         sync_bn=cfg.sync_bn).to(device)
    except StagesNotFound as exc:  # name the fix as the command line says it
        exc.fix = f"--{'teacher-' if exc.role == 'teacher' else ''}feature-layers a,b,c"
        raise


def pretrained_teacher(cfg: RunConfig, data, device: torch.device) -> nn.Module:
    """``--teacher-pretrained``: the library's own pretrained weights for ``--teacher-arch`` (timm/torchvision),
    with a classifier for the dataset's classes (a new one, untrained, when they differ from the pretraining's),
    built from a generator of its own, so the student of the run's seed is the same as in every other run."""
    with torch.random.fork_rng(devices=[]):
        teacher = create_model(cfg.teacher_arch, num_classes=data.num_classes, in_channels=data.in_channels,
                               pretrained=True, feature_layers=cfg.teacher_feature_layers, **cfg.teacher_options)
    return teacher.to(device).eval().requires_grad_(False)


def check_distributed(cfg: RunConfig, device: torch.device) -> None:
    """Settings that only make sense, or are not supported, with several processes."""
    if cfg.sync_bn and (not distributed.is_distributed() or device.type != "cuda"):
        raise ConfigError("--sync-bn synchronises BatchNorm across the processes of a torchrun job on CUDA GPUs; "
                          "this run is not one (PyTorch's SyncBatchNorm has no CPU implementation).")
    if cfg.optimizer == "dot" and distributed.is_distributed():
        raise ConfigError("--optimizer dot takes two backward passes per step, which DistributedDataParallel does not "
                          "support; use --optimizer sgd under torchrun.")
