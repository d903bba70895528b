"""The support table of ``docs/guide/any-network.md`` (which method runs on which kind of network), rewritten from
:func:`kdzoo.support_table.support_table` (``kdzoo list support``: every method tried on every family)::

    python -m kdzoo.docgen.support      # run from the repository root
"""

from __future__ import annotations

from pathlib import Path

from ..atomic_text import write_text_atomic
from ..errors import KdzooError
from ..support_table import support_table

PAGE = Path("docs/guide/any-network.md")
MARKER = "<!-- support-table:"


def with_table(page: str, table: str) -> str:
    """``page`` with the table after its marker line replaced by ``table``."""
    if MARKER not in page:
        raise KdzooError(f"{PAGE} has no {MARKER} ... --> line before the support table; restore it.")
    head, rest = page.split(MARKER, 1)
    marker_line, old = rest.split("\n", 1)
    after = old.split("\n\n", 1)[1] if "\n\n" in old else ""
    return f"{head}{MARKER}{marker_line}\n{table}\n\n{after}"


def write(path: Path = PAGE) -> Path:
    write_text_atomic(path, with_table(path.read_text(encoding="utf-8"), support_table()))
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
