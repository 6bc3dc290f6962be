"""Read-only, paged queries for the web app: the newest rows of each table, a page at a time.

Every list is newest first and takes ``limit`` and ``offset``; nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import PurePath

import sqlalchemy as sa

from allocator.shell.persistence.engine import connect
from allocator.shell.persistence.jobruns import JobRun, get_run, select_runs
from allocator.shell.persistence.schema import (
    cash_ledger,
    daily_signals,
    job_runs,
    price_history,
    trades,
)
from allocator.shell.persistence.signals import SignalRecord, _record

PRICE_COLUMNS = ("symbol", "date", "open", "high", "low", "close", "volume", "source")
TRADE_COLUMNS = (
    "id",
    "trade_date",
    "symbol",
    "action",
    "status",
    "ordered_amount",
    "ordered_quantity",
    "quantity",
    "price",
    "amount",
    "realized_pnl",
    "signal_id",
    "created_at",
    "filled_at",
)
LEDGER_COLUMNS = ("id", "entry_date", "kind", "amount", "balance", "ref", "trade_id", "created_at")


def _dicts(conn: sa.Connection, stmt: sa.Select) -> list[dict]:
    return [dict(row._mapping) for row in conn.execute(stmt)]


def price_page(
    conn: sa.Connection,
    symbols: list[str],
    start: dt.date | None,
    end: dt.date | None,
    *,
    limit: int,
    offset: int,
) -> list[dict]:
    """Bars of ``symbols`` in [start, end], by date then symbol (oldest first, like a chart)."""
    stmt = sa.select(*[price_history.c[c] for c in PRICE_COLUMNS]).where(
        price_history.c.symbol.in_(symbols)
    )
    if start is not None:
        stmt = stmt.where(price_history.c.date >= start)
    if end is not None:
        stmt = stmt.where(price_history.c.date <= end)
    stmt = stmt.order_by(price_history.c.date, price_history.c.symbol)
    return _dicts(conn, stmt.limit(limit).offset(offset))


def signal_page(conn: sa.Connection, *, limit: int, offset: int) -> list[SignalRecord]:
    """Stored signals, newest trade date first."""
    stmt = sa.select(daily_signals).order_by(daily_signals.c.trade_date.desc())
    return [_record(row) for row in conn.execute(stmt.limit(limit).offset(offset))]


def latest_signal(conn: sa.Connection) -> SignalRecord | None:
    """The signal of the newest trade date, or None when no signal is stored."""
    found = signal_page(conn, limit=1, offset=0)
    return found[0] if found else None


def trade_page(
    conn: sa.Connection,
    *,
    limit: int,
    offset: int,
    symbol: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> list[dict]:
    """Trades (pending, filled and cancelled) of ``symbol`` (None: every symbol) with trade
    dates in [start, end] (None: open), newest trade date first."""
    stmt = sa.select(*[trades.c[c] for c in TRADE_COLUMNS])
    if symbol is not None:
        stmt = stmt.where(trades.c.symbol == symbol)
    if start is not None:
        stmt = stmt.where(trades.c.trade_date >= start)
    if end is not None:
        stmt = stmt.where(trades.c.trade_date <= end)
    stmt = stmt.order_by(trades.c.trade_date.desc(), trades.c.id.desc())
    return _dicts(conn, stmt.limit(limit).offset(offset))


def trade_symbols(conn: sa.Connection) -> list[str]:
    """Every symbol that has a trade, in alphabetical order (the trades page's filter)."""
    stmt = sa.select(trades.c.symbol).distinct().order_by(trades.c.symbol)
    return [row[0] for row in conn.execute(stmt)]


def trade_span(conn: sa.Connection) -> tuple[dt.date | None, dt.date | None]:
    """The first and last trade date of any trade (None, None when there is none)."""
    first, last = conn.execute(
        sa.select(sa.func.min(trades.c.trade_date), sa.func.max(trades.c.trade_date))
    ).one()
    return _date(first), _date(last)


def _date(value: dt.date | str | None) -> dt.date | None:
    # SQLite hands back an aggregate of a date column as text.
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def ledger_page(conn: sa.Connection, *, limit: int, offset: int) -> list[dict]:
    """Cash ledger entries, newest first."""
    stmt = sa.select(*[cash_ledger.c[c] for c in LEDGER_COLUMNS]).order_by(cash_ledger.c.id.desc())
    return _dicts(conn, stmt.limit(limit).offset(offset))


def count_pending_orders(conn: sa.Connection) -> int:
    """Trades still waiting for their open."""
    stmt = sa.select(sa.func.count()).select_from(trades).where(trades.c.status == "pending")
    return int(conn.execute(stmt).scalar_one())


def find_run(engine: sa.Engine, run_id: int) -> JobRun | None:
    """The ``job_runs`` row ``run_id``, or None when there is none."""
    try:
        return get_run(engine, run_id)
    except sa.exc.NoResultFound:
        return None


def find_run_by_notebook(engine: sa.Engine, stem: str) -> JobRun | None:
    """The newest run whose archived notebook is named ``<stem>.ipynb`` (None: no such run)."""
    pattern = f"%{stem}.ipynb"
    with connect(engine) as conn:
        found = select_runs(conn, job_runs.c.notebook_path.like(pattern))
    # LIKE's "_" matches any character: keep the exact names only.
    exact = [r for r in found if r.notebook_path and PurePath(r.notebook_path).stem == stem]
    return exact[0] if exact else None


def database_reachable(engine: sa.Engine) -> None:
    """Open and close a connection (raises a one-line DatabaseError when it cannot)."""
    with connect(engine) as conn:
        conn.execute(sa.select(sa.literal(1))).scalar_one()
