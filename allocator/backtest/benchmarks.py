"""The benchmarks: the strategy's deposits, on the same days, put into simple rules.

- **all SPY**: each session's cash, in whole cents, bought into SPY at the open;
- **equal weight**: the same into every asset of the strategy, in equal parts;
- **cash**: the deposits kept as cash.

Each is filled by :func:`~allocator.portfolio.fills.fill_orders_at_open`, as the strategy is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import pandas as pd

from allocator.backtest.prices import PriceTable
from allocator.portfolio.book import Book
from allocator.portfolio.fills import Order, fill_orders_at_open
from allocator.portfolio.session import deposit, value_at_close

BENCHMARK_SYMBOL = "SPY"
DAILY_COLUMNS = ["date", "deposit", "cash", "positions_value", "total_value"]


def simulate_rule(
    prices: PriceTable,
    sessions: list[dt.date],
    deposits: Sequence[float],
    orders_for: Callable[[Book], list[Order]],
    symbols: list[str],
) -> pd.DataFrame:
    """A benchmark: the same deposits, orders from ``orders_for(book)`` filled at each open."""
    opens = prices.rows(prices.opens, symbols, sessions)
    closes = prices.rows(prices.closes, symbols, sessions)
    book = Book()
    rows = []
    for day, amount in zip(sessions, deposits, strict=True):
        deposit(book, amount)
        orders = orders_for(book)
        if orders:
            _, book = fill_orders_at_open(orders, opens[day], book)
        value = value_at_close(book, closes[day])
        rows.append((day, amount, value.cash, value.positions_value, value.total_value))
    return pd.DataFrame(rows, columns=DAILY_COLUMNS)


def buy_with_cash(symbols: list[str]) -> Callable[[Book], list[Order]]:
    """Spend the available cash (whole cents) in equal parts on ``symbols`` at the open."""

    def orders(book: Book) -> list[Order]:
        cents = int(book.cash * 100 + 1e-6) // len(symbols)
        return [Order(s, "BUY", amount=cents / 100) for s in symbols] if cents > 0 else []

    return orders


def benchmarks(
    prices: PriceTable, sessions: list[dt.date], deposits: Sequence[float], assets: list[str]
) -> dict[str, pd.DataFrame]:
    """All into SPY (when its closes cover the period), equal weight into the assets, and cash."""
    out = {}
    if prices.has_every_close(BENCHMARK_SYMBOL, sessions):
        out["all SPY"] = simulate_rule(
            prices, sessions, deposits, buy_with_cash([BENCHMARK_SYMBOL]), [BENCHMARK_SYMBOL]
        )
    out["equal weight"] = simulate_rule(prices, sessions, deposits, buy_with_cash(assets), assets)
    out["cash"] = simulate_rule(prices, sessions, deposits, lambda book: [], assets)
    return out
