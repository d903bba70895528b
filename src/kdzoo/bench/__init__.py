"""Benchmarks: grids of teacher/student pairs x methods x seeds (``kdzoo bench``), and reports that
lay the results out like the papers' tables, beside the published numbers (``kdzoo report``)."""

from .grid import load_grid, packaged_grids
from .report import write_report
from .runner import run_bench

__all__ = ["load_grid", "packaged_grids", "run_bench", "write_report"]
