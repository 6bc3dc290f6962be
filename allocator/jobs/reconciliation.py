"""Reconciling the book with a real broker (the fetch job's step, and ``allocator broker
reconcile --date D``).

Not a job itself. For every broker order dated up to D whose fills are not recorded yet:

- it reads the order's status, filled quantity and average fill price;
- a filled order is recorded at the broker's price and quantity (a notional BUY fills a
  fraction of a share the broker computes: the book keeps it to the broker's 9 decimals); a
  partial fill is recorded as what filled, with the reason; nothing filled closes the order;
- an order still open once its session is over is cancelled at the broker, then recorded as
  above; one still open during its session is left open (reconcile again later).

Then it compares the book with the account: the strategy's positions plus what the account held
before its first order against ``/v2/positions``, and the strategy's cash use (the cash entries
of its broker fills) against the account's cash since then. Any difference is stored with the
day's reconciliation, which the health check reads (a mismatch fails it, with the difference);
so is the account's buying power, which health warns about when it is below the daily deposit.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa

from allocator.exceptions import ConfigNotFoundError, ReconciliationError
from allocator.jobs.settlement import mark_to_market
from allocator.jobs.submission import ensure_baseline
from allocator.money.quantities import BROKER_QUANTITY_DECIMALS, on_broker_grid
from allocator.portfolio.book import Book
from allocator.portfolio.fills import Fill, apply_fill
from allocator.shell import calendar
from allocator.shell.broker.base import Broker, BrokerClock, BrokerOrder
from allocator.shell.persistence import broker as orders_db
from allocator.shell.persistence import ledger
from allocator.shell.persistence.configs import version_for_date

log = logging.getLogger(__name__)

#: Shares by which the book and the broker may differ (float noise on the 9-decimal grid).
SHARE_TOLERANCE = 1e-8
#: Dollars by which the cash use may differ: a cent, plus half a cent per fill (the broker
#: settles each fill in whole cents; the book keeps quantity x price).
CASH_TOLERANCE, CASH_TOLERANCE_PER_FILL = 0.01, 0.005
OK, MISMATCH, INCOMPLETE = "ok", "mismatch", "incomplete"


@dataclass
class Reconciliation:
    """One reconciliation: what was recorded, and how the book compares with the account."""

    trade_date: dt.date
    broker: str
    status: str = OK
    fills: int = 0
    partial: list[str] = field(default_factory=list)
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    open_orders: int = 0
    positions_diff: dict[str, dict[str, float]] = field(default_factory=dict)
    expected_cash: float | None = None
    broker_cash: float | None = None
    cash_difference: float | None = None
    buying_power: float | None = None
    daily_capital: float | None = None
    detail: str = ""

    @property
    def low_buying_power(self) -> bool:
        """The account's buying power is below the daily deposit (the strategy's budget)."""
        return (
            self.buying_power is not None
            and self.daily_capital is not None
            and self.buying_power < self.daily_capital
        )

    def summary_line(self) -> str:
        return f"reconcile {self.trade_date} ({self.broker}): {self.status.upper()}; {self.detail}"


def broker_fill(row: sa.Row, order: BrokerOrder, book: Book) -> Fill:
    """The fill of ``order`` as the ledger records it: the broker's quantity (9 decimals) and
    average price; a SELL realises against the book's average cost."""
    quantity = round(order.filled_qty, BROKER_QUANTITY_DECIMALS)
    price = float(order.filled_avg_price)
    if row.action == "BUY":
        return Fill(row.symbol, "BUY", quantity, price, quantity * price)
    held = book.positions.get(row.symbol)
    if held is None or quantity > held.quantity + SHARE_TOLERANCE:
        have = held.quantity if held else 0.0
        raise ReconciliationError(
            f"{row.symbol}: the broker sold {quantity} shares (order {order.id}) but the book "
            f"holds {have}: the account was traded outside this database"
        )
    quantity = min(quantity, held.quantity)
    return Fill(
        row.symbol, "SELL", quantity, price, quantity * price, quantity * (price - held.avg_cost)
    )


def _what_was_ordered(row: sa.Row) -> str:
    if row.action == "BUY":
        return f"${float(row.ordered_amount):,.2f}"
    return f"{float(row.ordered_quantity):g} shares"


def _record_final(engine: sa.Engine, row: sa.Row, order: BrokerOrder, result) -> None:
    """Record a closed order: its fill (whole or partial), or nothing filled."""
    with engine.begin() as conn:
        ledger.lock_book(conn)
        if order.filled_qty > 0 and order.filled_avg_price:
            book = ledger.load_book(conn)
            fill = broker_fill(row, order, book)
            after = book.copy()
            apply_fill(after, fill, grid=on_broker_grid)
            ledger.record_fills(conn, row.trade_date, [row], [fill], after)
            reason = None
            if order.status != "filled":
                reason = (
                    f"partly filled: {fill.quantity:g} shares of {_what_was_ordered(row)} "
                    f"ordered, the rest {order.status} at the close"
                )
                result.partial.append(row.symbol)
            orders_db.record_broker_status(conn, row.id, order.status, reason)
            result.fills += 1
            log.info(
                "%s %s %s %.9g @ %.4f (%s)",
                row.trade_date,
                row.action,
                row.symbol,
                fill.quantity,
                fill.price,
                order.status,
            )
            return
        reason = f"{order.status} at the broker with nothing filled (order {order.id})"
        orders_db.cancel_order(conn, row.id, order.status, reason)
        result.cancelled.append((row.symbol, reason))


def _settle_order(
    engine: sa.Engine, broker: Broker, row: sa.Row, clock: BrokerClock, result
) -> None:
    """Bring one pending broker order up to date (module doc)."""
    if row.broker_order_id:
        order = broker.order(row.broker_order_id)
    else:
        order = broker.order_by_client_id(row.client_order_id)
    over = clock.session_over(row.trade_date)
    if order is None:
        if not over:
            result.open_orders += 1
            return
        reason = f"never reached the broker before the close of {row.trade_date}"
        with engine.begin() as conn:
            ledger.lock_book(conn)
            orders_db.cancel_order(conn, row.id, "not_submitted", reason)
        result.cancelled.append((row.symbol, reason))
        return
    if order.is_open and over:
        log.info("%s: still %s after the close: cancelling the rest", order.id, order.status)
        broker.cancel(order.id)
        order = broker.order(order.id)
    if order.is_open:
        with engine.begin() as conn:
            ledger.lock_book(conn)
            orders_db.record_broker_status(conn, row.id, order.status)
        result.open_orders += 1
        return
    _record_final(engine, row, order, result)


def _daily_capital(conn: sa.Connection, day: dt.date) -> float | None:
    try:
        return float(version_for_date(conn, day).config.daily_capital)
    except ConfigNotFoundError:
        return None


def _positions_diff(expected: dict[str, float], actual: dict[str, float]) -> dict:
    diff = {}
    for symbol in sorted(set(expected) | set(actual)):
        book, held = expected.get(symbol, 0.0), actual.get(symbol, 0.0)
        if abs(held - book) > SHARE_TOLERANCE:
            diff[symbol] = {
                "book": round(book, BROKER_QUANTITY_DECIMALS),
                "broker": round(held, BROKER_QUANTITY_DECIMALS),
            }
    return diff


def compare_with_broker(engine: sa.Engine, broker: Broker, result: Reconciliation) -> None:
    """Fill ``result``'s comparison of the book with the account (module doc)."""
    account, actual = broker.account(), broker.positions()
    with engine.connect() as conn:
        base = orders_db.baseline(conn, broker.name)
        book = ledger.load_book(conn)
        flow, n_fills = orders_db.broker_cash_flow(conn)
        result.daily_capital = _daily_capital(conn, result.trade_date)
    expected = {s: float(q) for s, q in base.baseline_positions.items()}
    for symbol, position in book.positions.items():
        expected[symbol] = expected.get(symbol, 0.0) + position.quantity
    result.positions_diff = _positions_diff(expected, actual)
    result.expected_cash = float(base.baseline_cash) + flow
    result.broker_cash = account.cash
    result.cash_difference = account.cash - result.expected_cash
    result.buying_power = account.buying_power
    tolerance = CASH_TOLERANCE + CASH_TOLERANCE_PER_FILL * n_fills
    cash_ok = abs(result.cash_difference) <= tolerance
    result.status = OK if cash_ok and not result.positions_diff else MISMATCH


def describe(result: Reconciliation) -> str:
    """One line: what was recorded, then the positions, the cash and the buying power."""
    parts = [f"{result.fills} fill(s) recorded"]
    if result.partial:
        parts.append(f"partly filled: {', '.join(result.partial)}")
    if result.cancelled:
        parts.append("closed unfilled: " + "; ".join(f"{s} ({r})" for s, r in result.cancelled))
    if result.status == INCOMPLETE:
        parts.append(f"{result.open_orders} order(s) still open: not compared yet")
        return "; ".join(parts)
    if result.positions_diff:
        shown = ", ".join(
            f"{s} book {d['book']:g} broker {d['broker']:g} ({d['broker'] - d['book']:+g})"
            for s, d in result.positions_diff.items()
        )
        parts.append(f"positions differ: {shown}")
    else:
        parts.append("positions agree")
    verdict = "agrees" if result.status == OK or abs(result.cash_difference) < 0.01 else "differs"
    parts.append(
        f"cash use {verdict}: broker cash {result.broker_cash:,.2f}, the book's fills imply "
        f"{result.expected_cash:,.2f} ({result.cash_difference:+,.2f})"
    )
    parts.append(f"buying power {result.buying_power:,.2f}")
    if result.low_buying_power:
        parts.append(f"below the daily deposit of {result.daily_capital:,.2f}")
    return "; ".join(parts)


def reconcile(engine: sa.Engine, broker: Broker, day: dt.date) -> Reconciliation:
    """Record the broker's fills of orders dated up to ``day``, cancel what is left after their
    close, compare the book with the account, and store the result as ``day``'s (module doc)."""
    day = calendar.require_session(day, "trade date")
    result = Reconciliation(day, broker.label)
    clock = broker.clock()
    with engine.connect() as conn:
        rows = orders_db.open_broker_orders(conn, day)
    for row in rows:
        _settle_order(engine, broker, row, clock, result)
    ensure_baseline(engine, broker)
    if result.open_orders:
        result.status = INCOMPLETE
    else:
        compare_with_broker(engine, broker, result)
    result.detail = describe(result)
    with engine.begin() as conn:
        ledger.lock_book(conn)
        orders_db.save_reconciliation(conn, day, **_stored(result))
        for settled in sorted({r.trade_date for r in rows}):
            mark_to_market(conn, settled)
    level = logging.WARNING if result.status == MISMATCH else logging.INFO
    log.log(level, result.summary_line())
    return result


def _stored(result: Reconciliation) -> dict:
    return {
        "broker": result.broker,
        "status": result.status,
        "fills": result.fills,
        "open_orders": result.open_orders,
        "positions_diff": result.positions_diff,
        "expected_cash": result.expected_cash,
        "broker_cash": result.broker_cash,
        "cash_difference": result.cash_difference,
        "buying_power": result.buying_power,
        "daily_capital": result.daily_capital,
        "detail": result.detail,
    }
