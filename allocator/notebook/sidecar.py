"""Files a run keeps beside its archived notebook: large tables as Parquet, not glued JSON.

The runner tells the kernel where the run's notebook is archived (``ALLOCATOR_RUN_NOTEBOOK``, set
for the kernel's process only); :func:`sidecar_path` then names ``<stem>_<name>`` beside it, e.g.
``runs/2026/11/27/sweep_2026-11-27_20261127T150000Z_results.parquet``. A notebook opened by hand
in JupyterLab (no runner) gets None and keeps its tables in memory.

:func:`glue_table` is ``scrapbook.glue`` for a large table: inside a run it writes the table as
compact Parquet beside the notebook and glues a small reference instead, ``{"sidecar":
"<file name>", "format": "parquet", "rows": N, "columns": [...], "sha256": "<digest>"}``. A
20-year backtest's daily values and trades take 0.3 MB that way, against 0.6 MB as scrapbook's
base64 Parquet inside the notebook. :func:`read_scraps` reads an archived notebook's scraps with
those references replaced by their tables, so a reader gets the same values either way. The
file's SHA-256 is in the notebook, so the notebook's own checksum (``allocator runs --verify``)
vouches for its sidecars too: :func:`read_scraps` refuses a sidecar that changed, and
:func:`sidecar_problems` (``runs --verify`` and the review's ``unverified``) lists them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allocator.shell.atomic import atomic_path
from allocator.shell.digest import sha256_of

if TYPE_CHECKING:
    import pandas as pd

ENV_RUN_NOTEBOOK = "ALLOCATOR_RUN_NOTEBOOK"
#: zstd level of the Parquet sidecars: small files that are written once and read rarely.
PARQUET_ZSTD_LEVEL = 19
#: The keys of a scrap that stands for a sidecar table (:func:`glue_table`).
REFERENCE_KEYS = frozenset({"sidecar", "format", "rows", "columns", "sha256"})
#: The output type scrapbook glues a JSON scrap as.
SCRAP_MIME = "application/scrapbook.scrap.json+json"


def sidecar_path(name: str) -> Path | None:
    """``<archived stem>_<name>`` beside the run's archived notebook, or None outside a run."""
    notebook = os.environ.get(ENV_RUN_NOTEBOOK)
    if not notebook:
        return None
    path = Path(notebook)
    return path.with_name(f"{path.stem}_{name}")


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` (its columns, not its index) as compact, lossless Parquet at ``path``.

    zstd compression; float columns byte-stream-split (their bytes grouped by position, which
    compresses prices and values about 25 % better) instead of dictionary-encoded; other columns
    dictionary-encoded. Any Parquet reader of the last years (pyarrow, pandas, DuckDB, Spark)
    reads it.
    """
    floats = [str(c) for c in frame.columns if frame[c].dtype.kind == "f"]
    others = [str(c) for c in frame.columns if frame[c].dtype.kind != "f"]
    with atomic_path(path) as tmp:  # whole or absent, never a truncated file (a full disk)
        frame.to_parquet(
            tmp,
            index=False,
            compression="zstd",
            compression_level=PARQUET_ZSTD_LEVEL,
            use_dictionary=others,
            use_byte_stream_split=floats,
        )
    return Path(path)


def save_table(frame: pd.DataFrame, name: str) -> Path | None:
    """Write ``frame`` as Parquet to :func:`sidecar_path` (``name`` without suffix); its path."""
    path = sidecar_path(f"{name}.parquet")
    if path is not None:
        write_parquet(frame, path)
    return path


def glue_table(name: str, frame: pd.DataFrame) -> Path | None:
    """Glue ``frame`` as scrap ``name``: inside a run, as a reference to a Parquet sidecar.

    Parameters
    ----------
    name
        The scrap's name; the file is ``<archived stem>_<name>.parquet``.
    frame
        The table. Its index is not kept (reset it first if it holds data).

    Returns
    -------
    Path or None
        The Parquet file, or None outside a run, where the table itself is glued.
    """
    import scrapbook as sb

    path = save_table(frame, name)
    if path is None:
        sb.glue(name, frame)
        return None
    reference = {
        "sidecar": path.name,
        "format": "parquet",
        "rows": len(frame),
        "columns": [str(c) for c in frame.columns],
        "sha256": sha256_of(path),
    }
    sb.glue(name, reference)
    return path


def is_reference(value: Any) -> bool:
    """True when a scrap's value is a :func:`glue_table` reference to a sidecar."""
    return isinstance(value, dict) and set(value) == REFERENCE_KEYS


def read_scraps(notebook: Path | str) -> dict[str, Any]:
    """The scraps of an archived notebook, name -> value, sidecar references read as tables.

    Raises :class:`FileNotFoundError` naming the file when a referenced sidecar is missing, and
    :class:`ValueError` when its SHA-256 is not the one the notebook recorded.
    """
    import pandas as pd
    import scrapbook as sb

    notebook = Path(notebook)
    values = {name: scrap.data for name, scrap in sb.read_notebook(str(notebook)).scraps.items()}
    for name, value in values.items():
        if is_reference(value):
            path = notebook.with_name(value["sidecar"])
            if not path.is_file():
                raise FileNotFoundError(
                    f"scrap {name!r} of {notebook} is kept in {path}, which is missing: "
                    "copy it back beside the notebook, or re-run the job"
                )
            if sha256_of(path) != value["sha256"]:
                raise ValueError(
                    f"scrap {name!r} of {notebook}: {path} changed after the run (its SHA-256 "
                    "differs from the notebook's record): restore the run's file from a copy"
                )
            values[name] = pd.read_parquet(path)
    return values


def sidecar_references(notebook: Path | str) -> list[dict[str, Any]]:
    """The sidecar references glued in the notebook file (read as JSON; no kernel, no scrapbook).

    Raises :class:`OSError` or :class:`ValueError` when the file cannot be read as a notebook.
    """
    cells = json.loads(Path(notebook).read_text(encoding="utf-8")).get("cells", [])
    found = []
    for cell in cells:
        for output in cell.get("outputs", []):
            scrap = (output.get("data") or {}).get(SCRAP_MIME)
            value = scrap.get("data") if isinstance(scrap, dict) else None
            if is_reference(value) and isinstance(value["sidecar"], str):
                found.append(value)
    return found


def sidecar_problems(notebook: Path | str) -> list[tuple[str, Path]]:
    """``("deleted" | "changed", path)`` of each referenced sidecar not as the run wrote it.

    A sidecar is named beside its notebook; a reference that would lead elsewhere (``..``, a
    folder) is a changed one. A notebook that cannot be read has no sidecar to check here (its
    own digest tells it changed).
    """
    notebook = Path(notebook)
    try:
        references = sidecar_references(notebook)
    except (OSError, ValueError):
        return []
    problems: list[tuple[str, Path]] = []
    for value in references:
        path = notebook.with_name(Path(value["sidecar"]).name)
        if Path(value["sidecar"]).name != value["sidecar"]:
            problems.append(("changed", path))
        elif not path.is_file():
            problems.append(("deleted", path))
        elif sha256_of(path) != value["sha256"]:
            problems.append(("changed", path))
    return problems


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
