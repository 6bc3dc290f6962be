"""The benchmarks: the strategy's deposits, on the same days, put into simple rules.

- **all SPY**: each session's cash, in whole cents, bought into SPY at the open;
- **equal weight**: the same into every asset of the strategy, in equal parts;
- **cash**: the deposits kept as cash.

The rules are defined order by order by :func:`simulate_rule`: orders from
:func:`buy_with_cash` filled by :func:`~allocator.portfolio.fills.fill_orders_at_open`, as the
strategy's are. :func:`benchmarks` computes the same numbers on arrays: the cash rule is a
running sum; the buying rules keep one pass over the sessions for what is truly sequential (each
day's whole cents depend on the cash left by the day before, and the fills on them), one
float per symbol and session, then value every session at once. Where the prices are not clean
(a missing or non-positive open or close of a rule's symbol) it falls back to
:func:`simulate_rule`, which gives the same numbers or names the missing price.

**Exposure-matched mixes.** A strategy that holds 60 % in SPY on average should be compared
with 60 % SPY plus cash, not only with all-SPY. At an exposure ``x`` (0..1; the strategy's own
average exposure, ``metrics.summary(daily)["exposure"]``, the mean over sessions of positions
value / total value at the close) and over ``n`` symbols (SPY alone: :data:`SPY_MIX`; the
strategy's assets: :data:`EQUAL_WEIGHT_MIX`), with the strategy's deposits ``d[t]``:

1. before the first session the book is empty;
2. on session ``t`` the deposit ``d[t]`` arrives in cash; at the open the book is worth
   ``W[t] = cash[t-1] + sum_j q[t-1, j] * O[t, j] + d[t]``;
3. at the open it is rebalanced: each symbol ``j`` gets ``x / n`` of ``W[t]``, that is
   ``q[t, j] = (x / n) * W[t] / O[t, j]`` shares, and ``cash[t] = (1 - x) * W[t]``;
4. at the close ``positions_value[t] = sum_j q[t, j] * C[t, j] = x * W[t] * k[t]`` with
   ``k[t] = mean_j C[t, j] / O[t, j]``, and ``total_value[t] = cash[t] + positions_value[t]``.

Shares are fractional floats, not rounded to the share grid or the cent, and nothing costs
anything: these are reference mixes, not ledgers. Steps 2-3 give
``W[t] = W[t-1] * (1 - x + x * g[t]) + d[t]`` with ``g[t] = mean_j O[t, j] / O[t-1, j]``, which
:func:`mix_values` computes in closed form, ``W[t] = P[t] * sum_{s<=t} d[s] / P[s]`` with
``P[t] = prod_{s<=t} (1 - x + x * g[s])`` (``g[0] = 1``): every term is positive, so the sums
lose nothing to cancellation. Their own measured exposure (at the close) differs from ``x`` only
by the day's move from open to close. At ``x = 0`` a mix is the cash rule, number for number; at
``x = 1`` the SPY mix is all-SPY without the rounding to whole cents and share steps. The equal
weight mix is rebalanced to equal parts every session, unlike the equal weight rule, which
never sells.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocator.backtest.prices import PriceTable
from allocator.exceptions import BacktestError
from allocator.money.quantities import (
    MAX_GRID_STEPS,
    QUANTITY_DECIMALS,
    share_steps_for_dollars,
    shares_for_dollars_each,
    steps_of,
)
from allocator.portfolio import metrics
from allocator.portfolio.book import Book
from allocator.portfolio.fills import Order, affordable_buy, fill_orders_at_open
from allocator.portfolio.session import deposit, value_at_close

BENCHMARK_SYMBOL = "SPY"
#: The exposure-matched mixes' names in ``benchmarks`` and in a backtest's comparison.
SPY_MIX = "SPY + cash at exposure"
EQUAL_WEIGHT_MIX = "equal weight + cash at exposure"
EXPOSURE_MATCHED = (SPY_MIX, EQUAL_WEIGHT_MIX)
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


def keep_cash(sessions: list[dt.date], deposits: Sequence[float]) -> pd.DataFrame:
    """The cash rule: the running sum of the deposits, nothing invested (no loop over days)."""
    cash = np.cumsum(np.asarray(deposits, dtype="float64")).tolist()  # sequential, as += is
    zero = [0] * len(cash)  # the sum over no position is the integer 0, as value_at_close's
    return pd.DataFrame(
        list(zip(sessions, deposits, cash, zero, cash, strict=True)), columns=DAILY_COLUMNS
    )


def buy_with_cash_rule(
    prices: PriceTable, sessions: list[dt.date], deposits: Sequence[float], symbols: list[str]
) -> pd.DataFrame:
    """:func:`simulate_rule` with :func:`buy_with_cash` (same numbers), on arrays."""
    order = sorted(symbols)  # the order the fills go in (fill_orders_at_open sorts by symbol)
    opens = prices.opens.reindex(index=sessions, columns=order).to_numpy()
    closes = prices.closes.reindex(index=sessions, columns=order).to_numpy()
    if not (_positive(opens) and _positive(closes)):
        return simulate_rule(prices, sessions, deposits, buy_with_cash(symbols), symbols)
    cash, steps, first = _fill_buys(opens, deposits, order)
    if steps.max(initial=0) >= MAX_GRID_STEPS:  # beyond what whole steps stand in for
        return simulate_rule(prices, sessions, deposits, buy_with_cash(symbols), symbols)
    values = steps / _STEPS_PER_SHARE * closes
    # value_at_close sums the positions in the order they were opened, from the integer 0.
    total = np.zeros(len(sessions))
    for j in sorted(range(len(order)), key=lambda j: first[j]):
        total = total + values[:, j]
    start = int(min(min(first), len(sessions)))  # before it no position: the integer 0
    positions = [0] * start + total[start:].tolist()
    value = (np.asarray(cash) + total).tolist()
    return pd.DataFrame(
        list(zip(sessions, deposits, cash, positions, value, strict=True)), columns=DAILY_COLUMNS
    )


def _positive(prices: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(prices) & (prices > 0)))


#: From this many symbols a day's buys are sized with numpy, below it one by one.
WIDE = 16
_STEPS_PER_SHARE = 10.0**QUANTITY_DECIMALS


def _fill_buys(
    opens: np.ndarray, deposits: Sequence[float], order: list[str]
) -> tuple[list[float], np.ndarray, list[float]]:
    """The sequential part of :func:`buy_with_cash_rule`: the cash after each session, the
    shares held after each session in whole steps of the share grid (sessions x symbols), and
    the session each symbol was first bought (``inf`` if never).

    Each session's BUYs fill as :func:`~allocator.portfolio.fills.fill_orders_at_open` fills
    them, one symbol after the other; holdings add up in whole steps, which is what
    :func:`~allocator.money.quantities.on_share_grid` gives for sums of grid quantities.
    """
    n, wide = len(order), len(order) >= WIDE
    cash = 0.0
    steps = np.zeros(n, dtype=np.int64) if wide else [0] * n  # a list is faster when narrow
    cash_rows, step_rows = [], []
    for t, (amount, row) in enumerate(zip(deposits, opens.tolist(), strict=True)):
        cash += amount
        cents = int(cash * 100 + 1e-6) // n
        if cents > 0:
            dollars = cents / 100
            after = _buy_wide(dollars, opens[t], cash, steps) if wide else None
            cash = _buy_each(dollars, row, cash, steps, order) if after is None else after
        cash_rows.append(cash)
        step_rows.append(steps.copy())
    step_rows = np.array(step_rows, dtype=np.int64).reshape(opens.shape)
    held = step_rows > 0
    first = [int(np.argmax(held[:, j])) if held[:, j].any() else np.inf for j in range(n)]
    return cash_rows, step_rows, first


def _buy_each(dollars: float, row: list[float], cash: float, steps, order) -> float:
    """One session's BUYs of ``dollars`` each, symbol by symbol: updates ``steps``, returns the
    cash left."""
    for j, quantity in enumerate(shares_for_dollars_each(dollars, row)):
        if quantity <= 0:
            continue
        price = row[j]
        cost = quantity * price
        if cost > cash:
            buy = Order(order[j], "BUY", amount=dollars)
            quantity, cost = affordable_buy(buy, price, cost, cash)
            if quantity <= 0:
                continue
        steps[j] += steps_of(quantity)
        cash -= cost
    return cash


def _buy_wide(dollars: float, row: np.ndarray, cash: float, steps: np.ndarray) -> float | None:
    """:func:`_buy_each` on arrays; None (nothing changed) when a quantity needs the decimal
    path or a BUY would exceed the cash."""
    bought = share_steps_for_dollars(dollars, row)
    if bought is None:
        return None
    cost = bought / _STEPS_PER_SHARE * row
    # the cash before each BUY and after the last, subtracted one by one as the fills do
    running = np.subtract.accumulate(np.concatenate(([cash], cost)))
    if (cost > running[:-1]).any():
        return None
    steps += bought
    return float(running[-1])


def benchmarks(
    prices: PriceTable,
    sessions: list[dt.date],
    deposits: Sequence[float],
    assets: list[str],
    exposure: float | None = None,
) -> dict[str, pd.DataFrame]:
    """All into SPY (when its closes cover the period), equal weight into the assets, and cash;
    with ``exposure`` (the strategy's; None or NaN: left out), the SPY mix (when all-SPY is
    there) and the equal weight mix at that exposure."""
    out = {}
    has_spy = prices.has_every_close(BENCHMARK_SYMBOL, sessions)
    if has_spy:
        out["all SPY"] = buy_with_cash_rule(prices, sessions, deposits, [BENCHMARK_SYMBOL])
    out["equal weight"] = buy_with_cash_rule(prices, sessions, deposits, assets)
    out["cash"] = keep_cash(sessions, deposits)
    if exposure is not None and math.isfinite(exposure):
        if has_spy:
            spy = risky_leg(prices, sessions, [BENCHMARK_SYMBOL])
            out[SPY_MIX] = exposure_matched_rule(spy, deposits, exposure)
        weights = risky_leg(prices, sessions, sorted(assets))
        out[EQUAL_WEIGHT_MIX] = exposure_matched_rule(weights, deposits, exposure)
    return out


# --- exposure-matched mixes (module doc) -------------------------------------------------------


@dataclass(frozen=True)
class RiskyLeg:
    """What a mix needs of its symbols' prices, one float per session: ``open_growth[t]`` =
    ``g[t]`` = mean over the symbols of ``O[t] / O[t-1]`` (1.0 on the first session, when
    nothing is held yet) and ``close_over_open[t]`` = ``k[t]`` = mean of ``C[t] / O[t]``.

    Computed once per period (:func:`risky_leg`), it serves a mix at any exposure."""

    symbols: tuple[str, ...]
    sessions: tuple[dt.date, ...]
    open_growth: np.ndarray
    close_over_open: np.ndarray


def risky_leg(prices: PriceTable, sessions: Sequence[dt.date], symbols: Sequence[str]) -> RiskyLeg:
    """The :class:`RiskyLeg` of ``symbols`` over ``sessions``; a missing or non-positive open
    or close raises :class:`BacktestError` naming the symbol and the session."""
    opens = prices.opens.reindex(index=list(sessions), columns=list(symbols)).to_numpy()
    closes = prices.closes.reindex(index=list(sessions), columns=list(symbols)).to_numpy()
    bad = ~(np.isfinite(opens) & (opens > 0) & np.isfinite(closes) & (closes > 0))
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise BacktestError(
            f"{symbols[j]}: no positive open and close on {sessions[t]}, which the "
            "exposure-matched benchmark needs: backfill that bar"
        )
    growth = np.ones(len(sessions))
    growth[1:] = (opens[1:] / opens[:-1]).mean(axis=1)
    return RiskyLeg(tuple(symbols), tuple(sessions), growth, (closes / opens).mean(axis=1))


def mix_values(
    leg: RiskyLeg, deposits: Sequence[float] | np.ndarray, exposure: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mix at ``exposure`` (module doc): cash, positions value and total value at each close.

    ``exposure`` must be within 0..1 and ``deposits`` hold one amount per session of ``leg``;
    otherwise ValueError naming the argument.
    """
    x = float(exposure)
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"exposure must be within 0..1 (a share of the value), got {exposure!r}")
    flows = np.asarray(deposits, dtype="float64")
    if flows.shape != leg.open_growth.shape:
        raise ValueError(
            f"deposits must hold one amount per session ({len(leg.open_growth)}), "
            f"got {flows.shape[0] if flows.ndim else 'a scalar'}"
        )
    scale = np.cumprod((1.0 - x) + x * leg.open_growth)  # P[t]
    at_open = scale * np.cumsum(flows / scale)  # W[t]
    cash = (1.0 - x) * at_open
    positions = x * at_open * leg.close_over_open
    return cash, positions, cash + positions


def exposure_matched_rule(
    leg: RiskyLeg, deposits: Sequence[float], exposure: float
) -> pd.DataFrame:
    """The mix at ``exposure`` as a daily frame (:data:`DAILY_COLUMNS`), for ``metrics.summary``."""
    cash, positions, total = mix_values(leg, deposits, exposure)
    return pd.DataFrame(
        {
            "date": list(leg.sessions),
            "deposit": list(deposits),
            "cash": cash,
            "positions_value": positions,
            "total_value": total,
        },
        columns=DAILY_COLUMNS,
    )


def exposure_matched_metrics(
    leg: RiskyLeg, deposits: Sequence[float] | np.ndarray, exposure: float
) -> dict[str, float]:
    """The mix's :data:`~allocator.portfolio.metrics.UNCHECKED_METRICS` (``twr``, ``cagr``,
    ``volatility``, ``sharpe``, ``max_drawdown``, its own measured ``exposure``), equal bit for
    bit to ``metrics.summary`` of :func:`exposure_matched_rule`'s frame, at a fraction of its
    cost: build ``leg`` once per period and call this once per config (a sweep)."""
    _, positions, total = mix_values(leg, deposits, exposure)
    flows = np.asarray(deposits, dtype="float64")
    return metrics.summary_unchecked(total, flows, positions)


def beats(strategy: Mapping[str, float], benchmark: Mapping[str, float]) -> bool:
    """Whether ``strategy`` beats ``benchmark`` on both a higher Sharpe ratio and a shallower
    maximum drawdown (drawdowns are negative: shallower is greater); False if either is NaN."""
    return bool(
        strategy["sharpe"] > benchmark["sharpe"]
        and strategy["max_drawdown"] > benchmark["max_drawdown"]
    )
