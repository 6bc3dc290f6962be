"""The execute job (9:30 AM ET): deposit the day's capital and fill the day's signal at the open.

Orders come from the signal of the trade date only. They fill at that date's official open: from
``price_history`` when the bar is stored (recovery runs), from a live quote source when one is
configured, otherwise they are recorded as pending and the fetch job that stores the date's bar
fills them (:func:`settle_pending`). One trade date is one transaction; the schema's uniqueness
makes a second run record nothing new.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd
import sqlalchemy as sa

from allocator.portfolio.fills import (
    Book,
    ExecutionError,
    fill_orders_at_open,
    orders_from_allocations,
)
from allocator.shell import calendar
from allocator.shell.persistence import ledger
from allocator.shell.persistence.configs import version_by_id
from allocator.shell.persistence.prices import bars_on, latest_closes
from allocator.shell.persistence.signals import require_signal
from allocator.shell.settings import Settings, get_settings

log = logging.getLogger(__name__)


class QuoteSource(Protocol):
    """Live official opens, for filling at 9:30 before the day's bar is stored."""

    name: str

    def official_opens(self, symbols: list[str], day: dt.date) -> dict[str, float]:
        """The official open of ``day`` for each symbol that has one yet (others absent)."""
        ...


@dataclass
class ExecutionResult:
    """What one execution of one trade date did, and the book after it."""

    trade_date: dt.date
    signal_id: int
    action: str
    deposited: bool
    status: str
    trades: pd.DataFrame
    book: Book
    realized_pnl: float
    unrealized_pnl: dict[str, float] = field(default_factory=dict)
    #: The latest stored close of each held symbol (for market values).
    closes: dict[str, float] = field(default_factory=dict)
    settled: list[tuple[dt.date, int]] = field(default_factory=list)

    @property
    def cash(self) -> float:
        return self.book.cash

    @property
    def positions(self) -> dict[str, float]:
        return self.book.holdings()

    def summary_line(self) -> str:
        filled = int((self.trades["status"] == "filled").sum()) if len(self.trades) else 0
        pending = int((self.trades["status"] == "pending").sum()) if len(self.trades) else 0
        return (
            f"execute {self.trade_date}: {self.action}, {filled} filled, {pending} pending, "
            f"cash {self.cash:,.2f}, realised P&L {self.realized_pnl:,.2f}, unrealised "
            f"{sum(self.unrealized_pnl.values()):,.2f}"
        )


def _opens(
    conn: sa.Connection, day: dt.date, symbols: list[str], quotes: QuoteSource | None
) -> dict[str, float]:
    opens = {s: float(b["open"]) for s, b in bars_on(conn, day, symbols).items()}
    missing = [s for s in symbols if s not in opens]
    if missing and quotes is not None:
        opens.update(quotes.official_opens(missing, day))
    return opens


def _fill_date(conn: sa.Connection, day: dt.date, quotes: QuoteSource | None = None) -> int:
    """Fill the pending trades dated ``day`` if every open is known; returns how many filled."""
    rows = [r for r in ledger.pending_trades(conn, through=day) if r.trade_date == day]
    if not rows:
        return 0
    symbols = [r.symbol for r in rows]
    opens = _opens(conn, day, symbols, quotes)
    if any(s not in opens for s in symbols):
        return 0
    book = ledger.load_book(conn)
    fills, after = fill_orders_at_open([ledger.order_of(r) for r in rows], opens, book)
    ledger.record_fills(conn, day, rows, fills, after)
    for f in fills:
        log.info(
            "%s %s %s %.4f @ %.4f = %.2f", day, f.action, f.symbol, f.quantity, f.price, f.amount
        )
    return len(fills)


def mark_to_market(conn: sa.Connection, day: dt.date) -> bool:
    """Record the valuation at ``day``'s close when the day is settled; returns whether it did.

    Needs the day's deposit (the execute job ran), no order still pending on or before the day,
    no fill after it (the book must be the book of that evening), and every held close.
    """
    if not ledger.has_deposit(conn, day) or ledger.pending_trades(conn, through=day):
        return False
    if ledger.filled_after(conn, day):
        return False
    book = ledger.load_book(conn)
    bars = bars_on(conn, day, list(book.positions))
    if any(s not in bars for s in book.positions):
        return False
    ledger.record_valuation(conn, day, book, {s: float(b["close"]) for s, b in bars.items()})
    return True


def settle_pending(
    engine: sa.Engine, through: dt.date, *, quotes: QuoteSource | None = None
) -> list[tuple[dt.date, int]]:
    """Fill pending orders dated up to ``through`` whose opens are now known, oldest first.

    Each date is its own transaction and is followed by its valuation. Stops at the first date
    that still lacks an open: later dates cannot fill before it (cash would be wrong).
    """
    settled: list[tuple[dt.date, int]] = []
    with engine.connect() as conn:
        dates = sorted({r.trade_date for r in ledger.pending_trades(conn, through=through)})
    for day in dates:
        with engine.begin() as conn:
            n = _fill_date(conn, day, quotes)
            if n == 0 and ledger.pending_trades(conn, through=day):
                break
            mark_to_market(conn, day)
        settled.append((day, n))
    return settled


def execute_trades(
    engine: sa.Engine, trade_date: dt.date, *, quotes: QuoteSource | None = None
) -> ExecutionResult:
    """Deposit, record the signal's orders, and fill them at the open of ``trade_date``."""
    trade_date = calendar.require_session(trade_date, "trade date")
    settled = settle_pending(engine, calendar.previous_session(trade_date), quotes=quotes)
    with engine.begin() as conn:
        stuck = sorted(
            {
                str(r.trade_date)
                for r in ledger.pending_trades(conn, through=calendar.previous_session(trade_date))
            }
        )
        if stuck:
            raise ExecutionError(
                f"orders of {', '.join(stuck)} are still pending (no open price stored): run "
                f"`allocator run fetch --date {stuck[0]}` first, so cash and holdings are known"
            )
        signal = require_signal(conn, trade_date)
        capital = version_by_id(conn, signal.config_id).config.daily_capital
        deposited = ledger.record_deposit(conn, trade_date, capital)
        orders = orders_from_allocations(signal.allocations, signal.sell_quantities)
        ledger.create_orders(conn, signal.id, trade_date, orders)
        _fill_date(conn, trade_date, quotes)
        mark_to_market(conn, trade_date)
        result = _result(conn, trade_date, signal.id, signal.action, deposited)
    result.settled = settled
    log.info(result.summary_line())
    return result


def _result(
    conn: sa.Connection, day: dt.date, signal_id: int, action: str, deposited: bool
) -> ExecutionResult:
    frame = ledger.trades_frame(conn, day, day)
    frame = frame[frame["signal_id"] == signal_id].reset_index(drop=True)
    book = ledger.load_book(conn)
    closes = latest_closes(conn, day, list(book.positions))
    realized = ledger.realized_pnl_total(conn)
    status = (
        "no orders"
        if frame.empty
        else "pending"
        if (frame["status"] == "pending").any()
        else "filled"
    )
    return ExecutionResult(
        trade_date=day,
        signal_id=signal_id,
        action=action,
        deposited=deposited,
        status=status,
        trades=frame[["symbol", "action", "quantity", "price", "amount", "status", "realized_pnl"]],
        book=book,
        realized_pnl=realized,
        unrealized_pnl={
            s: p.quantity * (closes[s] - p.avg_cost)
            for s, p in book.positions.items()
            if s in closes
        },
        closes=closes,
    )


def positions_frame(result: ExecutionResult) -> pd.DataFrame:
    """Positions with average cost, latest close, market value and unrealised P&L."""
    rows = []
    for s, p in sorted(result.book.positions.items()):
        close = result.closes.get(s)
        rows.append(
            {
                "symbol": s,
                "quantity": p.quantity,
                "avg_cost": p.avg_cost,
                "close": close,
                "market_value": p.quantity * close if close is not None else None,
                "unrealized_pnl": result.unrealized_pnl.get(s),
            }
        )
    columns = ["symbol", "quantity", "avg_cost", "close", "market_value", "unrealized_pnl"]
    return pd.DataFrame(rows, columns=columns)


def run_execute(trade_date: dt.date | str, *, settings: Settings | None = None) -> ExecutionResult:
    """The execute job as the notebook calls it (settings from the environment)."""
    from allocator.shell.marketdata import make_quote_source
    from allocator.shell.persistence.migrate import migrated_engine

    settings = settings or get_settings()
    quotes = make_quote_source(settings)
    with migrated_engine(settings) as engine:
        return execute_trades(engine, calendar.to_date(trade_date, "trade_date"), quotes=quotes)
