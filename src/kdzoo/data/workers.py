"""How many DataLoader worker processes streamed datasets use by default."""

from __future__ import annotations

import os
import sys


def available_cpus() -> int:
    """CPUs this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_num_workers() -> int:
    """Half the CPUs, at most 8 on Linux and 4 elsewhere (Windows and macOS start workers by spawning
    a fresh interpreter, which costs more; kdzoo keeps them alive across epochs); 0 on one CPU."""
    cap = 8 if sys.platform.startswith("linux") else 4
    return min(cap, available_cpus() // 2)
