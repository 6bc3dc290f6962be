"""The design document's health checks, for one trade date: daily, weekly and monthly.

Not a job (nothing is written): the step behind ``allocator health``. :func:`gather_facts` reads
what the checks need in one pass; each ``check_*`` function is pure over those facts and returns
one :class:`Check` (OK, WARN or FAIL with a one-line detail that says what to do).

- **Daily** (trade date D): each daily job (fetch, signal, execute) has a succeeded run for D;
  a signal exists for D; its orders are recorded (a BUY or SELL has its orders, a HOLD none);
  every asset of the config active on D has its bar of D; no order older than D is still
  pending; no run of D was abandoned and no run anywhere is stuck ``running``; with orders at a
  broker, D was reconciled, the book agrees with the account (positions and cash use) and the
  account's buying power covers the daily deposit.
- **Weekly** (the 5 sessions ending D): every session since the first execution was executed
  (a succeeded execute run and the day's deposit); the config version in force; the portfolio's
  value and its time-weighted return over the week.
- **Monthly** (D's month): the tune job's run and report for the month; the month's config
  version and whether its changes stay within the tuner's safe ranges and monthly step limits.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from allocator.exceptions import CalendarError, ConfigNotFoundError
from allocator.notebook.jobspec import DAILY, scheduled_jobs
from allocator.portfolio.metrics import daily_returns_flow_adjusted, time_weighted_return
from allocator.portfolio.session import orders_for
from allocator.shell import calendar
from allocator.shell.persistence import broker as broker_queries
from allocator.shell.persistence import health as queries
from allocator.shell.persistence.configs import (
    ConfigVersion,
    active_version,
    version_for_date,
    version_starting,
)
from allocator.shell.persistence.engine import connect, utcnow
from allocator.shell.persistence.jobruns import JobRun
from allocator.shell.persistence.prices import bars_on
from allocator.shell.persistence.signals import SignalRecord, get_signal
from allocator.shell.settings import Settings
from allocator.tuning.recommend import SAFE_RANGES, STEP_LIMITS

OK, WARN, FAIL = "OK", "WARN", "FAIL"
DAILY_CHECKS, WEEKLY_CHECKS, MONTHLY_CHECKS = "daily", "weekly", "monthly"
#: Sessions the weekly checks look back over, D included.
WEEK_SESSIONS = 5
#: A run still ``running`` this long after the job time limit (``ALLOCATOR_JOB_TIMEOUT``) is stuck:
#: its runner should have stopped it, or, if the runner died, ``allocator runs --repair`` marks it.
STUCK_MARGIN = dt.timedelta(minutes=15)


def stuck_after() -> dt.timedelta:
    """How long a run may stay ``running`` before it counts as stuck."""
    from allocator.notebook.kernel import job_timeout

    return dt.timedelta(seconds=job_timeout()) + STUCK_MARGIN


_SEVERITY = {OK: 0, WARN: 1, FAIL: 2}


@dataclass(frozen=True)
class Check:
    """One check's outcome: its name, period (daily/weekly/monthly), status and one-line detail."""

    name: str
    period: str
    status: str
    detail: str


@dataclass(frozen=True)
class HealthReport:
    """Every check of one trade date; the overall status is the worst of them."""

    trade_date: dt.date
    checks: list[Check]
    checked_at: dt.datetime

    @property
    def status(self) -> str:
        return max((c.status for c in self.checks), key=_SEVERITY.__getitem__, default=OK)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    def to_dict(self) -> dict:
        return {
            "date": self.trade_date.isoformat(),
            "status": self.status,
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
            "checks": [asdict(c) for c in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def table(self) -> str:
        """A plain-text table: period, check, status, detail (one line each)."""
        width = max(len(c.name) for c in self.checks)
        lines = [f"{'PERIOD':<8} {'CHECK':<{width}} {'STATUS':<6} DETAIL"]
        lines += [f"{c.period:<8} {c.name:<{width}} {c.status:<6} {c.detail}" for c in self.checks]
        return "\n".join(lines)

    def summary_line(self) -> str:
        counts = {s: sum(c.status == s for c in self.checks) for s in (OK, WARN, FAIL)}
        return (
            f"health {self.trade_date}: {self.status} ({counts[OK]} ok, {counts[WARN]} warn, "
            f"{counts[FAIL]} failed)"
        )


@dataclass(frozen=True)
class HealthFacts:
    """What the checks read, gathered once from the database and the reports folder."""

    day: dt.date
    now: dt.datetime
    week: list[dt.date]
    daily_jobs: list[str]
    runs: list[JobRun]
    running: list[JobRun]
    signal: SignalRecord | None
    orders: list[queries.OrderStatus]
    assets: list[str]
    bars: set[str]
    pending: list[queries.OrderStatus]
    deposits: set[dt.date]
    first_deposit: dt.date | None
    active: ConfigVersion | None
    on_day: ConfigVersion | None
    valuations: list
    month_start: dt.date
    month_version: ConfigVersion | None
    month_base: ConfigVersion | None
    report: Path
    #: D's orders sent to a broker, and D's reconciliation with it (None: not reconciled).
    broker_orders: int = 0
    reconciliation: sa.Row | None = None


def resolve_date(value: str | None, now: dt.datetime | None = None) -> dt.date:
    """The trade date to check: ``value`` (a session, not after the latest complete one) or,
    when None, the latest complete NYSE session at ``now``."""
    latest = calendar.latest_complete_session(now)
    if value is None:
        return latest
    day = calendar.require_session(calendar.to_date(value, "--date"), "--date")
    if day > latest:
        raise CalendarError(
            f"--date {day} is after the latest complete session {latest}: its jobs have not all "
            f"run yet; check {latest} or an earlier session"
        )
    return day


def _version_or_none(conn: sa.Connection, day: dt.date) -> ConfigVersion | None:
    try:
        return version_for_date(conn, day)
    except ConfigNotFoundError:
        return None


def _active_or_none(conn: sa.Connection) -> ConfigVersion | None:
    try:
        return active_version(conn)
    except ConfigNotFoundError:
        return None


def gather_facts(
    engine: sa.Engine, day: dt.date, reports_dir: Path, now: dt.datetime | None = None
) -> HealthFacts:
    """Read everything the checks of ``day`` need (read-only; one connection)."""
    from allocator.jobs.tune import report_path

    week = calendar.last_n_sessions(day, WEEK_SESSIONS)
    month_start = calendar.first_session_of_month(day.year, day.month)
    first_of_month = day.replace(day=1)
    with connect(engine) as conn:
        signal = get_signal(conn, day)
        on_day = _version_or_none(conn, day)
        assets = list(on_day.config.assets) if on_day else []
        return HealthFacts(
            day=day,
            now=now or utcnow(),
            week=week,
            daily_jobs=[s.name for s in scheduled_jobs() if s.frequency == DAILY],
            runs=queries.runs_between(conn, min(week[0], month_start), day),
            running=queries.runs_with_status(conn, "running"),
            signal=signal,
            orders=queries.orders_of_signal(conn, signal.id) if signal else [],
            assets=assets,
            bars=set(bars_on(conn, day, assets)) if assets else set(),
            pending=queries.pending_orders(conn, day),
            deposits=set(queries.deposit_dates(conn, week[0], day)),
            first_deposit=queries.first_deposit_date(conn),
            active=_active_or_none(conn),
            on_day=on_day,
            valuations=queries.valuation_history(conn, calendar.previous_session(week[0]), day),
            month_start=month_start,
            month_version=version_starting(conn, first_of_month),
            month_base=_version_or_none(conn, first_of_month - dt.timedelta(days=1)),
            report=report_path(reports_dir, day),
            broker_orders=len(broker_queries.broker_orders_of(conn, day)),
            reconciliation=broker_queries.reconciliation_on(conn, day),
        )


def _succeeded_after(runs: list[JobRun], run: JobRun) -> bool:
    """A later run of the same job and date succeeded (``runs`` are oldest first)."""
    later = runs[runs.index(run) + 1 :]
    return any(
        r.job == run.job and r.trade_date == run.trade_date and r.status == "succeeded"
        for r in later
    )


def _eastern(moment: dt.datetime) -> str:
    return f"{moment.astimezone(calendar.EASTERN):%Y-%m-%d %H:%M} ET"


# --- daily -----------------------------------------------------------------------------------


def check_job(facts: HealthFacts, job: str) -> Check:
    """The latest run of ``job`` for D succeeded (earlier failed attempts are noted)."""
    day, name = facts.day, f"{job} run"
    runs = [r for r in facts.runs if r.job == job and r.trade_date == day]
    rerun = f"`allocator run {job} --date {day}`"
    if not runs:
        return Check(name, DAILY_CHECKS, FAIL, f"no {job} run recorded for {day}: run {rerun}")
    last = runs[-1]
    if last.status == "succeeded":
        earlier = sum(r.status in ("failed", "abandoned") for r in runs[:-1])
        note = f" (after {earlier} failed attempt(s))" if earlier else ""
        finished = last.finished_at or last.started_at
        return Check(name, DAILY_CHECKS, OK, f"succeeded at {_eastern(finished)}{note}")
    if last.status == "running":
        return Check(name, DAILY_CHECKS, WARN, f"still running since {_eastern(last.started_at)}")
    if last.status == "skipped":
        return Check(name, DAILY_CHECKS, WARN, f"skipped: {last.error or 'no reason recorded'}")
    why = last.error or ("its process died" if last.status == "abandoned" else "no error kept")
    return Check(name, DAILY_CHECKS, FAIL, f"run #{last.id} {last.status}: {why}; re-run {rerun}")


def check_signal(facts: HealthFacts) -> Check:
    """A signal exists for D."""
    s, day = facts.signal, facts.day
    if s is None:
        fix = f"run `allocator run signal --date {day}`"
        return Check("signal", DAILY_CHECKS, FAIL, f"no signal for {day}: {fix}")
    detail = f"{s.action}, confidence {s.confidence_score:.2f}, config #{s.config_id}"
    return Check("signal", DAILY_CHECKS, OK, detail)


def check_orders(facts: HealthFacts) -> Check:
    """The recorded orders are exactly the signal's: a BUY or SELL has its orders, a HOLD none."""
    s, day = facts.signal, facts.day
    if s is None:
        return Check("orders", DAILY_CHECKS, WARN, f"no signal for {day} to compare orders with")
    expected = {(o.symbol, o.action) for o in orders_for(s.allocations, s.sell_quantities)}
    recorded = {(o.symbol, o.action) for o in facts.orders}
    missing, extra = sorted(expected - recorded), sorted(recorded - expected)
    if missing:
        fix = f"run `allocator run execute --date {day}`"
        shown = ", ".join(f"{a} {sym}" for sym, a in missing)
        return Check(
            "orders", DAILY_CHECKS, FAIL, f"{s.action} signal lacks orders: {shown}; {fix}"
        )
    if extra:
        shown = ", ".join(f"{a} {sym}" for sym, a in extra)
        return Check("orders", DAILY_CHECKS, FAIL, f"orders not in the {s.action} signal: {shown}")
    if not expected:
        return Check("orders", DAILY_CHECKS, OK, f"{s.action}: nothing to trade, no orders")
    states = Counter(o.status for o in facts.orders)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    return Check("orders", DAILY_CHECKS, OK, f"{s.action}: {len(expected)} order(s), {counts}")


def check_prices(facts: HealthFacts) -> Check:
    """Every asset of the config active on D has its bar of D."""
    day = facts.day
    if not facts.assets:
        return Check("prices", DAILY_CHECKS, FAIL, f"no trading config covers {day}")
    missing = [s for s in facts.assets if s not in facts.bars]
    if missing:
        fix = f"run `allocator run fetch --date {day}`"
        shown = ", ".join(missing)
        return Check("prices", DAILY_CHECKS, FAIL, f"no bar of {day} for {shown}: {fix}")
    return Check("prices", DAILY_CHECKS, OK, f"bars of {day} stored for {', '.join(facts.assets)}")


def check_pending(facts: HealthFacts) -> Check:
    """No order dated before D is still pending (D's own wait for D's bar: a warning)."""
    old = [o for o in facts.pending if o.trade_date < facts.day]
    if old:
        first = old[0].trade_date
        shown = ", ".join(sorted({f"{o.symbol} {o.trade_date}" for o in old}))
        fix = f"run `allocator run fetch --date {first}` to fill them at that open"
        return Check("pending orders", DAILY_CHECKS, FAIL, f"still pending: {shown}; {fix}")
    if facts.pending:
        detail = (
            f"{len(facts.pending)} order(s) of {facts.day} pending: the fetch job fills them once "
            f"the bar of {facts.day} is stored"
        )
        return Check("pending orders", DAILY_CHECKS, WARN, detail)
    return Check("pending orders", DAILY_CHECKS, OK, "none pending")


def check_runs(facts: HealthFacts) -> Check:
    """No run of D was abandoned; no run (any job, any date) is stuck ``running``."""
    name, day = "abandoned/stuck runs", facts.day
    abandoned = [r for r in facts.runs if r.status == "abandoned" and r.trade_date == day]
    redone = [r for r in abandoned if _succeeded_after(facts.runs, r)]
    limit = stuck_after()
    stuck = [r for r in facts.running if facts.now - r.started_at > limit]
    problems = [f"{r.job} #{r.id} of {day} abandoned" for r in abandoned if r not in redone]
    problems += [
        f"{r.job} #{r.id} of {r.trade_date} running since {_eastern(r.started_at)}" for r in stuck
    ]
    if problems:
        fix = "re-run those jobs for their dates (see `allocator runs`)"
        return Check(name, DAILY_CHECKS, FAIL, "; ".join(problems) + f": {fix}")
    notes = [f"{r.job} #{r.id} abandoned, re-run succeeded" for r in redone]
    notes += [f"{r.job} #{r.id} running now" for r in facts.running]
    if notes:
        return Check(name, DAILY_CHECKS, WARN, "; ".join(notes))
    return Check("abandoned/stuck runs", DAILY_CHECKS, OK, "none abandoned, none stuck")


def check_broker(facts: HealthFacts) -> Check:
    """With orders at a broker: D is reconciled, the book's positions and cash use agree with
    the account's, and its buying power is not below the daily deposit (a warning)."""
    rec, day = facts.reconciliation, facts.day
    fix = f"run `allocator broker reconcile --date {day}`"
    if rec is None:
        detail = f"{facts.broker_orders} order(s) of {day} at the broker not reconciled: {fix}"
        return Check("broker", DAILY_CHECKS, FAIL, detail)
    where = f"{rec.broker}, checked {_eastern(rec.checked_at)}"
    if rec.status != "ok":
        what = "book and account differ" if rec.status == "mismatch" else "orders still open"
        detail = f"{what} ({where}): {rec.detail}; find the cause, then {fix}"
        return Check("broker", DAILY_CHECKS, FAIL, detail)
    if None not in (rec.buying_power, rec.daily_capital) and rec.buying_power < rec.daily_capital:
        detail = (
            f"buying power {rec.buying_power:,.2f} is below the daily deposit of "
            f"{rec.daily_capital:,.2f} ({where}): fund the account before the next session"
        )
        return Check("broker", DAILY_CHECKS, WARN, detail)
    return Check("broker", DAILY_CHECKS, OK, f"reconciled ({where}): {rec.detail}")


# --- weekly ----------------------------------------------------------------------------------


def check_executions(facts: HealthFacts) -> Check:
    """Each session of the week since the first execution has a succeeded execute run and its
    deposit (a session skipped between executed ones is a missed execution)."""
    name, day = "executions", facts.day
    if facts.first_deposit is None:
        fix = f"run `allocator run execute --date {day}`"
        return Check(name, WEEKLY_CHECKS, FAIL, f"no session was ever executed (no deposit): {fix}")
    live = [s for s in facts.week if s >= facts.first_deposit]
    executed = {r.trade_date for r in facts.runs if r.job == "execute" and r.status == "succeeded"}
    missed = []
    for session in live:
        if session not in executed:
            missed.append(f"{session} (no succeeded execute run)")
        elif session not in facts.deposits:
            missed.append(f"{session} (no deposit)")
    if missed:
        fix = "run `allocator run execute --date D` for each, oldest first"
        return Check(name, WEEKLY_CHECKS, FAIL, f"missed: {', '.join(missed)}; {fix}")
    since = f" ({facts.week[0]}..{day})" if len(live) == len(facts.week) else ""
    detail = f"{len(live)} of {len(facts.week)} sessions executed{since}"
    if len(live) < len(facts.week):
        detail += f" (the first execution was {facts.first_deposit})"
    return Check(name, WEEKLY_CHECKS, OK, detail)


def check_config(facts: HealthFacts) -> Check:
    """A config version is active; the one covering D is the one the signal of D used."""
    if facts.active is None or facts.on_day is None:
        fix = "run `allocator config seed` (or open a version covering it)"
        return Check("config", WEEKLY_CHECKS, FAIL, f"no trading config covers {facts.day}: {fix}")
    v = facts.on_day
    detail = (
        f"version #{v.id} in force since {v.start_date} (created by {v.created_by} on "
        f"{v.created_at:%Y-%m-%d})"
    )
    if facts.active.id != v.id:
        detail += f"; #{facts.active.id} is active from {facts.active.start_date}"
    if facts.signal is not None and facts.signal.config_id != v.id:
        used = facts.signal.config_id
        return Check("config", WEEKLY_CHECKS, WARN, f"the signal used version #{used}; {detail}")
    return Check("config", WEEKLY_CHECKS, OK, detail)


def week_return(valuations: list) -> float:
    """Time-weighted return from the first valuation's close to the last one's (deposits are
    contributions, not returns; see :func:`daily_returns_flow_adjusted`)."""
    values = pd.Series([float(v.total_value) for v in valuations])
    cumulative = pd.Series([float(v.cumulative_deposits) for v in valuations])
    deposits = cumulative.diff().fillna(cumulative.iloc[0]).clip(lower=0.0)
    # The first session's return is measured against its deposit only: not part of the week.
    return time_weighted_return(daily_returns_flow_adjusted(values, deposits).iloc[1:])


def check_performance(facts: HealthFacts) -> Check:
    """The portfolio was valued at D's close; its value and the week's time-weighted return."""
    last = facts.valuations[-1] if facts.valuations else None
    if last is None or last.valuation_date != facts.day:
        detail = f"no valuation at the close of {facts.day} (orders pending or a close missing)"
        return Check("performance", WEEKLY_CHECKS, WARN, detail)
    detail = (
        f"value {last.total_value:,.2f} (cash {last.cash:,.2f}, positions "
        f"{last.positions_value:,.2f}; deposited {last.cumulative_deposits:,.2f})"
    )
    if len(facts.valuations) > 1:
        first = facts.valuations[0].valuation_date
        detail += f"; {week_return(facts.valuations):+.2%} time-weighted since {first}"
    return Check("performance", WEEKLY_CHECKS, OK, detail)


# --- monthly ---------------------------------------------------------------------------------


def check_tuning(facts: HealthFacts) -> Check:
    """The month's tune run succeeded and its report exists."""
    month = f"{facts.day:%Y-%m}"
    runs = [r for r in facts.runs if r.job == "tune" and r.trade_date >= facts.month_start]
    runs = [r for r in runs if r.status != "skipped"]
    fix = f"run `allocator run tune --date {facts.month_start}`"
    if not runs:
        detail = f"no tune run recorded for {month} (it runs on {facts.month_start}): {fix}"
        return Check("tuning", MONTHLY_CHECKS, WARN, detail)
    last = runs[-1]
    if last.status == "running":
        return Check("tuning", MONTHLY_CHECKS, WARN, f"tune #{last.id} still running")
    if last.status != "succeeded":
        why = last.error or "no error kept"
        return Check("tuning", MONTHLY_CHECKS, FAIL, f"tune #{last.id} {last.status}: {why}; {fix}")
    if not facts.report.is_file():
        detail = f"tune #{last.id} succeeded but {facts.report} is missing"
        return Check("tuning", MONTHLY_CHECKS, WARN, detail)
    return Check("tuning", MONTHLY_CHECKS, OK, f"tune #{last.id} succeeded; report {facts.report}")


def unreasonable_changes(base: ConfigVersion, new: ConfigVersion) -> tuple[list[str], list[str]]:
    """(every change as ``name old -> new``, the changes outside the tuner's bounds)."""
    old, now = base.config.to_dict(), new.config.to_dict()
    changes, outside = [], []
    for name in old:
        if old[name] == now[name]:
            continue
        changes.append(f"{name} {old[name]} -> {now[name]}")
        if name not in SAFE_RANGES:
            outside.append(f"{name} is not a tuned parameter")
            continue
        low, high = SAFE_RANGES[name]
        if not low <= now[name] <= high:
            outside.append(f"{name} {now[name]} outside [{low}, {high}]")
        elif abs(now[name] - old[name]) > STEP_LIMITS[name] + 1e-9:
            outside.append(f"{name} moved more than {STEP_LIMITS[name]} in a month")
    return changes, outside


def check_config_change(facts: HealthFacts) -> Check:
    """The month's new version, if any, changes only tuned parameters within their bounds."""
    name, month = "config change", f"{facts.day:%Y-%m}"
    new, base = facts.month_version, facts.month_base
    if new is None:
        kept = f"#{base.id}" if base else "the previous version"
        return Check(name, MONTHLY_CHECKS, OK, f"no new version for {month}: {kept} stays")
    if base is None:
        detail = f"version #{new.id} from {new.start_date} (no earlier version to compare)"
        return Check(name, MONTHLY_CHECKS, OK, detail)
    changes, outside = unreasonable_changes(base, new)
    detail = f"version #{new.id} ({new.created_by}) from {new.start_date}: " + (
        "; ".join(changes) or "no parameter changed"
    )
    if outside:
        return Check(name, MONTHLY_CHECKS, WARN, f"{detail}; review: {'; '.join(outside)}")
    return Check(name, MONTHLY_CHECKS, OK, detail)


def run_checks(facts: HealthFacts) -> list[Check]:
    """Every check, daily first, in the design document's order."""
    checks = [check_job(facts, job) for job in facts.daily_jobs]
    checks += [check_signal(facts), check_orders(facts), check_prices(facts)]
    checks += [check_pending(facts), check_runs(facts)]
    if facts.broker_orders or facts.reconciliation is not None:  # simulated: no such check
        checks.append(check_broker(facts))
    checks += [check_executions(facts), check_config(facts), check_performance(facts)]
    return checks + [check_tuning(facts), check_config_change(facts)]


def health_report(
    engine: sa.Engine, day: dt.date, reports_dir: Path, now: dt.datetime | None = None
) -> HealthReport:
    """The health of trade date ``day``: every check of the module doc, read-only.

    Parameters
    ----------
    engine : sa.Engine
        A database migrated to head.
    day : datetime.date
        The NYSE session to check (see :func:`resolve_date`).
    reports_dir : Path
        The reports folder, where the month's ``strategy-tuning/tuning_YYYY-MM.md`` is looked for.
    now : datetime.datetime, optional
        The moment of the check (default: now), against which ``running`` runs are judged stuck.

    Returns
    -------
    HealthReport
        The checks in order (daily, weekly, monthly); its ``status`` is the worst of them.
    """
    facts = gather_facts(engine, day, reports_dir, now)
    return HealthReport(day, run_checks(facts), facts.now)


def alert_failures(settings: Settings, report: HealthReport) -> bool:
    """Post the failed checks to ``ALERT_WEBHOOK_URL`` (nothing when none failed); delivered?"""
    from allocator.shell.alerts import alert_failed_checks

    if not report.failed:
        return False
    failures = [(c.name, c.detail) for c in report.failed]
    return alert_failed_checks(settings, report.trade_date, failures)
