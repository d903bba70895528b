"""Method options are checked in one place, against each constructor's annotations and ranges."""

from typing import Annotated

import pytest

from conftest import built
from kdzoo.declared import KINDS, Range, declared
from kdzoo.errors import ConfigError
from kdzoo.methods import list_methods, method_class, method_options
from kdzoo.methods.options import check_method_options, declared_options


@pytest.mark.parametrize("name", list_methods())
def test_every_option_declares_a_checkable_type_and_its_default_fits(name):
    declarations = declared_options(method_class(name))
    for option, default in method_options(name).items():
        spec, _ = declarations[option]
        assert spec.kind in KINDS or (spec.kind in (list, tuple) and spec.item in KINDS), (option, spec)
        assert spec.accepts(default), (option, default)


@pytest.mark.parametrize("annotation,good,bad", [
    (float, [0, 2, 0.5, -1e9], [True, "1", float("nan"), float("inf"), [1.0], None]),
    (int, [0, -3, 10**6], [1.5, 2.0, True, "3", None]),
    (bool, [True, False], [0, 1, "true", None]),
    (str, ["kd"], [1, None, ["kd"]]),
    (Annotated[float, Range(gt=0)], [1e-9, 4], [0, -1, float("inf")]),
    (Annotated[float, Range(ge=0, lt=1)], [0, 0.99], [1, -0.01]),
    (Annotated[int, Range(ge=0, le=4)], [0, 4], [-1, 5, 4.0]),
    (Annotated[list[int], Range(ge=1)] | None, [None, [1, 2], [], (1, 4)], [[0, 1], [1.5], 1, "1,2"]),
    (tuple[float, ...], [[1, 2.5], (3.0,)], [[1, "x"], 2.0]),
])
def test_declarations_accept_and_refuse(annotation, good, bad):
    spec = declared(annotation)
    assert all(spec.accepts(v) for v in good), [v for v in good if not spec.accepts(v)]
    assert not any(spec.accepts(v) for v in bad), [v for v in bad if spec.accepts(v)]


def test_accepted_values_arrive_as_declared_and_refusals_name_option_value_and_reference():
    dkd = method_class("dkd")
    assert (check_method_options(dkd, "dkd", {"temperature": 2, "warmup_epochs": 0})
            == {"temperature": 2.0, "warmup_epochs": 0})
    assert isinstance(check_method_options(dkd, "dkd", {"temperature": 2})["temperature"], float)
    with pytest.raises(ConfigError, match=r"dkd's option dkd_beta must be a finite number >= 0 \(reference: 8 on "
                                          r"CIFAR-100, 2-8 per pair\), got 'high'\. Set it with --method-opt"):
        check_method_options(dkd, "dkd", {"dkd_beta": "high"})
    with pytest.raises(ConfigError, match=r"sdd's option scales must be a list of whole numbers >= 1, or null"):
        check_method_options(method_class("sdd"), "sdd", {"scales": [0, 1]})


@pytest.mark.parametrize("name,options,message", [
    # AT, PEFD, MGD, ReviewKD (were in test_methods_feature.py)
    ("at", {"p": 0}, r"at's option p must be a finite number > 0 .*got 0\."),
    ("at", {"p": "two"}, r"at's option p must be a finite number > 0 .*got 'two'\."),
    ("pefd", {"num_projectors": 0}, "num_projectors"),
    ("pefd", {"num_projectors": 2.5}, "num_projectors"),
    ("mgd", {"alpha_mgd": 0.0}, "alpha_mgd"),
    ("mgd", {"lambda_mgd": 1.0}, "lambda_mgd"),
    ("mgd", {"lambda_mgd": -0.1}, "lambda_mgd"),
    ("reviewkd", {"warmup_epochs": -1}, "warmup_epochs"),
    ("reviewkd", {"student_preact": "yes"}, "student_preact"),
    # DKD, NKD, DIST (test_methods_logit.py)
    ("dkd", {"temperature": 0}, "temperature"),
    ("dkd", {"dkd_beta": -1}, "dkd_beta"),
    ("dkd", {"warmup_epochs": 2.5}, "warmup_epochs"),
    ("dkd", {"dkd_alpha": 0, "dkd_beta": 0}, "no loss term"),
    ("nkd", {"gamma": "high"}, "gamma"),
    ("nkd", {"temperature": -3}, "temperature"),
    ("dist", {"tau": 0}, "tau"),
    ("dist", {"beta_inter": 0, "gamma_intra": 0}, "no loss term"),
    ("dist", {"beta": 2}, "beta_inter"),  # unknown option: the message lists the known ones
    # CC, RKD (test_methods_relational.py)
    ("cc", {"feat_dim": 0}, r"cc's option feat_dim must be a whole number >= 1 .*got 0\."),
    ("cc", {"feat_dim": 1.5}, r"cc's option feat_dim must be a whole number >= 1 .*got 1\.5\."),
    ("rkd", {"w_d": -1}, r"rkd's option w_d must be a finite number >= 0 .*got -1\."),
    ("rkd", {"w_d": 0, "w_a": 0}, "RKD with w_d=0 and w_a=0 has no loss term"),
])
def test_bad_options_are_refused(name, options, message):
    with pytest.raises(ConfigError, match=message):
        built(name, "resnet8", "resnet14", **options)
