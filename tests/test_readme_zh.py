"""README.zh-CN.md translates the README's set-up, learning and use sections: both name the same commands."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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
