"""The method pages (docs/methods/) are what ``python -m kdzoo.docgen.methods`` writes from the registry."""

import re
import shlex
import sys
from functools import cache
from pathlib import Path

import pytest

from kdzoo.commands import build_parser
from kdzoo.commands.list import methods as list_methods_text
from kdzoo.docgen import methods as method_docs
from kdzoo.docgen.methods import citation, commands, comparison
from kdzoo.methods import list_methods, method_class

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "methods"
render = cache(method_docs.render)

#: ``paper``: "Surname, Surname. Title. Venue Year", every author by surname (no "et al."), a venue and its year.
AUTHOR = r"(?:[a-z]+ )*[A-Z][\w'-]*(?: [A-Z][\w'-]*)*"  # Chen, de Hoog
PAPER = re.compile(rf"{AUTHOR}(?:, {AUTHOR})*\. .+\. [A-Za-z][\w-]*(?: [\w-]+)* (19|20)\d\d")


def test_checked_in_pages_are_the_generated_ones():
    pages = render()
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(pages), "regenerate: python -m kdzoo.docgen.methods"
    for name, text in pages.items():
        assert (DOCS / name).read_text(encoding="utf-8") == text, \
            f"docs/methods/{name} drifted: python -m kdzoo.docgen.methods"


def test_every_method_has_a_page_and_an_index_row_as_kdzoo_list_methods():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| \[`([a-z_0-9]+)`\]\(\1\.md\) \|", index, re.M)
    listed = re.findall(r"^([a-z_0-9]+)$", list_methods_text(), re.M)
    assert sorted(rows) == list_methods() == listed
    assert f"kdzoo has {len(list_methods())} distillation methods" in index
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/methods/README.md" in readme and "| `kd` | Hinton" not in readme  # a link, not a second list
    assert f"\n{len(list_methods())} methods: " in readme


def test_published_tables_label_the_epoch_of_every_number():
    """kd.md's logit-standardization table puts RepDistiller's last-epoch teacher and vanilla numbers beside
    best-epoch ones: each column says which."""
    page = render()["kd.md"]
    assert "Metric: last epoch. " in page and "Metric: best epoch. " in page
    assert "Metric: best epoch, except where a column says otherwise." in page
    assert "| pair | teacher (last epoch) | vanilla (last epoch) | kd (best epoch) | kd+ls (best epoch) |" in page
    assert "| pair | teacher | vanilla | kd |" in page  # RepDistiller's own tables: one metric, said once


@pytest.mark.parametrize("name", list_methods())
def test_citation_names_the_papers_authors_in_order(name):
    """The method's own ``paper`` string is the one place its authors are written: it names them all, and the
    module docstring that lists authors lists the same ones."""
    paper = method_class(name).paper
    assert PAPER.fullmatch(paper) and "et al" not in paper, \
        f"{name}.paper = {paper!r}: write 'Surname, Surname. Title. Venue Year' with every author"
    authors, _, _ = citation(method_class(name))
    first_line = sys.modules[method_class(name).__module__].__doc__.splitlines()[0].replace(" & ", ", ")
    if ", " in authors and authors.split(", ")[1] in first_line:  # a docstring that lists the authors lists them all
        assert authors in first_line, f"{name}'s module docstring: {first_line}"


@pytest.mark.parametrize("name", list_methods())
def test_page_cites_the_paper_gives_a_formula_and_commands_that_parse(name):
    authors, title, venue = citation(method_class(name))
    assert authors and title and re.search(r"\b(19|20)\d\d\b", venue), f"{name}: paper = 'Authors. Title. Venue Year'"
    page = render()[f"{name}.md"]
    assert "```text" in page.split("## What it computes", 1)[1].split("## Options", 1)[0], \
        f"{name}'s module docstring needs the loss as an indented formula"
    (fashion, cifar), block = commands(name), "\n".join(comparison(name))
    assert f"```bash\n{block}\n```" in page and f"```bash\n{cifar}\n```" in page
    for command in (fashion, cifar):
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.method == name and args.command == "distill"


@pytest.mark.parametrize("name", list_methods())
def test_the_fashion_mnist_commands_run_the_tutorials_budget_beside_a_vanilla_student(name):
    """docs/tutorial.md's budget (batch 64, cosine), the vanilla student in the same folder, and a report of both."""
    train, distill, report = (build_parser().parse_args(shlex.split(c)[1:]) for c in comparison(name))
    for args in (train, distill):
        assert (args.dataset, args.train_subset, args.test_subset, args.batch_size, args.epochs, args.schedule) == (
            "fashion_mnist", 4000, 1000, 64, 4, "cosine")
        assert args.output_dir == f"runs/{name}"
    assert (train.command, train.model, distill.model, train.name) == ("train", "resnet8", "resnet8", "vanilla")
    assert report.command == "report" and report.runs_dir == f"runs/{name}"
