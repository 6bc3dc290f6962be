"""A small production history for the web app's tests: bars, signals, trades, valuations, runs.

Bars from 2025-06-01, then five sessions (2026-11-02..06) of signal, execute and fetch, as the
daily jobs run them; and three ``job_runs`` rows whose artifacts are small files written here.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from allocator.jobs.execute import execute_trades
from allocator.jobs.fetch import fetch_bars
from allocator.jobs.signal import generate_signal
from allocator.shell import calendar
from allocator.shell.marketdata.synthetic import SyntheticSource
from allocator.shell.persistence.jobruns import finish_run, insert_running, insert_skipped
from allocator.shell.settings import Settings, get_settings
from tests.helpers import seed

SEED_START = dt.date(2025, 6, 1)
FIRST, LAST = dt.date(2026, 11, 2), dt.date(2026, 11, 6)
#: A moment after the close of LAST, so the fetch job may store LAST's bar whatever today is.
AFTER_LAST_CLOSE = dt.datetime(2026, 11, 9, 12, 0, tzinfo=dt.UTC)

REPORT_HTML = """<!doctype html><html><head><meta charset="utf-8"><title>{job} {day}</title>
<link rel="icon" href="data:,"></head><body><h1>{job} {day}</h1><p>report body</p></body></html>
"""


def settings_for(database_url: str, root: Path) -> Settings:
    """Settings over ``database_url`` with runs, reports and logs under ``root``."""
    return get_settings(
        {
            "DATABASE_URL": database_url,
            "ALLOCATOR_RUNS_DIR": str(root / "runs"),
            "ALLOCATOR_REPORTS_DIR": str(root / "reports"),
            "ALLOCATOR_LOG_DIR": str(root / "log"),
        }
    )


def run_sessions(engine) -> None:
    """Seed the config and bars, then signal, execute and fetch each session FIRST..LAST."""
    seed(engine, SEED_START, calendar.previous_session(FIRST))
    source = SyntheticSource()
    for day in calendar.sessions_between(FIRST, LAST):
        generate_signal(engine, day)
        execute_trades(engine, day)
        fetch_bars(engine, day, source, now=AFTER_LAST_CLOSE)


def _artifacts(settings: Settings, job: str, day: dt.date) -> tuple[Path, Path, Path]:
    stem = f"{job}_{day}_20261109T120000Z"
    sub = Path(f"{day:%Y}") / f"{day:%m}" / f"{day:%d}"
    notebook = settings.runs_dir / sub / f"{stem}.ipynb"
    html = settings.reports_dir / sub / f"{stem}.html"
    markdown = settings.reports_dir / sub / f"{stem}.md"
    for path in (notebook, html, markdown):
        path.parent.mkdir(parents=True, exist_ok=True)
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4}), "utf-8")
    html.write_text(REPORT_HTML.format(job=job, day=day), "utf-8")
    markdown.write_text(f"# {job} {day}\n\nreport body\n", "utf-8")
    return notebook, html, markdown


def record_runs(engine, settings: Settings) -> dict[str, int]:
    """A succeeded signal run, a failed execute run (both with artifacts) and a skipped tune."""
    ids = {}
    for job, status in (("signal", "succeeded"), ("execute", "failed")):
        notebook, html, markdown = _artifacts(settings, job, LAST)
        run_id = insert_running(
            engine,
            job,
            LAST,
            parameters={"trade_date": str(LAST)},
            git_commit="abc123",
            notebook_path=notebook,
            html_path=html,
            md_path=markdown,
        )
        error = "boom: a test failure" if status == "failed" else None
        finish_run(engine, run_id, status, error=error)
        ids[job] = run_id
    ids["tune"] = insert_skipped(
        engine, "tune", LAST, "not the first session of the month", parameters={}, git_commit=None
    )
    return ids
