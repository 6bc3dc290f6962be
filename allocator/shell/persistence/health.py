"""Read-only queries behind ``allocator health``: runs, deposits, orders and valuations of a week.

Nothing here writes. Runs are read as :class:`~.jobruns.JobRun`, as everywhere else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from allocator.shell.persistence.jobruns import JobRun, select_runs
from allocator.shell.persistence.schema import cash_ledger, job_runs, trades, valuations


@dataclass(frozen=True)
class OrderStatus:
    """One ``trades`` row: what was ordered and where it stands."""

    id: int
    trade_date: dt.date
    symbol: str
    action: str
    status: str
    signal_id: int


def runs_between(conn: sa.Connection, start: dt.date, end: dt.date) -> list[JobRun]:
    """Every run whose trade date is in [start, end], oldest start first."""
    return select_runs(conn, job_runs.c.trade_date.between(start, end), newest_first=False)


def runs_with_status(conn: sa.Connection, status: str) -> list[JobRun]:
    """Every run (any job, any date) whose status is ``status``, oldest start first."""
    return select_runs(conn, job_runs.c.status == status, newest_first=False)


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
