"""The method registry: ``create_method(name, student, teacher, **options)`` and ``list_methods()``."""

from __future__ import annotations

import inspect
from typing import Any

from torch import Tensor, nn

from ..declared import declared_options
from ..errors import ConfigError, close_names
from ..models.features import feature_shapes
from ..registry import Registry
from .base import Method, Reads, check_reads
from .options import check_method_options

METHODS: Registry[type[Method]] = Registry(
    "method", several="To compare methods, run `kdzoo bench --grid FILE` with them in the grid's `methods:` list "
                      "(`kdzoo list grids` shows the packaged grids).")

#: Constructor arguments the engine supplies (not user options): the training labels (methods that read
#: sample indices) and the networks themselves, for methods that read or reuse their layers (BN statistics,
#: classifiers). A method must not register the networks as submodules.
SUPPLIED = {"train_labels", "student_model", "teacher_model"}


def register_method(name: str):
    """Class decorator: ``@register_method("kd")``."""

    def decorator(cls: type[Method]) -> type[Method]:
        METHODS.register(name)(cls)
        cls.method_name = name
        return cls

    return decorator


#: Option names that mean a KD temperature (matched case aside), besides the ones close to "temperature".
TEMPERATURE_NAMES = {"t", "temp", "tau", "kd_t", "t_student", "t_teacher"}


def unknown_option_hint(unknown: list[str], accepted: dict[str, Any]) -> str:
    """For options a method does not have: the close names it has (``temprature`` -> ``temperature``; ``T`` -> its
    own temperature), else, for a temperature, where the KD temperatures are set (run options, not the method's)."""
    temperatures = [option for option in unknown
                    if option.casefold() in TEMPERATURE_NAMES or close_names(option, ["temperature"], cutoff=0.6)]
    own = [name for name in accepted if "temperature" in name or name == "tau"]
    close = [c for option in unknown for c in close_names(option, accepted, n=1, cutoff=0.6)]
    close += [name for name in own if temperatures and name not in close]
    if close:
        return f" Did you mean {', '.join(close)}?"
    if temperatures:
        return (" The KD temperatures are run options, not a method's: --t-student T --t-teacher T (t_student: and "
                "t_teacher: in a config file; default 4).")
    return ""


def method_class(name: str) -> type[Method]:
    """The class registered as method ``name`` (an unknown name lists the known ones)."""
    return METHODS.get(name).factory


def method_options(name: str) -> dict[str, Any]:
    """The keyword options a method accepts, with their defaults."""
    return {k: option.default for k, option in declared_options(method_class(name).__init__, skip=SUPPLIED).items()}


def create_method(
    name: str,
    student: nn.Module,
    teacher: nn.Module | None,
    input_shape: tuple[int, ...] = (3, 32, 32),
    train_labels: Tensor | None = None,
    logit_std: bool = False,
    **options: Any,
) -> Method:
    """Build method ``name`` for a student/teacher pair.

    Extra modules are sized from one forward pass of a 2-sample batch of ``input_shape``. ``teacher``
    is None for self-distillation methods (``reads.teacher is None``). A network that cannot give what the
    method reads (:func:`~kdzoo.methods.base.check_reads`) is refused before anything is built.
    ``train_labels`` (one int64 label per training sample) is required by methods that read sample
    indices (e.g. CRD's memory bank and negative sampling); methods whose constructor takes
    ``student_model``/``teacher_model`` receive the networks. ``logit_std`` turns on logit
    standardization, with the method's reference options for it under the given ``options``.
    Unknown options raise a :class:`ConfigError` listing the accepted ones.
    """
    cls = method_class(name)
    if logit_std:
        if cls.logit_std_defaults is None:
            supported = ", ".join(sorted(n for n in list_methods() if method_class(n).logit_std_defaults is not None))
            raise ConfigError(f"--logit-std standardises the logits of logit-based losses; method {name!r} has none. "
                              f"Use it with one of: {supported}.")
        options = {**cls.logit_std_defaults.options, **options}
    accepted = method_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in accepted.items()) or "none"
        raise ConfigError(f"Method {name!r} has no option {', '.join(unknown)}. Its options: {listed}."
                          f"{unknown_option_hint(unknown, accepted)}")
    options = check_method_options(cls, name, options)
    full = {**accepted, **options}
    needs = cls.needs_for(full)
    if needs.index:
        if train_labels is None:
            raise ConfigError(f"Method {name!r} needs the training labels (train_labels=...) to build its sampler.")
        options["train_labels"] = train_labels
    wanted = inspect.signature(cls.__init__).parameters
    for key, model in (("student_model", student), ("teacher_model", teacher)):
        if key in wanted:
            options[key] = model
    if teacher is None and needs.needs_teacher:
        raise ConfigError(f"Method {name!r} needs a teacher.")
    if teacher is not None and not needs.needs_teacher:
        raise ConfigError(f"Method {name!r} is self-distillation and uses no teacher: build it with teacher=None.")
    check_reads(name, needs, student, teacher)
    s = feature_shapes(student, input_shape, needs.student)
    t = feature_shapes(teacher, input_shape, needs.teacher) if teacher is not None else None
    method = cls(s, t, logit_std=logit_std, **options)
    param = next(student.parameters(), None)
    return method.to(param.device) if param is not None else method


def method_needs(name: str, options: dict[str, Any] | None = None) -> Reads:
    """What method ``name`` with ``options`` (the defaults for those not given) needs of the networks, for its main
    step and its init stage: what they are wrapped for, checked against and sized from."""
    return method_class(name).needs_for({**method_options(name), **(options or {})})


def list_methods() -> list[str]:
    """The distillation methods' names, sorted (not ``vanilla``, the student trained alone, which
    ``kdzoo train`` runs and every method is compared with)."""
    return sorted(name for name in METHODS.names() if METHODS.get(name).factory.distills)
