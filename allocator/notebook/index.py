"""``reports/index.html``: every recorded run, newest first, regenerated after each run.

Built from ``job_runs`` (so skipped runs, which leave no artifact, are listed too). Links are
relative to the index, so the page works when opened straight from the file system or when the
``reports/`` and ``runs/`` folders are copied elsewhere together.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

import sqlalchemy as sa

from allocator.notebook.render import CSS
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
                _link(run.notebook_path, index_dir, "notebook"),
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
    """A paragraph linking every ``strategy-tuning/tuning_YYYY-MM.md``, newest first."""
    reports = sorted((Path(index_dir) / TUNING_DIR).glob("tuning_*.md"), reverse=True)
    if not reports:
        return ""
    links = ", ".join(
        f'<a href="{TUNING_DIR}/{html.escape(p.name, quote=True)}">{html.escape(p.stem[7:])}</a>'
        for p in reports
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


def write_index(engine: sa.Engine, reports_dir: Path, *, limit: int | None = None) -> Path:
    """Regenerate ``reports_dir/index.html`` from ``job_runs``; returns its path."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / INDEX_NAME
    page = index_html(list_runs(engine, limit=limit), reports_dir)
    # Write then rename: a reader (or a concurrent run) never sees half a page.
    tmp = path.with_name(f".{INDEX_NAME}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
