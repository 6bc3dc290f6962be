"""Trades, the portfolio, the cash ledger and valuations: the book the execute job keeps.

Every write here runs in the caller's transaction; the execute job wraps one trade date in one.
Uniqueness in the schema (one trade per signal and symbol, one ledger entry per reference, one
valuation per date) makes a second execution of a date record nothing new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import pandas as pd
import sqlalchemy as sa

from allocator.exceptions import DatabaseError
from allocator.money.quantities import on_broker_grid, on_share_grid
from allocator.portfolio.book import Book, Position
from allocator.portfolio.fills import Fill, Order, apply_fill
from allocator.portfolio.session import value_at_close
from allocator.shell.persistence.engine import utcnow
from allocator.shell.persistence.schema import (
    book_lock,
    cash_ledger,
    portfolio,
    trades,
    valuations,
)

TRADE_COLUMNS = [
    "trade_date",
    "symbol",
    "action",
    "status",
    "quantity",
    "price",
    "amount",
    "realized_pnl",
    "signal_id",
    "id",
]


def lock_book(conn: sa.Connection) -> None:
    """Take the book's lock for the rest of the caller's transaction: call it first.

    It updates the one ``book_lock`` row. On PostgreSQL that row lock (as ``SELECT ... FOR
    UPDATE`` would) makes every other book transaction wait at the same statement until this one
    ends; on SQLite the write takes the database's write lock at once (as ``BEGIN IMMEDIATE``
    would). Balances, pending orders and positions read after it are therefore the committed
    ones, and no other writer can change them before this transaction commits.
    """
    done = conn.execute(
        book_lock.update().where(book_lock.c.id == 1).values(version=book_lock.c.version + 1)
    )
    if done.rowcount != 1:
        raise DatabaseError("the book_lock row is missing: run `allocator db upgrade`")


def load_book(conn: sa.Connection) -> Book:
    """Cash (the ledger's last balance) and positions (the ``portfolio`` table)."""
    positions = {
        r.symbol: Position(r.symbol, r.quantity, r.avg_cost)
        for r in conn.execute(sa.select(portfolio).order_by(portfolio.c.symbol))
    }
    return Book(cash=cash_balance(conn), positions=positions)


def cash_balance(conn: sa.Connection) -> float:
    row = conn.execute(
        sa.select(cash_ledger.c.balance).order_by(cash_ledger.c.id.desc()).limit(1)
    ).first()
    return float(row.balance) if row else 0.0


def cash_balance_before(conn: sa.Connection, day: dt.date) -> float:
    """The cash balance after the last ledger entry dated before ``day`` (the idle cash at 6:00
    of ``day``: after the earlier sessions' fills, before ``day``'s deposit)."""
    row = conn.execute(
        sa.select(cash_ledger.c.balance)
        .where(cash_ledger.c.entry_date < day)
        .order_by(cash_ledger.c.id.desc())
        .limit(1)
    ).first()
    return float(row.balance) if row else 0.0


def book_before(conn: sa.Connection, day: dt.date) -> Book:
    """The book on the morning of ``day``: the cash after the last ledger entry dated before it,
    and the positions the filled trades dated before it built, in order (average cost and
    quantities as :func:`~allocator.portfolio.fills.apply_fill` keeps them; a broker's fills on
    the broker's grid)."""
    book = Book()
    rows = conn.execute(
        sa.select(trades)
        .where(trades.c.status == "filled", trades.c.trade_date < day)
        .order_by(trades.c.trade_date, trades.c.id)
    )
    for r in rows:
        fill = Fill(r.symbol, r.action, float(r.quantity), float(r.price), float(r.amount))
        # a broker's fill keeps the broker's quantity (9 decimals), as when it was recorded
        apply_fill(book, fill, grid=on_share_grid if r.client_order_id is None else on_broker_grid)
    book.cash = cash_balance_before(conn, day)
    return book


def first_deposit_date(conn: sa.Connection) -> dt.date | None:
    """The date of the first deposit: when the strategy's own book began (None: no deposit)."""
    return conn.execute(
        sa.select(sa.func.min(cash_ledger.c.entry_date)).where(cash_ledger.c.kind == "deposit")
    ).scalar_one()


def _ledger(
    conn: sa.Connection,
    day: dt.date,
    kind: str,
    amount: float,
    ref: str,
    trade_id: int | None = None,
) -> None:
    balance = cash_balance(conn) + amount
    conn.execute(
        cash_ledger.insert().values(
            entry_date=day,
            kind=kind,
            amount=amount,
            balance=balance,
            ref=ref,
            trade_id=trade_id,
            created_at=utcnow(),
        )
    )


def has_deposit(conn: sa.Connection, day: dt.date) -> bool:
    return (
        conn.execute(
            sa.select(cash_ledger.c.id).where(cash_ledger.c.ref == f"deposit:{day}")
        ).first()
        is not None
    )


def record_deposit(conn: sa.Connection, day: dt.date, amount: float) -> bool:
    """Deposit the day's capital once; returns False when it was already deposited."""
    if has_deposit(conn, day):
        return False
    _ledger(conn, day, "deposit", float(amount), f"deposit:{day}")
    return True


def cumulative_deposits(conn: sa.Connection, through: dt.date | None = None) -> float:
    stmt = sa.select(sa.func.coalesce(sa.func.sum(cash_ledger.c.amount), 0.0)).where(
        cash_ledger.c.kind == "deposit"
    )
    if through is not None:
        stmt = stmt.where(cash_ledger.c.entry_date <= through)
    return float(conn.execute(stmt).scalar_one())


def trades_for_signal(conn: sa.Connection, signal_id: int) -> list[sa.Row]:
    return list(
        conn.execute(sa.select(trades).where(trades.c.signal_id == signal_id).order_by(trades.c.id))
    )


def create_orders(
    conn: sa.Connection, signal_id: int, day: dt.date, orders: Iterable[Order]
) -> list[sa.Row]:
    """Record the signal's orders as pending trades (none are added when some already exist)."""
    existing = trades_for_signal(conn, signal_id)
    if existing:
        return existing
    now = utcnow()
    rows = [
        {
            "trade_date": day,
            "symbol": o.symbol,
            "action": o.action,
            "status": "pending",
            "ordered_amount": o.amount,
            "ordered_quantity": o.quantity,
            "signal_id": signal_id,
            "created_at": now,
        }
        for o in orders
    ]
    if rows:
        conn.execute(trades.insert(), rows)
    return trades_for_signal(conn, signal_id)


def order_of(row: sa.Row) -> Order:
    return Order(row.symbol, row.action, amount=row.ordered_amount, quantity=row.ordered_quantity)


def pending_trades(conn: sa.Connection, through: dt.date | None = None) -> list[sa.Row]:
    stmt = sa.select(trades).where(trades.c.status == "pending")
    if through is not None:
        stmt = stmt.where(trades.c.trade_date <= through)
    return list(conn.execute(stmt.order_by(trades.c.trade_date, trades.c.id)))


def record_fills(
    conn: sa.Connection, day: dt.date, rows: list[sa.Row], fills: list[Fill], after: Book
) -> None:
    """Mark ``rows`` filled with ``fills``, write the ledger, and store the book ``after`` them.

    A pending row without a fill (an order worth less than 1/10,000 share) is cancelled.
    """
    now = utcnow()
    by_symbol = {f.symbol: f for f in fills}
    for row in rows:
        fill = by_symbol.get(row.symbol)
        if fill is None:
            conn.execute(
                trades.update()
                .where(trades.c.id == row.id)
                .values(status="cancelled", filled_at=now)
            )
            continue
        conn.execute(
            trades.update()
            .where(trades.c.id == row.id)
            .values(
                status="filled",
                quantity=fill.quantity,
                price=fill.price,
                amount=fill.amount,
                realized_pnl=fill.realized_pnl if fill.action == "SELL" else None,
                commission=fill.commission,
                filled_at=now,
            )
        )
        _ledger(conn, day, fill.action.lower(), fill.cash_change, f"trade:{row.id}", row.id)
    write_positions(conn, after, {f.symbol for f in fills})


def write_positions(conn: sa.Connection, book: Book, symbols: Iterable[str]) -> None:
    now = utcnow()
    for symbol in symbols:
        conn.execute(portfolio.delete().where(portfolio.c.symbol == symbol))
        position = book.positions.get(symbol)
        if position is not None:
            conn.execute(
                portfolio.insert().values(
                    symbol=symbol,
                    quantity=position.quantity,
                    avg_cost=position.avg_cost,
                    updated_at=now,
                )
            )


def filled_after(conn: sa.Connection, day: dt.date) -> bool:
    """True when trades dated after ``day`` are filled (the book has moved past ``day``)."""
    stmt = (
        sa.select(trades.c.id)
        .where(trades.c.trade_date > day)
        .where(trades.c.status == "filled")
        .limit(1)
    )
    return conn.execute(stmt).first() is not None


def executed_after(conn: sa.Connection, day: dt.date) -> dt.date | None:
    """The latest date after ``day`` that was executed (a deposit or orders), or None."""
    deposits = sa.select(sa.func.max(cash_ledger.c.entry_date)).where(
        cash_ledger.c.kind == "deposit", cash_ledger.c.entry_date > day
    )
    orders = sa.select(sa.func.max(trades.c.trade_date)).where(trades.c.trade_date > day)
    found = [conn.execute(q).scalar() for q in (deposits, orders)]
    found = [d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in found if d]
    return max(found) if found else None


def record_valuation(
    conn: sa.Connection, day: dt.date, book: Book, closes: Mapping[str, float]
) -> None:
    """Mark the book to market at ``day``'s closes (a re-run replaces the day's valuation)."""
    conn.execute(valuations.delete().where(valuations.c.valuation_date == day))
    valuation = value_at_close(book, closes)
    conn.execute(
        valuations.insert().values(
            valuation_date=day,
            cash=valuation.cash,
            positions_value=valuation.positions_value,
            total_value=valuation.total_value,
            cumulative_deposits=cumulative_deposits(conn, day),
            positions={
                s: {"quantity": p.quantity, "avg_cost": p.avg_cost, "close": closes[s]}
                for s, p in book.positions.items()
            },
            created_at=utcnow(),
        )
    )


def trades_frame(
    conn: sa.Connection, start: dt.date | None = None, end: dt.date | None = None
) -> pd.DataFrame:
    stmt = sa.select(*[trades.c[c] for c in TRADE_COLUMNS])
    if start is not None:
        stmt = stmt.where(trades.c.trade_date >= start)
    if end is not None:
        stmt = stmt.where(trades.c.trade_date <= end)
    rows = conn.execute(stmt.order_by(trades.c.trade_date, trades.c.id)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=TRADE_COLUMNS)


def valuations_frame(
    conn: sa.Connection, start: dt.date | None = None, end: dt.date | None = None
) -> pd.DataFrame:
    cols = ["valuation_date", "cash", "positions_value", "total_value", "cumulative_deposits"]
    stmt = sa.select(*[valuations.c[c] for c in cols])
    if start is not None:
        stmt = stmt.where(valuations.c.valuation_date >= start)
    if end is not None:
        stmt = stmt.where(valuations.c.valuation_date <= end)
    rows = conn.execute(stmt.order_by(valuations.c.valuation_date)).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def realized_pnl_total(conn: sa.Connection, through: dt.date | None = None) -> float:
    stmt = sa.select(sa.func.coalesce(sa.func.sum(trades.c.realized_pnl), 0.0)).where(
        trades.c.status == "filled"
    )
    if through is not None:
        stmt = stmt.where(trades.c.trade_date <= through)
    return float(conn.execute(stmt).scalar_one())


def cash_entries(conn: sa.Connection) -> list[sa.Row]:
    """Every cash ledger entry, in the order it was written."""
    return list(conn.execute(sa.select(cash_ledger).order_by(cash_ledger.c.id)))
