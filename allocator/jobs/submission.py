"""Sending the day's orders to a real broker (the execute job's step with ``ALLOCATOR_BROKER``).

Not a job itself. The execute job records the signal's orders as pending trades, each with its
deterministic client order id (:func:`assign_client_ids`, in the execute transaction), then
:func:`submit_orders` sends them, one order and one transaction at a time:

1. the order's client id is looked up at the broker first: an order placed by an earlier run
   (a re-run, a crash between submitting and recording, a second runner) is recorded, never
   placed again;
2. otherwise a market day order goes out: dollars (``notional``) for a BUY, the signal's shares
   (``qty``) for a SELL. Before the open the broker queues it for the open; once the trade
   date's session is over nothing is sent (it would fill on another day, at another price);
3. the broker's order id and status are recorded. A rejection (buying power, an asset that is
   not fractionable, the market closed) closes the order with the broker's reason; the job
   fails naming every rejection once the others are sent.

The strategy's cash stays the ledger's own: the broker account may hold more. What the account
held before the first order (:func:`ensure_baseline`) is what reconciliation compares from.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa

from allocator.exceptions import BrokerError, ReconciliationError
from allocator.shell.broker.base import (
    MIN_NOTIONAL,
    Broker,
    BrokerClock,
    BrokerOrder,
    OrderRequest,
    client_order_id,
)
from allocator.shell.persistence import broker as orders_db
from allocator.shell.persistence import ledger

log = logging.getLogger(__name__)

#: HTTP statuses of a refused order (403: buying power or a blocked account; 422: invalid).
REJECTED_STATUSES = (403, 422)


@dataclass
class Submission:
    """What sending one trade date's orders did, by symbol."""

    trade_date: dt.date
    broker: str
    placed: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def summary_line(self) -> str:
        parts = [f"{len(self.placed)} placed", f"{len(self.found)} already at the broker"]
        if self.rejected:
            parts.append(f"{len(self.rejected)} rejected")
        return f"{self.broker} {self.trade_date}: " + ", ".join(parts)

    def rejection_text(self) -> str:
        """Every rejection as ``SYMBOL: reason``, joined."""
        return "; ".join(f"{symbol}: {reason}" for symbol, reason in self.rejected)


def assign_client_ids(conn: sa.Connection, signal_id: int, day: dt.date) -> None:
    """Give the pending orders of ``signal_id`` their client order ids (kept once given)."""
    ids = {
        r.id: client_order_id(day, signal_id, r.symbol)
        for r in ledger.trades_for_signal(conn, signal_id)
        if r.status == "pending" and r.client_order_id is None
    }
    orders_db.assign_client_order_ids(conn, ids)


def ensure_baseline(engine: sa.Engine, broker: Broker) -> None:
    """Record the account's cash and positions once, before the strategy's first order."""
    with engine.connect() as conn:
        if orders_db.baseline(conn, broker.name) is not None:
            return
    account, positions = broker.account(), broker.positions()
    with engine.begin() as conn:
        ledger.lock_book(conn)
        if orders_db.baseline(conn, broker.name) is None:
            orders_db.save_baseline(
                conn,
                broker.name,
                account.number,
                broker.endpoint,
                broker.live,
                account.cash,
                positions,
            )
            log.info(
                "%s account %s: baseline cash %.2f, %d position(s) not the strategy's",
                broker.label,
                account.number,
                account.cash,
                len(positions),
            )


def order_request(row: sa.Row) -> OrderRequest | str:
    """The market day order of a pending trade, or why none can be sent."""
    if row.action == "BUY":
        dollars = round(float(row.ordered_amount), 2)
        if dollars < MIN_NOTIONAL:
            return f"{dollars:.2f} dollars is below the broker's {MIN_NOTIONAL:.2f} minimum"
        return OrderRequest(row.client_order_id, row.symbol, "buy", notional=dollars)
    return OrderRequest(row.client_order_id, row.symbol, "sell", qty=float(row.ordered_quantity))


def _same_order(row: sa.Row, order: BrokerOrder) -> None:
    if order.symbol != row.symbol or order.action != row.action:
        raise ReconciliationError(
            f"client order id {row.client_order_id} is {order.action} {order.symbol} at the "
            f"broker, not {row.action} {row.symbol}: another database placed it; use an account "
            "(or a paper account reset) that only this database trades in"
        )


def _record(engine: sa.Engine, row: sa.Row, order: BrokerOrder) -> None:
    _same_order(row, order)
    with engine.begin() as conn:
        ledger.lock_book(conn)
        orders_db.record_submission(conn, row.id, order.id, order.status)


def _reject(engine: sa.Engine, row: sa.Row, status: str, reason: str) -> None:
    with engine.begin() as conn:
        ledger.lock_book(conn)
        orders_db.cancel_order(conn, row.id, status, reason)
    log.error("%s %s %s: %s", row.trade_date, row.action, row.symbol, reason)


def _refusal(broker: Broker, row: sa.Row) -> str | None:
    """Why the broker would refuse this order before it is sent (an unknown, untradable or
    not fractionable asset), or None."""
    asset = broker.asset(row.symbol)
    if asset is None:
        return f"{row.symbol} is not an asset {broker.name} knows"
    if not asset.tradable:
        return f"{row.symbol} is not tradable at {broker.name}"
    if not asset.fractionable:
        return f"{row.symbol} is not fractionable at {broker.name}: a fractional order is refused"
    return None


def _place(broker: Broker, row: sa.Row, request: OrderRequest) -> BrokerOrder | str:
    """Submit ``request``: the order placed (or found, when another run placed it meanwhile),
    or the broker's reason for refusing it. A failure without a refusal raises."""
    try:
        return broker.submit(request)
    except BrokerError as exc:
        if exc.status in REJECTED_STATUSES and "client_order_id" not in exc.message:
            return exc.message
        # A lost answer, a 5xx or a duplicate id: the order may exist; look before failing.
        found = broker.order_by_client_id(row.client_order_id)
        if found is None:
            raise
        log.warning("%s: %s; found the order by its client id", row.client_order_id, exc)
        return found


def _closed_reason(broker: Broker, clock: BrokerClock, day: dt.date) -> str:
    return (
        f"not sent: the market is closed for {day} ({broker.name} clock "
        f"{clock.timestamp:%Y-%m-%d %H:%M %Z}); an order sent now would fill on another day, "
        "at another day's price"
    )


def _submit_one(
    engine: sa.Engine, broker: Broker, row: sa.Row, clock: BrokerClock, submission: Submission
) -> None:
    order = broker.order_by_client_id(row.client_order_id)
    if order is not None:
        submission.found.append(row.symbol)
    else:
        request = order_request(row)
        if not clock.trades_on(row.trade_date):
            request = _closed_reason(broker, clock, row.trade_date)
        refusal = request if isinstance(request, str) else _refusal(broker, row)
        placed = refusal or _place(broker, row, request)
        if isinstance(placed, str):
            _reject(engine, row, "rejected", placed)
            submission.rejected.append((row.symbol, placed))
            return
        order = placed
        submission.placed.append(row.symbol)
        log.info(
            "%s %s %s: order %s %s", row.trade_date, row.action, row.symbol, order.id, order.status
        )
    _record(engine, row, order)
    if order.status == "rejected":
        _reject(engine, row, "rejected", f"the broker rejected order {order.id}")
        submission.rejected.append((row.symbol, f"the broker rejected order {order.id}"))


def submit_orders(engine: sa.Engine, broker: Broker, day: dt.date) -> Submission:
    """Send ``day``'s pending broker orders not sent yet (module doc); returns what happened.

    Raises :class:`~allocator.exceptions.BrokerError` when the broker cannot be reached or the
    account cannot trade (nothing more is sent; a re-run carries on where this one stopped).
    """
    submission = Submission(day, broker.label)
    with engine.connect() as conn:
        rows = orders_db.unsubmitted_orders(conn, day)
    if not rows:
        return submission
    ensure_baseline(engine, broker)
    account = broker.account()
    if account.trading_blocked:
        raise BrokerError(f"{broker.label} account {account.number} is blocked from trading")
    clock = broker.clock()
    for row in rows:
        _submit_one(engine, broker, row, clock, submission)
    log.info(submission.summary_line())
    return submission
