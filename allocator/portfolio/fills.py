"""Order sizing, fills at the open, and portfolio and cash accounting — pure functions.

The daily execute job and the backtest both call :func:`fill_orders_at_open`, so one trade date
produces the same fills whichever ran it.

Rules
-----
* BUY orders carry dollars. ``quantity = floor(amount / open, 4 decimals)``: rounded *down* to
  4 decimals, so a fill never costs more than the dollars allocated and cash cannot go negative
  through rounding. The recorded amount is ``quantity × price``.
* SELL orders carry shares, exactly as the signal stored them; selling more than is held is an
  error (the portfolio changed since the signal), never a silent short.
* Average cost is the quantity-weighted average of buys; sells leave it unchanged and realise
  ``quantity × (price − avg_cost)``. A position sold down to zero is removed.
* Cash never goes negative: a BUY set that costs more than the available cash is an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from allocator.exceptions import AllocatorError

QUANTITY_DECIMALS = 4
_Q = 10**QUANTITY_DECIMALS
#: A position smaller than this many shares is closed (float dust after a full sale).
DUST = 1e-9
#: Cents of tolerance when checking cash, for float sums of many fills.
CASH_TOLERANCE = 0.005


class ExecutionError(AllocatorError):
    """Orders that cannot be filled as given (no open price, not enough cash or shares)."""


@dataclass(frozen=True)
class Order:
    """What a signal asks for one symbol: dollars to spend (BUY) or shares to sell (SELL)."""

    symbol: str
    action: str
    amount: float | None = None
    quantity: float | None = None

    def __post_init__(self) -> None:
        if self.action == "BUY" and not (self.amount is not None and self.amount > 0):
            raise ExecutionError(f"{self.symbol}: a BUY needs a positive dollar amount")
        if self.action == "SELL" and not (self.quantity is not None and self.quantity > 0):
            raise ExecutionError(f"{self.symbol}: a SELL needs a positive quantity of shares")
        if self.action not in ("BUY", "SELL"):
            raise ExecutionError(f"{self.symbol}: unknown action {self.action!r}")


@dataclass(frozen=True)
class Position:
    symbol: str
    quantity: float
    avg_cost: float

    @property
    def cost_basis(self) -> float:
        return self.quantity * self.avg_cost


@dataclass(frozen=True)
class Fill:
    """An executed order: the trade that is recorded."""

    symbol: str
    action: str
    quantity: float
    price: float
    amount: float
    realized_pnl: float = 0.0

    @property
    def cash_change(self) -> float:
        return -self.amount if self.action == "BUY" else self.amount


@dataclass
class Book:
    """Cash and positions: what the portfolio holds between fills."""

    cash: float = 0.0
    positions: dict[str, Position] = field(default_factory=dict)

    def holdings(self) -> dict[str, float]:
        return {s: p.quantity for s, p in self.positions.items()}

    def positions_value(self, prices: Mapping[str, float]) -> float:
        return sum(p.quantity * prices[s] for s, p in self.positions.items())

    def copy(self) -> Book:
        return Book(self.cash, dict(self.positions))


def round_down(quantity: float, decimals: int = QUANTITY_DECIMALS) -> float:
    """Round a share quantity down to ``decimals`` (robust to float noise like 2.99999999)."""
    scale = 10**decimals
    return math.floor(quantity * scale + 1e-7) / scale


def orders_from_allocations(
    allocations: Mapping[str, float], sell_quantities: Mapping[str, float] | None = None
) -> list[Order]:
    """Orders of a signal: positive dollars are BUYs, symbols in ``sell_quantities`` are SELLs."""
    orders: list[Order] = []
    for symbol, qty in sorted((sell_quantities or {}).items()):
        if qty > 0:
            orders.append(Order(symbol, "SELL", quantity=float(qty)))
    for symbol, dollars in sorted(allocations.items()):
        if dollars > 0 and symbol not in (sell_quantities or {}):
            orders.append(Order(symbol, "BUY", amount=float(dollars)))
    return orders


def size_order(order: Order, price: float) -> tuple[float, float]:
    """(quantity, amount) of ``order`` filled at ``price``."""
    if not (price > 0 and math.isfinite(price)):
        raise ExecutionError(f"{order.symbol}: open price {price!r} is not a positive number")
    quantity = round_down(order.amount / price) if order.action == "BUY" else float(order.quantity)
    return quantity, quantity * price


def apply_fill(book: Book, fill: Fill) -> None:
    """Update ``book`` in place with one fill (average cost on BUY, realised P&L on SELL)."""
    held = book.positions.get(fill.symbol)
    if fill.action == "BUY":
        if held is None:
            book.positions[fill.symbol] = Position(fill.symbol, fill.quantity, fill.price)
        else:
            # Holdings stay on the 4-decimal grid: no float dust accumulates across fills.
            quantity = round(held.quantity + fill.quantity, QUANTITY_DECIMALS)
            avg = (held.quantity * held.avg_cost + fill.quantity * fill.price) / quantity
            book.positions[fill.symbol] = Position(fill.symbol, quantity, avg)
    else:
        remaining = round(held.quantity - fill.quantity, QUANTITY_DECIMALS)
        if remaining <= DUST:
            del book.positions[fill.symbol]
        else:
            book.positions[fill.symbol] = Position(fill.symbol, remaining, held.avg_cost)
    book.cash += fill.cash_change


def fill_orders_at_open(
    orders: Iterable[Order], opens: Mapping[str, float], book: Book
) -> tuple[list[Fill], Book]:
    """Fill ``orders`` at ``opens`` (the official open of the trade date) against ``book``.

    Sells fill first, so their proceeds are available to the day's buys. Returns the fills and a
    new book; ``book`` itself is not changed. Raises :class:`ExecutionError` naming the symbol
    when an open is missing, a SELL exceeds the holding, or the BUYs exceed the cash.
    """
    result = book.copy()
    fills: list[Fill] = []
    ordered = sorted(orders, key=lambda o: (o.action != "SELL", o.symbol))
    for order in ordered:
        if order.symbol not in opens:
            raise ExecutionError(f"{order.symbol}: no open price to fill the {order.action}")
        price = float(opens[order.symbol])
        quantity, amount = size_order(order, price)
        if quantity <= 0:
            continue  # less than 1/10,000 of a share: nothing to trade
        realized = 0.0
        if order.action == "SELL":
            held = result.positions.get(order.symbol)
            if held is None or quantity > held.quantity + DUST:
                have = held.quantity if held else 0.0
                raise ExecutionError(
                    f"{order.symbol}: the signal sells {quantity} shares but {have} are held; "
                    "the portfolio changed since the signal — regenerate it with -p replace True"
                )
            quantity = min(quantity, held.quantity)
            amount = quantity * price
            realized = quantity * (price - held.avg_cost)
        elif amount > result.cash + CASH_TOLERANCE:
            raise ExecutionError(
                f"{order.symbol}: buying {amount:.2f} needs more than the {result.cash:.2f} cash "
                "available"
            )
        fill = Fill(order.symbol, order.action, quantity, price, amount, realized)
        apply_fill(result, fill)
        fills.append(fill)
    return fills, result


def unrealized_pnl(book: Book, prices: Mapping[str, float]) -> dict[str, float]:
    """Per symbol: ``quantity × (price − avg_cost)`` at ``prices``."""
    return {s: p.quantity * (prices[s] - p.avg_cost) for s, p in book.positions.items()}
