"""One session of the strategy on a book: decide, deposit, fill at the open, value at the close.

The production day runs these steps as separate jobs — :func:`decide_session` at 6:00 (signal),
:func:`deposit` and :func:`~allocator.portfolio.fills.fill_orders_at_open` on :func:`orders_for`
at 9:30 (execute, or the fetch job once the open is stored), :func:`value_at_close` at 16:35
(fetch) — and the backtest runs them in one call, :func:`step_session`, for every session of its
period. Both paths call the same functions, which is what makes a backtest equal to the daily
jobs run day by day (``tests/test_parity.py``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from allocator.portfolio.book import Book
from allocator.portfolio.fills import (
    Fill,
    FillCosts,
    Order,
    fill_orders_in_place,
    orders_from_allocations,
)
from allocator.strategy.config import TradingConfig
from allocator.strategy.decision import Decision, decide
from allocator.strategy.market_state import MarketState


@dataclass
class StrategyState:
    """What the strategy carries from one session to the next: the book, and the regime label
    of the last decision (``sell_trigger = spell_start`` sells on a spell's first session only)."""

    book: Book = field(default_factory=Book)
    previous_label: str | None = None


@dataclass(frozen=True)
class Valuation:
    """The book marked to market at a close."""

    cash: float
    positions_value: float

    @property
    def total_value(self) -> float:
        return self.cash + self.positions_value


@dataclass(frozen=True)
class SessionOutcome:
    """What one session did: the signal, the deposit, the fills and the valuation at the close."""

    day: dt.date
    decision: Decision
    deposit: float
    fills: list[Fill]
    valuation: Valuation


def decide_session(
    state: MarketState,
    config: TradingConfig,
    book: Book,
    previous_label: str | None = None,
    last_close: Mapping[str, float] | None = None,
) -> Decision:
    """The signal of a trade date: :func:`~allocator.strategy.decision.decide` on that morning's
    book (its holdings, and its cash as the idle cash: the deposit comes later), with the market
    state of the last close before it, the config active on it and the previous trade date's
    regime label. ``last_close`` prices holdings the state does not cover (an asset a newer
    config version dropped): :func:`held_outside` names them."""
    return decide(
        state,
        config,
        book.holdings(),
        last_close,
        idle_cash=book.cash,
        previous_label=previous_label,
    )


def held_outside(book: Book, config: TradingConfig) -> list[str]:
    """Held symbols that are not among ``config``'s assets (sorted): a SELL needs their price."""
    return sorted(s for s in book.holdings() if s not in config.assets)


def orders_for(
    allocations: Mapping[str, float], sell_quantities: Mapping[str, float] | None = None
) -> list[Order]:
    """The orders of a signal (its allocations and the shares it sells)."""
    return orders_from_allocations(allocations, sell_quantities)


def deposit(book: Book, amount: float) -> None:
    """Add the session's ``daily_capital`` to the book's cash, before the orders fill."""
    book.cash += amount


def value_at_close(book: Book, closes: Mapping[str, float]) -> Valuation:
    """Cash and ``sum(quantity x close)``; every held symbol needs its close."""
    return Valuation(book.cash, book.positions_value(closes))


def step_session(
    state: StrategyState,
    day: dt.date,
    market: MarketState,
    config: TradingConfig,
    opens: Mapping[str, float],
    closes: Mapping[str, float],
    last_close: Mapping[str, float] | None = None,
) -> SessionOutcome:
    """Run session ``day`` on ``state``: decide, deposit, fill at ``opens``, value at ``closes``.

    ``market`` is the state of the last close before ``day``; ``config`` the one active on it;
    ``last_close`` prices the holdings ``market`` does not cover (see :func:`decide_session`).
    ``state.book`` is updated in place (:func:`~allocator.portfolio.fills.fill_orders_in_place`:
    the fills of ``fill_orders_at_open`` without copying the book), with ``config``'s fill costs
    (:meth:`~allocator.portfolio.fills.FillCosts.of`), as the daily jobs fill.
    """
    decision = decide_session(market, config, state.book, state.previous_label, last_close)
    state.previous_label = decision.regime_label
    deposit(state.book, config.daily_capital)
    fills = fill_orders_in_place(
        orders_for(decision.allocations, decision.sell_quantities),
        opens,
        state.book,
        FillCosts.of(config),
    )
    return SessionOutcome(
        day, decision, config.daily_capital, fills, value_at_close(state.book, closes)
    )
