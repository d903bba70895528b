"""The method pages (docs/methods/) are what ``python -m kdzoo.docgen.methods`` writes from the registry."""

import re
import shlex
from functools import cache
from pathlib import Path

import pytest

from kdzoo.commands import build_parser
from kdzoo.commands.list import methods as list_methods_text
from kdzoo.docgen import methods as method_docs
from kdzoo.docgen.methods import citation, commands
from kdzoo.methods import list_methods, method_class

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "methods"
render = cache(method_docs.render)


def test_checked_in_pages_are_the_generated_ones():
    pages = render()
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(pages), "regenerate: python -m kdzoo.docgen.methods"
    for name, text in pages.items():
        assert (DOCS / name).read_text(encoding="utf-8") == text, \
            f"docs/methods/{name} drifted: python -m kdzoo.docgen.methods"


def test_every_method_has_a_page_and_an_index_row_as_kdzoo_list_methods():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| \[`([a-z_]+)`\]\(\1\.md\) \|", index, re.M)
    listed = re.findall(r"^([a-z_]+)$", list_methods_text(), re.M)
    assert sorted(rows) == list_methods() == listed
    assert f"kdzoo has {len(list_methods())} distillation methods" in index
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/methods/README.md" in readme and "| `kd` | Hinton" not in readme  # a link, not a second list
    assert f"\n{len(list_methods())} methods: " in readme


@pytest.mark.parametrize("name", list_methods())
def test_page_cites_the_paper_gives_a_formula_and_commands_that_parse(name):
    authors, title, venue = citation(method_class(name))
    assert authors and title and re.search(r"\b(19|20)\d\d\b", venue), f"{name}: paper = 'Authors. Title. Venue Year'"
    page = render()[f"{name}.md"]
    assert "```text" in page.split("## What it computes", 1)[1].split("## Options", 1)[0], \
        f"{name}'s module docstring needs the loss as an indented formula"
    for command in commands(name):
        assert f"```bash\n{command}\n```" in page
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.method == name and args.command == "distill"
