"""--compile: a compiled run computes the eager run's losses (within float tolerance), writes the same checkpoint
keys (no ``_orig_mod.`` prefix), and resumes exactly; and the speed choices are printed at the start of a run.

The compiled runs here use torch.compile's ``aot_eager`` backend (the same graph capture, forward and backward
graphs, but no C++ code generation): inductor's compilation takes minutes on a 2-core CPU. Inductor's numbers are
checked by ``benchmarks/speed.py``."""

import pytest
import torch

from conftest import TINY
from kdzoo.config import RunConfig
from kdzoo.engine.checkpoint import LAST, read_checkpoint
from kdzoo.engine.speed import plan_speed
from kdzoo.run_folder import read_metrics

DISTILL = ["--student", "resnet8", *TINY, "--schedule", "constant", "--seed", "2"]


@pytest.fixture
def aot_eager(monkeypatch):
    """nn.Module.compile with the aot_eager backend (the mode only selects inductor's options)."""
    original = torch.nn.Module.compile

    def compile_aot_eager(self, *args, mode=None, **kwargs):
        original(self, *args, backend="aot_eager", **kwargs)

    monkeypatch.setattr(torch.nn.Module, "compile", compile_aot_eager)
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_a_compiled_run_matches_eager_and_resumes_exactly(cli, tiny_teacher, tmp_path, aot_eager):
    def run(name, *extra):
        code, out, err = cli("distill", "--teacher", tiny_teacher, *DISTILL,
                             "--output-dir", tmp_path, "--name", name, *extra)
        assert code == 0, err
        return out

    run("eager", "--epochs", "2")
    out = run("compiled", "--epochs", "2", "--compile")
    assert "torch.compile mode default" in out
    eager, compiled = read_metrics(tmp_path / "eager"), read_metrics(tmp_path / "compiled")
    for a, b in zip(eager, compiled, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-4)
    straight = read_checkpoint(tmp_path / "compiled" / LAST)
    assert not [k for k in straight["model"] if "_orig_mod" in k]
    assert straight["model"].keys() == read_checkpoint(tmp_path / "eager" / LAST)["model"].keys()

    run("resumed", "--epochs", "1", "--compile")
    code, _, err = cli("distill", "--resume", tmp_path / "resumed", "--extend", "--epochs", "2", "--compile")
    assert code == 0, err
    resumed = read_checkpoint(tmp_path / "resumed" / LAST)
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_the_run_header_says_how_the_run_computes(cli, tiny_teacher, tmp_path):
    code, out, err = cli("distill", "--teacher", tiny_teacher, *DISTILL, "--epochs", "1", "--output-dir", tmp_path,
                         "--name", "header")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("speed:"))
    threads = torch.get_num_threads()
    assert line == (f"speed: {threads} CPU threads, amp none (default), channels_last teacher only (default), "
                    f"eager (no --compile), for-loop optimizer step, teacher under inference_mode")


@pytest.mark.parametrize("options,student,teacher", [
    ({}, False, False),  # plain training: no teacher to lay out
    ({"teacher": "t.pt", "method": "kd"}, False, True),  # CPU default: the frozen teacher alone
    ({"teacher": "t.pt", "method": "kd", "channels_last": False}, False, False),
    ({"teacher": "t.pt", "method": "kd", "channels_last": True}, True, True),
])
def test_the_cpu_layout_default_is_the_teachers_alone(options, student, teacher):
    plan = plan_speed(RunConfig(model="resnet8", **options), torch.device("cpu"))
    assert (plan.channels_last, plan.teacher_channels_last) == (student, teacher)
