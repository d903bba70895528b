"""Evaluation's warning for an absurd loss: where its threshold lies, what it names, and that a run prints it
once (a fake network and a faked evaluation, no long run)."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from conftest import TINY
from kdzoo.engine.evaluate import absurd_loss_warning, evaluate


def test_the_threshold_is_a_hundred_uniform_guesses():
    limit = 100 * math.log(10)  # 230.3
    assert absurd_loss_warning(2.3, 10) is None and absurd_loss_warning(limit - 0.1, 10) is None
    for loss in (limit + 0.1, 2.3e9, math.inf, math.nan):
        assert absurd_loss_warning(loss, 10) is not None, loss
    assert absurd_loss_warning(400.0, 100) is None  # ln 100 = 4.6: the limit grows with the classes


def test_a_network_with_exploding_logits_is_warned_about_with_the_causes():
    class Exploding(nn.Module):  # always sure of the wrong class, by a billion
        def forward(self, x):
            logits = torch.zeros(len(x), 10)
            logits[:, 0] = 1e9
            return logits

    batch = SimpleNamespace(images=torch.zeros(4, 3, 8, 8), labels=torch.ones(4, dtype=torch.long))
    loader = SimpleNamespace(epoch=lambda e: [batch])
    result = evaluate(Exploding(), loader, torch.device("cpu"))
    assert result["loss"] == pytest.approx(1e9)
    warning = absurd_loss_warning(result["loss"], 10)
    assert warning.startswith("warning: the evaluation loss 1e+09 is absurd (a uniform guess over 10 classes "
                              "scores ln 10 = 2.3; this is over 100 times that).")
    assert "BatchNorm running statistics" in warning and "train more epochs" in warning
    assert "diverged: lower --lr" in warning


def test_a_run_prints_the_warning_once(cli, tmp_path, monkeypatch):
    import kdzoo.engine.trainer as trainer

    monkeypatch.setattr(trainer, "evaluate", lambda *a, **k: {"top1": 10.0, "top5": 50.0, "loss": 2.3e9})
    code, out, err = cli("train", "--model", "resnet8", *TINY, "--epochs", "2", "--output-dir", tmp_path)
    assert code == 0, err
    assert out.count("warning: the evaluation loss 2.3e+09 is absurd") == 1, out
    assert out.index("epoch 1/2") < out.index("evaluation loss") < out.index("epoch 2/2")


def test_kdzoo_eval_prints_the_warning(cli, tiny_teacher, monkeypatch):
    import kdzoo.engine

    monkeypatch.setattr(kdzoo.engine, "evaluate", lambda *a, **k: {"top1": 10.0, "top5": 50.0, "loss": math.nan})
    code, out, err = cli("eval", tiny_teacher, "--device", "cpu")
    assert code == 0, err
    assert out.splitlines()[-1].startswith("warning: the evaluation loss nan is not finite. Likely causes: "), out
