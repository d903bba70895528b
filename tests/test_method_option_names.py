"""Every declared option of every method is set from the command line (``--method-opt NAME=VALUE``, through the
parser, the config and the engine's Distiller) and from the Python API (``Distiller(..., method_options=...)``), and
the built method holds the value: method options live apart from the loss weights, so NKD's ``gamma``, USKD's
``alpha``/``beta`` and BYOT's ``alpha`` are the method's, never the weights'."""

import json

import pytest
import torch

from kdzoo import Distiller
from kdzoo.commands import build_parser
from kdzoo.commands.run_options import run_overrides
from kdzoo.config import build_config
from kdzoo.declared import OneOf
from kdzoo.engine.build import run_data, run_distiller
from kdzoo.errors import ConfigError
from kdzoo.methods import list_methods, method_class, method_needs
from kdzoo.methods.options import declared_options
from kdzoo.methods.registry import SUPPLIED
from kdzoo.methods.simkd import VARIANTS as SIMKD_VARIANTS
from kdzoo.models import create_model

#: The tiny run every case builds: 50 synthetic images of 10 classes, a resnet8 student (a resnet20 teacher).
DATA = ["--dataset", "synthetic", "--dataset-opt", "num_train=50", "--dataset-opt", "num_test=20", "--device", "cpu"]
TRAIN_LABELS = torch.arange(50) % 10

#: Values the automatic choice (:func:`other_value`) would not fit the tiny pair with.
CHOSEN = {("crd", "nce_k"): 32, ("fitnet", "hint_layer"): 1, ("sdd", "scales"): [1, 4],
          ("mlkd", "temperatures"): [1.0, 2.0], ("simkd", "factor"): 4}

#: Options the method keeps under another name or in its modules: how to read each back.
HELD = {
    ("byot", "hint"): lambda m: "masked" if m.masked else "l2",
    ("cc", "feat_dim"): lambda m: m.embed_s.out_features,
    ("crd", "feat_dim"): lambda m: m.embed_s.linear.out_features,
    ("crd", "nce_k"): lambda m: m.sampler.k,
    ("crd", "nce_t"): lambda m: m.memory.temperature,
    ("crd", "nce_m"): lambda m: m.memory.momentum,
    ("crd", "mode"): lambda m: m.sampler.mode,
    ("crd", "replacement"): lambda m: m.sampler.replace_all,
    ("ctkd", "mode"): lambda m: "instance" if hasattr(m.temperature_module, "mlp") else "global",
    ("ctkd", "hidden"): lambda m: m.temperature_module.mlp[0].out_features,
    ("ft", "k"): lambda m: m.paraphraser.decoder[0].in_channels / m.paraphraser.encoder[0].in_channels,
    ("pefd", "num_projectors"): lambda m: len(m.projectors),
    ("reviewkd", "student_preact"): lambda m: m.reads.student.preact,
    ("simkd", "factor"): lambda m: (lambda p: p[6].out_channels // p[3].in_channels)(m.student_head().projector),
    ("simkd", "variant"): lambda m: next(name for name, source in SIMKD_VARIANTS.items() if source == m.source),
    ("vid", "init_pred_var"): lambda m: float(torch.nn.functional.softplus(m.pairs[0].log_scale[0].detach()) + m.eps),
}

#: Options that only bound what the method builds (CRD's memory-bank guard): accepted, kept nowhere.
GUARDS = {("crd", "max_memory_gb")}


def options_of(method: str) -> dict:
    """The method's declared options (those the engine supplies left out)."""
    return {k: o for k, o in declared_options(method_class(method)).items() if k not in SUPPLIED}


def other_value(method: str, name: str, option):
    """A valid value of the option other than its default: from :data:`CHOSEN`, else the other choice, the other
    truth value, or a number near the default inside the declared range."""
    if (method, name) in CHOSEN:
        return CHOSEN[method, name]
    spec, default = option.spec, option.default
    if isinstance(spec.range, OneOf):
        return next(v for v in spec.range.values if v != default)
    if spec.kind is bool:
        return not default
    base = 1 if default is None else default
    candidates = [base * 2, base / 2, base + 1] if spec.kind is float else [base + 1, base * 2, max(base - 1, 0)]
    return next(v for v in candidates if v != default and spec.accepts(spec.kind(v)))


def values_for(method: str) -> dict:
    return {name: other_value(method, name, option) for name, option in options_of(method).items()}


def held(module, method: str, name: str):
    """The value of option ``name`` the built method ``module`` holds."""
    read = HELD.get((method, name), lambda m: getattr(m, name))
    return read(module)


def assert_holds(distiller: Distiller, method: str, values: dict) -> None:
    for name, value in values.items():
        if (method, name) in GUARDS:
            continue
        got = held(distiller.method, method, name)
        expected = list(value) if isinstance(value, tuple) else value
        assert got == pytest.approx(expected), f"{method}'s option {name}: set {value!r}, the method holds {got!r}"


def pair(method: str):
    torch.manual_seed(0)
    teacher = create_model("resnet20", num_classes=10) if method_needs(method).needs_teacher else None
    return create_model("resnet8", num_classes=10), teacher


def cli_text(value) -> str:
    """How a value is typed after ``--method-opt NAME=`` (read back as YAML)."""
    return value if isinstance(value, str) else json.dumps(list(value) if isinstance(value, tuple) else value)


@pytest.mark.parametrize("method", list_methods())
def test_every_option_is_set_from_the_command_line(method):
    values = values_for(method)
    student, teacher = pair(method)
    flags = [f"--method-opt={name}={cli_text(value)}" for name, value in values.items()]
    args = build_parser().parse_args(["distill", "--student", "resnet8", "--method", method, *DATA, *flags,
                                      *(["--teacher", "teacher.pt"] if teacher is not None else [])])
    cfg = build_config(args.config, run_overrides(args))
    data = run_data(cfg, torch.device("cpu"))
    assert_holds(run_distiller(cfg, student, teacher, data, torch.device("cpu")), method, values)


@pytest.mark.parametrize("method", list_methods())
def test_every_option_is_set_from_the_api(method):
    values = values_for(method)
    student, teacher = pair(method)
    assert_holds(Distiller(student, teacher, method, method_options=values, train_labels=TRAIN_LABELS), method, values)


@pytest.mark.parametrize("method,name", [("nkd", "gamma"), ("uskd", "alpha"), ("uskd", "beta"), ("byot", "alpha")])
def test_an_option_named_like_a_loss_weight_is_the_methods_and_the_weight_stays_apart(method, name):
    student, teacher = pair(method)
    distiller = Distiller(student, teacher, method, method_options={name: 0.25}, **{name: 0.5})
    assert getattr(distiller.method, name) == 0.25
    assert getattr(distiller.objective.weights, name) == 0.5


def test_keywords_still_set_options_and_weights_as_before():
    student, teacher = pair("dkd")
    distiller = Distiller(student, teacher, "dkd", temperature=2.0, alpha=0.5)
    assert distiller.method.temperature == 2.0 and distiller.objective.weights.alpha == 0.5


def test_an_option_given_both_ways_is_refused():
    student, teacher = pair("dkd")
    with pytest.raises(ConfigError, match="temperature is given twice"):
        Distiller(student, teacher, "dkd", method_options={"temperature": 2.0}, temperature=3.0)
