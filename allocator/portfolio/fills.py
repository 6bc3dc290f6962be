"""Orders filled at the open against a book — pure functions.

The daily execute job calls :func:`fill_orders_at_open` and the backtest its in-place form
:func:`fill_orders_in_place` (the same code, without copying the book), so one trade date produces
the same fills whichever ran it.

Rules
-----
* BUY orders carry dollars. ``quantity = floor(amount / open, 4 decimals)``
  (:func:`~allocator.money.quantities.shares_for_dollars`): rounded *down*, so a fill never
  costs more than the dollars allocated. The recorded amount is ``quantity × price``.
* SELL orders carry shares, exactly as the signal stored them; selling more than is held is an
  error (the portfolio changed since the signal), never a silent short.
* Average cost is the quantity-weighted average of buys; sells leave it unchanged and realise
  ``quantity × (price − avg_cost)``. A position sold down to zero is removed.
* Cash never goes negative. A BUY that costs more than the cash by float noise only (at most
  :data:`CASH_TOLERANCE`) buys what the cash affords instead; a real shortfall is an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from allocator.exceptions import AllocatorError
from allocator.money.quantities import QUANTITY_DECIMALS, on_share_grid, shares_for_dollars
from allocator.portfolio.book import Book, Position

#: A position smaller than this many shares is closed (float dust after a full sale).
DUST = 1e-9
#: Dollars by which a BUY may exceed the cash through float sums of many fills (half a cent);
#: such a BUY is sized to the cash, a larger shortfall is an error.
CASH_TOLERANCE = 0.005
#: One step of the share grid.
SHARE_STEP = 10.0**-QUANTITY_DECIMALS


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
    if order.action == "BUY":
        quantity = shares_for_dollars(order.amount, price)
    else:
        quantity = float(order.quantity)
    return quantity, quantity * price


def apply_fill(book: Book, fill: Fill) -> None:
    """Update ``book`` in place with one fill (average cost on BUY, realised P&L on SELL)."""
    held = book.positions.get(fill.symbol)
    if fill.action == "BUY":
        if held is None:
            book.positions[fill.symbol] = Position(fill.symbol, fill.quantity, fill.price)
        else:
            # Holdings stay on the 4-decimal grid: no float dust accumulates across fills.
            quantity = on_share_grid(held.quantity + fill.quantity)
            avg = (held.quantity * held.avg_cost + fill.quantity * fill.price) / quantity
            book.positions[fill.symbol] = Position(fill.symbol, quantity, avg)
    else:
        remaining = on_share_grid(held.quantity - fill.quantity)
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
    return fill_orders_in_place(orders, opens, result), result


def fill_orders_in_place(
    orders: Iterable[Order], opens: Mapping[str, float], book: Book
) -> list[Fill]:
    """:func:`fill_orders_at_open` on ``book`` itself (no copy): returns the fills.

    The backtest's path, where the book before the fills is not needed again. On an error the
    fills before the failing order stay applied to ``book``.
    """
    result = book
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
        elif amount > result.cash:
            quantity, amount = affordable_buy(order, price, amount, result.cash)
            if quantity <= 0:
                continue
        fill = Fill(order.symbol, order.action, quantity, price, amount, realized)
        apply_fill(result, fill)
        fills.append(fill)
    return fills


def affordable_buy(order: Order, price: float, amount: float, cash: float) -> tuple[float, float]:
    """(quantity, amount) of a BUY that costs more than ``cash``: sized to the cash when the
    excess is float noise (at most :data:`CASH_TOLERANCE`), else :class:`ExecutionError`."""
    if amount - cash > CASH_TOLERANCE:
        raise ExecutionError(
            f"{order.symbol}: buying {amount:.2f} needs more than the {cash:.2f} cash available"
        )
    quantity = shares_for_dollars(max(cash, 0.0), price)
    while quantity > 0 and quantity * price > cash:
        quantity = on_share_grid(quantity - SHARE_STEP)
    return quantity, quantity * price
