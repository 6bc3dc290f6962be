"""What ``notebooks/review.ipynb`` calls: the archived runs of a date range, as tables.

The archive (``runs/``) is the source: each executed notebook is read with scrapbook, so its
status, error and glued key numbers come from the audit artifact itself, not from a database that
may have moved on. Skipped runs leave no notebook; :func:`skipped_runs` lists them from
``job_runs``. Each notebook is checked against the SHA-256 its run recorded in ``job_runs``: one
that was changed since is listed as ``unverified`` (its scraps are not to be trusted), and
``verified`` says which were checked.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from allocator.notebook.archive import archived_notebooks, date_dir, parse_run_name
from allocator.notebook.archived import describe
from allocator.notebook.sidecar import ENV_RUN_NOTEBOOK
from allocator.shell.calendar import to_date, today_eastern

log = logging.getLogger(__name__)

DEFAULT_DAYS = 31
BASE_COLUMNS = [
    "trade_date",
    "job",
    "status",
    "started_utc",
    "seconds",
    "error",
    "notebook",
    "report",
    "verified",
]
_SCALARS = (bool, int, float, str)


@dataclass(frozen=True)
class Window:
    """The trade-date range under review, both ends included."""

    start: dt.date
    end: dt.date

    def __str__(self) -> str:
        return f"{self.start} .. {self.end}"


def review_window(
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    *,
    today: dt.date | None = None,
) -> Window:
    """``start``..``end`` as dates; defaults: ``end`` today (New York), ``start`` 30 days before."""
    end_date = to_date(end, "end") if end is not None else (today or today_eastern())
    start_date = (
        to_date(start, "start")
        if start is not None
        else end_date - dt.timedelta(days=DEFAULT_DAYS - 1)
    )
    if end_date < start_date:
        raise ValueError(f"end {end_date} is before start {start_date}")
    return Window(start_date, end_date)


def _settings_dirs(runs_dir: Path | None, reports_dir: Path | None) -> tuple[Path, Path]:
    if runs_dir is not None and reports_dir is not None:
        return Path(runs_dir), Path(reports_dir)
    from allocator.shell.settings import get_settings

    settings = get_settings()
    return Path(runs_dir or settings.runs_dir), Path(reports_dir or settings.reports_dir)


def run_record(path: Path, reports_dir: Path, link_base: Path) -> dict:
    """One archived run as a flat record: status and error from papermill, scalar scraps."""
    import scrapbook as sb

    name = parse_run_name(path)
    report = date_dir(reports_dir, name.trade_date) / f"{path.stem}.html"
    record: dict = {
        "trade_date": name.trade_date,
        "job": name.job,
        "started_utc": dt.datetime.strptime(name.stamp, "%Y%m%dT%H%M%SZ"),
        "notebook": _relative(path, link_base),
        "report": _relative(report, link_base) if report.exists() else None,
    }
    try:
        nb = sb.read_notebook(str(path))
    except Exception as exc:  # noqa: BLE001 - an empty or truncated file is shown, not fatal
        record.update(status="unreadable", error=f"{type(exc).__name__}: {exc}")
        return record
    run = describe(path, {"metadata": nb.metadata, "cells": nb.cells})
    record.update(status=run.status, seconds=run.seconds, error=run.error)
    for scrap_name, scrap in nb.scraps.items():
        # A job may glue its trade date too; the archive's own columns win.
        if scrap_name in record or scrap_name in BASE_COLUMNS:
            continue
        if scrap.data is None or isinstance(scrap.data, _SCALARS):
            record[scrap_name] = scrap.data
    record.update(_summarised(nb.scraps))
    return record


def _summarised(scraps) -> dict:
    """``period`` (``a..b``) of a run over a period, a backtest's one-line ``headline``, and
    ``job_status``, the status a job glued (the run's own ``status`` column keeps its name)."""
    from allocator.notebook.formats import metrics_headline

    out = {}
    period = scraps["period"].data if "period" in scraps else None
    if isinstance(period, list) and len(period) == 2:
        out["period"] = f"{period[0]}..{period[1]}"
    metrics = scraps["metrics"].data if "metrics" in scraps else None
    if isinstance(metrics, dict):
        out["headline"] = metrics_headline(metrics)
    status = scraps["status"].data if "status" in scraps else None
    if isinstance(status, str):  # the job's own status ("pending", "unchanged"), not the run's
        out["job_status"] = status
    return out


def recorded_digests(window: Window, engine=None) -> dict[Path, str] | None:
    """Archived notebook -> the SHA-256 its run recorded; None when the database is unreachable."""
    from allocator.shell.persistence import make_engine
    from allocator.shell.persistence.jobruns import list_runs

    try:
        if engine is None:
            from allocator.shell.settings import get_settings

            engine = make_engine(get_settings().database_url)
        runs = list_runs(engine, since=window.start, until=window.end)
    except Exception:  # noqa: BLE001 - the review still shows the archive, unverified
        log.warning("cannot read job_runs: the archived notebooks are not verified")
        return None
    return {Path(r.notebook_path).resolve(): r.sha256 for r in runs if r.notebook_path and r.sha256}


def mark_verification(record: dict, path: Path, digests: dict[Path, str] | None) -> None:
    """Set ``verified`` (True, False, or None: no digest recorded) and flag a changed run.

    A run is changed when its notebook no longer matches its SHA-256, or a sidecar table no
    longer matches the digest its notebook glued.
    """
    from allocator.notebook.supervision import archive_problem

    expected = (digests or {}).get(Path(path).resolve())
    if expected is None:
        record["verified"] = None
        return
    found = archive_problem(str(path), expected)
    record["verified"] = found is None
    if found is None:
        return
    record["status"] = "unverified"
    if found[0].startswith("sidecar"):
        record["error"] = (
            f"its sidecar {Path(found[1]).name} is {found[0].removeprefix('sidecar ')} since the "
            "run recorded its SHA-256: its tables are not the run's record (see `allocator runs "
            "--verify`)"
        )
    else:
        record["error"] = (
            "this notebook changed after its run recorded its SHA-256: its contents are not the "
            "run's record (see `allocator runs --verify`)"
        )


def _relative(target: Path, base: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), Path(base).resolve())).as_posix()


def current_run() -> Path | None:
    """The archived notebook of the run executing this code (the runner says), else None."""
    raw = os.environ.get(ENV_RUN_NOTEBOOK)
    return Path(raw).resolve() if raw else None


def default_link_base(reports_dir: Path) -> Path:
    """Where links should start: the report's folder inside a run, else the working directory.

    Run by ``allocator run review``, this notebook is read as its report,
    ``reports/YYYY/MM/DD/<stem>.html``: links relative to that folder work from the HTML page,
    from the Markdown file, and (``runs/`` mirroring ``reports/``) from the archived notebook.
    Opened by hand in JupyterLab, the notebook's own folder is the working directory.
    """
    own = current_run()
    name = parse_run_name(own) if own is not None else None
    if name is None:
        return Path.cwd()
    return date_dir(reports_dir, name.trade_date)


def runs_table(
    window: Window,
    job: str | None = None,
    *,
    runs_dir: Path | None = None,
    reports_dir: Path | None = None,
    link_base: Path | None = None,
) -> pd.DataFrame:
    """One row per archived run in ``window`` (oldest first): status, error, links, scraps.

    Links are relative to ``link_base`` (default: :func:`default_link_base`), so they open from
    the rendered report, from JupyterLab and from the file system. The run executing this (the
    review itself, still being written) is left out: it is not finished, let alone failed.
    """
    runs_dir, reports_dir = _settings_dirs(runs_dir, reports_dir)
    base = Path(link_base or default_link_base(reports_dir))
    own = current_run()
    paths = [
        path
        for path in archived_notebooks(runs_dir, window.start, window.end, job)
        if own is None or path.resolve() != own
    ]
    records = [run_record(path, reports_dir, base) for path in paths]
    digests = recorded_digests(window)
    for path, record in zip(paths, records, strict=True):
        mark_verification(record, path, digests)
    table = pd.DataFrame.from_records(records)
    for column in BASE_COLUMNS:
        if column not in table:
            table[column] = pd.Series(dtype="object")
    scraps = [c for c in table.columns if c not in BASE_COLUMNS]
    return table[BASE_COLUMNS[:5] + scraps + BASE_COLUMNS[5:]]


def status_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Runs per job and status."""
    if table.empty:
        return pd.DataFrame(columns=["job"])
    return table.pivot_table(
        index="job", columns="status", values="trade_date", aggfunc="count", fill_value=0
    )


def calendar_view(table: pd.DataFrame) -> pd.DataFrame:
    """Trade dates down, jobs across, the latest run's status in each cell (a month at a glance)."""
    if table.empty:
        return pd.DataFrame()
    latest = table.sort_values("started_utc").groupby(["trade_date", "job"]).last()
    return latest["status"].unstack("job").fillna("")


def failures(table: pd.DataFrame) -> pd.DataFrame:
    """The failed (or unreadable, or incomplete) runs, with their error and links."""
    if table.empty:
        return table
    bad = table[~table["status"].isin(["succeeded"])]
    return bad[["trade_date", "job", "status", "error", "report", "notebook"]]


def skipped_runs(window: Window, job: str | None = None, engine=None) -> pd.DataFrame:
    """Skipped runs (market closed, not the first session of the month) from ``job_runs``."""
    from allocator.shell.persistence import make_engine
    from allocator.shell.persistence.jobruns import list_runs

    if engine is None:
        from allocator.shell.settings import get_settings

        engine = make_engine(get_settings().database_url)
    runs = list_runs(engine, job=job, status="skipped", since=window.start, until=window.end)
    return pd.DataFrame(
        [{"trade_date": r.trade_date, "job": r.job, "reason": r.error} for r in reversed(runs)],
        columns=["trade_date", "job", "reason"],
    )


def glue_summary(table: pd.DataFrame) -> dict[str, int]:
    """Glue the window's run counts and return them.

    ``runs`` archived runs, ``succeeded``, and ``failed``: every other run (failed, incomplete
    or unreadable), i.e. everything a reviewer has to look at.
    """
    import scrapbook as sb

    counts = {
        "runs": int(len(table)),
        "failed": int((table["status"] != "succeeded").sum()) if len(table) else 0,
        "succeeded": int((table["status"] == "succeeded").sum()) if len(table) else 0,
    }
    for name, value in counts.items():
        sb.glue(name, value)
    return counts
