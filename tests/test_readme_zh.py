"""The Chinese documentation: each Chinese page mirrors its English page (README.zh-CN.md the front page, the
tutorial and the beginner's guide pages of docs/zh-CN/ theirs) with the same commands, the same sections and the
same numbers; the Chinese pages are linked from README.zh-CN.md; every kdzoo command of the front pages and the
guide, in both languages, parses with the real CLI; their links lead to files that exist; the RepDistiller flag table
names kdzoo flags that exist, and the methods page has a section for every method."""

import argparse
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from kdzoo.commands import build_parser
from kdzoo.config import packaged_configs
from kdzoo.docgen import zh_methods
from kdzoo.errors import ConfigError
from kdzoo.methods import list_methods, method_class
from kdzoo.methods.options import check_method_options, declared_options

ROOT = Path(__file__).resolve().parents[1]
ZH = ROOT / "docs" / "zh-CN"
GUIDE = ROOT / "docs" / "guide"
#: Each English page and the Chinese page that says the same thing.
PAIRS = (("README.md", "README.zh-CN.md"),
         ("docs/tutorial.md", "docs/zh-CN/tutorial.md"),
         ("docs/guide/teachers.md", "docs/zh-CN/guide/teachers.md"),
         ("docs/guide/bench-report-temperature.md", "docs/zh-CN/guide/bench-report-temperature.md"),
         ("docs/guide/bad-input-and-resuming.md", "docs/zh-CN/guide/bad-input-and-resuming.md"))
#: The Chinese pages written in Chinese from the start (not translations; the migration page has an English
#: counterpart written apart, docs/guide/coming-from-repdistiller.md).
PAGES = ("migrate-from-repdistiller.md", "methods.md")
#: The pages a user reads: the front pages, the guide and the Chinese pages.
USER_PAGES = sorted({ROOT / "README.md", ROOT / "README.zh-CN.md", *GUIDE.rglob("*.md"), *ZH.rglob("*.md")})
#: The flags of RepDistiller's train_student.py that the migration page must map.
REPDISTILLER_FLAGS = {"--distill", "-r", "-a", "-b", "--kd_T", "--path_t", "--model_s", "--learning_rate", "--epochs",
                      "--batch_size", "--trial"}
#: RepDistiller's --distill choices.
REPDISTILLER_METHODS = {"kd", "hint", "attention", "similarity", "correlation", "vid", "rkd", "pkt", "abound", "factor",
                        "fsp", "nst", "crd", "kdsvd"}
COMMAND = re.compile(r"^(?:kdzoo|make|pip|python|torchrun|sh) ")


def commands(markdown: str) -> list[str]:
    """Shell commands: lines of fenced blocks (continued lines joined) and inline code spans that start with kdzoo,
    make, pip, python, torchrun or sh (comments dropped)."""
    found = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", markdown, re.S):
        block = re.sub(r"\\\n\s*", "", block)
        found += [line.split("  #")[0].rstrip() for line in block.splitlines() if COMMAND.match(line)]
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    found += [span for span in re.findall(r"`([^`\n]+)`", prose) if COMMAND.match(span)]
    return sorted(found)


def outline(markdown: str) -> list[tuple[int, list[str]]]:
    """The page's shape: each heading's level and code spans, then one entry per fenced block and per table (its
    number of rows)."""
    shape = [(len(level), re.findall(r"`([^`]+)`", title))
             for level, title in re.findall(r"^(#+) (.*)$", re.sub(r"```.*?```", "", markdown, flags=re.S), re.M)]
    shape += [(0, [lang]) for lang in re.findall(r"^```(\w+)\n", markdown, re.M)]
    return shape + [(-1, [str(len(table))]) for table in tables(markdown)]


def numbers(markdown: str) -> set[str]:
    """The numbers of the prose and tables (code, which commands() compares, and link targets left out; 8 000 is
    8000)."""
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    prose = re.sub(r"`[^`\n]+`|\]\([^)]*\)", " ", prose)
    prose = re.sub(r"(?<=\d) (?=\d{3}\b)", "", prose)
    return set(re.findall(r"(?<![\w.\-/])\d+(?:\.\d+)?(?![A-Za-z0-9_])", prose, re.A))


def read(path: str | Path) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


@pytest.mark.parametrize(("english", "chinese"), PAIRS)
def test_the_chinese_page_names_the_same_commands(english, chinese):
    assert commands(read(english)) and commands(read(chinese)) == commands(read(english))


@pytest.mark.parametrize(("english", "chinese"), PAIRS)
def test_the_chinese_page_has_the_same_sections_blocks_and_tables(english, chinese):
    assert outline(read(chinese)) == outline(read(english))


@pytest.mark.parametrize(("english", "chinese"), PAIRS)
def test_the_chinese_page_states_the_same_numbers(english, chinese):
    en, zh = numbers(read(english)), numbers(read(chinese))
    assert en == zh, f"only in {english}: {sorted(en - zh)}; only in {chinese}: {sorted(zh - en)}"


@pytest.mark.parametrize(("english", "chinese"), PAIRS)
def test_the_two_pages_link_each_other(english, chinese):
    def links(page: str) -> set[Path]:
        return {((ROOT / page).parent / target).resolve() for target in re.findall(r"\]\(([^)#]+)", read(page))}
    assert (ROOT / chinese).resolve() in links(english) and (ROOT / english).resolve() in links(chinese)


@pytest.mark.parametrize("page", USER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file_that_exists(page):
    targets = [t for t in re.findall(r"\]\(([^)#\s]+)", page.read_text(encoding="utf-8")) if "://" not in t]
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_front_page_and_the_guide_index_link_every_guide_page():
    pages = sorted(p.name for p in GUIDE.glob("*.md") if p.name != "README.md")
    assert all(f"(docs/guide/{name})" in read("README.md") for name in pages)
    assert all(f"]({name})" in read("docs/guide/README.md") for name in pages)


def page(name: str) -> str:
    return (ZH / name).read_text(encoding="utf-8")


@cache
def distill_flags() -> set[str]:
    """Every option string of ``kdzoo distill`` (from the real parser)."""
    subparsers = next(a for a in build_parser()._actions if a.choices and "distill" in a.choices)
    return set(subparsers.choices["distill"]._option_string_actions)


def tables(markdown: str) -> list[list[list[str]]]:
    """Every Markdown table as rows of cells (the header first, the ``|---|`` line left out)."""
    found, rows = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-: "):
                rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            found, rows = found + [rows], []
    return found


def spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_the_chinese_pages_are_linked_from_the_chinese_readme():
    readme = read("README.zh-CN.md")
    written = sorted(p.relative_to(ROOT).as_posix() for p in ZH.rglob("*.md"))
    assert written == sorted([f"docs/zh-CN/{name}" for name in PAGES] + [zh for _, zh in PAIRS[1:]]
                             + ["docs/zh-CN/guide/README.md"])
    assert all(f"({path})" in readme for path in written)


def kdzoo_arguments(command: str) -> list[list[str]]:
    """The argument lists a command hands kdzoo's parser (none for make, pip and scripts): ``kdzoo ...``, ``python -m
    kdzoo ...`` and ``torchrun ... -m kdzoo ...``; ``a | b | c`` alternatives of the last word each give one, and a
    trailing ``...`` (more options of the user's) is left out."""
    tokens = shlex.split(command)
    if tokens[0] == "kdzoo":
        tokens = tokens[1:]
    elif "-m" in tokens and tokens[tokens.index("-m") + 1] == "kdzoo":
        tokens = tokens[tokens.index("-m") + 2:]
    else:
        return []
    tokens = tokens[:-1] if tokens[-1:] == ["..."] else tokens
    if not tokens:
        return []
    if "|" not in tokens:
        return [tokens]
    first = tokens.index("|") - 1
    return [tokens[:first] + [word] for word in tokens[first:] if word != "|"]


def fenced_commands(markdown: str) -> list[str]:
    return commands(re.sub(r"`[^`\n]+`", "", re.sub(r"```(?!sh|bash).*?```", "", markdown, flags=re.S)))


def subcommand(args: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser of the (sub)command that ``args`` start with, and the words that name it."""
    parser, named = build_parser(), []
    while len(named) < len(args):
        subparsers = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if subparsers is None or args[len(named)] not in subparsers.choices:
            break
        parser = subparsers.choices[args[len(named)]]
        named.append(args[len(named)])
    return parser, named


@pytest.mark.parametrize("path", USER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_kdzoo_command_of_the_front_pages_and_the_guide_parses(path):
    """A command in a shell block parses whole; one named in the prose (`kdzoo eval`, `kdzoo bench --budget`) names a
    command that exists and options it has."""
    text = path.read_text(encoding="utf-8")
    whole = [args for command in fenced_commands(text) for args in kdzoo_arguments(command)]
    named = [args for command in commands(text) for args in kdzoo_arguments(command)]
    for args in whole:
        try:
            build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"{path.relative_to(ROOT)}: `kdzoo {shlex.join(args)}` does not parse")
    for args in named:
        parser, words = subcommand(args)
        assert words, f"{path.relative_to(ROOT)}: `kdzoo {shlex.join(args)}` names no kdzoo command"
        unknown = [a.split("=")[0] for a in args if a.startswith("--") and a.split("=")[0] not in
                   parser._option_string_actions]
        assert not unknown, f"{path.relative_to(ROOT)}: `kdzoo {shlex.join(args)}`: no option {unknown}"
    configs = re.findall(r"--config ([\w/]*\w)(?![\w./])", text)  # not my.yaml, nor cifar100/...
    unknown = set(configs) - set(packaged_configs())
    assert not unknown, f"{path.name}: not packaged: {unknown}"


def test_the_flag_table_maps_repdistillers_flags_to_kdzoo_flags_that_exist():
    text = page("migrate-from-repdistiller.md")
    flags = next(t for t in tables(text) if "RepDistiller" in t[0][0] and "kdzoo" in t[0][1])[1:]
    mapped = {span.split()[0] for row in flags for span in spans(row[0])}
    assert REPDISTILLER_FLAGS <= mapped
    options = {k for n in list_methods() for k in declared_options(method_class(n))}
    for row in flags:
        for span in spans(row[1]):
            tokens = shlex.split(span)
            assert tokens and tokens[0].startswith("-"), row
            try:
                build_parser().parse_args(["distill", *tokens])
            except SystemExit:
                pytest.fail(f"`kdzoo distill {span}` does not parse")
            for i, token in enumerate(tokens):
                if token.startswith("-"):
                    assert token in distill_flags(), f"kdzoo distill has no {token}"
                if i and tokens[i - 1] == "--method-opt":
                    assert token.split("=")[0] in options, f"no method has the option {token}"
    methods = next(t for t in tables(text) if spans(t[0][0]) == ["--distill"])[1:]
    pairs = [(spans(row[i])[0], spans(row[i + 1])[0]) for row in methods for i in (0, 2)]
    assert {old for old, _ in pairs} == REPDISTILLER_METHODS
    assert {new for _, new in pairs} <= set(list_methods())


def test_the_methods_page_has_a_section_per_method_with_its_defaults():
    check_sections(page("methods.md"))


def test_the_methods_pages_generated_sections_are_up_to_date():
    """The part after the hand-written sections is what ``python -m kdzoo.docgen.zh_methods`` (``make docs``)
    writes: empty while every method has its Chinese paragraph."""
    text = page("methods.md")
    assert zh_methods.render(text) == text, "regenerate: python -m kdzoo.docgen.zh_methods"


def test_a_method_without_a_chinese_paragraph_gets_the_english_summary_marked_as_such():
    """A method added since the page was written (here SDD, its paragraph taken out) gets a generated section with
    the English one-line summary, marked, its default weights and a link to its English page."""
    text = re.sub(r"^### `sdd`\n.*?(?=^##)", "", page("methods.md"), flags=re.M | re.S)
    assert "### `sdd`" not in text
    rendered = zh_methods.render(text)
    generated = rendered.split(zh_methods.BEGIN, 1)[1]
    pending = sorted(set(list_methods()) - zh_methods.written(text))
    assert "sdd" in pending and re.findall(r"^### `([a-z_0-9]+)`$", generated, re.M) == pending
    assert f"{zh_methods.PENDING}{method_class('sdd').__doc__.splitlines()[0]}" in generated
    assert "(../methods/sdd.md)" in generated and zh_methods.render(rendered) == rendered
    check_sections(rendered)


def check_sections(text: str) -> None:
    """One ``### `name``` section per method, each stating the default weights and only options that exist."""
    parts = re.split(r"^### `([a-z_0-9]+)`$", text, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    assert sorted(sections) == list_methods()
    for name, section in sections.items():
        cls, weights = method_class(name), method_class(name).default_weights
        said = [f"γ = {weights.gamma:g}", f"β = {weights.beta:g}"] + ([f"α = {weights.alpha:g}"] * bool(weights.alpha))
        assert all(s in section for s in said), f"{name}: state the default weights {said}"
        for key, value in re.findall(r"`([a-z_0-9]+)=([^`]+)`", section):
            assert key in declared_options(cls), f"{name} has no option {key}"
            try:
                check_method_options(cls, name, {key: yaml.safe_load(value)})
            except ConfigError as exc:
                pytest.fail(f"{name}: `{key}={value}`: {exc}")
