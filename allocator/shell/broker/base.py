"""What the jobs know of a broker: its orders, account, clock and positions, as plain values.

A broker (:class:`Broker`, e.g. :class:`~allocator.shell.broker.alpaca.AlpacaBroker`) turns its
API's answers into these dataclasses; the jobs never see its JSON. The simulated broker is no
object at all: without one, the jobs fill at the bars' official open as they always did.

Order ids are deterministic (:func:`client_order_id`): the trade date, the signal and the
symbol name one order, so looking the id up before submitting finds an order placed by an
earlier run (a re-run, a run that crashed between submitting and recording, another runner).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from allocator.shell.calendar import EASTERN

#: Alpaca keeps client order ids to 48 characters; ours stay well under it.
CLIENT_ORDER_ID_LIMIT = 48
#: Statuses of an order that can still fill (Alpaca's names).
OPEN_STATUSES = frozenset(
    {
        "new",
        "accepted",
        "pending_new",
        "accepted_for_bidding",
        "partially_filled",
        "pending_cancel",
        "pending_replace",
        "calculated",
        "held",
        "stopped",
        "suspended",
        "done_for_day",
    }
)
#: Dollars below which a notional (dollar) order is not accepted by Alpaca.
MIN_NOTIONAL = 1.0


def client_order_id(trade_date: dt.date, signal_id: int, symbol: str) -> str:
    """``ca-YYYYMMDD-<signal id>-<SYMBOL>``: one order per trade date, signal and symbol.

    The trade date and the signal keep two databases (or a signal replaced and re-executed)
    from meeting the same id by accident; at most 3 + 8 + 1 + 10 + 1 + 16 = 39 characters.
    """
    text = f"ca-{trade_date:%Y%m%d}-{int(signal_id)}-{symbol.upper()}"
    if len(text) > CLIENT_ORDER_ID_LIMIT:  # a signal id beyond 10 digits: never in practice
        raise ValueError(f"client order id {text!r} is longer than {CLIENT_ORDER_ID_LIMIT}")
    return text


@dataclass(frozen=True)
class OrderRequest:
    """A market day order: ``notional`` dollars (a BUY) or ``qty`` shares (a SELL)."""

    client_order_id: str
    symbol: str
    side: str
    notional: float | None = None
    qty: float | None = None


@dataclass(frozen=True)
class BrokerOrder:
    """An order as the broker reports it (quantities and prices as numbers)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    status: str
    qty: float | None
    notional: float | None
    filled_qty: float
    filled_avg_price: float | None
    submitted_at: str | None = None
    filled_at: str | None = None

    @property
    def is_open(self) -> bool:
        """Whether it may still fill (not filled, canceled, expired, rejected...)."""
        return self.status in OPEN_STATUSES

    @property
    def action(self) -> str:
        return "BUY" if self.side == "buy" else "SELL"


@dataclass(frozen=True)
class BrokerAccount:
    """The account's number, cash and buying power, and whether it may trade."""

    number: str
    status: str
    cash: float
    buying_power: float
    trading_blocked: bool = False


@dataclass(frozen=True)
class BrokerClock:
    """The broker's clock: now, whether the market is open, and the next open and close."""

    timestamp: dt.datetime
    is_open: bool
    next_open: dt.datetime
    next_close: dt.datetime

    def trades_on(self, day: dt.date) -> bool:
        """Whether an order sent now fills in the session of ``day``: the market is open on
        ``day`` now, or the next open is ``day``'s (before the open, day orders are queued for
        it). False once ``day``'s session is over: an order sent then would fill on a later
        session, at another day's price."""
        if self.is_open:
            return self.timestamp.astimezone(EASTERN).date() == day
        return self.next_open.astimezone(EASTERN).date() == day

    def session_over(self, day: dt.date) -> bool:
        """Whether ``day``'s session has closed (its day orders are done)."""
        now = self.timestamp.astimezone(EASTERN).date()
        return now > day or (now == day and not self.trades_on(day))


@dataclass(frozen=True)
class BrokerAsset:
    """Whether the broker trades a symbol, and in fractions."""

    symbol: str
    tradable: bool
    fractionable: bool


class Broker(Protocol):
    """What the execute and fetch jobs ask of a real broker."""

    #: ``alpaca``; :attr:`label` is what reports show (``alpaca paper`` / ``alpaca LIVE``).
    name: str
    label: str
    live: bool
    endpoint: str

    def account(self) -> BrokerAccount: ...

    def clock(self) -> BrokerClock: ...

    def asset(self, symbol: str) -> BrokerAsset | None: ...

    def submit(self, request: OrderRequest) -> BrokerOrder: ...

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None: ...

    def order(self, order_id: str) -> BrokerOrder: ...

    def cancel(self, order_id: str) -> None: ...

    def positions(self) -> dict[str, float]: ...
