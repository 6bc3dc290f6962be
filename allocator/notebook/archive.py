"""Where a run's artifacts live, and how they are named so none is ever overwritten.

One run of job J for trade date D started at UTC time T leaves::

    runs/D:YYYY/MM/DD/J_D_T.ipynb            the executed notebook (the audit record)
    reports/D:YYYY/MM/DD/J_D_T.html          rendered for reviewers
    reports/D:YYYY/MM/DD/J_D_T.md            rendered as Markdown ...
    reports/D:YYYY/MM/DD/J_D_T_files/*.png   ... with its figures beside it

T looks like ``20261126T213501Z``. A second run in the same second gets ``-2``, ``-3`` ... appended;
the notebook file is claimed with an exclusive create, so two processes cannot pick the same name.
papermill saves the notebook there after every cell; inside :func:`atomic_saves` each save
replaces it whole (:mod:`allocator.shell.atomic`), so a full disk never leaves a truncated
notebook: the file holds the last whole save, or is still the empty claim.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from allocator.shell.atomic import write_atomic

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(
    r"^(?P<job>[a-z][a-z0-9_]*)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?$"
)


def utc_stamp(moment: dt.datetime) -> str:
    """``moment`` in UTC as ``YYYYMMDDTHHMMSSZ``; a naive ``moment`` is refused."""
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime(STAMP_FORMAT)


def date_dir(root: Path, trade_date: dt.date) -> Path:
    """``root/YYYY/MM/DD`` of ``trade_date``."""
    return Path(root) / f"{trade_date:%Y}" / f"{trade_date:%m}" / f"{trade_date:%d}"


@dataclass(frozen=True)
class RunPaths:
    """The artifact paths of one run."""

    notebook: Path
    html: Path
    markdown: Path

    @property
    def stem(self) -> str:
        return self.notebook.stem

    @property
    def figures_dir(self) -> Path:
        """Where both reports' PNG figures go, once (nbconvert's ``<name>_files`` convention)."""
        return self.markdown.parent / f"{self.stem}_files"


def reserve_run_paths(
    runs_dir: Path, reports_dir: Path, job: str, trade_date: dt.date, moment: dt.datetime
) -> RunPaths:
    """Claim fresh artifact paths for a run (creates the empty notebook file and the folders).

    The folders come first: when one cannot be created, no empty notebook is left behind.
    """
    report_folder = date_dir(reports_dir, trade_date)
    report_folder.mkdir(parents=True, exist_ok=True)
    folder = date_dir(runs_dir, trade_date)
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{job}_{trade_date.isoformat()}_{utc_stamp(moment)}"
    n = 1
    while True:
        stem = base if n == 1 else f"{base}-{n}"
        candidate = folder / f"{stem}.ipynb"
        try:
            # O_EXCL: the name is ours only if we created the file.
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            break
        except FileExistsError:
            n += 1
    return RunPaths(
        notebook=candidate,
        html=report_folder / f"{stem}.html",
        markdown=report_folder / f"{stem}.md",
    )


@contextlib.contextmanager
def atomic_saves(notebook: Path) -> Iterator[None]:
    """Within the block, papermill writes ``notebook`` (an absolute path) atomically.

    papermill's own local handler truncates the file and writes it again at every save; a
    handler registered for this one path (papermill picks a handler by path prefix) writes a
    temporary file and renames it instead. Other paths keep papermill's handler.
    """
    from papermill.iorw import LocalHandler, papermill_io

    class AtomicSaves(LocalHandler):
        def write(self, buf: str, path: str) -> None:
            write_atomic(path, buf)

    entry = (str(notebook), AtomicSaves())
    papermill_io.register(*entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            papermill_io._handlers.remove(entry)  # papermill has no unregister


@dataclass(frozen=True)
class ArchivedName:
    """The parts of an archived notebook's file name."""

    job: str
    trade_date: dt.date
    stamp: str


def parse_run_name(path: Path | str) -> ArchivedName | None:
    """Split ``fetch_2026-11-26_20261126T213501Z[-2].ipynb`` into its parts (None if foreign)."""
    match = _NAME.match(Path(path).stem)
    if not match:
        return None
    try:
        day = dt.date.fromisoformat(match["date"])
    except ValueError:
        return None
    return ArchivedName(match["job"], day, match["stamp"])


def archived_notebooks(
    runs_dir: Path, start: dt.date, end: dt.date, job: str | None = None
) -> list[Path]:
    """Archived notebooks of trade dates in [start, end] (optionally one job), oldest first."""
    found: list[tuple[dt.date, str, str, Path]] = []
    day = start
    while day <= end:
        folder = date_dir(runs_dir, day)
        if folder.is_dir():
            for path in folder.glob("*.ipynb"):
                name = parse_run_name(path)
                if name is None or name.trade_date != day:
                    continue
                if job is not None and name.job != job:
                    continue
                found.append((day, name.stamp, path.name, path))
        day += dt.timedelta(days=1)
    return [path for *_, path in sorted(found)]
