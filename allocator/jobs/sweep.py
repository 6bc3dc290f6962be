"""The sweep job (``allocator sweep``, ``notebooks/sweep.ipynb``): a grid of configs, backtested.

The grid runs on Dask distributed (:func:`allocator.research.cluster.run_sweep`); this module keeps
the results table as Parquet beside the run's archived notebook and shapes it for the notebook.
"""

from __future__ import annotations

from pathlib import Path

from allocator.notebook.sidecar import save_table
from allocator.research.cluster import SweepResult, run_sweep

__all__ = ["SweepResult", "run_sweep", "save_results"]


def save_results(result: SweepResult, path: Path | str | None = None) -> Path | None:
    """Write the results table as Parquet: to ``path``, or beside the archived notebook."""
    if path is None:
        return save_table(result.table, "results")
    path = Path(path)
    result.table.to_parquet(path, index=False)
    return path
