"""The backtest: the daily jobs' decision and fill functions replayed over a period, in memory.

For every session D in [start, end], exactly as the production day does it:

1. the signal for D: :func:`~.decision.decide` on the market state of the last close
   before D, with the config version active on D and the holdings of that morning;
2. the deposit of D's ``daily_capital`` into cash;
3. the fills of the signal's orders at D's open: :func:`~.fills.fill_orders_at_open`;
4. the valuation at D's close.

It reads bars and configs and writes nothing: production tables are never touched. Benchmarks get
the same deposits on the same days, filled by the same fill function.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from allocator.exceptions import AllocatorError, MissingBarsError
from allocator.portfolio import metrics
from allocator.portfolio.fills import (
    Book,
    Fill,
    Order,
    fill_orders_at_open,
    orders_from_allocations,
)
from allocator.shell import calendar
from allocator.strategy.config import TradingConfig
from allocator.strategy.decision import decide
from allocator.strategy.market_state import MarketState, market_states
from allocator.strategy.risk import required_history

BENCHMARK_SYMBOL = "SPY"


class BacktestError(AllocatorError):
    """The backtest cannot run over the period asked for (history, configs)."""


@dataclass(frozen=True)
class ScheduledConfig:
    """A config and the first date it applies (until the next one starts)."""

    start_date: dt.date
    config: TradingConfig
    version_id: int | None = None


class ConfigSchedule:
    """Which config applies on each date: stored versions, or one config for every date."""

    def __init__(self, entries: Sequence[ScheduledConfig], label: str):
        if not entries:
            raise BacktestError("the config schedule is empty: seed a config first")
        self.entries = sorted(entries, key=lambda e: e.start_date)
        self._starts = [e.start_date for e in self.entries]
        self.label = label

    @classmethod
    def constant(cls, config: TradingConfig, label: str = "given config") -> ConfigSchedule:
        return cls([ScheduledConfig(dt.date.min, config)], label)

    def at(self, day: dt.date) -> ScheduledConfig:
        i = bisect.bisect_right(self._starts, day) - 1
        if i < 0:
            raise BacktestError(f"no config applies on {day}: the first starts {self._starts[0]}")
        return self.entries[i]

    def configs(self, start: dt.date, end: dt.date) -> list[TradingConfig]:
        """The distinct configs that apply somewhere in [start, end]."""
        seen: list[TradingConfig] = []
        ends = [*self._starts[1:], dt.date.max]  # each entry applies until the next one starts
        for entry, next_start in zip(self.entries, ends, strict=True):
            if entry.start_date <= end and next_start > start and entry.config not in seen:
                seen.append(entry.config)
        return seen

    @property
    def symbols(self) -> list[str]:
        out: list[str] = []
        for e in self.entries:
            out += [s for s in e.config.assets if s not in out]
        return out


@dataclass
class BacktestResult:
    """Daily values, trades and signals of the strategy, its benchmarks and their metrics."""

    start: dt.date
    end: dt.date
    config_label: str
    daily: pd.DataFrame
    trades: pd.DataFrame
    signals: pd.DataFrame
    weights: pd.DataFrame
    book: Book
    benchmarks: dict[str, pd.DataFrame] = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    comparison: pd.DataFrame | None = None
    #: The config active on the last session (its thresholds label the regime chart).
    final_config: TradingConfig | None = None

    def curves(self) -> pd.DataFrame:
        """Total value of the strategy and each benchmark, dated index."""
        frame = {"strategy": self.daily.set_index("date")["total_value"]}
        for name, daily in self.benchmarks.items():
            frame[name] = daily.set_index("date")["total_value"]
        return pd.DataFrame(frame)

    def drawdown(self) -> pd.Series:
        d = self.daily.set_index("date")
        return metrics.drawdown_series(
            metrics.daily_returns_flow_adjusted(d["total_value"], d["deposit"])
        )

    def regime_risk(self) -> pd.DataFrame:
        return self.signals.set_index("date")[["regime", "risk"]]


@dataclass(frozen=True)
class PriceTable:
    """Opens and closes by date (wide, one column per symbol) for fast per-day lookups."""

    opens: pd.DataFrame
    closes: pd.DataFrame

    @classmethod
    def from_bars(cls, bars: pd.DataFrame) -> PriceTable:
        """From a long frame with columns symbol, date, open, close."""
        if bars.empty:
            raise MissingBarsError({}, "no bars to backtest on: backfill history first")
        opens = bars.pivot(index="date", columns="symbol", values="open").sort_index()
        closes = bars.pivot(index="date", columns="symbol", values="close").sort_index()
        opens.columns.name = closes.columns.name = None
        return cls(opens.astype("float64"), closes.astype("float64"))

    def rows(
        self, frame: pd.DataFrame, symbols: list[str], days: list[dt.date]
    ) -> dict[dt.date, dict[str, float]]:
        values = frame.reindex(index=days, columns=symbols).to_numpy()
        return {
            d: {s: v for s, v in zip(symbols, row, strict=True) if v == v}
            for d, row in zip(days, values, strict=True)
        }


def history_start(start: dt.date, schedule: ConfigSchedule) -> dt.date:
    """The first date of history the backtest needs before ``start`` (the signal's window)."""
    need = max(
        required_history(c) for c in schedule.configs(start, start + dt.timedelta(days=36500))
    )
    return calendar.last_n_sessions(calendar.previous_session(start), need)[0]


def _check_sessions(prices: PriceTable, symbols: list[str], sessions: list[dt.date]) -> None:
    table = prices.closes.reindex(index=sessions, columns=symbols)
    gaps = table.isna()
    if gaps.to_numpy().any():
        missing = {
            s: [str(d) for d in table.index[gaps[s].to_numpy()]][:5]
            for s in symbols
            if gaps[s].any()
        }
        detail = "; ".join(f"{s}: {', '.join(days)}" for s, days in missing.items())
        raise MissingBarsError(
            missing, f"bars missing inside the backtest period ({detail}): backfill them"
        )


def _states(
    prices: PriceTable, schedule: ConfigSchedule, start: dt.date, end: dt.date
) -> dict[TradingConfig, dict[dt.date, MarketState]]:
    """Market states of each config over the period only (the cost stays linear in sessions)."""
    out = {}
    for config in schedule.configs(start, end):
        first = calendar.last_n_sessions(
            calendar.previous_session(start), required_history(config)
        )[0]
        closes = prices.closes.loc[first : calendar.previous_session(end), list(config.assets)]
        out[config] = market_states(closes.dropna(how="all"), config)
    return out


def simulate_strategy(
    prices: PriceTable,
    sessions: list[dt.date],
    schedule: ConfigSchedule,
    *,
    progress: bool | None = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, Book]:
    """Run the daily decision and fills over ``sessions``: daily, trades, signals, weights, book."""
    from tqdm import tqdm

    start, end = sessions[0], sessions[-1]
    symbols = schedule.symbols
    _check_sessions(prices, symbols, sessions)
    states = _states(prices, schedule, start, end)
    opens = prices.rows(prices.opens, symbols, sessions)
    closes = prices.rows(prices.closes, symbols, sessions)
    index = {d: i for i, d in enumerate(prices.closes.index)}
    all_dates = list(prices.closes.index)

    book = Book()
    daily, trades, signals, weights = [], [], [], []
    for day in tqdm(
        sessions,
        desc="backtest",
        unit="day",
        disable=None if progress is None else not progress,
        mininterval=0.5,
    ):
        entry = schedule.at(day)
        config = entry.config
        i = index[day]
        if i == 0:
            raise BacktestError(f"no bar before {day}: the signal needs history before the start")
        as_of = all_dates[i - 1]
        state = states[config].get(as_of)
        if state is None:
            first = min(states[config]) if states[config] else None
            raise BacktestError(
                f"not enough history before {day}: the signal needs "
                f"{required_history(config)} closes per asset; the first date with a full "
                f"window is {first}; start later or backfill earlier"
            )
        decision = decide(state, config, book.holdings())
        book.cash += config.daily_capital
        orders = orders_from_allocations(decision.allocations, decision.sell_quantities)
        fills, book = fill_orders_at_open(orders, opens[day], book)
        day_closes = closes[day]
        positions_value = book.positions_value(day_closes)
        total = book.cash + positions_value
        daily.append(
            (
                day,
                config.daily_capital,
                book.cash,
                positions_value,
                total,
                decision.action,
                len(fills),
            )
        )
        signals.append(
            (
                day,
                decision.action,
                decision.regime,
                decision.risk,
                decision.allocation_pct,
                decision.confidence,
                entry.version_id,
            )
        )
        trades += [
            (
                day,
                f.symbol,
                f.action,
                f.quantity,
                f.price,
                f.amount,
                f.realized_pnl if f.action == "SELL" else np.nan,
            )
            for f in fills
        ]
        weights.append(
            {
                "date": day,
                **{s: p.quantity * day_closes[s] / total for s, p in book.positions.items()},
                "cash": book.cash / total,
            }
        )

    daily_frame = pd.DataFrame(
        daily,
        columns=["date", "deposit", "cash", "positions_value", "total_value", "action", "n_trades"],
    )
    trades_frame = pd.DataFrame(
        trades, columns=["date", "symbol", "action", "quantity", "price", "amount", "realized_pnl"]
    )
    signals_frame = pd.DataFrame(
        signals,
        columns=[
            "date",
            "action",
            "regime",
            "risk",
            "allocation_pct",
            "confidence",
            "config_version",
        ],
    )
    weights_frame = (
        pd.DataFrame(weights).set_index("date").reindex(columns=[*symbols, "cash"]).fillna(0.0)
    )
    return daily_frame, trades_frame, signals_frame, weights_frame, book


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
    for day, deposit in zip(sessions, deposits, strict=True):
        book.cash += deposit
        fills: list[Fill] = []
        orders = orders_for(book)
        if orders:
            fills, book = fill_orders_at_open(orders, opens[day], book)
        value = book.positions_value(closes[day])
        rows.append((day, deposit, book.cash, value, book.cash + value))
    return pd.DataFrame(rows, columns=["date", "deposit", "cash", "positions_value", "total_value"])


def _buy_with_cash(symbols: list[str]) -> Callable[[Book], list[Order]]:
    """Spend the available cash (whole cents) in equal parts on ``symbols`` at the open."""

    def orders(book: Book) -> list[Order]:
        cents = int(book.cash * 100 + 1e-6) // len(symbols)
        return [Order(s, "BUY", amount=cents / 100) for s in symbols] if cents > 0 else []

    return orders


def benchmarks(
    prices: PriceTable, sessions: list[dt.date], deposits: Sequence[float], assets: list[str]
) -> dict[str, pd.DataFrame]:
    """All into SPY at each open, equal weight into the assets, and cash — same deposits."""
    out = {}
    if (
        BENCHMARK_SYMBOL in prices.closes.columns
        and not prices.closes.reindex(index=sessions)[BENCHMARK_SYMBOL].isna().any()
    ):
        out["all SPY"] = simulate_rule(
            prices, sessions, deposits, _buy_with_cash([BENCHMARK_SYMBOL]), [BENCHMARK_SYMBOL]
        )
    out["equal weight"] = simulate_rule(prices, sessions, deposits, _buy_with_cash(assets), assets)
    out["cash"] = simulate_rule(prices, sessions, deposits, lambda book: [], assets)
    return out


COMPARED = (
    "twr",
    "cagr",
    "mwr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "final_value",
    "total_deposits",
    "n_trades",
    "exposure",
)


def run_backtest(
    bars: pd.DataFrame,
    start: dt.date | str,
    end: dt.date | str,
    schedule: ConfigSchedule,
    *,
    with_benchmarks: bool = True,
    progress: bool | None = False,
) -> BacktestResult:
    """Backtest the strategy over the sessions in [start, end] on ``bars``.

    ``bars`` is a long frame (symbol, date, open, close, …) holding at least the configured
    assets from :func:`history_start` to ``end`` (and SPY for its benchmark).
    """
    start, end = calendar.to_date(start, "start"), calendar.to_date(end, "end")
    sessions = calendar.sessions_between(start, end)
    if not sessions:
        raise BacktestError(f"no NYSE session between {start} and {end}")
    prices = PriceTable.from_bars(bars)
    daily, trades, signals, weights, book = simulate_strategy(
        prices, sessions, schedule, progress=progress
    )
    result = BacktestResult(
        sessions[0], sessions[-1], schedule.label, daily, trades, signals, weights, book
    )
    result.final_config = schedule.at(sessions[-1]).config
    result.metrics = metrics.summary(daily, trades)
    if with_benchmarks:
        assets = list(schedule.at(sessions[-1]).config.assets)
        result.benchmarks = benchmarks(prices, sessions, daily["deposit"].tolist(), assets)
        rows = {"strategy": {k: result.metrics[k] for k in COMPARED}}
        for name, frame in result.benchmarks.items():
            m = metrics.summary(frame)
            rows[name] = {k: m.get(k, np.nan) for k in COMPARED}
            rows[name]["n_trades"] = np.nan
        result.comparison = pd.DataFrame(rows).T
    return result
