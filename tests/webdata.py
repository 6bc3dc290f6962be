"""A small production history for the web app's tests: bars, signals, trades, valuations, runs.

Bars from 2025-06-01, then five sessions (2026-11-02..06) of signal, execute and fetch, as the
daily jobs run them; and three ``job_runs`` rows whose artifacts are small files written here
(:func:`record_runs`). :func:`record_report_runs` adds runs whose archived notebooks hold
scraps (a fetch, a tune, a backtest with its trades in a Parquet sidecar) and a monthly tuning
report.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd

from allocator.jobs.execute import execute_trades
from allocator.jobs.fetch import fetch_bars
from allocator.jobs.signal import generate_signal
from allocator.notebook.sidecar import write_parquet
from allocator.shell import calendar
from allocator.shell.digest import sha256_of
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


# --- runs whose archive the web app reads: scraps and a backtest's trade list --------------------

#: A backtest's period, its trades (BUYs have no realised P&L: NaN in the Parquet file).
BACKTEST_START, BACKTEST_END = "2024-10-09", "2026-11-06"
BACKTEST_TRADES = 230
BACKTEST_METRICS = {
    "twr": 0.2784,
    "cagr": 0.1212,
    "sharpe": 1.4612,
    "max_drawdown": -0.0649,
    "final_value": 598206.83,
    "exposure": 0.5901,
    "n_sessions": 541,
    "start": BACKTEST_START,
    "end": BACKTEST_END,
}
BACKTEST_COMPARISON = {
    "strategy": BACKTEST_METRICS,
    "all SPY": {"twr": 0.561, "cagr": 0.23, "sharpe": 1.77, "max_drawdown": -0.081},
    "SPY + cash at exposure": {"twr": 0.306, "cagr": 0.132, "sharpe": None, "max_drawdown": -0.048},
}
TUNING_MONTH = "2026-11"
TUNING_MARKDOWN = """# Strategy tuning 2026-11

- outcome: **unchanged**

| parameter | old | new |
|---|---|---|
| sell_percentage | 0.5 | 0.5 |

<script>alert("not run")</script>
"""


def _scrap(name: str, value) -> dict:
    """A cell output as scrapbook glues a JSON scrap (text scraps use another MIME type)."""
    mime = "text" if isinstance(value, str) else "json"
    data = {"name": name, "data": value, "encoder": mime, "version": 1}
    return {
        "output_type": "display_data",
        "metadata": {"scrapbook": {"name": name, "data": True, "display": False}},
        "data": {f"application/scrapbook.scrap.{mime}+json": data},
    }


def backtest_trades() -> pd.DataFrame:
    """The fixture backtest's trades: one a session over the three assets, a SELL every 5th."""
    days = pd.bdate_range(BACKTEST_START, periods=BACKTEST_TRADES)
    sells = [i % 5 == 4 for i in range(BACKTEST_TRADES)]
    return pd.DataFrame(
        {
            "date": [d.date().isoformat() for d in days],
            "symbol": [("SPY", "QQQ", "DIA")[i % 3] for i in range(BACKTEST_TRADES)],
            "action": ["SELL" if s else "BUY" for s in sells],
            "quantity": [1.23456 + i for i in range(BACKTEST_TRADES)],
            "price": [100.0 + i * 0.5 for i in range(BACKTEST_TRADES)],
            "amount": [8561.554 + i for i in range(BACKTEST_TRADES)],
            "realized_pnl": [
                (-12.345 if i % 2 else 3.2) if s else np.nan for i, s in enumerate(sells)
            ],
        }
    )


def _archived_run(engine, settings: Settings, job: str, day: dt.date, outputs, parameters):
    notebook, html, markdown = _artifacts(settings, job, day)
    cell = {"cell_type": "code", "metadata": {}, "source": "", "outputs": outputs}
    notebook.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4}), "utf-8")
    run_id = insert_running(
        engine,
        job,
        day,
        parameters={"trade_date": str(day), **parameters},
        git_commit="abc123",
        notebook_path=notebook,
        html_path=html,
        md_path=markdown,
    )
    finish_run(engine, run_id, "succeeded")
    return run_id, notebook


def record_report_runs(engine, settings: Settings) -> dict[str, int]:
    """A fetch, a tune ("unchanged") and a backtest run with their scraps; the backtest keeps
    its trades as a Parquet sidecar; and a monthly tuning report in Markdown."""
    fetch = [_scrap("rows_inserted", {"SPY": 1, "QQQ": 1, "DIA": 1}), _scrap("missing", [])]
    fetch.append(_scrap("settled", [[str(LAST), 3]]))
    tune = [_scrap("status", "unchanged"), _scrap("changes", {})]
    ids = {
        "fetch": _archived_run(engine, settings, "fetch", LAST, fetch, {"source": "synthetic"})[0],
        "tune_done": _archived_run(engine, settings, "tune", LAST, tune, {"force": True})[0],
    }
    day = LAST + dt.timedelta(days=3)
    trades = backtest_trades()
    outputs = [_scrap("metrics", BACKTEST_METRICS), _scrap("comparison", BACKTEST_COMPARISON)]
    parameters = {"start": BACKTEST_START, "end": BACKTEST_END}
    notebook, _, _ = _artifacts(settings, "backtest", day)
    sidecar = notebook.with_name(f"{notebook.stem}_trades.parquet")
    write_parquet(trades, sidecar)
    reference = {
        "sidecar": sidecar.name,
        "format": "parquet",
        "rows": len(trades),
        "columns": list(trades.columns),
        "sha256": sha256_of(sidecar),
    }
    outputs.append(_scrap("trades", reference))
    ids["backtest"], _ = _archived_run(engine, settings, "backtest", day, outputs, parameters)
    tuning = settings.reports_dir / "strategy-tuning" / f"tuning_{TUNING_MONTH}.md"
    tuning.parent.mkdir(parents=True, exist_ok=True)
    tuning.write_text(TUNING_MARKDOWN, "utf-8")
    return ids
