"""A module docstring (plain text with reStructuredText roles and literals) as Markdown."""

from __future__ import annotations

import inspect
import re

ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")
LITERAL = re.compile(r"``([^`]+)``")
CODE_SPAN = re.compile(r"(`[^`]*`)")


def _inline(text: str) -> str:
    """Roles and double-backtick literals as code spans; ``<`` outside code escaped (GitHub reads it as HTML)."""
    text = ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`", text)
    text = LITERAL.sub(r"`\1`", text)
    return "".join(part if part.startswith("`") else part.replace("<", "&lt;") for part in CODE_SPAN.split(text))


def docstring_markdown(doc: str) -> str:
    """Paragraphs stay paragraphs (a trailing ``::`` becomes ``:``); indented blocks (formulas, examples) become
    fenced code blocks."""
    blocks, current = [], []
    for line in inspect.cleandoc(doc).splitlines() + [""]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(current)
            current = []
    out = []
    for block in blocks:
        if all(line.startswith("    ") for line in block):
            out.append("```text\n" + "\n".join(line[4:] for line in block) + "\n```")
        else:
            text = _inline("\n".join(block))
            out.append(text[:-1] if text.endswith("::") else text)
    return "\n\n".join(out) + "\n"
