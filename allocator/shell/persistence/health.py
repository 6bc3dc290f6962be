"""Read-only queries behind ``allocator health``: runs, deposits, orders and valuations of a week.

Nothing here writes. Runs are read as :class:`RunStatus` (the columns a health check needs), so
the checks do not depend on every column ``job_runs`` may gain.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from allocator.shell.persistence.schema import cash_ledger, job_runs, trades, valuations


@dataclass(frozen=True)
class RunStatus:
    """One ``job_runs`` row as the health checks see it (times in UTC)."""

    id: int
    job: str
    trade_date: dt.date | None
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    error: str | None


@dataclass(frozen=True)
class OrderStatus:
    """One ``trades`` row: what was ordered and where it stands."""

    id: int
    trade_date: dt.date
    symbol: str
    action: str
    status: str
    signal_id: int


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands back naive datetimes; everything stored is UTC.
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=dt.UTC)


_RUN_COLUMNS = [
    job_runs.c.id,
    job_runs.c.job,
    job_runs.c.trade_date,
    job_runs.c.status,
    job_runs.c.started_at,
    job_runs.c.finished_at,
    job_runs.c.error,
]


def _runs(conn: sa.Connection, query: sa.Select) -> list[RunStatus]:
    rows = conn.execute(query.order_by(job_runs.c.started_at, job_runs.c.id))
    return [
        RunStatus(
            r.id, r.job, r.trade_date, r.status, _utc(r.started_at), _utc(r.finished_at), r.error
        )
        for r in rows
    ]


def runs_between(conn: sa.Connection, start: dt.date, end: dt.date) -> list[RunStatus]:
    """Every run whose trade date is in [start, end], oldest start first."""
    query = sa.select(*_RUN_COLUMNS).where(job_runs.c.trade_date.between(start, end))
    return _runs(conn, query)


def runs_with_status(conn: sa.Connection, status: str) -> list[RunStatus]:
    """Every run (any job, any date) whose status is ``status``, oldest start first."""
    return _runs(conn, sa.select(*_RUN_COLUMNS).where(job_runs.c.status == status))


def deposit_dates(conn: sa.Connection, start: dt.date, end: dt.date) -> list[dt.date]:
    """The dates in [start, end] with a deposit in the cash ledger (the execute job's mark)."""
    rows = conn.execute(
        sa.select(cash_ledger.c.entry_date)
        .where(cash_ledger.c.kind == "deposit")
        .where(cash_ledger.c.entry_date.between(start, end))
        .order_by(cash_ledger.c.entry_date)
    )
    return [r.entry_date for r in rows]


def first_deposit_date(conn: sa.Connection) -> dt.date | None:
    """The date of the first deposit ever (the first executed session), or None."""
    return conn.execute(
        sa.select(sa.func.min(cash_ledger.c.entry_date)).where(cash_ledger.c.kind == "deposit")
    ).scalar_one()


def _orders(conn: sa.Connection, query: sa.Select) -> list[OrderStatus]:
    rows = conn.execute(query.order_by(trades.c.trade_date, trades.c.id))
    return [
        OrderStatus(r.id, r.trade_date, r.symbol, r.action, r.status, r.signal_id) for r in rows
    ]


_ORDER_COLUMNS = [
    trades.c.id,
    trades.c.trade_date,
    trades.c.symbol,
    trades.c.action,
    trades.c.status,
    trades.c.signal_id,
]


def orders_of_signal(conn: sa.Connection, signal_id: int) -> list[OrderStatus]:
    """The orders recorded for the signal ``signal_id`` (filled, pending or cancelled)."""
    return _orders(conn, sa.select(*_ORDER_COLUMNS).where(trades.c.signal_id == signal_id))


def pending_orders(conn: sa.Connection, through: dt.date) -> list[OrderStatus]:
    """The orders still pending whose trade date is ``through`` or earlier."""
    query = (
        sa.select(*_ORDER_COLUMNS)
        .where(trades.c.status == "pending")
        .where(trades.c.trade_date <= through)
    )
    return _orders(conn, query)


def valuation_history(conn: sa.Connection, start: dt.date, end: dt.date) -> list[sa.Row]:
    """Valuations dated in [start, end], oldest first: date, cash, positions, total, deposits."""
    return list(
        conn.execute(
            sa.select(
                valuations.c.valuation_date,
                valuations.c.cash,
                valuations.c.positions_value,
                valuations.c.total_value,
                valuations.c.cumulative_deposits,
            )
            .where(valuations.c.valuation_date.between(start, end))
            .order_by(valuations.c.valuation_date)
        )
    )
