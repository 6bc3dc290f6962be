"""Cash and positions between fills: the book, its value and its unrealised P&L."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    """Shares held of one symbol and their quantity-weighted average cost."""

    symbol: str
    quantity: float
    avg_cost: float

    @property
    def cost_basis(self) -> float:
        return self.quantity * self.avg_cost


@dataclass
class Book:
    """Cash and positions: what the portfolio holds between fills."""

    cash: float = 0.0
    positions: dict[str, Position] = field(default_factory=dict)

    def holdings(self) -> dict[str, float]:
        """Shares held per symbol."""
        return {s: p.quantity for s, p in self.positions.items()}

    def positions_value(self, prices: Mapping[str, float]) -> float:
        """``sum(quantity x price)`` over the positions; every held symbol needs a price."""
        return sum(p.quantity * prices[s] for s, p in self.positions.items())

    def copy(self) -> Book:
        return Book(self.cash, dict(self.positions))


def unrealized_pnl(book: Book, prices: Mapping[str, float]) -> dict[str, float]:
    """Per held symbol with a price in ``prices``: ``quantity x (price - avg_cost)``.

    Symbols without a price are left out (a position whose close is not stored yet).
    """
    return {
        s: p.quantity * (prices[s] - p.avg_cost) for s, p in book.positions.items() if s in prices
    }
