"""The machine's memory as the bound of what one option may make kdzoo allocate (a dataset generated in memory,
batches of large images): the estimate is checked before allocating, so an option that asks for more than the
machine has is refused by name instead of ending in the allocator's traceback."""

from __future__ import annotations

import os

from .errors import ConfigError

#: The bound where the operating system does not tell its physical memory (``os.sysconf`` lacks
#: ``SC_PHYS_PAGES``, e.g. on Windows): 64 GB, a large workstation's.
FALLBACK_BYTES = 64 * 10**9


def physical_memory() -> int:
    """This machine's physical memory in bytes (pages x page size), or :data:`FALLBACK_BYTES` where unknown."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return FALLBACK_BYTES
    return pages * size if pages > 0 and size > 0 else FALLBACK_BYTES


def size_text(nbytes: float) -> str:
    """``12.3 GB``, ``4.92 EB``: a byte count in the largest unit it reaches (from MB)."""
    unit, scale = next((u, s) for u, s in (("EB", 1e18), ("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6))
                       if nbytes >= s or u == "MB")
    return f"{nbytes / scale:.3g} {unit}"


def check_fits_memory(what: str, nbytes: int, fix: str) -> None:
    """Refuse, with a :class:`ConfigError` naming ``what`` (the option and the tensors it sizes), its estimated
    ``nbytes`` and the bound, an allocation larger than the machine's physical memory; ``fix`` says what to do."""
    bound = physical_memory()
    if nbytes > bound:
        raise ConfigError(f"{what} would take about {size_text(nbytes)}, more than this machine's memory "
                          f"({size_text(bound)}). {fix}")
