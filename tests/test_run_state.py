"""Runs in one process do not leak into each other (``kdzoo bench --jobs 1`` and a script calling
``kdzoo.engine.train`` twice): what a run sets process-wide is put back when it ends."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from conftest import TINY
from kdzoo.engine.runtime import ProcessState, isolated_run


def key_of(cache):
    """The one key.json a run wrote into the teacher-cache folder ``cache``."""
    (key_file,) = cache.glob("*/key.json")
    return json.loads(key_file.read_text())


def test_every_setting_a_run_changes_comes_back_when_it_ends():
    before = ProcessState.now()
    with pytest.raises(RuntimeError, match="the run failed"), isolated_run():
        torch.use_deterministic_algorithms(not before.deterministic[0], warn_only=True)
        torch.backends.cudnn.benchmark = not before.cudnn[0]
        torch.backends.cudnn.deterministic = not before.cudnn[1]
        torch.set_default_dtype(torch.float64)
        torch.set_num_threads(before.threads[0] + 1)
        torch.set_float32_matmul_precision("medium" if before.matmul_precision != "medium" else "high")
        torch.manual_seed(123)
        np.random.seed(123)
        random.seed(123)
        raise RuntimeError("the run failed")
    after = ProcessState.now()
    assert after.deterministic == before.deterministic and after.cudnn == before.cudnn
    assert (after.dtype, after.threads, after.matmul_precision) == (before.dtype, before.threads,
                                                                      before.matmul_precision)
    assert torch.equal(torch.get_rng_state(), before.rng[0])
    assert np.random.get_state()[1].tolist() == before.rng[2][1].tolist()
    assert random.getstate() == before.rng[3]


@pytest.mark.slow
def test_a_deterministic_run_leaves_the_next_run_in_the_process_as_it_asked(cli, tiny_teacher, tmp_path, one_thread):
    """A --deterministic run, then one without it, in one process: the second computes (and keys its teacher
    cache) without deterministic kernels, and the process is left as it was."""
    before = ProcessState.now()
    assert not before.deterministic[0]
    common = ["distill", "--teacher", tiny_teacher, "--student", "resnet8", *TINY, "--epochs", "1",
              "--output-dir", tmp_path]
    code, _, err = cli(*common, "--name", "deterministic", "--deterministic",
                       "--teacher-cache", tmp_path / "cache-deterministic")
    assert code == 0, err
    assert key_of(tmp_path / "cache-deterministic")["deterministic"] is True
    assert not torch.are_deterministic_algorithms_enabled()
    code, _, err = cli(*common, "--name", "plain", "--teacher-cache", tmp_path / "cache-plain")
    assert code == 0, err
    assert key_of(tmp_path / "cache-plain")["deterministic"] is False  # the switch as the second run set it
    after = ProcessState.now()
    assert (after.deterministic, after.cudnn, after.threads) == (before.deterministic, before.cudnn, before.threads)
