"""The arrays the replay kernel reads, built from bars and kept across replays.

:class:`MarketArrays` holds the opens and closes of every bar date and, per (assets,
lookback_days), the market state table over the whole history
(:func:`~allocator.strategy.market_state.market_state_table`) with its score matrix per pair of
score weights. A state's numbers depend only on the fixed trailing window of closes ending at
its date (:mod:`allocator.strategy.features`), so the whole-history table gives, for each date,
exactly the state :class:`allocator.backtest.engine.MarketStates` computes over a run's own
window; a walk-forward's hundreds of windows share one table.

:func:`layout` checks that the reference would run a replay on exactly these states (every
session has a close of every scheduled symbol, and each config's window, ``lookback_days`` bar
dates before the first session up to the last, has every close of its assets) and
:func:`kernel_inputs` lays it out for :func:`allocator.research.kernel.replay`
(:class:`Inputs`, and :class:`KernelBook` for the book). Otherwise ``layout`` returns None and
the caller runs the reference :func:`~allocator.backtest.engine.simulate`, which then does what
it does (raises its error, or replays a history with gaps on the states of that run's window).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import astuple, dataclass, field
from typing import NamedTuple

import numpy as np

from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule
from allocator.exceptions import MissingBarsError
from allocator.portfolio.book import Book
from allocator.portfolio.fills import FillCosts
from allocator.portfolio.session import StrategyState
from allocator.research import kernel
from allocator.strategy.config import SPELL_START, TradingConfig
from allocator.strategy.market_state import MarketStateTable, market_state_table
from allocator.strategy.ranking import composite_score


class Inputs(NamedTuple):
    """The arrays of one replay (``kernel_inputs``): per session ``s`` the index of its config
    in ``params`` (one row per config, see ``P_*``) and the market state of the last close
    before it; per session and symbol ``j`` its score and close in that state (NaN when ``j``
    is not one of the config's assets), its last close on or before it (a dropped holding's
    price), and its open and close on the session; ``name_rank`` orders the symbols by name."""

    config_of: np.ndarray
    params: np.ndarray
    regime: np.ndarray
    risk: np.ndarray
    scores: np.ndarray
    state_close: np.ndarray
    outside_close: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    name_rank: np.ndarray


class KernelBook(NamedTuple):
    """The book as arrays: cash, shares and average cost per symbol, and the symbols held in
    insertion order (the first ``n_held`` of ``order``); ``n_trades`` counts the fills."""

    cash: np.ndarray
    qty: np.ndarray
    avg: np.ndarray
    order: np.ndarray
    n_held: np.ndarray
    n_trades: np.ndarray


@dataclass
class StateArrays:
    """The market states of one (assets, lookback_days) for every date, as arrays."""

    table: MarketStateTable
    #: Per bar date of the price table: the table's row of that date, -1 where it has none.
    row_at: np.ndarray
    regime: np.ndarray
    risk: np.ndarray
    close: np.ndarray
    _scores: dict[tuple[float, float], np.ndarray] = field(default_factory=dict)

    def scores(self, config: TradingConfig) -> np.ndarray:
        """Rows x assets composite scores with ``config``'s weights (``score_row``'s numbers)."""
        key = (config.momentum_weight, config.price_momentum_weight)
        if key not in self._scores:
            t = self.table
            self._scores[key] = composite_score(t.fields[-2], t.fields[-1], t.consistent, config)
        return self._scores[key]


class MarketArrays:
    """Opens, closes and the last close on or before each date, by bar date and symbol, and
    the state arrays of each (assets, lookback_days), computed once."""

    def __init__(self, prices: PriceTable):
        self.prices = prices
        self.dates: list[dt.date] = prices.dates
        self.date_index = {d: i for i, d in enumerate(self.dates)}
        self.column = {s: j for j, s in enumerate(prices.closes.columns)}
        self.closes = prices.closes.to_numpy(dtype="float64")
        self.opens = prices.opens.reindex(columns=prices.closes.columns).to_numpy(dtype="float64")
        self.last_close = prices.closes.ffill().to_numpy(dtype="float64")
        self._states: dict[tuple[tuple[str, ...], int], StateArrays | None] = {}

    def states(self, config: TradingConfig) -> StateArrays | None:
        """The whole-history states of ``config``'s assets and lookback (None when the history
        has a gap after its first complete window: such runs go to the reference)."""
        key = (config.assets, config.lookback_days)
        if key not in self._states:
            self._states[key] = self._build_states(config)
        return self._states[key]

    def _build_states(self, config: TradingConfig) -> StateArrays | None:
        if any(s not in self.column for s in config.assets):
            return None
        closes = self.prices.closes.loc[:, list(config.assets)].dropna(how="all")
        try:
            table = market_state_table(closes, config)
        except MissingBarsError:
            return None
        row_at = np.full(len(self.dates), -1, dtype=np.int64)
        for row, day in enumerate(table.dates):
            row_at[self.date_index[day]] = row
        return StateArrays(
            table, row_at, np.array(table.regime), np.array(table.risk), table.fields[0]
        )

    def rows_of(self, sessions: list[dt.date]) -> np.ndarray:
        """The bar date index of each session (-1 for a session without bars)."""
        return np.array([self.date_index.get(d, -1) for d in sessions], dtype=np.int64)

    def clean_window(self, config: TradingConfig, first: int, last: int) -> bool:
        """Whether the reference's window of ``config`` for a run from bar date ``first`` to
        ``last`` holds ``lookback_days`` dates before ``first`` and every close of its assets."""
        if first < config.lookback_days or any(s not in self.column for s in config.assets):
            return False
        columns = [self.column[s] for s in config.assets]
        return not np.isnan(self.closes[first - config.lookback_days : last][:, columns]).any()


@dataclass(frozen=True)
class Layout:
    """How a run's arrays map back to names: the symbols (columns of the kernel's arrays),
    the sessions, the config of each, and the scheduled symbols (the weights' columns)."""

    sessions: list[dt.date]
    symbols: list[str]
    scheduled: list[str]
    configs: list[TradingConfig]
    config_of: np.ndarray
    version_of: list[int | None]
    session_rows: np.ndarray


def config_rows(configs: list[TradingConfig]) -> np.ndarray:
    """One row of kernel parameters (``kernel.P_*``) per config."""
    return np.array(
        [
            [
                c.daily_capital,
                c.regime_bullish_threshold,
                c.regime_bearish_threshold,
                c.risk_high_threshold,
                c.risk_medium_threshold,
                c.allocation_low_risk,
                c.allocation_medium_risk,
                c.allocation_high_risk,
                c.allocation_neutral,
                c.sell_percentage,
                c.cash_deploy_rate,
                1.0 if c.sell_trigger == SPELL_START else 0.0,
                *astuple(FillCosts.of(c)),
            ]
            for c in configs
        ],
        dtype="float64",
    ).reshape(len(configs), kernel.N_PARAMS)


def _schedule_of(
    schedule: ConfigSchedule, sessions: list[dt.date]
) -> tuple[list[TradingConfig], np.ndarray, list] | None:
    """The configs in use, each session's index among them and its version id (None when a
    session precedes the first entry: the reference raises)."""
    if len(schedule.entries) == 1:  # one config for every date (sweeps, tuning replays)
        entry = schedule.entries[0]
        if entry.start_date > sessions[0]:
            return None
        return (
            [entry.config],
            np.zeros(len(sessions), dtype=np.int64),
            [entry.version_id] * len(sessions),
        )
    starts = np.array([e.start_date.toordinal() for e in schedule.entries])
    days = np.array([d.toordinal() for d in sessions])
    entry = np.searchsorted(starts, days, side="right") - 1
    if (entry < 0).any():
        return None
    used = sorted(set(entry.tolist()))
    position = {e: i for i, e in enumerate(used)}
    config_of = np.array([position[e] for e in entry.tolist()], dtype=np.int64)
    versions = [schedule.entries[e].version_id for e in entry.tolist()]
    return [schedule.entries[e].config for e in used], config_of, versions


def layout(
    market: MarketArrays,
    sessions: list[dt.date],
    session_rows: np.ndarray,
    schedule: ConfigSchedule,
    initial: StrategyState | None,
) -> Layout | None:
    """The run's names and indices, or None when the reference must run it (module doc);
    ``session_rows`` are the sessions' bar date indices (:meth:`MarketArrays.rows_of`)."""
    scheduled = schedule.symbols
    of = _schedule_of(schedule, sessions)
    if of is None or session_rows.min() < 0 or any(s not in market.column for s in scheduled):
        return None
    rows = session_rows.tolist()
    columns = [market.column[s] for s in scheduled]
    if np.isnan(market.closes[session_rows][:, columns]).any():
        return None
    configs, config_of, versions = of
    first, last = rows[0], rows[-1]
    for config in configs:
        states = market.states(config)
        if states is None or not market.clean_window(config, first, last):
            return None
    extra = [s for s in (initial.book.positions if initial else ()) if s not in scheduled]
    return Layout(
        sessions, scheduled + extra, scheduled, configs, config_of, versions, session_rows
    )


def _columns(market: MarketArrays, values: np.ndarray, rows: np.ndarray, symbols: list[str]):
    """``values[rows]`` for ``symbols`` (NaN for a symbol without bars)."""
    out = np.full((len(rows), len(symbols)), np.nan)
    for j, symbol in enumerate(symbols):
        if symbol in market.column:
            out[:, j] = values[rows, market.column[symbol]]
    return out


def kernel_inputs(market: MarketArrays, run: Layout) -> Inputs:
    """The kernel's arrays of a run laid out by :func:`layout`."""
    n, m = len(run.sessions), len(run.symbols)
    as_of = run.session_rows - 1
    regime, risk = np.empty(n), np.empty(n)
    scores, state_close = np.full((n, m), np.nan), np.full((n, m), np.nan)
    at = {s: j for j, s in enumerate(run.symbols)}
    for c, config in enumerate(run.configs):
        mine = np.flatnonzero(run.config_of == c)
        states = market.states(config)
        rows = states.row_at[as_of[mine]]
        regime[mine], risk[mine] = states.regime[rows], states.risk[rows]
        columns = [at[s] for s in config.assets]
        scores[np.ix_(mine, columns)] = states.scores(config)[rows]
        state_close[np.ix_(mine, columns)] = states.close[rows]
    # the reference's opens and closes cover the scheduled symbols only
    priced = [s if s in run.scheduled else "" for s in run.symbols]
    names = sorted(run.symbols)
    return Inputs(
        run.config_of,
        config_rows(run.configs),
        regime,
        risk,
        scores,
        state_close,
        _columns(market, market.last_close, as_of, run.symbols),
        _columns(market, market.opens, run.session_rows, priced),
        _columns(market, market.closes, run.session_rows, priced),
        np.array([names.index(s) for s in run.symbols], dtype=np.int64),
    )


def kernel_book(book: Book, symbols: list[str]) -> KernelBook | None:
    """``book`` as the kernel's arrays over ``symbols`` (None for a book the kernel does not
    model: a position of no positive finite quantity or a non-finite cost or cash)."""
    at = {s: j for j, s in enumerate(symbols)}
    m = len(symbols)
    qty, avg = np.zeros(m), np.zeros(m)
    order = np.zeros(m, dtype=np.int64)
    for i, (symbol, p) in enumerate(book.positions.items()):
        if not (np.isfinite(p.quantity) and p.quantity > 0 and np.isfinite(p.avg_cost)):
            return None
        j = at[symbol]
        qty[j], avg[j], order[i] = float(p.quantity), float(p.avg_cost), j
    if not np.isfinite(book.cash):
        return None
    n = np.array([len(book.positions)], dtype=np.int64)
    return KernelBook(np.array([float(book.cash)]), qty, avg, order, n, np.zeros(1, dtype=np.int64))
