"""Contracts every distillation method keeps, each one parametrised test over a table of cases (method, options, the
terms it gives, the pair) drawn from all the families; the families' own files pin their losses and modules.

- two optimisation steps through the :class:`kdzoo.Distiller` give the expected finite terms and move the student;
- the loss (and an init stage's loss) is finite on the 2-sample batch a method is sized on and on a short last batch
  of 3, with the networks run as the engine runs them."""

import pytest
import torch

from conftest import batch_of, images, models, two_steps
from kdzoo import Distiller
from kdzoo.distiller import run_networks
from kdzoo.methods import Method, create_method

#: CRD on a 50-sample dataset with a small negative bank.
CRD = {"train_labels": torch.arange(50) % 10, "nce_k": 32}


def case(name: str, options: dict, terms: set[str] | str, pair: tuple[str, str] = ("resnet14", "resnet8")):
    """One case: ``name`` with ``options`` gives ``terms`` on ``pair`` = (teacher, student)."""
    shown = ",".join(f"{k}={v}" for k, v in options.items() if k != "train_labels")
    return pytest.param(name, options, terms, pair, id="-".join(filter(None, [name, shown, "->".join(pair)])))


# (teacher, student) pairs: same family; other families (feature maps of other sizes and channel counts)
RESNETS, OTHERS = ("resnet14", "resnet8"), {"feature": ("vgg8", "MobileNetV2"), "staged": ("wrn_16_1", "resnet8")}

TWO_STEPS = [
    # PEFD, MGD, OFD, ReviewKD (test_methods_feature.py)
    *[case(name, {}, {"ce", name}, pair) for name in ("pefd", "mgd", "ofd", "reviewkd")
      for pair in (RESNETS, OTHERS["feature"])],
    # AB, FT, FSP: with and without the main-stage term (test_methods_staged.py)
    *[case(name, options, terms, pair) for name, options, terms in [
        ("ab", {}, {"ce"}), ("ab", {"main_loss": True}, {"ce", "ab"}), ("ft", {}, {"ce", "ft"}),
        ("fsp", {}, {"ce"}), ("fsp", {"main_loss": True}, {"ce", "fsp"})] for pair in (RESNETS, OTHERS["staged"])],
    # ... and across widths and families: real connectors (test_methods_staged.py)
    case("ab", {"main_loss": True}, {"ce", "ab"}, ("wrn_16_2", "resnet8")),
    case("ft", {}, {"ce", "ft"}, ("wrn_16_2", "resnet8")),
    # VID, KDSVD (test_methods_vid_kdsvd.py)
    case("vid", {}, {"ce", "vid"}), case("vid", {}, {"ce", "vid"}, ("wrn_16_2", "resnet8")),
    case("kdsvd", {}, {"ce", "kdsvd"}), case("kdsvd", {}, {"ce", "kdsvd"}, ("wrn_16_1", "resnet8")),
    # CRD, alone and with KD (test_methods_crd.py)
    case("crd", {**CRD, "alpha": 0.0}, {"ce", "crd"}),
    case("crd", {**CRD, "alpha": 1.0}, {"ce", "crd", "kd"}, ("vgg13", "MobileNetV2")),
]


@pytest.mark.parametrize("name,options,terms,pair", TWO_STEPS)
def test_two_optimisation_steps_change_the_student(name, options, terms, pair):
    student, teacher = models(pair[1], pair[0])
    two_steps(Distiller(student, teacher, name, **options), terms)


FINITE = [
    *[case(name, {}, name) for name in ("pefd", "mgd", "ofd", "reviewkd")],  # test_methods_feature.py
    case("ab", {"main_loss": True}, "ab"), case("ft", {}, "ft"), case("fsp", {"main_loss": True}, "fsp"),  # staged
    case("vid", {}, "vid"), case("kdsvd", {}, "kdsvd"),  # test_methods_vid_kdsvd.py
]


@pytest.mark.parametrize("name,options,term,pair", FINITE)
def test_finite_on_batch_2_and_short_last_batch(name, options, term, pair):
    student, teacher = models(pair[1], pair[0])
    method = create_method(name, student, teacher, **options)  # built on a 2-sample forward
    has_init_stage = type(method).init_loss is not Method.init_loss  # AB, FT, FSP
    for n in (2, 3):
        s, t = run_networks(student, teacher, [images(n)], method.reads)
        assert torch.isfinite(method(s, t, batch_of(n))[term])
        if has_init_stage:
            assert torch.isfinite(method.init_loss(s, t, batch_of(n)))
