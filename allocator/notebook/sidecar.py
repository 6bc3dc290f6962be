"""Files a run keeps beside its archived notebook: large tables as Parquet, not glued JSON.

The runner tells the kernel where the run's notebook is archived (``ALLOCATOR_RUN_NOTEBOOK``, set
for the kernel's process only); :func:`sidecar_path` then names ``<stem>_<name>`` beside it, e.g.
``runs/2026/11/27/sweep_2026-11-27_20261127T150000Z_results.parquet``. A notebook opened by hand
in JupyterLab (no runner) gets None and keeps its tables in memory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

ENV_RUN_NOTEBOOK = "ALLOCATOR_RUN_NOTEBOOK"


def sidecar_path(name: str) -> Path | None:
    """``<archived stem>_<name>`` beside the run's archived notebook, or None outside a run."""
    notebook = os.environ.get(ENV_RUN_NOTEBOOK)
    if not notebook:
        return None
    path = Path(notebook)
    return path.with_name(f"{path.stem}_{name}")


def save_table(frame: pd.DataFrame, name: str) -> Path | None:
    """Write ``frame`` as Parquet to :func:`sidecar_path` (``name`` without suffix); its path."""
    path = sidecar_path(f"{name}.parquet")
    if path is not None:
        frame.to_parquet(path, index=False)
    return path


def sidecars_of(notebook: Path) -> list[Path]:
    """The sidecar files of an archived notebook."""
    notebook = Path(notebook)
    return sorted(p for p in notebook.parent.glob(f"{notebook.stem}_*") if p.is_file())


@contextlib.contextmanager
def run_environment(notebook: Path) -> Iterator[None]:
    """Set ``ALLOCATOR_RUN_NOTEBOOK`` for a kernel started inside (it inherits it); restore it."""
    before = os.environ.get(ENV_RUN_NOTEBOOK)
    os.environ[ENV_RUN_NOTEBOOK] = str(Path(notebook).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENV_RUN_NOTEBOOK, None)
        else:
            os.environ[ENV_RUN_NOTEBOOK] = before
