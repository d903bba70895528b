"""Contracts every distillation method keeps, each one parametrised test over a table of cases (method, options, the
terms it gives, the pair) drawn from all the families; the families' own files pin their losses and modules.

- two optimisation steps through the :class:`kdzoo.Distiller` give the expected finite terms and move the student
  (and, for the methods whose modules all train in the main stage, every parameter the method adds), for every
  registered method (``list_methods()``);
- the loss (and an init stage's loss) is finite on the 2-sample batch a method is sized on and on a short last batch
  of 3, with the networks run as the engine runs them."""

import pytest
import torch

from conftest import batch_of, images, models, two_steps
from kdzoo import Distiller
from kdzoo.distiller import run_networks
from kdzoo.methods import Method, create_method, list_methods, method_needs

#: (teacher, student): the same family, and other families (feature maps of other sizes and channel counts).
RESNETS = ("resnet14", "resnet8")
#: CRD on a 50-sample dataset with a small negative bank.
CRD = {"train_labels": torch.arange(50) % 10, "nce_k": 32}


def case(name: str, options: dict, terms: set[str] | str, pair: tuple[str, str] = RESNETS, *more):
    """One case: ``name`` with ``options`` gives ``terms`` on ``pair`` = (teacher, student); ``more``: the test's
    further arguments."""
    shown = ",".join(f"{k}={v}" for k, v in options.items() if k != "train_labels")
    return pytest.param(name, options, terms, pair, *more, id="-".join(filter(None, [name, shown, "->".join(pair)])))


def steps(name: str, options: dict, terms: set[str], pair: tuple[str, str] = RESNETS, extras_move: bool = False,
          epoch: tuple[int, int] | None = None):
    """A two-step case; ``extras_move``: every parameter the method adds must move too; ``epoch``: the (epoch,
    epochs) the Distiller is told first."""
    return case(name, options, terms, pair, extras_move, epoch)


TWO_STEPS = [
    # DKD, NKD, DIST after an epoch start; CTKD, SDD, MLKD with their options (test_methods_logit.py)
    *[steps(name, {}, {"ce", *terms}, pair, epoch=(1, 2)) for name, terms in [
        ("dkd", {"dkd_tckd", "dkd_nckd"}), ("nkd", {"nkd_target", "nkd_non_target"}),
        ("dist", {"dist_inter", "dist_intra"})] for pair in (RESNETS, ("vgg8", "MobileNetV2"))],
    *[steps(name, options, terms, pair) for name, options, terms in [
        ("ctkd", {}, {"ce", "ctkd"}), ("ctkd", {"mode": "instance"}, {"ce", "ctkd"}),
        ("sdd", {}, {"ce", "sdd_kd"}), ("sdd", {"base": "dkd"}, {"ce", "sdd_dkd"}),
        ("sdd", {"base": "nkd"}, {"ce", "sdd_nkd"}),
        ("mlkd", {}, {"ce", "mlkd_instance", "mlkd_batch", "mlkd_class"}),
    ] for pair in (RESNETS, ("vgg8", "MobileNetV2"))],
    # FitNet, AT, NST (test_methods_feature.py), SP, CC, RKD, PKT (test_methods_relational.py): their modules move
    *[steps(name, {}, {"ce", *terms}, pair, extras_move=True) for name, terms in [
        ("fitnet", {"fitnet"}), ("at", {"at"}), ("nst", {"nst"}),
        ("sp", {"sp"}), ("cc", {"cc"}), ("rkd", {"rkd_distance", "rkd_angle"}), ("pkt", {"pkt"}),
    ] for pair in (RESNETS, ("vgg8", "ShuffleV2"))],
    # PEFD, MGD, OFD, ReviewKD (test_methods_feature.py)
    *[steps(name, {}, {"ce", name}, pair) for name in ("pefd", "mgd", "ofd", "reviewkd")
      for pair in (RESNETS, ("vgg8", "MobileNetV2"))],
    # AB, FT, FSP with and without the main-stage term, then across widths and families (test_methods_staged.py)
    *[steps(name, options, terms, pair) for name, options, terms in [
        ("ab", {}, {"ce"}), ("ab", {"main_loss": True}, {"ce", "ab"}), ("ft", {}, {"ce", "ft"}),
        ("fsp", {}, {"ce"}), ("fsp", {"main_loss": True}, {"ce", "fsp"}),
    ] for pair in (RESNETS, ("wrn_16_1", "resnet8"))],
    steps("ab", {"main_loss": True}, {"ce", "ab"}, ("wrn_16_2", "resnet8")),
    steps("ft", {}, {"ce", "ft"}, ("wrn_16_2", "resnet8")),
    # VID, KDSVD (test_methods_vid_kdsvd.py)
    steps("vid", {}, {"ce", "vid"}), steps("vid", {}, {"ce", "vid"}, ("wrn_16_2", "resnet8")),
    steps("kdsvd", {}, {"ce", "kdsvd"}), steps("kdsvd", {}, {"ce", "kdsvd"}, ("wrn_16_1", "resnet8")),
    # CRD, alone and with KD (test_methods_crd.py)
    steps("crd", {**CRD, "alpha": 0.0}, {"ce", "crd"}),
    steps("crd", {**CRD, "alpha": 1.0}, {"ce", "crd", "kd"}, ("vgg13", "MobileNetV2")),
    # KD (test_kd_loss.py), SimKD with its head (test_methods_simkd.py)
    *[steps("kd", {}, {"ce", "kd"}, pair) for pair in (RESNETS, ("vgg8", "MobileNetV2"))],
    steps("simkd", {}, {"simkd"}), steps("simkd", {}, {"simkd"}, ("wrn_16_2", "resnet8")),
    # multi-exit students: exit KD from a teacher, BYOT without one (test_multi_exit.py); USKD, teacher-free, its
    # classifier-side modules train too (test_methods_uskd.py)
    steps("exit_kd", {}, {"exit_ce", "exit_kd"}),
    steps("byot", {}, {"ce", "byot_ce_exits", "byot_kd", "byot_hint"}),
    steps("uskd", {}, {"ce", "uskd_target", "uskd_non_target", "uskd_weak"}, extras_move=True),
]


def test_every_registered_method_has_a_two_step_case():
    """The contract covers the registry, not a hand list: a new method without a case fails here."""
    assert {param.values[0] for param in TWO_STEPS} == set(list_methods())


@pytest.mark.parametrize("name,options,terms,pair,extras_move,epoch", TWO_STEPS)
def test_two_optimisation_steps_change_the_student(name, options, terms, pair, extras_move, epoch):
    student, teacher = models(pair[1], pair[0])
    distiller = Distiller(student, teacher if method_needs(name).needs_teacher else None, name, **options)
    if epoch is not None:
        distiller.on_epoch_start(*epoch)
    two_steps(distiller, terms, extras_move=extras_move)


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
