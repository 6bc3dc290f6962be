"""Replays for research on the compiled kernel, equal to the production backtest.

A :class:`Replayer` is built once from bars and replays any number of config schedules over
any sessions (:mod:`allocator.research.kernel`): sweeps, the study, the tuner's candidates and
the walk-forward's months. It keeps the market state table of each (assets, lookback_days) and
its scores per pair of weights across calls (:mod:`allocator.research.kernel_inputs`).

- :meth:`Replayer.run`: a :class:`~allocator.backtest.engine.StrategyRun` per schedule, frames
  equal to :func:`~allocator.backtest.engine.simulate`'s;
- :meth:`Replayer.daily`: only the daily values, as arrays (the tuner's curves);
- :meth:`Replayer.metrics_rows`: the rows :func:`allocator.backtest.sweep.evaluate` returns.

``run`` and ``daily`` accept ``initial``: a :class:`~allocator.portfolio.session.StrategyState`
(a book and the previous session's regime label) to continue from instead of an empty book.

A run the kernel does not model (a history with gaps in a config's window, a missing bar, an
error the reference raises) is handed to the reference, :func:`simulate`, so the answer, or the
error, is always the reference's. ``tests/test_kernel.py`` proves the equality on random configs
and histories.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from allocator.backtest import sweep
from allocator.backtest.benchmarks import BENCHMARK_SYMBOL, RiskyLeg, risky_leg
from allocator.backtest.engine import (
    DAILY_COLUMNS,
    SIGNAL_COLUMNS,
    TRADE_COLUMNS,
    StrategyRun,
    simulate,
)
from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule
from allocator.exceptions import BacktestError
from allocator.portfolio.book import Book, Position
from allocator.portfolio.session import StrategyState
from allocator.research import kernel
from allocator.research.kernel_inputs import (
    Inputs,
    KernelBook,
    Layout,
    MarketArrays,
    kernel_book,
    kernel_inputs,
    layout,
)
from allocator.research.kernel_metrics import metrics_row
from allocator.strategy.config import TradingConfig
from allocator.strategy.decision import _clarity, _confidence, allocation_pct_for_risk
from allocator.strategy.regime import BEARISH, BULLISH, regime_label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DailyArrays:
    """A replay's daily values at each close, as arrays (``simulate``'s daily frame's numbers)."""

    dates: list[dt.date]
    deposit: np.ndarray
    cash: np.ndarray
    positions_value: np.ndarray
    total_value: np.ndarray
    trade_amounts: np.ndarray


@dataclass(frozen=True)
class _Replayed:
    """The kernel's answer for one run, with the layout that names its columns."""

    run: Layout
    inputs: Inputs
    book: KernelBook
    daily: np.ndarray
    actions: np.ndarray
    held: np.ndarray
    trades: np.ndarray
    tint: np.ndarray

    @property
    def n_trades(self) -> int:
        return int(self.book.n_trades[0])

    def deposits(self) -> np.ndarray:
        return self.inputs.params[self.run.config_of, kernel.P_CAPITAL]


class _Sessions(list):
    """Sessions with their bar date indices, looked up once per call."""

    def __init__(self, sessions, rows: np.ndarray):
        super().__init__(sessions)
        self.rows = rows


def as_schedule(schedule: ConfigSchedule | TradingConfig) -> ConfigSchedule:
    """A schedule, or one config for every date."""
    if isinstance(schedule, TradingConfig):
        return ConfigSchedule.constant(schedule)
    return schedule


class Replayer:
    """Replays config schedules over sessions of one history (module doc)."""

    def __init__(self, bars: pd.DataFrame | PriceTable):
        prices = bars if isinstance(bars, PriceTable) else PriceTable.from_bars(bars)
        self.market = MarketArrays(prices)
        #: Runs handed to the reference (the tests check it stays 0 where the kernel models all).
        self.fallbacks = 0

    @property
    def prices(self) -> PriceTable:
        return self.market.prices

    def run(
        self,
        sessions: Sequence[dt.date],
        schedules: Sequence[ConfigSchedule | TradingConfig],
        initial: StrategyState | None = None,
    ) -> list[StrategyRun]:
        """:func:`simulate` of each schedule (or config) over ``sessions`` from ``initial``."""
        out, sessions = [], self._sessions(sessions)
        for schedule in map(as_schedule, schedules):
            replayed = self._replay(sessions, schedule, initial)
            if replayed is None:
                out.append(self._reference(sessions, schedule, initial))
            else:
                out.append(strategy_run(replayed))
        return out

    def daily(
        self,
        sessions: Sequence[dt.date],
        schedules: Sequence[ConfigSchedule | TradingConfig],
        initial: StrategyState | None = None,
    ) -> list[DailyArrays]:
        """The daily values of each replay (``run(...)[i].daily``'s numbers) and its fills'
        amounts, without building frames."""
        out, sessions = [], self._sessions(sessions)
        for schedule in map(as_schedule, schedules):
            replayed = self._replay(sessions, schedule, initial)
            if replayed is None:
                ref = self._reference(sessions, schedule, initial)
                out.append(_daily_of_frames(ref.daily, ref.trades))
            else:
                out.append(_daily_of(replayed))
        return out

    def metrics_rows(
        self,
        sessions: Sequence[dt.date],
        base: TradingConfig,
        points: Sequence[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """:func:`~allocator.backtest.sweep.evaluate` of each point (``base`` with the point's
        changes) over ``sessions``: the same rows, computed from the kernel's arrays.

        From an empty book only, as ``evaluate``: ``summary``'s flow-adjusted returns would count
        a starting book's value as the first session's return (replays that continue a book
        take :meth:`daily` and judge their curves themselves)."""
        configs = [base.with_changes(**sweep._coerced(p)) for p in points]
        curves = self.daily(sessions, configs)
        leg = self.spy_leg(sessions)
        return [_row(p, d, leg) for p, d in zip(points, curves, strict=True)]

    def spy_leg(self, sessions: Sequence[dt.date]) -> RiskyLeg | None:
        """``sweep.spy_leg_of`` from the price table: SPY's leg over ``sessions``, or None when
        SPY has no close on one of them."""
        if not self.prices.has_every_close(BENCHMARK_SYMBOL, list(sessions)):
            return None
        return risky_leg(self.prices, sessions, [BENCHMARK_SYMBOL])

    def _reference(self, sessions, schedule, initial) -> StrategyRun:
        self.fallbacks += 1
        log.debug("replay handed to the reference engine (%d so far)", self.fallbacks)
        return simulate(self.prices, list(sessions), schedule, initial=initial)

    def _sessions(self, sessions: Sequence[dt.date]) -> _Sessions:
        if not len(sessions):
            raise BacktestError("no session to replay: the period holds no NYSE session")
        return _Sessions(sessions, self.market.rows_of(list(sessions)))

    def _replay(self, sessions: _Sessions, schedule, initial) -> _Replayed | None:
        run = layout(self.market, sessions, sessions.rows, schedule, initial)
        book = run and kernel_book(initial.book if initial else Book(), run.symbols)
        if book is None:
            return None
        x = kernel_inputs(self.market, run)
        bearish = initial is not None and initial.previous_label == BEARISH
        previous = kernel.BEARISH if bearish else kernel.UNKNOWN
        daily, actions, held, trades, tint, _, error, _ = kernel.replay(
            x, book, previous, kernel.constants()
        )
        if error:
            return None
        return _Replayed(run, x, book, daily, actions, held, trades, tint)


def _row(point: dict[str, Any], d: DailyArrays, leg: RiskyLeg | None) -> dict[str, Any]:
    """``evaluate``'s row of ``point`` from its replay's daily arrays."""
    row: dict[str, Any] = {k: sweep._plain(v) for k, v in point.items()}
    strategy = metrics_row(d.deposit, d.cash, d.positions_value, d.trade_amounts)
    row.update(strategy)
    row.update(sweep.spy_mix_columns(leg, d.deposit, strategy))
    return {k: row[k] for k in [*point, *sweep.METRICS]}


def _daily_of(r: _Replayed) -> DailyArrays:
    cash, positions = r.daily[:, 0], r.daily[:, 1]
    amounts = r.trades[: r.n_trades, 2]
    return DailyArrays(r.run.sessions, r.deposits(), cash, positions, cash + positions, amounts)


def _daily_of_frames(daily: pd.DataFrame, trades: pd.DataFrame) -> DailyArrays:
    def floats(frame: pd.DataFrame, column: str) -> np.ndarray:
        return frame[column].to_numpy(dtype="float64") if len(frame) else np.zeros(0)

    return DailyArrays(
        list(daily["date"]),
        floats(daily, "deposit"),
        floats(daily, "cash"),
        floats(daily, "positions_value"),
        floats(daily, "total_value"),
        floats(trades, "amount"),
    )


# --- the kernel's arrays as simulate's frames ----------------------------------------------------


def strategy_run(r: _Replayed) -> StrategyRun:
    """The :class:`StrategyRun` :func:`simulate` returns for the same run."""
    run = r.run
    configs = [run.configs[c] for c in run.config_of.tolist()]
    cash, positions = r.daily[:, 0].tolist(), r.daily[:, 1].tolist()
    empty = (r.held == 0).all(axis=1).tolist()
    # an empty book's positions value is sum() of nothing: the int 0
    values = [0 if e else v for e, v in zip(empty, positions, strict=True)]
    actions = [kernel.ACTIONS[a] for a in r.actions.tolist()]
    daily = pd.DataFrame(
        list(
            zip(
                run.sessions,
                [c.daily_capital for c in configs],
                cash,
                values,
                [c + v for c, v in zip(cash, values, strict=True)],
                actions,
                r.daily[:, 3].astype(int).tolist(),
                strict=True,
            )
        ),
        columns=DAILY_COLUMNS,
    )
    return StrategyRun(
        daily=daily,
        trades=_trades_frame(r),
        signals=_signals_frame(r, configs, actions),
        weights=_weights_frame(r, cash),
        book=_final_book(r),
    )


def _trades_frame(r: _Replayed) -> pd.DataFrame:
    n = r.n_trades
    sessions, symbols = r.run.sessions, r.run.symbols
    rows = [
        (sessions[s], symbols[j], kernel.ACTIONS[a], q, p, amount, pnl)
        for (s, j, a), (q, p, amount, pnl) in zip(
            r.tint[:n].tolist(), r.trades[:n].tolist(), strict=True
        )
    ]
    return pd.DataFrame(rows, columns=TRADE_COLUMNS)


def _signals_frame(r: _Replayed, configs: list[TradingConfig], actions: list[str]):
    """The signal rows; ``confidence`` and a BUY's ``allocation_pct`` as ``decide`` makes them."""
    rows = []
    regimes, risks = r.inputs.regime.tolist(), r.inputs.risk.tolist()
    pcts = r.daily[:, 2].tolist()
    for day, action, regime, risk, pct, config, version in zip(
        r.run.sessions, actions, regimes, risks, pcts, configs, r.run.version_of, strict=True
    ):
        agreement = risk / 100.0 if action == "SELL" else 1.0 - risk / 100.0
        if action == "BUY":
            bullish = regime_label(regime, config) == BULLISH
            pct = allocation_pct_for_risk(risk, config) if bullish else config.allocation_neutral
        confidence = _confidence(_clarity(regime, config), agreement)
        rows.append((day, action, regime, risk, pct, confidence, version))
    return pd.DataFrame(rows, columns=SIGNAL_COLUMNS)


def _weights_frame(r: _Replayed, cash: list[float]) -> pd.DataFrame:
    """``_Recorder.weights``: each scheduled symbol's share of the total value, then cash's."""
    run = r.run
    k = len(run.scheduled)  # the scheduled symbols come first in run.symbols
    shares = r.held[:, :k]
    cash_array = np.array(cash, dtype="float64")
    total = cash_array + r.daily[:, 1]
    closes = r.inputs.closes[:, :k]
    with np.errstate(invalid="ignore"):
        held = np.where(shares > 0, shares * closes / total[:, None], 0.0)
    return pd.DataFrame(
        np.column_stack([held, cash_array / total]),
        index=pd.Index(run.sessions, name="date"),
        columns=[*run.scheduled, "cash"],
    )


def _final_book(r: _Replayed) -> Book:
    b, symbols = r.book, r.run.symbols
    order = b.order[: int(b.n_held[0])].tolist()
    positions = {symbols[j]: Position(symbols[j], float(b.qty[j]), float(b.avg[j])) for j in order}
    return Book(float(b.cash[0]), positions)
