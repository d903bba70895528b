"""docs/tutorial.md runs: every marked command at a tiny budget, its figures appear where the page says, and the
outputs it shows are the commands' (``python -m kdzoo.docgen.tutorial`` regenerates them)."""

from pathlib import Path

import pytest

from kdzoo.docgen.methods import TUTORIAL_TEACHER
from kdzoo.docgen.results import FIGURE as RESULTS_FIGURE
from kdzoo.docgen.tutorial import OUTPUT, RUN, blocks, commands, figures, find_figure, run_tutorial, tiny
from test_realdata import _have_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")


def test_every_figure_is_checked_in_and_every_output_block_filled():
    names = [name for _, name in figures(TEXT)] + [RESULTS_FIGURE]  # docs/results.md's, by kdzoo.docgen.results
    assert sorted(p.name for p in (ROOT / "docs" / "img").iterdir()) == sorted(names)
    found = blocks(TEXT)
    assert [b.kind for b in found].count(RUN) >= 6 and all(b.text.strip() for b in found)
    assert found[0].kind == RUN  # every output block follows the run block it shows
    assert {argv[0] for b in found if b.kind == RUN for argv in commands(b)} >= {"train", "distill", "bench", "report",
                                                                                 "temperature", "plot"}


def test_tiny_budget_replaces_the_training_flags():
    argv = ["distill", "--epochs", "6", "--train-subset", "8000", "--test-subset", "2000", "--name", "kd"]
    assert tiny(argv) == ["distill", "--epochs", "1", "--train-subset", "128", "--test-subset", "64", "--name", "kd",
                          "--no-progress", "--no-tensorboard"]
    assert tiny(["bench", "--grid", "g"])[:4] == ["bench", "--grid", "g", "--budget"]
    assert tiny(["report", "runs"]) == ["report", "runs"]


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not _have_fashion_mnist(),
                    reason="Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)")
def test_the_tutorial_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outputs = run_tutorial(TEXT, tiny)
    assert (tmp_path / TUTORIAL_TEACHER).is_dir()  # the method pages' commands start from this teacher
    for pattern, _ in figures(TEXT):
        assert find_figure(pattern, tmp_path).read_bytes().startswith(b"\x89PNG")
    found = blocks(TEXT)
    for number, block in enumerate(found):
        if block.kind == OUTPUT:
            source = max(i for i in range(number) if found[i].kind == RUN)
            assert block.text == outputs[source], "regenerate: python -m kdzoo.docgen.tutorial"
