"""Orders at a broker in the ledger: their ids and statuses, the account's starting point, each
day's reconciliation, and the fills beside the official open (for slippage).

A trade sent to a broker carries a ``client_order_id`` from the moment it is recorded; its
``broker_order_id`` once the broker accepted it. Every write runs in the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pandas as pd
import sqlalchemy as sa

from allocator.shell.persistence.engine import utcnow
from allocator.shell.persistence.schema import (
    broker_accounts,
    broker_reconciliations,
    cash_ledger,
    price_history,
    trades,
)

#: Columns of :func:`fills_with_opens`.
FILL_COLUMNS = [
    "trade_date",
    "symbol",
    "action",
    "quantity",
    "price",
    "amount",
    "commission",
    "open",
    "client_order_id",
    "broker_status",
    "broker_reason",
]


def assign_client_order_ids(conn: sa.Connection, ids: Mapping[int, str]) -> None:
    """Give each trade (by id) its client order id, once: an id already set is kept."""
    for trade_id, client_id in ids.items():
        conn.execute(
            trades.update()
            .where(trades.c.id == trade_id, trades.c.client_order_id.is_(None))
            .values(client_order_id=client_id)
        )


def unsubmitted_orders(conn: sa.Connection, day: dt.date) -> list[sa.Row]:
    """The broker orders of ``day`` still pending without a broker id (sells first, as
    recorded)."""
    stmt = sa.select(trades).where(
        trades.c.trade_date == day,
        trades.c.status == "pending",
        trades.c.client_order_id.is_not(None),
        trades.c.broker_order_id.is_(None),
    )
    return list(conn.execute(stmt.order_by(trades.c.id)))


def open_broker_orders(conn: sa.Connection, through: dt.date) -> list[sa.Row]:
    """Broker orders dated up to ``through`` whose fills are not recorded yet, oldest first."""
    stmt = sa.select(trades).where(
        trades.c.trade_date <= through,
        trades.c.status == "pending",
        trades.c.client_order_id.is_not(None),
    )
    return list(conn.execute(stmt.order_by(trades.c.trade_date, trades.c.id)))


def broker_orders_of(conn: sa.Connection, day: dt.date) -> list[sa.Row]:
    """Every broker order dated ``day``, in the order recorded."""
    stmt = sa.select(trades).where(
        trades.c.trade_date == day, trades.c.client_order_id.is_not(None)
    )
    return list(conn.execute(stmt.order_by(trades.c.id)))


def trade_by_id(conn: sa.Connection, trade_id: int) -> sa.Row:
    return conn.execute(sa.select(trades).where(trades.c.id == trade_id)).one()


def record_submission(
    conn: sa.Connection, trade_id: int, broker_order_id: str, status: str
) -> None:
    """The broker accepted (or already had) the order: keep its id and status."""
    conn.execute(
        trades.update()
        .where(trades.c.id == trade_id)
        .values(broker_order_id=broker_order_id, broker_status=status, submitted_at=utcnow())
    )


def record_broker_status(
    conn: sa.Connection, trade_id: int, status: str, reason: str | None = None
) -> None:
    """The broker's latest status of an order (and why, for a partial fill or a rejection)."""
    values: dict = {"broker_status": status}
    if reason is not None:
        values["broker_reason"] = reason
    conn.execute(trades.update().where(trades.c.id == trade_id).values(**values))


def cancel_order(conn: sa.Connection, trade_id: int, status: str, reason: str) -> None:
    """Close an order that filled nothing (rejected, cancelled, expired, never submitted)."""
    conn.execute(
        trades.update()
        .where(trades.c.id == trade_id)
        .values(status="cancelled", broker_status=status, broker_reason=reason, filled_at=utcnow())
    )


def baseline(conn: sa.Connection, broker: str) -> sa.Row | None:
    """The account's starting point recorded before the strategy's first order (or None)."""
    stmt = sa.select(broker_accounts).where(broker_accounts.c.broker == broker)
    return conn.execute(stmt.order_by(broker_accounts.c.id).limit(1)).first()


def save_baseline(
    conn: sa.Connection,
    broker: str,
    account: str,
    endpoint: str,
    live: bool,
    cash: float,
    positions: Mapping[str, float],
) -> None:
    """Record the account's cash and positions before the strategy trades in it."""
    conn.execute(
        broker_accounts.insert().values(
            broker=broker,
            account=account,
            endpoint=endpoint,
            live=live,
            baseline_cash=cash,
            baseline_positions=dict(positions),
            created_at=utcnow(),
        )
    )


def broker_cash_flow(conn: sa.Connection) -> tuple[float, int]:
    """(the sum of the cash entries of broker fills, how many fills): what the strategy's
    orders took from (negative) or added to the account's cash."""
    broker_trades = sa.select(trades.c.id).where(trades.c.client_order_id.is_not(None))
    stmt = sa.select(
        sa.func.coalesce(sa.func.sum(cash_ledger.c.amount), 0.0), sa.func.count(cash_ledger.c.id)
    ).where(cash_ledger.c.trade_id.in_(broker_trades))
    total, count = conn.execute(stmt).one()
    return float(total), int(count)


def save_reconciliation(conn: sa.Connection, day: dt.date, **values) -> None:
    """Store ``day``'s reconciliation (replacing an earlier one of the same day)."""
    conn.execute(broker_reconciliations.delete().where(broker_reconciliations.c.trade_date == day))
    conn.execute(
        broker_reconciliations.insert().values(trade_date=day, checked_at=utcnow(), **values)
    )


def reconciliation_on(conn: sa.Connection, day: dt.date) -> sa.Row | None:
    stmt = sa.select(broker_reconciliations).where(broker_reconciliations.c.trade_date == day)
    return conn.execute(stmt).first()


def fills_with_opens(
    conn: sa.Connection, start: dt.date | None = None, end: dt.date | None = None
) -> pd.DataFrame:
    """Every filled trade (by date, then as recorded) with the official open of its symbol on
    its date (NaN where the bar is not stored yet): the frame slippage is measured on."""
    bar = sa.and_(
        price_history.c.symbol == trades.c.symbol, price_history.c.date == trades.c.trade_date
    )
    columns = [trades.c[c] for c in FILL_COLUMNS if c != "open"]
    stmt = (
        sa.select(*columns, price_history.c.open)
        .select_from(trades.outerjoin(price_history, bar))
        .where(trades.c.status == "filled")
    )
    if start is not None:
        stmt = stmt.where(trades.c.trade_date >= start)
    if end is not None:
        stmt = stmt.where(trades.c.trade_date <= end)
    rows = conn.execute(stmt.order_by(trades.c.trade_date, trades.c.id)).all()
    names = [c for c in FILL_COLUMNS if c != "open"] + ["open"]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=names)
    return frame[FILL_COLUMNS]
