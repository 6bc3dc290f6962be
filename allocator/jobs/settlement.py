"""Filling pending orders once a day's open is known, and marking the book to market.

Not a job itself: the shared step of the execute job (9:30, or a recovery run), the fetch job
(16:35, once the day's bar is stored) and the signal job (which settles earlier dates before it
reads the holdings). Each date fills in its own transaction, oldest first.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

import sqlalchemy as sa

from allocator.portfolio.fills import NO_COSTS, FillCosts, fill_orders_at_open
from allocator.shell.persistence import ledger
from allocator.shell.persistence.configs import version_by_id
from allocator.shell.persistence.prices import bars_on
from allocator.shell.persistence.signals import get_signal

log = logging.getLogger(__name__)


class QuoteSource(Protocol):
    """Live official opens, for filling at 9:30 before the day's bar is stored."""

    name: str

    def official_opens(self, symbols: list[str], day: dt.date) -> dict[str, float]:
        """The official open of ``day`` for each symbol that has one yet (others absent)."""
        ...


def _opens(
    conn: sa.Connection, day: dt.date, symbols: list[str], quotes: QuoteSource | None
) -> dict[str, float]:
    opens = {s: float(b["open"]) for s, b in bars_on(conn, day, symbols).items()}
    missing = [s for s in symbols if s not in opens]
    if missing and quotes is not None:
        opens.update(quotes.official_opens(missing, day))
    return opens


def costs_on(conn: sa.Connection, day: dt.date) -> FillCosts:
    """The fill costs of the config ``day``'s signal was decided with (the backtest fills that
    session with the same config's; none without a signal)."""
    signal = get_signal(conn, day)
    if signal is None:
        return NO_COSTS
    return FillCosts.of(version_by_id(conn, signal.config_id).config)


def fill_date(conn: sa.Connection, day: dt.date, quotes: QuoteSource | None = None) -> int:
    """Fill the pending trades dated ``day`` if every open is known; returns how many filled.

    Only the simulated broker's orders: an order sent to a real broker (it has a
    ``client_order_id``) fills by reconciliation with that broker, never at the bar's open.
    """
    rows = [r for r in ledger.pending_trades(conn, through=day) if r.trade_date == day]
    rows = [r for r in rows if r.client_order_id is None]
    if not rows:
        return 0
    symbols = [r.symbol for r in rows]
    opens = _opens(conn, day, symbols, quotes)
    if any(s not in opens for s in symbols):
        return 0
    book = ledger.load_book(conn)
    orders = [ledger.order_of(r) for r in rows]
    fills, after = fill_orders_at_open(orders, opens, book, costs_on(conn, day))
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
            ledger.lock_book(conn)
            n = fill_date(conn, day, quotes)
            if n == 0 and ledger.pending_trades(conn, through=day):
                break
            mark_to_market(conn, day)
        settled.append((day, n))
    return settled
