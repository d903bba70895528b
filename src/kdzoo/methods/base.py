"""The method contract.

A method is an ``nn.Module`` that owns its trainable extra parts (connectors, embeddings, memory
banks) and declares what it needs. Given the student's and the teacher's :class:`Features` and the
batch, ``forward`` returns a dict of *unweighted* named loss terms; :class:`Objective` adds the
cross-entropy and the KD term and applies the weights

    L = gamma * CE(z_s, y) + alpha * KD(z_s, z_t) + beta * sum(method terms).

A method declares what it reads in one :class:`Reads` object (``reads``): the feature request of
each network (logits only, taps, pre-activation maps, head map, exits, batch statistics), and
whether it needs sample indices, a strong second view, the teacher's BatchNorms before ReLU or the
networks' classifiers. One function (:func:`kdzoo.distiller.run_networks`) runs the networks for it,
in the engine and in :class:`kdzoo.Distiller` alike, and :func:`check_reads` refuses a pair whose
networks cannot give what the method reads, before training.

Optional hooks: an init stage (RepDistiller's AB/FT/FSP "pre-training"; see :class:`InitStage`),
``on_epoch_start`` (curricula, warm-ups), ``epoch_stats`` (values logged per epoch, e.g. a learned
temperature). Methods whose ``reads.index`` is set receive the training labels (``train_labels``,
int64, one per training sample) at construction, and see ``batch.index`` (positions in the training
split) in ``forward``. Methods that declare ``logit_std_defaults`` accept ``--logit-std`` (logit
standardization, :mod:`kdzoo.losses.logit_std`): built with ``logit_std=True``, the method standardises the
logits it distils (:meth:`Method.distill_logits`).

Adding a method = one file with a subclass decorated by ``@register_method(name)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import astuple, dataclass, field, fields
from typing import Any, ClassVar

from torch import Tensor, nn

from ..batch import Batch
from ..errors import ConfigError
from ..losses.logit_std import standardize_logits
from ..models.features import LOGITS, TAPS, FeatureRequest, Features, model_name, support_of


def linear_warmup(epoch: int, warmup_epochs: int) -> float:
    """mdistiller's loss warm-up: ``min(epoch / warmup_epochs, 1)`` for the 1-based ``epoch`` (1 without warm-up)."""
    return min(epoch / warmup_epochs, 1.0) if warmup_epochs else 1.0


@dataclass(frozen=True)
class LossWeights:
    """Weights of ``gamma*CE + alpha*KD + beta*method`` (never None)."""

    gamma: float = 1.0
    alpha: float = 0.0
    beta: float = 1.0

    def describe(self) -> str:
        """``gamma 1, alpha 0.9, beta 0``: how the run header, ``kdzoo list methods`` and the method pages write
        them."""
        return f"gamma {self.gamma:g}, alpha {self.alpha:g}, beta {self.beta:g}"


@dataclass(frozen=True)
class LogitStdDefaults:
    """A method's reference settings under ``--logit-std`` (Sun et al., CVPR 2024): its loss weights
    and the method options that change (e.g. the base temperature)."""

    weights: LossWeights
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reads:
    """Everything a method reads, in one declaration.

    ``student`` / ``teacher``: the :class:`FeatureRequest` of each network (``teacher=None``: self-distillation,
    no teacher); ``index``: dataset indices of the batch (CRD); ``strong_view``: a strongly augmented second view,
    both networks run on each view and the outputs arrive concatenated ``[weak; strong]`` (MLKD);
    ``bn_before_relu``: the teacher's BatchNorm before each stage's last ReLU (OFD's margins);
    ``classifier``: both networks' final Linear (SDD, SimKD); ``teacher_batch_stats``: the teacher runs in train
    mode (BatchNorm normalises with the batch's statistics) while its running statistics stay untouched (OFD's
    teacher, as in its reference code).
    """

    student: FeatureRequest = LOGITS
    teacher: FeatureRequest | None = LOGITS
    index: bool = False
    strong_view: bool = False
    bn_before_relu: bool = False
    classifier: bool = False
    teacher_batch_stats: bool = False

    @property
    def needs_teacher(self) -> bool:
        return self.teacher is not None

    def union(self, other: Reads) -> Reads:
        """What either reads (a method's main step and its init stage)."""
        def either(a: FeatureRequest | None, b: FeatureRequest | None) -> FeatureRequest | None:
            if a is None or b is None:
                return a or b
            return FeatureRequest(*(x or y for x, y in zip(astuple(a), astuple(b), strict=True)))
        flags = {f.name: getattr(self, f.name) or getattr(other, f.name) for f in fields(self)
                 if f.name not in ("student", "teacher")}
        return Reads(student=either(self.student, other.student), teacher=either(self.teacher, other.teacher), **flags)

    def describe(self) -> str:
        """What is read, in words (``kdzoo list methods`` and the support table)."""
        parts = [_describe_request(self.student, "student")]
        if self.teacher is not None:
            parts.append(_describe_request(self.teacher, "teacher"))
        extras = [text for flag, text in ((self.index, "sample indices"), (self.strong_view, "a strong second view"),
                                          (self.bn_before_relu, "teacher BN before ReLU"),
                                          (self.classifier, "classifiers"),
                                          (self.teacher_batch_stats, "teacher in batch statistics")) if flag]
        return "; ".join(parts + extras)


def _describe_request(request: FeatureRequest, network: str) -> str:
    words = ["logits"]
    if request.taps:
        words.append("stage maps + pooled vector + head map")
    if request.preact:
        words.append("pre-activation maps")
    if request.exits:
        words.append("exits")
    return f"{network}: {', '.join(words)}"


#: The common requests and declarations.
PREACT_TAPS = FeatureRequest(taps=True, preact=True)
EXITS = FeatureRequest(exits=True)
LOGIT_READS = Reads()
FEATURE_READS = Reads(student=TAPS, teacher=TAPS)


def check_reads(method: str, reads: Reads, student: nn.Module, teacher: nn.Module | None) -> None:
    """A ConfigError, before anything is built, when a network cannot give what ``method`` reads."""
    for network, model, request in (("student", student, reads.student), ("teacher", teacher, reads.teacher)):
        wants_layout = request is not None and (request.needs_taps or reads.classifier or (
            network == "teacher" and reads.bn_before_relu))
        if model is None or not wants_layout:  # the logits need nothing of the network's layout
            continue
        support = support_of(model)
        gaps = support.missing(request)
        if network == "teacher" and reads.bn_before_relu and not support.bn_before_relu:
            gaps.append("a BatchNorm directly before each stage's last ReLU")
        if reads.classifier and not support.classifier:
            gaps.append("a final nn.Linear classifier")
        if gaps:
            why = f" ({support.note})" if support.note else ""
            fix = ("Build it with kdzoo.models.MultiExitNet.build(student, input_shape) (kdzoo's engine and "
                   "Distiller add the exits themselves)." if request.exits and not support.exits else
                   f"Pick a method that reads only logits, stage maps or the pooled vector (`kdzoo list methods`), "
                   f"or a zoo/torchvision ResNet {network}.")
            raise ConfigError(f"Method {method!r} reads {' and '.join(gaps)} of the {network}, and "
                              f"{model_name(model)} has none{why}. {fix}")


def check_head_map(method: str, network: str, features: Features, head_map: Tensor | None = None) -> None:
    """A ConfigError unless ``head_map`` (default ``features.head_map``) is a map whose global average is what the
    network's classifier reads (SDD and SimKD apply the classifier to pooled cells or projections of that map)."""
    head_map = features.head_map if head_map is None else head_map
    width = features.pooled.shape[1]
    if head_map is None or head_map.dim() != 4 or head_map.shape[1] != width:
        shape = tuple(head_map.shape[1:]) if head_map is not None else None
        raise ConfigError(f"{method} applies the {network}'s classifier to pooled cells of its head map, but the "
                          f"{network}'s head map {shape} is not what its classifier reads ({width} features; layers "
                          f"sit between the pooling and the classifier). Use a network whose last map is pooled "
                          f"straight into its classifier (the zoo, ResNets, ConvNeXt) or another method.")


@dataclass
class InitStage:
    """An init stage run before the main epochs (RepDistiller's ``helper/pretrain.py``).

    The engine trains the parameters of ``modules`` for ``epochs`` epochs with a fresh SGD
    (momentum 0.9, weight decay 5e-4) at the constant learning rate ``lr`` (None: the run's lr) on
    ``method.init_loss(student_feats, teacher_feats, batch)``, with the networks run for ``reads``. The
    student is put in eval mode and ``modules`` in train mode; with ``needs_student=False`` the student is
    not run at all and ``init_loss`` receives ``None`` for it.
    """

    modules: list[nn.Module]
    epochs: int
    lr: float | None = None
    needs_student: bool = True
    reads: Reads = FEATURE_READS
    parameters: list[nn.Parameter] = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = [p for m in self.modules for p in m.parameters()]


def built_with_reads(init: Callable[..., None]) -> Callable[..., None]:
    """A method class's constructor that also takes ``logit_std`` and, once the instance is built, sets its
    ``logit_std`` and its ``reads`` for the options given (defaults filled in). Its signature stays ``init``'s, so
    ``logit_std`` is no user option; a subclass's constructor calling this one leaves the setting to its own."""
    signature = inspect.signature(init)

    @functools.wraps(init)
    def __init__(self: Method, *args: Any, logit_std: bool = False, **options: Any) -> None:
        init(self, *args, **options)
        if type(self).__init__ is not __init__:  # called by a subclass's constructor: it sets them
            return
        bound = signature.bind(self, *args, **options)
        bound.apply_defaults()
        given = {}
        for name, value in list(bound.arguments.items())[3:]:  # after self, student, teacher
            kind = signature.parameters[name].kind
            given.update(value if kind is inspect.Parameter.VAR_KEYWORD else {name: value})
        self.reads = type(self).reads_for(given)
        self.logit_std = logit_std

    return __init__


class Method(nn.Module):
    """Base class of every distillation method.

    Class attributes declare the method for the engine and for ``kdzoo list methods``:
    ``paper`` (citation), ``uses`` (which features, in words), ``reads`` (:class:`Reads`: what the main step
    reads with the default options; :meth:`reads_for` resolves it for given options), ``init_reads`` (what an
    init stage reads), ``default_weights`` (the reference values); ``method_name`` comes from
    :func:`~kdzoo.methods.register_method`.

    Subclasses receive the feature shapes of a real forward pass (``student``/``teacher``
    :class:`Features` of a 2-sample batch) to size their extra modules, plus their options. Every subclass's
    constructor also takes ``logit_std`` (default False) without declaring it, and the instance holds what it was
    built with: ``logit_std``, and ``reads`` resolved once from its options (:meth:`reads_for`). A method built
    directly is thus the same as one from :func:`~kdzoo.methods.create_method` with the same arguments.
    """

    paper: ClassVar[str] = ""
    uses: ClassVar[str] = "logits"
    #: False for ``vanilla`` alone: the baseline, not a distillation method (left out of ``list_methods()``).
    distills: ClassVar[bool] = True
    #: What the main step reads with the default options. ``reads.student.exits``: the student gets an exit after
    #: every stage (:class:`~kdzoo.models.MultiExitNet`, BYOT); ``reads.teacher is None``: self-distillation.
    reads: Reads = LOGIT_READS
    #: What the init stage reads (AB, FT, FSP); None without one.
    init_reads: ClassVar[Reads | None] = None
    default_weights: ClassVar[LossWeights] = LossWeights()
    #: The batch size the default beta was tuned for, when the loss scales with the batch size.
    reference_batch_size: ClassVar[int | None] = None
    #: False when the main stage adds no method term (RepDistiller's AB and FSP), so beta is moot.
    has_main_term: bool = True
    #: Reference settings with ``--logit-std``; None: the method has no logit loss to standardise.
    logit_std_defaults: ClassVar[LogitStdDefaults | None] = None
    #: True when built with ``logit_std=True`` (the run uses ``--logit-std``).
    logit_std: bool = False

    def __init__(self, student: Features, teacher: Features, **options: Any):
        super().__init__()

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        cls.__init__ = built_with_reads(cls.__dict__.get("__init__", cls.__init__))

    @classmethod
    def reads_for(cls, options: dict[str, Any]) -> Reads:
        """What the main step reads with ``options`` (all of them, defaults filled in): ``reads``, unless the method
        says how an option changes it (AB's and FSP's ``main_loss``, OFD's ``variant``, ReviewKD's
        ``student_preact``)."""
        return cls.reads

    @classmethod
    def needs_for(cls, options: dict[str, Any]) -> Reads:
        """What the networks must give for the main step and the init stage: what they are wrapped for, checked
        against and sized from."""
        reads = cls.reads_for(options)
        return reads if cls.init_reads is None else reads.union(cls.init_reads)

    def forward(self, student: Features, teacher: Features | None, batch: Batch) -> dict[str, Tensor]:
        """Unweighted loss terms of the method (empty when the method has no term of its own)."""
        return {}

    def reference_weights(self) -> LossWeights:
        """The reference weights of the method as configured (with ``--logit-std`` they differ)."""
        return self.logit_std_defaults.weights if self.logit_std else self.default_weights

    def distill_logits(self, student: Features, teacher: Features) -> tuple[Tensor, Tensor]:
        """The student's and the teacher's logits as the distillation terms see them: z-scored per
        sample with ``--logit-std``, unchanged otherwise (the cross-entropy always uses the raw logits)."""
        if self.logit_std:
            return standardize_logits(student.logits), standardize_logits(teacher.logits)
        return student.logits, teacher.logits

    def student_head(self) -> nn.Module | None:
        """A head the student is deployed with (SimKD's projector + reused teacher classifier), or None.

        The engine wraps the student in :class:`~kdzoo.models.HeadedStudent` with it, so the head is
        trained as part of the student, used for evaluation and saved in its checkpoints."""
        return None

    def on_epoch_start(self, epoch: int, total_epochs: int) -> None:
        """Hook called before each epoch (1-based), e.g. for curricula or warm-ups."""

    def epoch_stats(self) -> dict[str, float]:
        """Values to log at the end of each epoch (``stat_<name>`` columns of ``metrics.csv``)."""
        return {}

    def caveats(self, batch_size: int, beta_given: bool) -> list[str]:
        """Warnings about settings that silently change what the method does (printed at start)."""
        notes = []
        if self.reference_batch_size and batch_size != self.reference_batch_size:
            notes.append(f"{self.method_name}'s loss scales with the batch size and its default beta was tuned for "
                         f"batch {self.reference_batch_size}; with batch {batch_size} consider rescaling --beta.")
        if beta_given and not self.has_main_term:
            notes.append(f"{self.method_name} adds no loss in the main stage (as in RepDistiller), so --beta has no "
                         f"effect; pass --method-opt main_loss=true to keep the loss after the init stage.")
        return notes

    def init_stage(self, student: nn.Module, lr: float) -> InitStage | None:
        """The init stage to run before the main epochs, or None (most methods). ``lr`` is the run's."""
        return None

    def init_loss(self, student: Features | None, teacher: Features, batch: Batch) -> Tensor:
        """The loss minimised by the init stage (only called when :meth:`init_stage` returns one)."""
        raise TypeError(f"{type(self).__name__} has no init stage")
