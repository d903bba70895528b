"""docs/tutorial.md runs: every marked command at a tiny budget, its figures appear where the page says, and the
outputs it shows are the commands' (``python -m kdzoo.docgen.tutorial`` regenerates them); the Chinese tutorial has
the same blocks, commands, outputs and figures, so the two pages cannot show different numbers."""

import shlex
from pathlib import Path

import pytest

from kdzoo.docgen import counts, tour, tutorial
from kdzoo.docgen.methods import TUTORIAL_TEACHER, fashion_command
from kdzoo.docgen.results import FIGURE as RESULTS_FIGURE
from kdzoo.docgen.tutorial import (
    CHECK,
    OUTPUT,
    RUN,
    TUTORIAL,
    TUTORIAL_ZH,
    blocks,
    commands,
    figures,
    find_figure,
    key,
    regenerate,
    run_tutorial,
    shown_by,
    tiny,
)
from kdzoo.methods import list_methods
from test_realdata import _have_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
TEXT_ZH = (ROOT / "docs" / "zh-CN" / "tutorial.md").read_text(encoding="utf-8")


def test_every_figure_is_checked_in_and_every_output_block_filled():
    names = [name for _, name in figures(TEXT)] + [RESULTS_FIGURE]  # docs/results.md's, by kdzoo.docgen.results
    assert sorted(p.name for p in (ROOT / "docs" / "img").iterdir()) == sorted(names)
    found = blocks(TEXT)
    assert [b.kind for b in found].count(RUN) >= 6 and all(b.text.strip() for b in found)
    assert found[0].kind == RUN and shown_by(TEXT)  # every output block follows the run block it shows
    assert "filled by" not in TEXT
    assert {argv[0] for b in found if b.kind == RUN for argv in commands(b)} >= {"train", "distill", "bench", "report",
                                                                                 "temperature", "plot", "maps", "eval"}


def test_the_tour_names_every_method():
    ran = {argv[argv.index("--method") + 1] for b in blocks(TEXT) if b.kind in (RUN, CHECK) for argv in commands(b)
           if "--method" in argv}
    assert ran | {"kd"} == set(list_methods())  # KD: the grids of steps 3 and 4


def test_the_tours_generated_part_is_up_to_date_in_both_pages():
    """What ``python -m kdzoo.docgen.tour`` (``make docs``) writes: empty while the hand-written tour names every
    method."""
    assert tour.render(TEXT, tour.INTRO[TUTORIAL]) == TEXT and tour.render(TEXT_ZH, tour.INTRO[TUTORIAL_ZH]) == TEXT_ZH


def test_a_method_the_tour_does_not_describe_gets_a_generated_check_block_in_both_pages():
    """A method added since the tour was written (here PKT, its command renamed away in both pages) is named after
    the hand-written tour, with its command at the tutorial's budget in a check block, the same in both pages."""
    pages = [page.replace("--method pkt ", "--method not_pkt ") for page in (TEXT, TEXT_ZH)]
    en, zh = (tour.render(page, tour.INTRO[path]) for page, path in zip(pages, (TUTORIAL, TUTORIAL_ZH), strict=True))
    generated = [b for b in blocks(en.split(tour.BEGIN)[1]) if b.kind == CHECK]
    pending = sorted(set(list_methods()) - tour.toured(pages[0]))
    assert "pkt" in pending and [shlex.join(["kdzoo", *argv]) for b in generated for argv in commands(b)] == [
        fashion_command(name, tour.OUTPUT_DIR) for name in pending]
    assert "[pkt](methods/pkt.md) (Passalis & Tefas, ECCV 2018)" in en and tour.INTRO[TUTORIAL_ZH] in zh
    assert "[pkt](../methods/pkt.md)" in zh  # the Chinese page is one folder down
    assert [key(b) for b in blocks(zh) if b.kind == CHECK] == [key(b) for b in blocks(en) if b.kind == CHECK]


def test_the_method_counts_in_prose_are_the_registrys():
    count = len(list_methods())
    for path, phrase in counts.PHRASES.items():
        text = (ROOT / path).read_text(encoding="utf-8")
        assert counts.with_count(text, phrase, count) == text, "regenerate: python -m kdzoo.docgen.counts"
    assert counts.with_count("x\n28 methods: a\n", counts.PHRASES[Path("README.md")], 29) == "x\n29 methods: a\n"


def test_the_chinese_tutorial_has_the_same_blocks_commands_outputs_and_figures():
    en, zh = blocks(TEXT), blocks(TEXT_ZH)
    assert [b.kind for b in zh] == [b.kind for b in en]
    for b_en, b_zh in zip(en, zh, strict=True):
        if b_en.kind in (RUN, CHECK):
            assert key(b_zh) == key(b_en)  # comments may differ
        else:
            assert b_zh.text == b_en.text, "regenerate: python -m kdzoo.docgen.tutorial"
    assert figures(TEXT_ZH) == figures(TEXT)


def test_tiny_budget_replaces_the_training_flags():
    argv = ["distill", "--epochs", "6", "--train-subset", "8000", "--test-subset", "2000", "--name", "kd"]
    assert tiny(argv) == ["distill", "--epochs", "1", "--train-subset", "128", "--test-subset", "64", "--name", "kd",
                          "--no-progress", "--no-tensorboard"]
    assert tiny(["bench", "--grid", "g"])[:4] == ["bench", "--grid", "g", "--budget"]
    assert tiny(["report", "runs"]) == ["report", "runs"]


PAGE = """# A page

## 1. One step

<!-- run -->
```bash
kdzoo list methods  # COMMENT
```

<!-- output -->
```text
old
```

## 2. Not run by the regeneration

<!-- check -->
```bash
kdzoo list grids
```
"""


def test_regenerate_fills_both_pages_from_one_run_and_runs_each_block_once(tmp_path, monkeypatch):
    pages = (tmp_path / "en.md", tmp_path / "zh.md")
    pages[0].write_text(PAGE.replace("COMMENT", "a comment"), encoding="utf-8")
    pages[1].write_text(PAGE.replace("COMMENT", "注释"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    ran = []
    monkeypatch.setattr(tutorial, "run", lambda argv: ran.append(argv) or f"printed by {argv[0]}\n")
    for sections in ([2], None, None):  # section 2 has no run block; the second full run finds it done
        regenerate(pages, tmp_path / "img", tmp_path / "done.json", sections)
    assert ran == [["list", "methods"]]  # check blocks are the test's alone
    for page, comment in zip(pages, ("a comment", "注释"), strict=True):
        assert page.read_text(encoding="utf-8") == PAGE.replace("COMMENT", comment).replace(
            "```text\nold\n```", "```text\nprinted by list\n```")


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.skipif(not _have_fashion_mnist(),
                    reason="Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist)")
def test_the_tutorial_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outputs = run_tutorial(TEXT, tiny)  # the run blocks and the check blocks
    assert (tmp_path / TUTORIAL_TEACHER).is_dir()  # the method pages' commands start from this teacher
    for pattern, _ in figures(TEXT):
        assert find_figure(pattern, tmp_path).read_bytes().startswith(b"\x89PNG")
    found = blocks(TEXT)
    for number, source in shown_by(TEXT).items():
        if found[number].kind == OUTPUT:
            assert found[number].text == outputs[key(source)], "regenerate: python -m kdzoo.docgen.tutorial"
