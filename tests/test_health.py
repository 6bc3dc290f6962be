"""`allocator health`: a healthy week passes, and each broken thing fails its own check.

The week is built with the real jobs' functions (signal, execute) on synthetic bars, and the runs
the runner would have recorded; then one thing is broken and the real CLI runs in a subprocess,
on SQLite and on PostgreSQL. Exit codes: 0 healthy (warnings included), 1 a failed check, 2 a
bad argument.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from allocator.jobs.execute import execute_trades
from allocator.jobs.health import (
    FAIL,
    OK,
    WARN,
    check_config_change,
    check_orders,
    gather_facts,
    health_report,
    resolve_date,
)
from allocator.jobs.signal import generate_signal
from allocator.shell import calendar
from allocator.shell.persistence import jobruns
from allocator.shell.persistence.configs import open_version
from allocator.shell.persistence.health import OrderStatus
from allocator.shell.persistence.schema import daily_signals, job_runs, price_history, trades
from allocator.shell.persistence.signals import get_signal
from allocator.strategy.config import TradingConfig
from tests.helpers import seed
from tests.test_alerts import TOKEN, WebhookReceiver, dead_url

D = dt.date(2025, 3, 4)  # a Tuesday; March's first session (the tuning date) is Monday the 3rd
MONTH_START = dt.date(2025, 3, 3)
WEEK = calendar.last_n_sessions(D, 5)
DAILY = ("fetch", "signal", "execute")


def record_run(engine, job, day, status="succeeded", *, started=None, error=None) -> int:
    """A ``job_runs`` row as the runner writes it (abandoned: as the lead's repair marks it)."""
    run_id = jobruns.insert_running(
        engine,
        job,
        day,
        parameters={},
        git_commit=None,
        notebook_path=None,
        html_path=None,
        md_path=None,
        started_at=started,
    )
    if status == "running":
        return run_id
    with engine.begin() as conn:
        conn.execute(
            job_runs.update()
            .where(job_runs.c.id == run_id)
            .values(status=status, error=error, finished_at=started or jobruns.utcnow())
        )
    return run_id


def build_week(engine, reports_dir, *, last_day_jobs=DAILY) -> None:
    """Five executed sessions ending D (the system's first week), the month's tuning done."""
    seed(engine, dt.date(2023, 11, 1), D)
    for day in WEEK:
        jobs = last_day_jobs if day == D else DAILY
        if "signal" in jobs:
            generate_signal(engine, day)
        if "execute" in jobs:
            execute_trades(engine, day)
        for job in jobs:
            record_run(engine, job, day)
        if day == MONTH_START:
            record_run(engine, "tune", day)
    report = reports_dir / "strategy-tuning" / f"tuning_{D:%Y-%m}.md"
    report.parent.mkdir(parents=True)
    report.write_text("# Strategy tuning 2025-03\n")


def run_cli(database_url, *args, **env):
    environ = {**os.environ, "DATABASE_URL": database_url, **env}
    return subprocess.run(
        [sys.executable, "-m", "allocator", "health", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
    )


def statuses(result) -> dict[str, str]:
    document = json.loads(result.stdout)
    return {c["name"]: c["status"] for c in document["checks"]}


@pytest.fixture
def reports(tmp_path):
    return tmp_path / "reports"  # ALLOCATOR_REPORTS_DIR (tests/conftest.py)


def test_a_healthy_week_passes_every_check(engine, database_url, reports):
    build_week(engine, reports)
    result = run_cli(database_url, "--date", str(D), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["date"] == "2025-03-04" and document["status"] == OK
    assert statuses(result) == {
        "fetch run": OK,
        "signal run": OK,
        "execute run": OK,
        "signal": OK,
        "orders": OK,
        "prices": OK,
        "pending orders": OK,
        "abandoned/stuck runs": OK,
        "executions": OK,
        "config": OK,
        "performance": OK,
        "tuning": OK,
        "config change": OK,
    }
    details = {c["name"]: c["detail"] for c in document["checks"]}
    assert details["executions"] == "5 of 5 sessions executed (2025-02-26..2025-03-04)"
    assert details["config"].startswith("version #1 in force since 1990-01-01 (created by seed")
    assert "time-weighted since 2025-02-26" in details["performance"]
    table = run_cli(database_url, "--date", str(D))
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].endswith(": OK")
    assert "weekly   executions" in table.stdout


def _failed_fetch(engine):
    record_run(engine, "fetch", D, "failed", error="MarketDataError: SPY: HTTP 503")


def _failed_signal_run(engine):
    with engine.begin() as conn:
        conn.execute(
            job_runs.update()
            .where(job_runs.c.job == "signal", job_runs.c.trade_date == D)
            .values(status="failed", error="MissingBarsError: x")
        )


def _abandoned_execute(engine):
    record_run(engine, "execute", D, "abandoned", error="runner process 4242 is gone")


def _order_not_in_signal(engine):
    with engine.begin() as conn:
        signal = get_signal(conn, D)
        conn.execute(
            trades.insert().values(
                trade_date=D,
                symbol="IWM",
                action="BUY",
                status="cancelled",
                ordered_amount=10.0,
                signal_id=signal.id,
                created_at=jobruns.utcnow(),
            )
        )


def _missing_bar(engine):
    with engine.begin() as conn:
        conn.execute(
            price_history.delete().where(price_history.c.symbol == "QQQ", price_history.c.date == D)
        )


def _old_pending_order(engine):
    with engine.begin() as conn:
        signal = get_signal(conn, WEEK[1])
        conn.execute(
            trades.insert().values(
                trade_date=WEEK[1],
                symbol="IWM",
                action="BUY",
                status="pending",
                ordered_amount=10.0,
                signal_id=signal.id,
                created_at=jobruns.utcnow(),
            )
        )


def _stuck_run(engine):
    record_run(engine, "backtest", D, "running", started=jobruns.utcnow() - dt.timedelta(hours=3))


def _missed_execution(engine):
    with engine.begin() as conn:
        conn.execute(
            job_runs.delete().where(job_runs.c.job == "execute", job_runs.c.trade_date == WEEK[2])
        )


def _failed_tuning(engine):
    record_run(engine, "tune", MONTH_START, "failed", error="JobError: too little history")


BREAKAGES = {
    "failed fetch": (_failed_fetch, {"fetch run"}),
    "failed signal run": (_failed_signal_run, {"signal run"}),
    "abandoned execute": (_abandoned_execute, {"execute run", "abandoned/stuck runs"}),
    "order not in the signal": (_order_not_in_signal, {"orders"}),
    "missing bar": (_missing_bar, {"prices"}),
    "order pending since an earlier session": (_old_pending_order, {"pending orders"}),
    "stuck run": (_stuck_run, {"abandoned/stuck runs"}),
    "missed execution": (_missed_execution, {"executions"}),
    "failed tuning": (_failed_tuning, {"tuning"}),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_each_broken_thing_fails_its_check_and_exits_1(breakage, engine, database_url, reports):
    build_week(engine, reports)
    damage, expected = BREAKAGES[breakage]
    damage(engine)
    result = run_cli(database_url, "--date", str(D), "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    failed = {name for name, status in statuses(result).items() if status == FAIL}
    assert failed == expected
    assert json.loads(result.stdout)["status"] == FAIL


def test_a_day_without_signal_or_execution_fails_those_checks(engine, database_url, reports):
    build_week(engine, reports, last_day_jobs=("fetch",))
    result = run_cli(database_url, "--date", str(D), "--json")
    assert result.returncode == 1
    checks = statuses(result)
    failed = {name for name, status in checks.items() if status == FAIL}
    assert failed == {"signal run", "execute run", "signal", "executions"}
    assert checks["orders"] == WARN and checks["fetch run"] == OK


def test_warnings_do_not_fail(engine, database_url, reports):
    """A re-run after an abandoned run, a missing tuning report: warnings, exit 0."""
    build_week(engine, reports)
    early = dt.datetime(2025, 3, 4, 14, 0, tzinfo=dt.UTC)  # before every run of the build
    record_run(engine, "execute", D, "abandoned", started=early)
    (reports / "strategy-tuning" / "tuning_2025-03.md").unlink()
    result = run_cli(database_url, "--date", str(D), "--json")
    assert result.returncode == 0, result.stdout
    checks = statuses(result)
    assert checks["abandoned/stuck runs"] == WARN and checks["tuning"] == WARN
    assert checks["execute run"] == OK
    assert json.loads(result.stdout)["status"] == WARN


def test_an_empty_database_fails(database_url, engine):
    result = run_cli(database_url, "--date", str(D), "--json")
    assert result.returncode == 1
    checks = statuses(result)
    assert checks["config"] == FAIL and checks["executions"] == FAIL


def test_an_unmigrated_database_exits_1_on_one_line(tmp_path):
    result = run_cli(f"sqlite:///{tmp_path / 'new.sqlite3'}", "--date", str(D))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "allocator: the database is not initialised: run `allocator db upgrade`"
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2025-13-01", "--date '2025-13-01' is not a date: use YYYY-MM-DD"),
        ("2025-03-01", "--date 2025-03-01 (Saturday) is not an NYSE session"),
    ],
)
def test_a_bad_date_is_a_usage_error(tmp_path, value, message):
    result = run_cli(f"sqlite:///{tmp_path / 'x.sqlite3'}", "--date", value)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_the_default_date_is_the_latest_complete_session_and_the_future_is_refused():
    now = dt.datetime(2025, 3, 4, 17, 5, tzinfo=calendar.EASTERN)
    assert resolve_date(None, now) == D
    before_close = dt.datetime(2025, 3, 4, 15, 0, tzinfo=calendar.EASTERN)
    assert resolve_date(None, before_close) == dt.date(2025, 3, 3)
    with pytest.raises(Exception, match="after the latest complete session 2025-03-03"):
        resolve_date("2025-03-04", before_close)


def test_a_failed_check_is_alerted_and_a_healthy_day_is_not(engine, database_url, reports):
    build_week(engine, reports)
    with WebhookReceiver() as receiver:
        healthy = run_cli(database_url, "--date", str(D), ALERT_WEBHOOK_URL=receiver.url)
        _missing_bar(engine)
        quiet = run_cli(
            database_url, "--date", str(D), "--no-alert", ALERT_WEBHOOK_URL=receiver.url
        )
        failed = run_cli(database_url, "--date", str(D), ALERT_WEBHOOK_URL=receiver.url)
    assert (healthy.returncode, quiet.returncode, failed.returncode) == (0, 1, 1)
    ((_, _, body),) = receiver.posts
    assert "health check failed for 2025-03-04" in body["text"]
    assert "*prices*: no bar of 2025-03-04 for QQQ" in body["text"]


def test_an_unreachable_webhook_changes_nothing_and_stays_secret(engine, database_url, reports):
    build_week(engine, reports)
    _missing_bar(engine)
    url = dead_url()
    result = run_cli(database_url, "--date", str(D), "--json", ALERT_WEBHOOK_URL=url)
    assert result.returncode == 1
    assert statuses(result)["prices"] == FAIL
    assert "not delivered to http://127.0.0.1/***" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_orders_match_hold_and_sell_signals(engine, reports):
    build_week(engine, reports)
    facts = gather_facts(engine, D, reports)
    hold = dataclasses.replace(facts.signal, action="HOLD", allocations={})
    assert check_orders(dataclasses.replace(facts, signal=hold, orders=[])).status == OK
    assert check_orders(dataclasses.replace(facts, signal=hold)).status == FAIL
    sell = dataclasses.replace(
        facts.signal,
        action="SELL",
        allocations={},
        features_used={"sell_quantities": {"SPY": 1.5}},
    )
    sold = [OrderStatus(1, D, "SPY", "SELL", "filled", sell.id)]
    assert check_orders(dataclasses.replace(facts, signal=sell, orders=sold)).status == OK
    missing = check_orders(dataclasses.replace(facts, signal=sell, orders=[]))
    assert missing.status == FAIL and "SELL SPY" in missing.detail


def test_the_months_config_change_is_shown_and_judged(engine, reports):
    build_week(engine, reports)
    with engine.begin() as conn:
        tuned = TradingConfig().with_changes(sell_percentage=0.4)
        open_version(conn, tuned, dt.date(2025, 3, 1), created_by="tune", notes="tighten")
    within = check_config_change(gather_facts(engine, D, reports))
    assert within.status == OK and "sell_percentage" in within.detail
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE trading_config SET daily_capital = 5000 WHERE end_date IS NULL")
        )
    beyond = check_config_change(gather_facts(engine, D, reports))
    assert beyond.status == WARN and "daily_capital is not a tuned parameter" in beyond.detail


def test_the_report_is_read_only(engine, reports):
    build_week(engine, reports)
    tables = (daily_signals, trades, job_runs, price_history)

    def counts():
        with engine.connect() as conn:
            return [
                conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in tables
            ]

    before = counts()
    report = health_report(engine, D, reports)
    assert report.status == OK and counts() == before


def test_the_crontab_runs_health_after_the_fetch_job(tmp_path):
    from allocator.notebook.crontab import crontab_text
    from allocator.notebook.jobspec import JOBS
    from allocator.shell.settings import get_settings

    for job in ("fetch", "signal", "execute", "tune"):
        (tmp_path / f"{job}.ipynb").write_text("{}")
    text = crontab_text(
        get_settings({"DATABASE_URL": "sqlite:////opt/a.sqlite3"}, dotenv=False),
        log_dir=tmp_path / "logs",
        mail="ops@example.com",
        root=tmp_path,
        command="/venv/bin/python -m allocator",
        zone="America/New_York",
        notebooks_dir=tmp_path,
    )
    (line,) = [x for x in text.splitlines() if " health " in x and not x.startswith("#")]
    minute, hour, _, _, weekdays = line.split()[:5]
    fetch_minute, fetch_hour = (int(f) for f in JOBS["fetch"].cron.split()[:2])
    assert (int(hour), int(minute)) > (fetch_hour, fetch_minute) and weekdays == "1-5"
    assert f"-m allocator health --sessions-only >> {tmp_path}/logs/health.log 2>&1" in line
    assert line.endswith("| mail -s 'Capital Allocator: health check failed' ops@example.com")
    command = line.split(None, 5)[5]
    assert subprocess.run(["sh", "-n", "-c", command], check=False).returncode == 0


def test_sessions_only_checks_nothing_on_a_holiday(monkeypatch, capsys):
    from allocator.cli.commands import main
    from allocator.shell import calendar

    monkeypatch.setattr(calendar, "today_eastern", lambda now=None: dt.date(2026, 11, 26))
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/never")  # not even read
    assert main(["health", "--sessions-only", "--no-alert"]) == 0
    assert "market closed: 2026-11-26 (Thursday)" in capsys.readouterr().out


def test_a_run_is_stuck_only_past_the_job_time_limit(monkeypatch):
    from allocator.jobs.health import stuck_after

    monkeypatch.setenv("ALLOCATOR_JOB_TIMEOUT", "600")
    assert stuck_after() == dt.timedelta(minutes=25)
    monkeypatch.delenv("ALLOCATOR_JOB_TIMEOUT")
    assert stuck_after() == dt.timedelta(minutes=45)
