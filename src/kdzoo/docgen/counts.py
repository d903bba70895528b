"""The number of methods where the front pages and the tutorials state it in prose: rewritten from the registry.

    python -m kdzoo.docgen.counts      # run from the repository root
"""

from __future__ import annotations

import re
from pathlib import Path

from ..atomic_text import write_text_atomic
from ..errors import KdzooError
from ..methods import list_methods

#: Each page and the phrase that states the count (the count is the group).
PHRASES = {Path("README.md"): r"^(\d+) methods: ", Path("README.zh-CN.md"): r"^共 (\d+) 种方法：",
           Path("docs/guide/methods.md"): r"^(\d+) methods: ",
           Path("docs/guide/README.md"): r"each of the (\d+) methods",
           Path("docs/tutorial.md"): r"`kdzoo list methods` names all (\d+),",
           Path("docs/zh-CN/tutorial.md"): r"`kdzoo list methods` 列出全部 (\d+) 个方法"}


def with_count(text: str, phrase: str, count: int) -> str:
    """``text`` with the number of ``phrase`` (a regular expression, the number its group) set to ``count``."""
    found = list(re.finditer(phrase, text, re.M))
    if len(found) != 1:
        raise KdzooError(f"expected the phrase {phrase!r} once, found it {len(found)} times; restore it.")
    start, end = found[0].span(1)
    return f"{text[:start]}{count}{text[end:]}"


def write() -> list[Path]:
    count = len(list_methods())
    for path, phrase in PHRASES.items():
        text = path.read_text(encoding="utf-8")
        if with_count(text, phrase, count) != text:
            write_text_atomic(path, with_count(text, phrase, count))
    return list(PHRASES)


if __name__ == "__main__":
    print("counted in " + ", ".join(map(str, write())))
