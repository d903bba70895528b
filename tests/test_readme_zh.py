"""The Chinese documentation: README.zh-CN.md translates the README's set-up, learning and use sections (both name
the same commands); the pages of docs/zh-CN/ are linked from it, their commands parse with the real CLI, the
RepDistiller flag table names kdzoo flags that exist, and the methods page has a section for every method."""

import re
import shlex
from functools import cache
from pathlib import Path

import pytest
import yaml

from kdzoo.commands import build_parser
from kdzoo.config import packaged_configs
from kdzoo.errors import ConfigError
from kdzoo.methods import list_methods, method_class
from kdzoo.methods.options import check_method_options, declared_options

ROOT = Path(__file__).resolve().parents[1]
ZH = ROOT / "docs" / "zh-CN"
PAGES = ("migrate-from-repdistiller.md", "methods.md")
#: The flags of RepDistiller's train_student.py that the migration page must map.
REPDISTILLER_FLAGS = {"--distill", "-r", "-a", "-b", "--kd_T", "--path_t", "--model_s", "--learning_rate", "--epochs",
                      "--batch_size", "--trial"}
#: RepDistiller's --distill choices.
REPDISTILLER_METHODS = {"kd", "hint", "attention", "similarity", "correlation", "vid", "rkd", "pkt", "abound", "factor",
                        "fsp", "nst", "crd", "kdsvd"}
#: The README's sections that README.zh-CN.md translates (a "Use" section ends at its first subsection).
TRANSLATED = ("Set up", "Learn KD with kdzoo", "Use", "Where a teacher comes from")
COMMAND = re.compile(r"^(?:kdzoo|make|pip) ")


def commands(markdown: str) -> list[str]:
    """Shell commands: lines of fenced blocks and inline code spans that start with kdzoo, make or pip (comments
    dropped)."""
    found = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", markdown, re.S):
        found += [line.split("  #")[0].rstrip() for line in block.splitlines() if COMMAND.match(line)]
    prose = re.sub(r"```.*?```", "", markdown, flags=re.S)
    found += [span for span in re.findall(r"`([^`\n]+)`", prose) if COMMAND.match(span)]
    return sorted(found)


def sections(markdown: str, titles: tuple[str, ...]) -> str:
    parts = re.split(r"^(## .*)$", markdown, flags=re.M)
    chosen = [heading + body for heading, body in zip(parts[1::2], parts[2::2], strict=True)
              if heading[3:].strip() in titles]
    return "".join(part.split("\n### ", 1)[0] for part in chosen)


def test_the_translation_names_the_same_commands_as_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    chinese = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    english = sections(readme, TRANSLATED)
    assert all(f"\n## {title}\n" in readme for title in TRANSLATED)
    assert commands(english) and commands(chinese) == commands(english)
    assert "(README.zh-CN.md)" in readme and "(README.md)" in chinese


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
    readme = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    assert sorted(p.name for p in ZH.glob("*.md")) == sorted(PAGES)
    assert all(f"(docs/zh-CN/{name})" in readme for name in PAGES)


@pytest.mark.parametrize("name", PAGES)
def test_every_kdzoo_command_of_the_chinese_pages_parses(name):
    found = [c for c in commands(page(name)) if c.startswith("kdzoo ")]
    assert found
    for command in found:
        try:
            build_parser().parse_args(shlex.split(command)[1:])
        except SystemExit:
            pytest.fail(f"{name}: `{command}` does not parse")
    configs = re.findall(r"--config ([\w/]+)", page(name))
    assert set(configs) <= set(packaged_configs()), f"{name}: not packaged: {set(configs) - set(packaged_configs())}"


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
    text = page("methods.md")
    parts = re.split(r"^### `([a-z_]+)`$", text, flags=re.M)
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
