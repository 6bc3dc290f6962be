"""What an archived notebook says about its own run, read from the file alone.

papermill writes ``metadata.papermill`` into every executed notebook: ``start_time``,
``end_time``, ``duration`` (seconds), ``exception`` (true when a cell raised) and ``parameters``
(the values injected). The file name gives the job, the trade date and the start stamp
(:mod:`.archive`). That is enough to list a run without the database that recorded it: the
review notebook and ``reports/index.html`` both read the archive this way.

Status: ``failed`` when papermill marked an exception, ``succeeded`` when it wrote an end time,
``incomplete`` otherwise (a run still executing, or a process killed before papermill finished),
``unreadable`` for a file that is not a notebook.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from allocator.notebook.archive import parse_run_name

#: A failed run whose notebook has no error output: the kernel was stopped or died.
NO_ERROR_OUTPUT = "stopped without an error output (cell timeout or dead kernel)"


@dataclass(frozen=True)
class ArchivedRun:
    """One archived run as its notebook describes it."""

    path: Path
    job: str
    trade_date: dt.date
    stamp: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    seconds: float | None = None
    error: str | None = None
    parameters: dict = field(default_factory=dict)


def run_status(papermill: Mapping) -> str:
    """``failed``, ``succeeded`` or ``incomplete`` from a notebook's ``metadata.papermill``."""
    if papermill.get("exception"):
        return "failed"
    if papermill.get("end_time"):
        return "succeeded"
    return "incomplete"


def first_error(cells: Iterable[Mapping]) -> str | None:
    """``Name: message`` of the first error output, on one line; None without one."""
    for cell in cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                value = " ".join(str(output.get("evalue", "")).split())
                return f"{output.get('ename', 'Error')}: {value}".rstrip(": ")
    return None


def _moment(text: object) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def describe(path: Path, nb: Mapping) -> ArchivedRun:
    """The run of the archived notebook ``nb`` (a dict or an nbformat node) saved at ``path``."""
    name = parse_run_name(path)
    if name is None:
        raise ValueError(f"{path} is not named like an archived run (job_date_stamp.ipynb)")
    meta = nb.get("metadata", {}).get("papermill", {}) or {}
    status = run_status(meta)
    error = first_error(nb.get("cells", [])) if status == "failed" else None
    stamped = dt.datetime.strptime(name.stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    duration = meta.get("duration")
    return ArchivedRun(
        path=Path(path),
        job=name.job,
        trade_date=name.trade_date,
        stamp=name.stamp,
        status=status,
        started_at=_moment(meta.get("start_time")) or stamped,
        finished_at=_moment(meta.get("end_time")),
        seconds=float(duration) if isinstance(duration, int | float) else None,
        error=(error or NO_ERROR_OUTPUT) if status == "failed" else None,
        parameters=dict(meta.get("parameters") or {}),
    )


def read_archived_run(path: Path) -> ArchivedRun | None:
    """:func:`describe` the notebook file ``path``; None when its name is not a run's.

    A file that cannot be read as JSON (empty, truncated) is an ``unreadable`` run.
    """
    name = parse_run_name(path)
    if name is None:
        return None
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        stamped = dt.datetime.strptime(name.stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
        error = f"{type(exc).__name__}: {exc}"
        return ArchivedRun(
            Path(path), name.job, name.trade_date, name.stamp, "unreadable", stamped, error=error
        )
    return describe(path, nb)


def every_archived_notebook(runs_dir: Path) -> list[Path]:
    """Every ``runs_dir/YYYY/MM/DD/<job>_<date>_<stamp>.ipynb``, in no particular order."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [
        path
        for path in runs_dir.glob("[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]/*.ipynb")
        if parse_run_name(path) is not None
    ]
