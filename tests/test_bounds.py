"""Bounds checked before allocation, and one-line errors instead of tracebacks (issue 32, items 5, 6 and 8): a
learning rate or weight decay that overflows the optimizer step, seeds torch cannot take, dataset and image sizes
beyond the machine's memory, CRD negatives beyond ``max_memory_gb``, model options that name Python objects, and
``KEY=VALUE`` values with a YAML error. Each is refused through the real CLI with exit code 2, one ``error:`` line
and no traceback, before anything is allocated or written."""

from types import SimpleNamespace

import pytest
import torch

from conftest import TINY
from kdzoo import yaml_load
from kdzoo.commands import main
from kdzoo.data import build_data
from kdzoo.data.synthetic import generated_bytes
from kdzoo.errors import ConfigError, KdzooError
from kdzoo.memory_bound import physical_memory, size_text
from kdzoo.methods import method_class
from kdzoo.methods.crd_memory import step_bytes
from kdzoo.models import create_model
from kdzoo.models.features import Features

SEED_BOUND = "between 0 and 9223372036854775807 (2**63-1 is the largest seed torch takes)"


def refused(capsys, args) -> str:
    """``kdzoo ARGS`` ended with exit code 2 and an ``error:`` line, no traceback; the error line."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:  # argparse refuses a flag's text itself (usage, then one error line)
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error: " in line]
    assert len(lines) == 1, err
    return lines[0]


def train(tmp_path, *args):
    return ["train", "--model", "resnet8", *TINY, "--epochs", "1", "--output-dir", tmp_path / "runs", *args]


# case id -> (the flags added to a tiny training run, texts the error line must hold: option, value, bound)
RUN_CASES = {
    "lr 1e308": (["--lr", "1e308"], ["--lr", "1e+308", "<= 10", "0.01 to 0.1"]),
    "lr 1e39": (["--lr", "1e39"], ["--lr", "1e+39", "<= 10"]),
    "weight decay 1e39": (["--weight-decay", "1e39"], ["--weight-decay", "1e+39", "between 0 and 1"]),
    "seed 2**64": (["--seed", str(2**64)], ["--seed", SEED_BOUND, str(2**64)]),
    "seed negative": (["--seed", "-1"], ["--seed", SEED_BOUND, "got -1"]),
    "seed 1e23": (["--seed", "1e23"], ["--seed", "whole number between 0 and 9223372036854775807", "'1e23'"]),
    "data seed 2**64": (["--data-seed", str(2**64)], ["--data-seed", SEED_BOUND, str(2**64)]),
    "data seed 1e23": (["--data-seed", "1e23"], ["--data-seed", "whole number", "'1e23'"]),
    "generator seed 2**64": (["--dataset-opt", f"generator_seed={2**64}"], ["generator_seed", SEED_BOUND]),
    "num_train 1e11 (a float)": (["--dataset-opt", "num_train=1e11"],
                                 ["num_train", "whole number >= 1", "100000000000.0"]),
    "num_train 10**11": (["--dataset-opt", "num_train=100000000000"],
                         ["num_train=100000000000", "PB", "more than this machine's memory", "Lower num_train"]),
    "image_size 100000": (["--dataset-opt", "image_size=100000"],
                          ["image_size=100000", "TB", "more than this machine's memory", "Lower num_train"]),
    "channels 10**8": (["--dataset-opt", "channels=100000000"], ["channels=100000000", "machine's memory"]),
    "num_classes 10**9": (["--dataset-opt", "num_classes=1000000000"], ["num_classes=1000000000", "machine's memory"]),
    # -- torchvision options that name Python objects (nothing is imported or run)
    "norm_layer=os.system": (["--model", "torchvision/resnet18", "--model-opt", "norm_layer=os.system"],
                             ["norm_layer", "class or function", "'os.system'", "nothing is imported or run",
                              "takes zero_init_residual, groups, width_per_group, replace_stride_with_dilation, "
                              "pretrained"]),
    "block=builtins.eval": (["--model", "torchvision/resnet18", "--model-opt", "block=builtins.eval"],
                            ["block", "class or function", "'builtins.eval'"]),
    "mobilenet block=builtins.eval": (["--model", "torchvision/mobilenet_v2", "--model-opt", "block=builtins.eval"],
                                      ["block", "class or function", "takes width_mult, round_nearest, dropout"]),
    "zoo tv_resnet18 norm_layer": (["--model", "tv_resnet18", "--model-opt", "norm_layer=os.system"],
                                   ["tv_resnet18 option norm_layer", "class or function"]),
    # -- builder arguments kdzoo sets from the data
    "model-opt num_classes": (["--model-opt", "num_classes=5"], ["--model-opt num_classes", "dataset's class count"]),
    "model-opt in_channels": (["--model-opt", "in_channels=1"], ["--model-opt in_channels", "image channels"]),
    "torchvision option of the wrong kind": (["--model", "torchvision/resnet18", "--model-opt", "groups=abc"],
                                             ["torchvision/resnet18 option groups", "whole number", "'abc'"]),
    "torchvision option the builder sets": (["--model", "tv_resnet18", "--model-opt", "layers=[1, 1, 1, 1]"],
                                            ["tv_resnet18 sets 'layers' itself", "width_per_group"]),
    "torchvision value the builder refuses": (["--model", "torchvision/resnet18", "--model-opt", "groups=2"],
                                              ["torchvision/resnet18 refuses its options (groups=2)",
                                               "BasicBlock only supports groups=1"]),
    # -- KEY=VALUE values with a YAML error
    "!!python tag": (["--dataset-opt", "num_train=!!python/object/apply:os.system [ls]"],
                     ["--dataset-opt", "num_train=!!python/object/apply:os.system [ls]", "not valid YAML",
                      "never builds Python objects"]),
    "unclosed [": (["--model-opt", "x=[1, 2"], ["--model-opt", "'x=[1, 2'", "not valid YAML", "expected ',' or ']'"]),
    "undefined alias": (["--dataset-opt", "num_train=*a"], ["--dataset-opt", "found undefined alias 'a'"]),
    "mapping in a value": (["--model-opt", "x=a: b: c"], ["--model-opt", "mapping values are not allowed"]),
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_a_bound_is_refused_in_one_line_before_anything_is_allocated(case, tmp_path, capsys):
    flags, texts = RUN_CASES[case]
    line = refused(capsys, train(tmp_path, *flags))
    for text in texts:
        assert text in line, (text, line)
    assert not (tmp_path / "runs").exists()  # refused before the run folder


def test_image_folder_batches_beyond_the_memory_are_refused(tmp_path, capsys):
    line = refused(capsys, ["train", "--model", "resnet8", "--dataset", "imagefolder", "--data-root", tmp_path / "none",
                            "--dataset-opt", "image_size=100000", "--device", "cpu", "--output-dir", tmp_path / "runs"])
    assert "imagefolder option image_size=100000 (batches of 256 images of 3x100000x100000)" in line
    assert "TB, more than this machine's memory" in line and "Lower image_size" in line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("flag", ["--method-opt", "--teacher-opt"])
def test_yaml_errors_in_distill_flags_name_the_flag(flag, tmp_path, capsys):
    line = refused(capsys, ["distill", "--student", "resnet8", "--teacher", tmp_path / "t.pt", flag,
                            "t=!!python/name:os.system"])
    assert f"argument {flag}: 't=!!python/name:os.system': the value is not valid YAML" in line


def test_bench_set_with_a_yaml_error_names_the_flag(capsys):
    line = refused(capsys, ["bench", "--grid", "bench/fashion_mnist_small", "--set", "lr=[1", "--dry-run"])
    assert "argument --set: 'lr=[1'" in line and "not valid YAML" in line


def test_yaml_problem_is_one_line_with_where():
    with pytest.raises(Exception) as err:
        yaml_load.load("[1, 2")
    assert yaml_load.problem(err.value) == ("while parsing a flow sequence: expected ',' or ']', but got "
                                            "'<stream end>' (line 1, column 6)")


def test_the_memory_bound_is_the_physical_memory():
    assert physical_memory() > 10**8  # at least 100 MB on any machine that runs the tests
    assert size_text(4.92e15) == "4.92 PB" and size_text(25.3e9) == "25.3 GB" and size_text(1e3) == "0.001 MB"


def test_the_synthetic_estimate_covers_what_generating_takes():
    """The estimate is at least the bytes of the tensors it counts: the float32 prototypes and noise, the uint8
    images kept."""
    pixels = 3 * 32 * 32
    assert generated_bytes(10, 512, 256, 32, 3) >= pixels * (10 * 4 + 512 * 4 + 768)
    with pytest.raises(ConfigError, match=r"num_train=10000000000.*more than this machine's memory"):
        build_data("synthetic", num_train=10**10)


# -- CRD: nce_k sizes each step's negatives, which max_memory_gb now covers too

def crd(labels, **options):
    feats = Features(torch.zeros(2, 10), [torch.randn(2, 6)])
    return method_class("crd")(feats, feats, train_labels=labels, **options)


def test_crd_refuses_an_nce_k_whose_negatives_exceed_max_memory_gb_at_construction():
    with pytest.raises(KdzooError, match=r"nce_k=1000000000 \+ 1.*above max_memory_gb=8.0.*Lower nce_k"):
        crd(torch.arange(96) % 10, nce_k=10**9, max_memory_gb=8.0)


def test_crd_refuses_a_batch_whose_negatives_exceed_max_memory_gb_before_drawing_them():
    labels = torch.arange(96) % 10
    method = crd(labels, nce_k=1000, feat_dim=16, max_memory_gb=0.001)  # one sample's negatives fit: 0.14 MB
    assert step_bytes(32, 1000, 16) > 1e6
    index = torch.arange(32)
    s = Features(torch.zeros(32, 10), [torch.randn(32, 6)])
    with pytest.raises(KdzooError, match=r"a batch of 32.*above max_memory_gb=0.001.*max_memory_gb=1"):
        method(s, s, SimpleNamespace(index=index, labels=labels[index]))


def test_crd_refuses_what_no_max_memory_gb_can_allow():
    with pytest.raises(KdzooError, match=r"more than this machine's memory"):
        crd(torch.arange(96) % 10, nce_k=10**12, max_memory_gb=1e9)


def test_crd_nce_k_1e9_through_the_cli(tiny_teacher, tmp_path, capsys):
    line = refused(capsys, ["distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY, "--epochs", "1",
                            "--output-dir", tmp_path / "runs", "--method", "crd", "--method-opt", "nce_k=1000000000"])
    assert "nce_k=1000000000" in line and "max_memory_gb=8.0" in line and "Lower nce_k" in line
    assert not (tmp_path / "runs").exists()


# -- what still works

def test_torchvision_options_of_the_declared_kinds_still_reach_the_builder():
    model = create_model("torchvision/resnet50", num_classes=10, zero_init_residual=True, width_per_group=32)
    assert model.layer1[0].conv1.out_channels == 32
    model = create_model("tv_resnet18", num_classes=10, norm_layer=torch.nn.Identity)  # a Python callable
    assert isinstance(model.bn1, torch.nn.Identity)
    assert create_model("torchvision/mobilenet_v2", num_classes=10, width_mult=1).classifier[-1].in_features == 1280


def every_float_option():
    """(where, name, declaration) of every float option: the run's, every method's and every dataset's."""
    from kdzoo.config import RUN_OPTIONS
    from kdzoo.data.registry import DATASETS
    from kdzoo.declared import declared_options
    from kdzoo.methods import list_methods
    from kdzoo.methods.registry import SUPPLIED

    sources = [("run", RUN_OPTIONS)]
    sources += [(name, declared_options(method_class(name).__init__, skip=SUPPLIED)) for name in list_methods()]
    sources += [(name, declared_options(DATASETS.get(name).factory)) for name in DATASETS.names()]
    return [(where, name, option.spec) for where, options in sources for name, option in options.items()
            if float in (option.spec.kind, option.spec.item)]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_every_float_option_refuses_nan_and_inf_by_its_declaration(value):
    """One check for every float option (``declared.check_values``): a float declaration means a finite number."""
    from kdzoo.declared import check_value

    floats = every_float_option()
    assert len(floats) > 40  # the run's weights, temperatures, lr, ... and the methods' own
    for where, name, spec in floats:
        given = [value] if spec.item is not None else value
        with pytest.raises(ConfigError, match="finite number"):
            check_value(f"{where} {name}", spec, given)
