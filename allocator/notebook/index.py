"""``reports/index.html``: every run, newest first, regenerated after each run.

Built from the archive on disk first: every notebook under ``runs/`` is a run, described by its
``job_runs`` row when this database recorded it, else by the notebook itself (papermill's
metadata and its file name, :mod:`.archived`). So runs recorded in another database (after
``DATABASE_URL`` changed) stay listed while their files remain. The database adds the runs that
left no artifact (skipped ones). Links are relative to the index, so the page works when opened
straight from the file system or when the ``reports/`` and ``runs/`` folders are copied
elsewhere together.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from pathlib import Path

import sqlalchemy as sa

from allocator.notebook.archive import date_dir
from allocator.notebook.archived import ArchivedRun, every_archived_notebook, read_archived_run
from allocator.notebook.render import CSS
from allocator.shell.atomic import write_atomic
from allocator.shell.persistence.jobruns import JobRun, list_runs

INDEX_NAME = "index.html"


def _link(target: str | None, index_dir: Path, label: str) -> str:
    if not target:
        return ""
    path = Path(target)
    if not path.exists():
        return f'<span title="missing: {html.escape(target, quote=True)}">{label} (missing)</span>'
    href = Path(os.path.relpath(path, index_dir)).as_posix()
    return f'<a href="{html.escape(href, quote=True)}">{label}</a>'


def _duration(run: JobRun) -> str:
    if run.duration is None:
        return ""
    return f"{run.duration.total_seconds():.1f} s"


def _row(run: JobRun, index_dir: Path) -> str:
    links = " ".join(
        filter(
            None,
            [
                _link(run.html_path, index_dir, "report"),
                _link(run.md_path, index_dir, "md"),
                _link(
                    run.notebook_path,
                    index_dir,
                    "partial notebook" if run.status == "abandoned" else "notebook",
                ),
            ],
        )
    )
    cells = [
        html.escape(run.trade_date.isoformat() if run.trade_date else ""),
        html.escape(run.job),
        f'<span class="status-{run.status}">{html.escape(run.status)}</span>',
        run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
        _duration(run),
        links,
        html.escape(run.error or ""),
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


#: The monthly tuning reports' folder under the reports folder (the tune job writes them).
TUNING_DIR = "strategy-tuning"


def tuning_reports_html(index_dir: Path) -> str:
    """A paragraph linking every month's tuning report, newest first: its HTML page
    (``strategy-tuning/tuning_YYYY-MM.html``), or its Markdown when no page was written."""
    reports = sorted((Path(index_dir) / TUNING_DIR).glob("tuning_*.md"), reverse=True)
    if not reports:
        return ""
    pages = [p.with_suffix(".html") if p.with_suffix(".html").is_file() else p for p in reports]
    links = ", ".join(
        f'<a href="{TUNING_DIR}/{html.escape(p.name, quote=True)}">{html.escape(p.stem[7:])}</a>'
        for p in pages
    )
    return f"<p>Monthly tuning reports: {links}.</p>\n"


def index_html(runs: list[JobRun], index_dir: Path) -> str:
    """The index page for ``runs`` (already newest first), links relative to ``index_dir``."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no runs yet"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("trade date", "job", "status", "started (UTC)", "duration", "artifacts", "note")
    )
    rows = "\n".join(_row(run, index_dir) for run in runs)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>Capital Allocator runs</title>\n<style>{CSS}"
        "table.runs td{text-align:left}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>Capital Allocator runs</h1>\n<p>{len(runs)} runs: {html.escape(summary)}. "
        "Newest first; a failed run's report shows its error at the top.</p>\n"
        f"{tuning_reports_html(index_dir)}"
        f'<table class="runs">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n'
        "</table>\n</main>\n</body>\n</html>\n"
    )


def _as_job_run(run: ArchivedRun, reports_dir: Path) -> JobRun:
    """An archived run no row of this database describes, shaped like a ``job_runs`` row."""
    report = date_dir(reports_dir, run.trade_date) / run.path.stem
    # papermill's duration is end minus start; it also holds when start_time is not recorded.
    finished = run.finished_at
    if run.seconds is not None:
        finished = run.started_at + dt.timedelta(seconds=run.seconds)
    return JobRun(
        id=0,
        job=run.job,
        trade_date=run.trade_date,
        status=run.status,
        started_at=run.started_at,
        finished_at=finished,
        notebook_path=str(run.path),
        html_path=str(report.with_suffix(".html")),
        md_path=str(report.with_suffix(".md")),
        git_commit=None,
        parameters=run.parameters,
        error=run.error,
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def index_runs(engine: sa.Engine, runs_dir: Path | None, reports_dir: Path) -> list[JobRun]:
    """Every archived run under ``runs_dir`` and every ``job_runs`` row, newest first.

    A notebook this database recorded is shown by its row (status, error and duration as the
    runner recorded them); any other archived notebook by what the file says. Rows whose
    notebook is elsewhere or gone, and skipped runs, come from the database alone.
    """
    rows = list_runs(engine)
    runs = list(rows)
    if runs_dir is not None:
        recorded = {Path(r.notebook_path).resolve() for r in rows if r.notebook_path}
        for path in every_archived_notebook(runs_dir):
            if path.resolve() in recorded:
                continue
            archived = read_archived_run(path)
            if archived is not None:
                runs.append(_as_job_run(archived, Path(reports_dir)))
    return sorted(runs, key=lambda r: (_utc(r.started_at), r.id), reverse=True)


def write_index(
    engine: sa.Engine,
    reports_dir: Path,
    *,
    runs_dir: Path | None = None,
    limit: int | None = None,
) -> Path:
    """Regenerate ``reports_dir/index.html`` from the archive in ``runs_dir`` and ``job_runs``.

    Without ``runs_dir`` only ``job_runs`` is read. ``limit`` keeps the newest runs. Returns the
    page's path.
    """
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / INDEX_NAME
    runs = index_runs(engine, runs_dir, reports_dir)
    page = index_html(runs[:limit] if limit is not None else runs, reports_dir)
    # Atomic: a reader (or a concurrent run) never sees half a page, a full disk leaves no .tmp.
    return write_atomic(path, page)
