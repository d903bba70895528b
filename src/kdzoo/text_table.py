"""Plain text: tables of left-aligned columns under a header and a rule (``kdzoo list``, the demo, ``kdzoo
temperature``), Markdown tables (``kdzoo report``'s paired gains), and counts with their noun (``1 epoch``)."""

from __future__ import annotations


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """``header`` and ``rows`` as columns two spaces apart, each as wide as its widest cell; trailing spaces removed."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """``header`` and ``rows`` as a Markdown (GitHub) table, a ``|`` in a cell escaped."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), "|---" * len(header) + "|", *map(line, rows)])


def plural(count: int | float, noun: str) -> str:
    """``count`` and ``noun``, the noun plural (an added ``s``) unless the count is 1: ``1 epoch``, ``4 epochs``."""
    number = str(count) if isinstance(count, int) else f"{count:g}"
    return f"{number} {noun}" + ("" if count == 1 else "s")
