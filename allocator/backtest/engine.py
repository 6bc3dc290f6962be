"""The backtest: the daily session step replayed over given sessions, in memory.

For every session D, exactly as the production day does it
(:func:`~allocator.portfolio.session.step_session`):

1. the signal for D: the decision on the market state of the last close before D, with the
   config version active on D and the holdings of that morning;
2. the deposit of D's ``daily_capital`` into cash;
3. the fills of the signal's orders at D's open;
4. the valuation at D's close.

It reads bars and configs and writes nothing. Benchmarks get the same deposits on the same days
(:mod:`~allocator.backtest.benchmarks`), the exposure-matched mixes at the strategy's own average
exposure. The caller gives the sessions (the NYSE calendar is the
shell's: see :func:`allocator.jobs.backtest.run_backtest`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from allocator.backtest.benchmarks import EXPOSURE_MATCHED, benchmarks
from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule
from allocator.exceptions import BacktestError
from allocator.portfolio import metrics
from allocator.portfolio.book import Book
from allocator.portfolio.session import SessionOutcome, StrategyState, step_session
from allocator.strategy.config import TradingConfig
from allocator.strategy.market_state import MarketState, MarketStateTable, market_state_table
from allocator.strategy.risk import required_history

DAILY_COLUMNS = ["date", "deposit", "cash", "positions_value", "total_value", "action", "n_trades"]
TRADE_COLUMNS = ["date", "symbol", "action", "quantity", "price", "amount", "realized_pnl"]
SIGNAL_COLUMNS = [
    "date",
    "action",
    "regime",
    "risk",
    "allocation_pct",
    "confidence",
    "config_version",
]
#: The metrics of the strategy and the benchmarks side by side in ``comparison``.
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
#: The column of ``comparison`` that records the exposure the mixes were matched to (the
#: strategy's average exposure; NaN on the other rows).
MATCHED_EXPOSURE = "matched_exposure"


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
    #: Walk-forward tuning: the sessions a new config started on, and the config.
    config_changes: list[tuple[dt.date, TradingConfig]] = field(default_factory=list)
    #: Walk-forward tuning: each month's tuning (set by the caller that tuned).
    tuning_log: list = field(default_factory=list)

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

    def exposure(self) -> pd.DataFrame:
        """Per session: ``exposure`` (positions value / total value) and the ``cash`` held."""
        d = self.daily.set_index("date")
        return pd.DataFrame(
            {"exposure": d["positions_value"] / d["total_value"], "cash": d["cash"]}
        )


@dataclass(frozen=True)
class StrategyRun:
    """The strategy's own results over the sessions: four named frames and the final book."""

    daily: pd.DataFrame
    trades: pd.DataFrame
    signals: pd.DataFrame
    weights: pd.DataFrame
    book: Book
    #: Walk-forward tuning: the sessions a new config started on, and the config.
    config_changes: list[tuple[dt.date, TradingConfig]] = field(default_factory=list)


class _Recorder:
    """Collects each session's outcome into the rows of the result frames.

    Weights: the shares held after each session are kept per symbol (changed only where a fill
    happened) and valued at the closes once, when the frames are built.
    """

    def __init__(self, symbols: list[str], closes: np.ndarray, book: Book | None = None):
        self.symbols = symbols
        self.daily: list[tuple] = []
        self.trades: list[tuple] = []
        self.signals: list[tuple] = []
        self.dates: list[dt.date] = []
        self.config_changes: list[tuple[dt.date, TradingConfig]] = []
        self._closes = closes  # sessions x symbols
        self._column = {s: j for j, s in enumerate(symbols)}
        held = book.holdings() if book is not None else {}
        self._held = [held.get(s, 0.0) for s in symbols]
        self._shares: list[list[float]] = []

    def add(self, outcome: SessionOutcome, version_id: int | None, book: Book) -> None:
        d, v = outcome.decision, outcome.valuation
        day, total = outcome.day, v.total_value
        self.daily.append(
            (day, outcome.deposit, v.cash, v.positions_value, total, d.action, len(outcome.fills))
        )
        self.signals.append(
            (day, d.action, d.regime, d.risk, d.allocation_pct, d.confidence, version_id)
        )
        self.trades += [
            (day, f.symbol, f.action, f.quantity, f.price, f.amount)
            + (f.realized_pnl if f.action == "SELL" else np.nan,)
            for f in outcome.fills
        ]
        for f in outcome.fills:
            j = self._column.get(f.symbol)
            if j is not None:
                held = book.positions.get(f.symbol)
                self._held[j] = held.quantity if held is not None else 0.0
        self.dates.append(day)
        self._shares.append(list(self._held))

    def weights(self) -> pd.DataFrame:
        """Each position's share of the total value (``quantity x close / total``; 0.0 for a
        symbol not held), then the cash's share, per session."""
        n = len(self.dates)
        shares = np.array(self._shares, dtype="float64").reshape(n, len(self.symbols))
        daily = np.array([row[2:5] for row in self.daily], dtype="float64").reshape(n, 3)
        cash, total = daily[:, 0], daily[:, 2]
        with np.errstate(invalid="ignore"):
            held = np.where(shares > 0, shares * self._closes[:n] / total[:, None], 0.0)
        return pd.DataFrame(
            np.column_stack([held, cash / total]),
            index=pd.Index(self.dates, name="date"),
            columns=[*self.symbols, "cash"],
        )

    def result(self, book: Book) -> StrategyRun:
        return StrategyRun(
            daily=pd.DataFrame(self.daily, columns=DAILY_COLUMNS),
            trades=pd.DataFrame(self.trades, columns=TRADE_COLUMNS),
            signals=pd.DataFrame(self.signals, columns=SIGNAL_COLUMNS),
            weights=self.weights(),
            book=book,
            config_changes=list(self.config_changes),
        )


class MarketStates:
    """Market state tables by config, computed once per (assets, lookback) over the period only
    (the cost stays linear in sessions); a config's weights and thresholds do not change its
    states, only its scores (which the table computes once per pair of weights)."""

    def __init__(self, prices: PriceTable, sessions: list[dt.date]):
        self.prices = prices
        dates = prices.dates
        self._dates = dates
        self._first, self._last = dates.index(sessions[0]), dates.index(sessions[-1])
        self._cache: dict[tuple, MarketStateTable | None] = {}

    def of(self, config: TradingConfig) -> MarketStateTable | None:
        """The states of ``config``: from ``required_history`` bars before the first session to
        the last close before the last session (None when that window is empty)."""
        key = (config.assets, config.lookback_days)
        if key not in self._cache:
            start = max(0, self._first - required_history(config))
            window = self._dates[start : self._last]
            if not window:
                self._cache[key] = None
            else:
                closes = self.prices.closes.loc[window[0] : window[-1], list(config.assets)]
                self._cache[key] = market_state_table(closes.dropna(how="all"), config)
        return self._cache[key]


def _state_row(as_of: dt.date | None, states: MarketStateTable | None) -> int | None:
    """The row of the state at the close ``as_of``; None when there is none."""
    return None if as_of is None or states is None else states.row_of.get(as_of)


def first_full_window_day(dates: list[dt.date], states: MarketStateTable | None) -> dt.date | None:
    """The first of ``dates`` whose previous date has a state: the first day a backtest may start.

    The same rule :func:`_state_before` checks (a day needs the state of the close before it).
    """
    pairs = zip(dates, dates[1:], strict=False)
    return next((day for before, day in pairs if _state_row(before, states) is not None), None)


def _state_before(
    day: dt.date,
    dates: list[dt.date],
    i: int,
    states: MarketStateTable | None,
    config: TradingConfig,
) -> MarketState:
    """The market state of the last close before ``day`` (``dates[i]``), or a clear error."""
    as_of = dates[i - 1] if i > 0 else None
    if as_of is None:
        raise BacktestError(f"no bar before {day}: the signal needs history before the start")
    row = _state_row(as_of, states)
    if row is None:
        first = first_full_window_day(dates, states)
        raise BacktestError(
            f"not enough history before {day}: the signal needs "
            f"{required_history(config)} closes per asset; the first date with a full "
            f"window is {first}; start later or backfill earlier"
        )
    return states.state(row)


#: ``retune(day, run_so_far, config)``: a new config from the first session of a month on, or None.
Retune = Callable[[dt.date, "StrategyRun", TradingConfig], "TradingConfig | None"]


def simulate(
    prices: PriceTable,
    sessions: list[dt.date],
    schedule: ConfigSchedule,
    *,
    on_session: Callable[[dt.date], None] | None = None,
    retune: Retune | None = None,
    initial: StrategyState | None = None,
) -> StrategyRun:
    """Run :func:`~allocator.portfolio.session.step_session` over ``sessions`` on an empty book,
    or on a copy of ``initial`` (a book and the previous session's regime label: a replay that
    continues the strategy's own book).

    ``on_session(day)`` is called after each session (a progress bar, for one). With ``retune``,
    the first session of every month after the first asks it for a new config, given the run so
    far (walk-forward tuning); the new config applies from that session on.
    """
    symbols = schedule.symbols
    prices.require_sessions(symbols, sessions)
    states = MarketStates(prices, sessions)
    opens = prices.rows(prices.opens, symbols, sessions)
    closes = prices.rows(prices.closes, symbols, sessions)
    index = {d: i for i, d in enumerate(prices.dates)}
    dates = prices.dates
    state = (
        StrategyState()
        if initial is None
        else StrategyState(initial.book.copy(), initial.previous_label)
    )
    recorder = _Recorder(
        symbols, prices.closes.reindex(index=sessions, columns=symbols).to_numpy(), state.book
    )
    tuned: TradingConfig | None = None
    config = table = None
    assets: frozenset[str] = frozenset()
    for k, day in enumerate(sessions):
        entry = schedule.at(day)
        if retune is not None and k > 0 and day.month != sessions[k - 1].month:
            new = retune(day, recorder.result(state.book.copy()), tuned or entry.config)
            if new is not None and new != (tuned or entry.config):
                recorder.config_changes.append((day, new))
                tuned = new
        if (tuned or entry.config) is not config:
            config = tuned or entry.config
            table = states.of(config)
            assets = frozenset(config.assets)
        i = index[day]
        market = _state_before(day, dates, i, table, config)
        outside = state.book.positions.keys() - assets  # held, but dropped by the config
        last = prices.last_closes(sorted(outside), market.as_of) if outside else None
        outcome = step_session(state, day, market, config, opens[day], closes[day], last)
        recorder.add(outcome, entry.version_id, state.book)
        if on_session is not None:
            on_session(day)
    return recorder.result(state.book)


def backtest_sessions(
    bars: pd.DataFrame,
    sessions: list[dt.date],
    schedule: ConfigSchedule,
    *,
    with_benchmarks: bool = True,
    on_session: Callable[[dt.date], None] | None = None,
    retune: Retune | None = None,
) -> BacktestResult:
    """Backtest the strategy over ``sessions`` (ascending trade dates) on ``bars``.

    ``bars`` is a long frame (symbol, date, open, close, …) holding the configured assets from
    ``required_history`` sessions before the first session to the last (and SPY for its
    benchmark). Raises :class:`BacktestError` or :class:`MissingBarsError` naming what is missing.
    """
    if not sessions:
        raise BacktestError("no session to backtest: the period holds no NYSE session")
    prices = PriceTable.from_bars(bars)
    run = simulate(prices, sessions, schedule, on_session=on_session, retune=retune)
    result = BacktestResult(
        sessions[0],
        sessions[-1],
        schedule.label,
        run.daily,
        run.trades,
        run.signals,
        run.weights,
        run.book,
    )
    result.final_config = (
        run.config_changes[-1][1] if run.config_changes else schedule.at(sessions[-1]).config
    )
    result.config_changes = run.config_changes
    result.metrics = metrics.summary(run.daily, run.trades)
    if with_benchmarks:
        assets = list(result.final_config.assets)
        deposits = run.daily["deposit"].tolist()
        exposure = result.metrics["exposure"]
        result.benchmarks = benchmarks(prices, sessions, deposits, assets, exposure)
        result.comparison = comparison_table(result.metrics, result.benchmarks)
    return result


def comparison_table(strategy: dict, benchmark_daily: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The :data:`COMPARED` metrics of the strategy and of each benchmark, one row each, and
    :data:`MATCHED_EXPOSURE`: the strategy's exposure on the exposure-matched mixes' rows."""
    rows = {"strategy": {k: strategy[k] for k in COMPARED}}
    for name, frame in benchmark_daily.items():
        m = metrics.summary(frame)
        rows[name] = {k: m.get(k, np.nan) for k in COMPARED}
        rows[name]["n_trades"] = np.nan
    table = pd.DataFrame(rows).T
    table[MATCHED_EXPOSURE] = [
        strategy["exposure"] if name in EXPOSURE_MATCHED else np.nan for name in table.index
    ]
    return table
