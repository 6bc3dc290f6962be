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

Costs (:class:`FillCosts`, from the config's ``slippage_bps`` and ``commission_per_order``)
-----------------------------------------------------------------------------------------
* Slippage prices every fill worse than the open: a BUY at ``open x (1 + bps / 10,000)``, a
  SELL at ``open x (1 - bps / 10,000)`` (:func:`fill_price`). The recorded price is that price,
  so average cost and realised P&L carry the slippage.
* A commission of ``commission`` dollars is paid on every fill, in cash
  (:attr:`Fill.cash_change`); it is not part of the average cost or of the realised P&L, which
  stay ``quantity x price`` figures. A BUY spends at most its dollars *including* the
  commission: ``quantity = floor((amount - commission) / price, 4 decimals)``, nothing when the
  dollars do not cover the commission. A SELL whose proceeds and the cash cannot pay its
  commission is an error.
* With both at 0 (the default) every number is bit for bit the fill at the open: ``x * 1.0`` and
  ``x - 0.0`` are ``x`` in floating point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from allocator.exceptions import AllocatorError
from allocator.money.quantities import QUANTITY_DECIMALS, on_share_grid, shares_for_dollars
from allocator.portfolio.book import Book, Position
from allocator.strategy.config import TradingConfig

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
class FillCosts:
    """What a fill costs beyond the open: ``slippage_bps`` basis points of the open on the
    price, and ``commission`` dollars per fill (see the module doc)."""

    slippage_bps: float = 0.0
    commission: float = 0.0

    @classmethod
    def of(cls, config: TradingConfig) -> FillCosts:
        """The costs ``config`` sets (``slippage_bps``, ``commission_per_order``)."""
        return cls(float(config.slippage_bps), float(config.commission_per_order))


#: Fills at the open itself, no commission.
NO_COSTS = FillCosts()


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
    commission: float = 0.0

    @property
    def cash_change(self) -> float:
        """What the fill does to cash: ``-(amount + commission)`` on a BUY, ``amount -
        commission`` on a SELL (in that float order, so a 0 commission changes no bit)."""
        if self.action == "BUY":
            return -self.amount - self.commission
        return self.amount - self.commission


def fill_price(action: str, open_price: float, slippage_bps: float = 0.0) -> float:
    """The price a fill gets at ``open_price`` with ``slippage_bps`` basis points of slippage.

    ``open x (1 + bps / 10,000)`` for a BUY, ``open x (1 - bps / 10,000)`` for a SELL: the
    slippage always costs. 0 bps returns ``open_price`` itself.
    """
    factor = slippage_bps / 10_000.0
    if action == "BUY":
        return open_price * (1.0 + factor)
    return open_price * (1.0 - factor)


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


def size_order(order: Order, price: float, commission: float = 0.0) -> tuple[float, float]:
    """(quantity, amount) of ``order`` filled at ``price``; a BUY's dollars pay ``commission``
    first (quantity 0 when they do not cover it)."""
    if not (price > 0 and math.isfinite(price)):
        raise ExecutionError(f"{order.symbol}: open price {price!r} is not a positive number")
    if order.action == "BUY":
        budget = order.amount - commission
        quantity = shares_for_dollars(budget, price) if budget > 0 else 0.0
    else:
        quantity = float(order.quantity)
    return quantity, quantity * price


def apply_fill(book: Book, fill: Fill, grid: Callable[[float], float] = on_share_grid) -> None:
    """Update ``book`` in place with one fill (average cost on BUY, realised P&L on SELL).

    ``grid`` puts sums of quantities back on their grid: the 4-decimal share grid of the
    strategy's own fills, or a broker's finer one
    (:func:`~allocator.money.quantities.on_broker_grid`).
    """
    held = book.positions.get(fill.symbol)
    if fill.action == "BUY":
        if held is None:
            book.positions[fill.symbol] = Position(fill.symbol, fill.quantity, fill.price)
        else:
            # Holdings stay on the 4-decimal grid: no float dust accumulates across fills.
            quantity = grid(held.quantity + fill.quantity)
            avg = (held.quantity * held.avg_cost + fill.quantity * fill.price) / quantity
            book.positions[fill.symbol] = Position(fill.symbol, quantity, avg)
    else:
        remaining = grid(held.quantity - fill.quantity)
        if remaining <= DUST:
            del book.positions[fill.symbol]
        else:
            book.positions[fill.symbol] = Position(fill.symbol, remaining, held.avg_cost)
    book.cash += fill.cash_change


def fill_orders_at_open(
    orders: Iterable[Order],
    opens: Mapping[str, float],
    book: Book,
    costs: FillCosts = NO_COSTS,
) -> tuple[list[Fill], Book]:
    """Fill ``orders`` at ``opens`` (the official open of the trade date) against ``book``.

    Sells fill first, so their proceeds are available to the day's buys. ``costs`` prices each
    fill (slippage) and charges it (commission), see the module doc. Returns the fills and a new
    book; ``book`` itself is not changed. Raises :class:`ExecutionError` naming the symbol when
    an open is missing, a SELL exceeds the holding, or the BUYs exceed the cash.
    """
    result = book.copy()
    return fill_orders_in_place(orders, opens, result, costs), result


def fill_orders_in_place(
    orders: Iterable[Order],
    opens: Mapping[str, float],
    book: Book,
    costs: FillCosts = NO_COSTS,
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
        price = fill_price(order.action, float(opens[order.symbol]), costs.slippage_bps)
        commission = costs.commission
        quantity, amount = size_order(order, price, commission)
        if quantity <= 0:
            continue  # less than 1/10,000 of a share: nothing to trade
        realized = 0.0
        if order.action == "SELL":
            quantity, amount, realized = _sell(order, quantity, price, result, commission)
        elif amount + commission > result.cash:
            quantity, amount = affordable_buy(order, price, amount, result.cash, commission)
            if quantity <= 0:
                continue
        fill = Fill(order.symbol, order.action, quantity, price, amount, realized, commission)
        apply_fill(result, fill)
        fills.append(fill)
    return fills


def _sell(
    order: Order, quantity: float, price: float, book: Book, commission: float
) -> tuple[float, float, float]:
    """(quantity, amount, realised P&L) of a SELL against ``book``: never more than is held."""
    held = book.positions.get(order.symbol)
    if held is None or quantity > held.quantity + DUST:
        have = held.quantity if held else 0.0
        raise ExecutionError(
            f"{order.symbol}: the signal sells {quantity} shares but {have} are held; "
            "the portfolio changed since the signal — regenerate it with -p replace True"
        )
    quantity = min(quantity, held.quantity)
    amount = quantity * price
    if book.cash + (amount - commission) < 0:
        raise ExecutionError(
            f"{order.symbol}: selling for {amount:.2f} cannot pay the {commission:.2f} "
            f"commission with {book.cash:.2f} cash; lower commission_per_order"
        )
    return quantity, amount, quantity * (price - held.avg_cost)


def affordable_buy(
    order: Order, price: float, amount: float, cash: float, commission: float = 0.0
) -> tuple[float, float]:
    """(quantity, amount) of a BUY that costs (with ``commission``) more than ``cash``: sized to
    the cash when the excess is float noise (at most :data:`CASH_TOLERANCE`), else
    :class:`ExecutionError`."""
    if amount + commission - cash > CASH_TOLERANCE:
        raise ExecutionError(
            f"{order.symbol}: buying {amount:.2f} needs more than the {cash:.2f} cash available"
        )
    spendable = cash - commission
    quantity = shares_for_dollars(max(spendable, 0.0), price)
    while quantity > 0 and quantity * price > spendable:
        quantity = on_share_grid(quantity - SHARE_STEP)
    return quantity, quantity * price
