"""One run of a grid, as the planner makes it and the runner and the report read it: :class:`Job`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import RunConfig
from .grid_file import Grid

TEACHER, VANILLA, DISTILL, SELF = "teacher", "vanilla", "distill", "self"


@dataclass
class Job:
    """One run of the grid and what the report needs to place it (also saved as ``bench.json``)."""

    name: str                      # run-folder name inside the output folder
    role: str                      # teacher, vanilla, distill, or self (self-distillation, no teacher)
    label: str                     # report row, e.g. "kd" or "kd T=4"
    variant: str                   # the method's label without axis values
    pair: tuple[str, str] | None   # (teacher, student) of distill runs
    seed: int
    axes: dict[str, Any]
    order: list[int]               # row order in the report
    cfg: RunConfig
    after: tuple[str, ...] = ()    # the jobs that must end first: the teacher to train, the teacher cache's filler

    def info(self, grid: Grid) -> dict[str, Any]:
        return {"grid": grid.name, "role": self.role, "label": self.label, "variant": self.variant,
                "pair": list(self.pair) if self.pair else None, "seed": self.seed, "axes": self.axes,
                "order": self.order, "pairs": [list(p) for p in grid.pairs], "published": grid.published}
