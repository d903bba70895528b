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
from kdzoo.docgen.methods import citation, commands
from kdzoo.methods import list_methods, method_class

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "methods"
render = cache(method_docs.render)

#: The papers' author lists (surnames, in order) and venues, from /work/shared/reference/methods.md ("Paper:"
#: lines and the newer methods' table) and the papers' title pages (CTKD, SimKD, Phuong & Lampert).
AUTHORS = {
    "kd": ("Hinton, Vinyals, Dean", "NIPS-W 2014"),
    "fitnet": ("Romero, Ballas, Kahou, Chassang, Gatta, Bengio", "ICLR 2015"),
    "at": ("Zagoruyko, Komodakis", "ICLR 2017"),
    "sp": ("Tung, Mori", "ICCV 2019"),
    "vid": ("Ahn, Hu, Damianou, Lawrence, Dai", "CVPR 2019"),
    "rkd": ("Park, Kim, Lu, Cho", "CVPR 2019"),
    "pkt": ("Passalis, Tefas", "ECCV 2018"),
    "ab": ("Heo, Lee, Yun, Choi", "AAAI 2019"),
    "ft": ("Kim, Park, Kwak", "NeurIPS 2018"),
    "fsp": ("Yim, Joo, Bae, Kim", "CVPR 2017"),
    "nst": ("Huang, Wang", "arXiv 2017"),
    "crd": ("Tian, Krishnan, Isola", "ICLR 2020"),
    "kdsvd": ("Lee, Kim, Song", "ECCV 2018"),
    "reviewkd": ("Chen, Liu, Zhao, Jia", "CVPR 2021"),
    "mlkd": ("Jin, Wang, Lin", "CVPR 2023"),
    "sdd": ("Wei, Luo, Luo", "CVPR 2024"),
    "ctkd": ("Li, Li, Yang, Zhao, Song, Luo, Li, Yang", "AAAI 2023"),
    "simkd": ("Chen, Mei, Zhang, Wang, Feng, Chen", "CVPR 2022"),
    "exit_kd": ("Phuong, Lampert", "ICCV 2019"),
}
#: Where the reference gives only "First et al.": the first author and the venue.
FIRST_AUTHORS = {
    "cc": ("Peng", "ICCV 2019"), "dkd": ("Zhao", "CVPR 2022"), "dist": ("Huang", "NeurIPS 2022"),
    "ofd": ("Heo", "ICCV 2019"), "pefd": ("Chen", "NeurIPS 2022"), "mgd": ("Yang", "ECCV 2022"),
    "nkd": ("Yang", "ICCV 2023"), "uskd": ("Yang", "ICCV 2023"), "byot": ("Zhang", "ICCV 2019"),
}


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
    authors, _, venue = citation(method_class(name))
    assert name in AUTHORS or name in FIRST_AUTHORS, f"add {name}'s paper to AUTHORS (or FIRST_AUTHORS)"
    if name in AUTHORS:
        assert (authors, venue) == AUTHORS[name]
    else:
        assert (authors.split(", ")[0], venue) == FIRST_AUTHORS[name]
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
    for command in commands(name):
        assert f"```bash\n{command}\n```" in page
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.method == name and args.command == "distill"
