"""``job_runs``: one row per job run, written by the notebook runner and read by the reports index.

A run is inserted as ``running`` before its kernel starts (with the runner's ``pid`` and ``host``)
and finished as ``succeeded`` or ``failed`` (with the archived notebook's ``sha256``); a run that
had nothing to do (market closed, not the first session of the month) is inserted directly as
``skipped``; a ``running`` run whose runner process is gone is marked ``abandoned``. The ``error``
column holds a failure's one-line summary, or the reason a run was skipped or abandoned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from allocator.exceptions import DatabaseError
from allocator.shell.persistence.engine import connect, utcnow
from allocator.shell.persistence.schema import job_runs


class RunRowMissing(DatabaseError):
    """A run's ``job_runs`` row vanished while it worked (a restore, a manual delete)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        super().__init__(
            f"run {run_id} failed: its job_runs row is gone (the database was restored or "
            "edited while it worked), so what it wrote may be gone too; check `allocator "
            "health` and run the job again"
        )


STATUSES = ("running", "succeeded", "failed", "skipped", "abandoned")
#: The columns naming a run's files.
ARTIFACT_COLUMNS = ("notebook_path", "html_path", "md_path")
FINAL_STATUSES = ("succeeded", "failed", "skipped", "abandoned")


@dataclass(frozen=True)
class JobRun:
    """One row of ``job_runs``."""

    id: int
    job: str
    trade_date: dt.date | None
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    notebook_path: str | None
    html_path: str | None
    md_path: str | None
    git_commit: str | None
    parameters: dict | None
    error: str | None
    pid: int | None = None
    host: str | None = None
    sha256: str | None = None

    @property
    def duration(self) -> dt.timedelta | None:
        if self.finished_at is None:
            return None
        return _aware(self.finished_at) - _aware(self.started_at)


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored here is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _row(row: sa.Row) -> JobRun:
    values = row._mapping
    return JobRun(
        **{
            **values,
            "started_at": _aware(values["started_at"]),
            "finished_at": _aware(values["finished_at"]) if values["finished_at"] else None,
        }
    )


def _path(value: Path | str | None) -> str | None:
    return None if value is None else str(value)


def _insert_run(engine: sa.Engine, **values) -> int:
    """Insert one ``job_runs`` row with ``values`` (column name to value); returns its id."""
    with connect(engine) as conn, conn.begin():
        return conn.execute(
            job_runs.insert().values(**values).returning(job_runs.c.id)
        ).scalar_one()


def insert_running(
    engine: sa.Engine,
    job: str,
    trade_date: dt.date | None,
    *,
    parameters: dict,
    git_commit: str | None,
    notebook_path: Path | str | None,
    html_path: Path | str | None,
    md_path: Path | str | None,
    started_at: dt.datetime | None = None,
    pid: int | None = None,
    host: str | None = None,
) -> int:
    """Record a run about to start, by runner process ``pid`` on ``host``; returns its id."""
    return _insert_run(
        engine,
        job=job,
        trade_date=trade_date,
        status="running",
        started_at=started_at or utcnow(),
        notebook_path=_path(notebook_path),
        html_path=_path(html_path),
        md_path=_path(md_path),
        git_commit=git_commit,
        parameters=parameters,
        pid=pid,
        host=host,
    )


def finish_run(
    engine: sa.Engine,
    run_id: int,
    status: str,
    *,
    error: str | None = None,
    finished_at: dt.datetime | None = None,
    html_path: Path | str | None = None,
    md_path: Path | str | None = None,
    sha256: str | None = None,
    unrecorded: Sequence[str] = (),
) -> None:
    """Close a ``running`` row as ``succeeded``, ``failed`` or ``abandoned``.

    ``sha256`` is the archived notebook's digest, checked by ``allocator runs --verify``.
    ``unrecorded`` names the artifact columns (``notebook_path``, ``html_path``, ``md_path``)
    to clear: their file could not be written, so the row names no file that does not exist.
    Raises :class:`RunRowMissing` when the row is gone: the run must not be reported as done.
    """
    if status not in ("succeeded", "failed", "abandoned"):
        raise ValueError(
            f"status={status!r}: a started run finishes as succeeded, failed or abandoned"
        )
    values: dict = {
        "status": status,
        "error": error,
        "finished_at": finished_at or utcnow(),
        "sha256": sha256,
    }
    if html_path is not None:
        values["html_path"] = _path(html_path)
    if md_path is not None:
        values["md_path"] = _path(md_path)
    for column in unrecorded:
        if column not in ARTIFACT_COLUMNS:
            raise ValueError(f"unrecorded={column!r}: use one of {ARTIFACT_COLUMNS}")
        values[column] = None
    with connect(engine) as conn, conn.begin():
        done = conn.execute(job_runs.update().where(job_runs.c.id == run_id).values(**values))
    if done.rowcount != 1:
        raise RunRowMissing(run_id)


def mark_abandoned(
    engine: sa.Engine, run_id: int, error: str, *, sha256: str | None = None
) -> bool:
    """Mark a ``running`` row ``abandoned``; False when it is no longer running."""
    values = {"status": "abandoned", "error": error, "finished_at": utcnow(), "sha256": sha256}
    with connect(engine) as conn, conn.begin():
        done = conn.execute(
            job_runs.update()
            .where(job_runs.c.id == run_id, job_runs.c.status == "running")
            .values(**values)
        )
    return done.rowcount == 1


def insert_skipped(
    engine: sa.Engine,
    job: str,
    trade_date: dt.date | None,
    reason: str,
    *,
    parameters: dict,
    git_commit: str | None,
    at: dt.datetime | None = None,
) -> int:
    """Record a run that had nothing to do (no artifact); ``reason`` goes into ``error``."""
    moment = at or utcnow()
    return _insert_run(
        engine,
        job=job,
        trade_date=trade_date,
        status="skipped",
        started_at=moment,
        finished_at=moment,
        git_commit=git_commit,
        parameters=parameters,
        error=reason,
    )


def get_run(engine: sa.Engine, run_id: int) -> JobRun:
    with connect(engine) as conn:
        row = conn.execute(sa.select(job_runs).where(job_runs.c.id == run_id)).one()
    return _row(row)


def select_runs(
    conn: sa.Connection,
    *where: sa.ColumnElement[bool],
    newest_first: bool = True,
    limit: int | None = None,
    offset: int | None = None,
) -> list[JobRun]:
    """The runs matching every ``where`` condition, by start time (newest first by default)."""
    order = (job_runs.c.started_at, job_runs.c.id)
    if newest_first:
        order = tuple(c.desc() for c in order)
    query = sa.select(job_runs).where(*where).order_by(*order).limit(limit).offset(offset)
    return [_row(row) for row in conn.execute(query)]


def list_runs(
    engine: sa.Engine,
    *,
    job: str | None = None,
    status: str | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> list[JobRun]:
    """Runs newest first (by start time), filtered by job, status and trade-date range.

    ``limit`` and ``offset`` page them (None: all of them, from the first).
    """
    where = []
    if job is not None:
        where.append(job_runs.c.job == job)
    if status is not None:
        where.append(job_runs.c.status == status)
    if since is not None:
        where.append(job_runs.c.trade_date >= since)
    if until is not None:
        where.append(job_runs.c.trade_date <= until)
    with connect(engine) as conn:
        return select_runs(conn, *where, limit=limit, offset=offset)
