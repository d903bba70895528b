"""The tutorial's commands, outputs and figures (``docs/tutorial.md``).

The tutorial marks what a program can check: ``<!-- run -->`` before each fenced ``bash`` block of ``kdzoo``
commands to run (the CIFAR-100 blocks beside them are not marked); ``<!-- output -->`` before the ``text`` block
that holds the exact output of the run block before it (a test compares), ``<!-- example output -->`` before one
that holds what it printed when the figures were made; ``<!-- figure: PATH -->`` before each image, ``PATH``
(a glob that names one file) being where the commands write it. Regenerate everything, from the repository root::

    python -m kdzoo.docgen.tutorial     # runs the tutorial (about 15 min on an idle 2-core CPU) in ./runs

which runs every command as written, rewrites the output blocks and copies the figures into ``docs/img/``. The
test runs the same commands at :data:`TINY` (:func:`tiny`) in a temporary folder.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import KdzooError

TUTORIAL = Path("docs/tutorial.md")
IMAGES = Path("docs/img")
RUN, OUTPUT, EXAMPLE = "<!-- run -->", "<!-- output -->", "<!-- example output -->"
BLOCK = re.compile(r"(<!-- (?:run|output|example output) -->)\n```(?:bash|text)\n(.*?)```\n", re.S)
FIGURE = re.compile(r"<!-- figure: (\S+) -->\n!\[[^\]]*\]\(img/([^)\s]+)\)")

#: The test's budget: train/distill flags replaced, bench options added.
TINY = {"--epochs": "1", "--train-subset": "128", "--test-subset": "64"}
TINY_BENCH = ["--budget", "1", "--set", "train_subset=128", "--set", "test_subset=64"]
QUIET = ["--no-progress", "--no-tensorboard"]


@dataclass
class Block:
    kind: str          # RUN, OUTPUT or EXAMPLE
    text: str
    start: int         # span of the block's contents in the tutorial
    end: int


def blocks(text: str) -> list[Block]:
    return [Block(m.group(1), m.group(2), m.start(2), m.end(2)) for m in BLOCK.finditer(text)]


def commands(block: Block) -> list[list[str]]:
    """The ``kdzoo`` commands of a run block (lines continued with ``\\``), as argument lists without ``kdzoo``."""
    lines = [shlex.split(line, comments=True) for line in block.text.replace("\\\n", " ").splitlines()]
    argvs = [argv for argv in lines if argv]
    bad = [argv for argv in argvs if argv[0] != "kdzoo"]
    if bad:
        raise KdzooError(f"docs/tutorial.md: a run block holds a command other than kdzoo: {shlex.join(bad[0])}")
    return [argv[1:] for argv in argvs]


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


def run_tutorial(text: str, budget=lambda argv: argv) -> dict[int, str]:
    """Run every run block in order (each command through ``budget``); the output of each run block's last
    command, by the block's position in :func:`blocks`."""
    outputs = {}
    for number, block in enumerate(blocks(text)):
        if block.kind == RUN:
            for argv in commands(block):
                outputs[number] = run(budget(argv))
    return outputs


def figures(text: str) -> list[tuple[str, str]]:
    """(where the commands write it, its name in docs/img) for every figure."""
    return FIGURE.findall(text)


def find_figure(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern))
    if len(found) != 1:
        raise KdzooError(f"docs/tutorial.md: figure {pattern} matches {len(found)} files in {root}, not one.")
    return found[0]


def with_outputs(text: str, outputs: dict[int, str]) -> str:
    """``text`` with every output block replaced by the output of the run block before it."""
    parts, last = [], 0
    found = blocks(text)
    for number, block in enumerate(found):
        if block.kind != RUN:
            source = max(i for i in range(number) if found[i].kind == RUN)
            parts += [text[last:block.start], outputs[source]]
            last = block.end
    return "".join(parts + [text[last:]])


def regenerate(tutorial: Path = TUTORIAL, images: Path = IMAGES) -> None:
    """Run the tutorial as written in the current folder, rewrite its outputs, copy its figures."""
    text = tutorial.read_text(encoding="utf-8")
    outputs = run_tutorial(text)
    tutorial.write_text(with_outputs(text, outputs), encoding="utf-8")
    images.mkdir(parents=True, exist_ok=True)
    for pattern, name in figures(text):
        shutil.copyfile(find_figure(pattern, Path.cwd()), images / name)
        print(f"figure: {images / name}")


if __name__ == "__main__":
    regenerate()
