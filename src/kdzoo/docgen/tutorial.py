"""The tutorial's commands, outputs and figures (``docs/tutorial.md`` and its Chinese twin ``docs/zh-CN/tutorial.md``).

The tutorial marks what a program can check: ``<!-- run -->`` before each fenced ``bash`` block of ``kdzoo``
commands to run (the CIFAR-100 blocks beside them are not marked); ``<!-- check -->`` before a block of ``kdzoo``
commands that the test runs at its tiny budget but the regeneration does not (the tour of the methods: a command
each, too many to train for real); ``<!-- output -->`` before the ``text`` block that holds the exact output of the
last run block before it (a test compares), ``<!-- example output -->`` before one that holds what that block
printed when the figures were made; ``<!-- figure: PATH -->`` before each image, ``PATH`` (a glob that names one
file) being where the commands write it. The Chinese page has the same blocks with the same commands (its comments
in Chinese) and the same figures. Regenerate everything, from the repository root::

    python -m kdzoo.docgen.tutorial     # runs the tutorial (21 training runs) in ./runs

which runs every run block as written and, after each one, rewrites the output blocks that show it in both pages
and copies the figures made so far into ``docs/img/``: the two pages cannot show different numbers. What each block
printed is kept in ``runs/tutorial_outputs.json``, so a regeneration that was stopped continues with the first block
not yet run (delete the file and the tutorial's run folders to start over). After editing one step, rerun only
its run blocks (their run folders deleted, and the file's entries for them; the earlier steps must have run)::

    python -m kdzoo.docgen.tutorial --sections 6     # the run blocks under "## 6. ..."

The test runs every run and check block at :data:`TINY` (:func:`tiny`) in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..atomic_text import write_text_atomic
from ..errors import KdzooError

TUTORIAL = Path("docs/tutorial.md")
TUTORIAL_ZH = Path("docs/zh-CN/tutorial.md")
IMAGES = Path("docs/img")
DONE = Path("runs/tutorial_outputs.json")
RUN, CHECK = "<!-- run -->", "<!-- check -->"
OUTPUT, EXAMPLE = "<!-- output -->", "<!-- example output -->"
BLOCK = re.compile(r"(<!-- (?:run|check|output|example output) -->)\n```(?:bash|text)\n(.*?)```\n", re.S)
FIGURE = re.compile(r"<!-- figure: (\S+) -->\n!\[[^\]]*\]\((?:\.\./)?img/([^)\s]+)\)")

#: The test's budget: train/distill flags replaced, bench options added.
TINY = {"--epochs": "1", "--train-subset": "128", "--test-subset": "64"}
TINY_BENCH = ["--budget", "1", "--set", "train_subset=128", "--set", "test_subset=64"]
QUIET = ["--no-progress", "--no-tensorboard"]


@dataclass
class Block:
    kind: str          # RUN, CHECK, OUTPUT or EXAMPLE
    text: str
    start: int         # span of the block's contents in the page
    end: int


def blocks(text: str) -> list[Block]:
    return [Block(m.group(1), m.group(2), m.start(2), m.end(2)) for m in BLOCK.finditer(text)]


def commands(block: Block) -> list[list[str]]:
    """The ``kdzoo`` commands of a run block (lines continued with ``\\``), as argument lists without ``kdzoo``."""
    lines = [shlex.split(line, comments=True) for line in block.text.replace("\\\n", " ").splitlines()]
    argvs = [argv for argv in lines if argv]
    bad = [argv for argv in argvs if argv[0] != "kdzoo"]
    if bad:
        raise KdzooError(f"the tutorial: a run block holds a command other than kdzoo: {shlex.join(bad[0])}")
    return [argv[1:] for argv in argvs]


def key(block: Block) -> str:
    """What identifies a run block in both pages: its commands, one per line (comments and layout left out)."""
    return "\n".join(shlex.join(argv) for argv in commands(block))


def shown_by(text: str) -> dict[int, Block]:
    """For each output and example output block (by its position in :func:`blocks`), the run block it shows."""
    found, shown = blocks(text), {}
    for number, block in enumerate(found):
        if block.kind in (OUTPUT, EXAMPLE):
            runs = [b for b in found[:number] if b.kind == RUN]
            if not runs:
                raise KdzooError("the tutorial: an output block comes before any run block.")
            shown[number] = runs[-1]
    return shown


def tiny(argv: list[str]) -> list[str]:
    """``argv`` at the test's budget: TINY's values for train/distill, TINY_BENCH for bench; no progress bars."""
    if argv[0] == "bench":
        return [*argv, *TINY_BENCH]
    if argv[0] not in ("train", "distill"):
        return argv
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg in TINY:
            out[i + 1] = TINY[arg]
    return [*out, *QUIET]


def run(argv: list[str]) -> str:
    """Run ``kdzoo ARGV`` in this process and return what it printed; a failure raises."""
    from ..commands import main

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(argv)
    if code != 0:
        raise KdzooError(f"kdzoo {shlex.join(argv)} exited with {code}:\n{stdout.getvalue()}")
    return stdout.getvalue()


def run_block(block: Block, budget=lambda argv: argv) -> str:
    """Run the block's commands in order (each through ``budget``); what the last one printed."""
    return [run(budget(argv)) for argv in commands(block)][-1]


def run_tutorial(text: str, budget=lambda argv: argv, kinds: tuple[str, ...] = (RUN, CHECK)) -> dict[str, str]:
    """Run every block of ``kinds`` in order; the output of each block's last command, by its :func:`key`."""
    return {key(block): run_block(block, budget) for block in blocks(text) if block.kind in kinds}


def section(text: str, block: Block) -> int | None:
    """The number of the ``## N. Title`` section that holds ``block`` (None before the first)."""
    numbers = re.findall(r"^## (\d+)\.", text[:block.start], re.M)
    return int(numbers[-1]) if numbers else None


def figures(text: str) -> list[tuple[str, str]]:
    """(where the commands write it, its name in docs/img) for every figure."""
    return FIGURE.findall(text)


def find_figure(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern))
    if len(found) != 1:
        raise KdzooError(f"the tutorial: figure {pattern} matches {len(found)} files in {root}, not one.")
    return found[0]


def with_outputs(text: str, outputs: dict[str, str]) -> str:
    """``text`` with every output block whose run block has an output in ``outputs`` (by :func:`key`) replaced by it."""
    parts, last = [], 0
    found = blocks(text)
    for number, source in shown_by(text).items():
        if key(source) in outputs:
            parts += [text[last:found[number].start], outputs[key(source)]]
            last = found[number].end
    return "".join(parts + [text[last:]])


def update_pages(pages: tuple[Path, ...], outputs: dict[str, str], images: Path, final: bool) -> None:
    """Rewrite the pages' output blocks from ``outputs`` and copy the figures made so far (all of them when
    ``final``)."""
    for page in pages:
        text = page.read_text(encoding="utf-8")
        write_text_atomic(page, with_outputs(text, outputs))
    images.mkdir(parents=True, exist_ok=True)
    for pattern, name in figures(pages[0].read_text(encoding="utf-8")):
        if final or any(Path.cwd().glob(pattern)):
            shutil.copyfile(find_figure(pattern, Path.cwd()), images / name)


def recorded(done: Path) -> dict[str, str]:
    return json.loads(done.read_text(encoding="utf-8")) if done.exists() else {}


def regenerate(pages: tuple[Path, ...] = (TUTORIAL, TUTORIAL_ZH), images: Path = IMAGES, done: Path = DONE,
               sections: list[int] | None = None) -> None:
    """Run the tutorial's run blocks (those of ``sections``, else all) in the current folder, each once (see the
    module docstring), and after each rewrite both pages' outputs and copy its figures. Each output is added to
    what ``done`` holds when it is written, so regenerations of different sections may run at once."""
    text = pages[0].read_text(encoding="utf-8")
    for block in blocks(text):
        if block.kind != RUN or key(block) in recorded(done) or (sections and section(text, block) not in sections):
            continue
        print(f"running: {key(block)}", flush=True)
        output = run_block(block)
        outputs = {**recorded(done), key(block): output}
        done.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(done, json.dumps(outputs, indent=1))
        update_pages(pages, outputs, images, final=False)
    update_pages(pages, recorded(done), images, final=not sections)
    print(f"pages: {', '.join(map(str, pages))}; figures: {images}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the tutorial and rewrite its outputs and figures.")
    parser.add_argument("--sections", type=int, nargs="+", help="run only the run blocks of these sections (## N.)")
    regenerate(sections=parser.parse_args().sections)
