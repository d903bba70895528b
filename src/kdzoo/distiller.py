"""Every method in any training loop: :class:`Distiller`, and :func:`run_networks`, the one function that runs
a student and a teacher for what a method reads (used by the Distiller, kdzoo's engine, tests and benchmarks).

>>> distiller = Distiller(student, teacher, method="dkd", input_shape=(3, 32, 32))
>>> optimizer = torch.optim.SGD(distiller.parameters(), lr=0.05, momentum=0.9)
>>> for epoch in range(1, epochs + 1):
...     distiller.on_epoch_start(epoch, epochs)
...     for images, labels in loader:
...         losses = distiller(images, labels)          # {"ce": ..., "dkd": ...}, already weighted
...         optimizer.zero_grad(); sum(losses.values()).backward(); optimizer.step()
>>> deployed = distiller.student                    # what to evaluate and save
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._pytree import tree_map

from .batch import Batch
from .config import resolve_temperatures
from .data.sampling import derive_seed
from .errors import ConfigError
from .methods import InitStage, LossWeights, Method, Objective, Reads, create_method, method_needs
from .models import (
    FeatureRequest,
    Features,
    HeadedStudent,
    MultiExitNet,
    StagesNotFound,
    TappedModel,
    run_model,
    speaks_taps,
    unwrap,
    wrap_model,
)
from .models.fits import check_classes, predicted_classes


def trainable_parameters(module: nn.Module) -> int:
    """How many parameters of ``module`` train (``requires_grad``), each counted once."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def resolve_weights(method: Method, gamma: float | None, alpha: float | None, beta: float | None) -> LossWeights:
    """The method's reference weights (as configured), overridden by any of ``gamma``/``alpha``/``beta`` given."""
    given = {"gamma": gamma, "alpha": alpha, "beta": beta}
    defaults = method.reference_weights()
    return LossWeights(**{k: float(getattr(defaults, k) if v is None else v) for k, v in given.items()})


@contextlib.contextmanager
def own_rng(*parts: int | str):
    """Run the block on random numbers of its own: the global generators (the CPU's and, once CUDA is in use, the
    current GPU's) are put back afterwards as if the block had drawn nothing, and within it they are seeded from the
    global generator's initial seed (the run's ``--seed``: ``torch.manual_seed``) and ``parts``.

    The Distiller builds the method this way (its connectors, embeddings, heads, BYOT's exits, CRD's memory banks),
    so for one seed every method leaves the same global RNG behind as plain training does, and the student, built
    before, has the same initial weights: runs of one seed then differ by their method alone (same weights, same
    batches, same dropout masks), which `kdzoo report`'s paired gains rely on. The method's own initial values are
    reproducible from the seed and independent of the numbers training draws afterwards."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        seed = derive_seed(torch.initial_seed(), *parts)
        torch.default_generator.manual_seed(seed)
        if devices:
            torch.cuda.manual_seed(seed)
        yield


@contextlib.contextmanager
def batch_statistics(model: nn.Module):
    """Run ``model`` in train mode (BatchNorm normalises with the batch's statistics) and put its running
    statistics back afterwards, so its saved weights and its evaluation are unchanged."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [[b.clone() for b in (m.running_mean, m.running_var, m.num_batches_tracked)] for m in norms]
    was_training = model.training
    model.train()
    try:
        yield
    finally:
        model.train(was_training)
        with torch.no_grad():
            for m, (mean, var, count) in zip(norms, saved, strict=True):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)


@dataclass(frozen=True)
class Runtime:
    """How the networks run in a step: ``amp``, the autocast dtype (None: full precision); ``channels_last``, the
    images go in as channels-last (NHWC) tensors; ``teacher_channels_last`` the same for the teacher alone (None: as
    the student), so a channels-last teacher can pair with a contiguous student."""

    amp: torch.dtype | None = None
    channels_last: bool = False
    teacher_channels_last: bool | None = None


def run_networks(student: nn.Module | None, teacher: nn.Module | None, views: list[Tensor], reads: Reads,
                 runtime: Runtime = Runtime()) -> tuple[Features | None, Features | None]:
    """The student's outputs (with gradients) and the frozen teacher's (without), for what ``reads`` asks.

    ``views``: the batch's images, plus its strong view for methods that read one (MLKD); each network runs
    once per view, so BatchNorm sees one view at a time, and the outputs are concatenated ``[weak; strong]``.
    ``runtime``: precision and layouts (:class:`Runtime`). A ``student`` of None is not run (FT's init stage).
    The teacher runs once per view for all of the method's needs (logits and features together), under
    ``torch.inference_mode`` (no autograd bookkeeping); its outputs are copied out of it, so losses may save them."""
    students, teachers = [], []
    amp, channels_last = runtime.amp, runtime.channels_last
    teacher_channels_last = channels_last if runtime.teacher_channels_last is None else runtime.teacher_channels_last
    for x in views:
        precision = torch.autocast(x.device.type, dtype=amp) if amp is not None else contextlib.nullcontext()
        with precision:
            if student is not None:
                students.append(run_model(student, in_layout(x, channels_last), reads.student))
            if teacher is not None and reads.teacher is not None:
                mode = batch_statistics(teacher) if reads.teacher_batch_stats else contextlib.nullcontext()
                with torch.inference_mode(), mode:
                    out = run_model(teacher, in_layout(x, teacher_channels_last), reads.teacher)
                teachers.append(tree_map(Tensor.clone, out))  # inference tensors cannot be saved for backward
    return (Features.cat(students) if students else None), (Features.cat(teachers) if teachers else None)


def in_layout(x: Tensor, channels_last: bool) -> Tensor:
    """``x`` as channels-last (NHWC) when asked and it is an image batch; else unchanged."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _prepared(model: nn.Module, request: FeatureRequest | None, layers: list[str] | None,
              input_shape: tuple[int, ...]) -> nn.Module:
    """``model`` wrapped with hook taps when the method reads more than its logits (or layers are named); a
    hook-tapped network learns the input size its stage search will run at."""
    if layers is not None or (request is not None and request.needs_taps and not speaks_taps(model)):
        model = wrap_model(model, layers, input_shape=input_shape)
    if isinstance(model, TappedModel) and model.input_shape is None:
        model.input_shape = tuple(input_shape)
    return model


def check_same_classes(student: nn.Module, teacher: nn.Module, input_shape: tuple[int, ...]) -> None:
    """Refuse, before anything is built, a teacher that predicts other classes than the student (or a network
    that cannot run on ``input_shape`` images): the command line's rule, :func:`kdzoo.models.fits.check_classes`."""
    classes, teacher_classes = (predicted_classes(net, input_shape, what, "input_shape images")
                                for net, what in ((student, "student"), (teacher, "teacher")))
    check_classes("teacher", teacher_classes, "the student", classes,
                  f"Distil from a teacher of the student's {classes} classes, or build the student with "
                  f"num_classes={teacher_classes}.")


def merged_options(method_options: Mapping[str, Any], keywords: dict[str, Any]) -> dict[str, Any]:
    """The method's options given to the Distiller as one mapping and as keywords; an option given both ways is
    refused."""
    twice = sorted(set(method_options) & set(keywords))
    if twice:
        raise ConfigError(f"Method option {', '.join(twice)} is given twice, in method_options= and as a keyword: "
                          f"give it once, in method_options={{...}}.")
    return {**method_options, **keywords}


class Distiller(nn.Module):
    """A student, a frozen teacher and a distillation method as one ``nn.Module``: ``distiller(images, labels)``
    returns the weighted loss terms (``ce``, ``kd``, the method's own) to sum and backpropagate in any loop.

    - ``student``, ``teacher``: any ``nn.Module`` (kdzoo, timm, torchvision, your own). Methods that read
      features get hook taps on the modules named by ``student_layers`` / ``teacher_layers``, or found
      automatically (timm's ``feature_info``, torchvision's stages; see :func:`kdzoo.models.wrap_model`).
    - ``method``: any name of ``kdzoo list methods``; ``method_options`` are its options (``--method-opt``), as one
      mapping. Options may be given as keywords too (``Distiller(s, t, "dkd", temperature=2)``), except those named
      like an argument here: ``gamma``/``alpha``/``beta`` are always the loss weights, so NKD's ``gamma``, USKD's
      ``alpha``/``beta`` and BYOT's ``alpha`` go in ``method_options={"gamma": 3.5}``.
    - ``input_shape``: (C, H, W) of the images, to size the method's connectors.
    - ``gamma``/``alpha``/``beta``: weights of CE, the KD term and the method's terms (default: the method's);
      ``t_student``/``t_teacher``: KD temperatures (default 4; 2 with ``logit_std``).
    - ``train_labels``: one label per training sample, for methods that read sample indices (CRD); then call
      ``distiller(images, labels, index=idx)`` with each sample's position in the training set.
    - ``strong_images``: MLKD's strongly augmented second view of the same images.
    - ``runtime``: how the networks run in a step (:class:`Runtime`: autocast dtype, channels-last inputs);
      ``sync_bn``: the student's BatchNorms become ``nn.SyncBatchNorm`` (a torchrun job on CUDA GPUs).

    ``parameters()`` and ``state_dict()`` hold the trainable parts only: the student (``distiller.student``, the
    network to deploy: with SimKD's head, or BYOT's exits, when the method adds them) and the method's modules
    and state (connectors, CRD's memory banks, CTKD's temperature). The teacher is frozen, in eval mode, moved
    with ``.to()`` but never trained or saved. Call ``on_epoch_start(epoch, epochs)`` (1-based) before each
    epoch for warm-ups and curricula (DKD, CTKD, ReviewKD).
    """

    def __init__(self, student: nn.Module, teacher: nn.Module | None = None, method: str = "kd", *,
                 method_options: Mapping[str, Any] | None = None, input_shape: tuple[int, ...] = (3, 32, 32),
                 gamma: float | None = None, alpha: float | None = None, beta: float | None = None,
                 t_student: float | None = None, t_teacher: float | None = None, logit_std: bool = False,
                 train_labels: Tensor | None = None, student_layers: list[str] | None = None,
                 teacher_layers: list[str] | None = None, runtime: Runtime = Runtime(), sync_bn: bool = False,
                 **options: Any):
        super().__init__()
        options = merged_options(method_options or {}, options)
        if teacher is not None:
            check_same_classes(student, teacher, input_shape)
        self.student_params = trainable_parameters(student)  # the network as given, before exits or a head
        needs = method_needs(method, options)
        student = _prepared(student, needs.student, student_layers, input_shape)
        if teacher is not None:
            teacher = _prepared(teacher, needs.teacher, teacher_layers, input_shape).eval().requires_grad_(False)
        try:
            with own_rng("method"):  # BYOT's exits, connectors, heads, CRD's banks: the global RNG is left as it was
                if needs.student.exits:  # BYOT, exit_kd: an exit after every stage, sized before the method sees it
                    student = MultiExitNet.build(student, input_shape)
                method_module = create_method(method, student, teacher, input_shape=input_shape,
                                              train_labels=train_labels, logit_std=logit_std, **options)
        except StagesNotFound as exc:  # name the fix as this call says it
            exc.role = "teacher" if teacher is not None and exc.model is unwrap(teacher) else "student"
            exc.fix = f"Distiller(..., {exc.role}_layers=['a', 'b', 'c'])"
            raise
        self.method_name = method
        head = method_module.student_head()
        if head is not None:  # SimKD: the student is deployed with the method's head
            student = HeadedStudent(student, head)
        self.student = nn.SyncBatchNorm.convert_sync_batchnorm(student) if sync_bn else student
        self.objective = Objective(method_module, resolve_weights(method_module, gamma, alpha, beta),
                                   *resolve_temperatures(t_student, t_teacher, logit_std))
        object.__setattr__(self, "teacher", teacher)  # frozen: not a submodule, so not in parameters()/state_dict()
        self.runtime = runtime
        self.set_runners(self.student, self.objective)

    @property
    def method(self) -> Method:
        return self.objective.method

    @property
    def reads(self) -> Reads:
        """What each step reads (the method's, resolved from its options when it was built)."""
        return self.objective.method.reads

    def set_runners(self, student: nn.Module, objective: nn.Module) -> None:
        """The modules a step calls for the student and the objective: themselves (as built), or wrappers of them,
        set once before the first step (kdzoo's engine passes DistributedDataParallel ones under torchrun: they
        wrap the networks as laid out and compiled, and the init stage's trainable modules). Not submodules: the
        parameters stay the student's and the objective's."""
        object.__setattr__(self, "runners", (student, objective))

    def extra_parameters(self) -> int:
        """Trainable parameters the method adds beyond the student network it was given (as mdistiller's
        ``get_extra_parameters`` counts them): its connectors, embeddings, regressors and learned temperature, and
        what the deployed student gains (SimKD's projector, BYOT's exits); 0 for KD. The frozen teacher, buffers
        (CRD's memory banks) and frozen copies (SimKD's reused classifier) are not counted."""
        return trainable_parameters(self) - self.student_params

    def _apply(self, fn, recurse: bool = True):
        if self.teacher is not None:
            self.teacher._apply(fn, recurse)
        return super()._apply(fn, recurse)

    def forward(self, images: Tensor, labels: Tensor, index: Tensor | None = None,
                strong_images: Tensor | None = None) -> dict[str, Tensor]:
        return self.step(self.batch(images, labels, index, strong_images))[0]

    def step(self, batch: Batch, teacher_out: Features | None = None) -> tuple[dict[str, Tensor], Features]:
        """The weighted loss terms of one training step on ``batch``, and the student's outputs (kdzoo's engine
        reads its accuracy from them); the networks run as ``runtime`` says, through the runners. ``teacher_out``:
        the teacher's outputs for ``batch`` when the caller already has them (kdzoo's teacher-output cache, from
        :meth:`teacher_outputs`); the teacher then does not run."""
        student, objective = self.runners
        teacher = self.teacher if teacher_out is None else None
        student_out, computed = run_networks(student, teacher, batch.views(), self.reads, self.runtime)
        return objective(student_out, computed if teacher_out is None else teacher_out, batch), student_out

    def teacher_outputs(self, batch: Batch) -> Features | None:
        """The frozen teacher's outputs for ``batch`` (every view), exactly as :meth:`step` computes them; None
        without a teacher."""
        return run_networks(None, self.teacher, batch.views(), self.reads, self.runtime)[1]

    def batch(self, images: Tensor, labels: Tensor, index: Tensor | None, strong_images: Tensor | None) -> Batch:
        """The batch the method sees; a clear error when the method reads something the call did not give."""
        reads = self.reads
        if reads.index and index is None:
            raise ConfigError(f"{self.method_name} keeps a memory-bank row per training sample: call "
                              f"distiller(images, labels, index=idx) with each sample's position in the training set "
                              f"(and build the Distiller with train_labels=...).")
        if reads.strong_view and strong_images is None:
            raise ConfigError(f"{self.method_name} reads a strongly augmented second view of the batch: call "
                              f"distiller(images, labels, strong_images=...).")
        if index is None:
            index = torch.arange(labels.shape[0], device=labels.device)
        return Batch(images, labels, index, strong_images)

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Before each (1-based) epoch: the method's warm-ups and curricula."""
        self.method.on_epoch_start(epoch, epochs)

    def init_stage(self, lr: float) -> InitStage | None:
        """The method's init stage (AB, FT, FSP: RepDistiller's connector pre-training), or None."""
        return self.method.init_stage(self.student, lr)

    def init_loss(self, stage: InitStage, images: Tensor, labels: Tensor, index: Tensor | None = None) -> Tensor:
        """The loss of one init-stage step on a batch (the networks run as ``runtime`` says; the init modules train
        outside any runner)."""
        runner = self.student if stage.needs_student else None
        student_out, teacher_out = run_networks(runner, self.teacher, [images], stage.reads, self.runtime)
        batch = self.batch(images, labels, index, None)
        return self.method.init_loss(student_out.float() if student_out is not None else None, teacher_out.float(),
                                     batch)
