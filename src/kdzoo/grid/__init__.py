"""Accuracy grids: teacher/student pairs x methods x seeds, run by ``kdzoo bench`` (packaged grids are named
``bench/NAME``, files in ``configs/bench/``), and reports that lay the results out like the papers' tables,
beside the published numbers (``kdzoo report``). Speed benchmarks are the scripts in the repository's
``benchmarks/`` folder, not this package."""

from .grid_file import load_grid, packaged_grids
from .report import write_report
from .runner import run_grid

__all__ = ["load_grid", "packaged_grids", "run_grid", "write_report"]
