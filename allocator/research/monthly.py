"""One month's tuning with its replays: the step the tune job and the walk-forward backtest share.

Not a job itself. :func:`tune_month` analyses the months looked back on
(:func:`allocator.tuning.tuner.analyse`), replays the current config and every candidate over
the window of the tuning design (:mod:`allocator.tuning.acceptance`: how far back, from which
book) with a :data:`Replay` (the research kernel, or :func:`reference_replay`), and decides
(:func:`allocator.tuning.tuner.decide_change`). Only data dated before the tuning date is read:
the closes and trades are cut there, and each replay ends the session before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

from allocator.backtest.engine import StrategyRun, simulate
from allocator.backtest.prices import PriceTable
from allocator.backtest.schedule import ConfigSchedule
from allocator.portfolio.session import StrategyState
from allocator.research.replayer import Replayer
from allocator.shell import calendar
from allocator.strategy.config import TradingConfig
from allocator.strategy.regime import regime_label
from allocator.strategy.risk import required_history
from allocator.tuning.acceptance import DESIGNS, Curve, TuningDesign
from allocator.tuning.tuner import (
    TuningAnalysis,
    TuningDecision,
    TuningInputs,
    analyse,
    decide_change,
    replay_points,
)

#: Months of trades scored (the design document's look-back).
MONTHS = 3
#: The replay window of the legacy design (and the bars a 12-month replay needs before a date).
REPLAY_MONTHS = 12
#: Sessions of closes read before the first trade (the conditions' window and the market index).
CLOSES_BEFORE = 40
#: Months of bars a replay may reach back when the design's window is not capped (``None``),
#: and the earliest date it reads (the calendar starts in 1990; a window needs a year before).
HISTORY_MONTHS = 12 * 30
EARLIEST = dt.date(1991, 1, 2)
#: Sessions in a month, for a design's least history in months.
SESSIONS_PER_MONTH = 21

#: ``replay(points, sessions, config, initial)``: one :class:`Curve` per point (config changes on
#: ``config``), replayed over ``sessions`` from ``initial`` (None: an empty book).
Replay = Callable[[list[dict], list[dt.date], TradingConfig, StrategyState | None], list[Curve]]


@dataclass(frozen=True)
class BookHistory:
    """The strategy's own book on the mornings of past sessions, for continuing-book replays:
    ``state_at(day)`` is the book and the previous regime label before ``day``'s session, for
    ``day`` a month's first session or ``first_session`` (when the strategy started)."""

    first_session: dt.date
    state_at: Callable[[dt.date], StrategyState]


@dataclass(frozen=True)
class MonthlyTuning:
    """What one tuning date did: the analysis, the replays' decision, and the windows used."""

    tuning_date: dt.date
    analysis: TuningAnalysis
    decision: TuningDecision
    looked_back_from: dt.date
    replay_sessions: list[dt.date]
    design: TuningDesign = DESIGNS["legacy"]
    #: Whether the replays started from the strategy's own book (else from an empty one).
    continuing_book: bool = False


def months_before(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def bars_since(day: dt.date, design: TuningDesign) -> dt.date:
    """The first date of bars a tuning on ``day`` may read with ``design`` (its window, and a
    month more; all history from :data:`EARLIEST` when the window is not capped)."""
    return max(months_before(day, (design.replay_months or HISTORY_MONTHS) + 1), EARLIEST)


def replay_sessions(day: dt.date, months: int = REPLAY_MONTHS) -> list[dt.date]:
    """The sessions of the ``months`` months before ``day`` (``day`` excluded)."""
    start = months_before(day, months)
    return calendar.sessions_between(start, calendar.previous_session(day))


def replayable(sessions: list[dt.date], bars: pd.DataFrame, config: TradingConfig) -> list:
    """The ``sessions`` that have the signal's full history in ``bars`` for every asset."""
    first = first_full_session(bars, config)
    return [] if first is None else [s for s in sessions if s >= first]


#: :func:`first_full_session` by (bars, assets, lookback): the walk-forward asks every month.
#: Each entry keeps its bars alive, so an ``id`` is never reused while it is cached.
_FIRST_FULL: dict[tuple, tuple[pd.DataFrame, dt.date | None]] = {}
_FIRST_FULL_SIZE = 16


def first_full_session(bars: pd.DataFrame, config: TradingConfig) -> dt.date | None:
    """The first date of ``bars`` with the signal's full history for every asset of ``config``
    (None: never)."""
    key = (id(bars), config.assets, config.lookback_days)
    if key in _FIRST_FULL:
        return _FIRST_FULL[key][1]
    held = bars[bars["symbol"].isin(config.assets)]
    first = None
    if not held.empty and held["symbol"].nunique() == len(config.assets):
        latest_start = held.groupby("symbol")["date"].min().max()
        dates = sorted(held.loc[held["date"] >= latest_start, "date"].unique())
        need = required_history(config)
        first = dates[need] if len(dates) > need else None
    if len(_FIRST_FULL) >= _FIRST_FULL_SIZE:
        del _FIRST_FULL[next(iter(_FIRST_FULL))]
    _FIRST_FULL[key] = (bars, first)
    return first


def closes_before(bars: pd.DataFrame, day: dt.date, since: dt.date, symbols) -> pd.DataFrame:
    """Wide closes of ``symbols`` dated before ``day``, from ``CLOSES_BEFORE`` sessions before
    ``since``."""
    first = calendar.last_n_sessions(calendar.previous_session(since), CLOSES_BEFORE)[0]
    known = bars[(bars["date"] < day) & (bars["date"] >= first) & bars["symbol"].isin(symbols)]
    wide = known.pivot(index="date", columns="symbol", values="close").sort_index()
    return wide.reindex(columns=list(symbols)).astype("float64")


def inputs_from_run(
    day: dt.date, run: StrategyRun, bars: pd.DataFrame, config: TradingConfig, months: int
) -> TuningInputs:
    """The tuning inputs of ``day`` from a backtest's run so far (the walk-forward path)."""
    since = months_before(day, months)

    def window(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[(frame["date"] >= since) & (frame["date"] < day)].reset_index(drop=True)

    return TuningInputs(
        tuning_date=day,
        config=config,
        trades=window(run.trades),
        signals=window(run.signals)[["date", "action"]],
        daily=window(run.daily)[["date", "deposit", "total_value"]],
        closes=closes_before(bars, day, since, config.assets),
    )


def replay_window(
    day: dt.date,
    design: TuningDesign,
    bars: pd.DataFrame,
    config: TradingConfig,
    history: BookHistory | None = None,
) -> tuple[list[dt.date], StrategyState | None]:
    """The sessions the candidates are replayed over on ``day`` and the book they start from.

    The design's ``replay_months`` before ``day`` (all of history with ``None``), cut to the
    sessions with a full signal window in ``bars``; with ``continuing_book`` and a ``history``,
    cut to the strategy's own sessions too and started from its book on that morning.
    """
    start = (
        months_before(day, design.replay_months) if design.replay_months else dt.date(1990, 1, 1)
    )
    continuing = design.continuing_book and history is not None
    if continuing:
        start = max(start, history.first_session)
    sessions = calendar.sessions_between(start, calendar.previous_session(day))
    sessions = replayable(sessions, bars, config)
    if not continuing or not sessions:
        return sessions, None
    return sessions, history.state_at(sessions[0])


def tune_month(
    inputs: TuningInputs,
    replay: Replay,
    bars: pd.DataFrame,
    *,
    design: TuningDesign = DESIGNS["legacy"],
    history: BookHistory | None = None,
    preset: TradingConfig | None = None,
) -> MonthlyTuning:
    """Analyse, replay the current config and every candidate, decide (module doc).

    Nothing changes when the analysis lacks something (no trades, no complete window, too
    little history) or the replay window is shorter than the design's ``min_replay_months``.
    """
    analysis = analyse(inputs)
    sessions, initial = replay_window(inputs.tuning_date, design, bars, inputs.config, history)
    since = months_before(inputs.tuning_date, MONTHS)
    need = design.min_replay_months * SESSIONS_PER_MONTH
    if len(sessions) < need:
        analysis.notes.append(
            f"too little history to replay the candidates ({len(sessions)} sessions with a full "
            f"signal window before the tuning date; the {design.name} design needs {need})"
        )
    done = partial(
        MonthlyTuning,
        inputs.tuning_date,
        analysis,
        looked_back_from=since,
        replay_sessions=sessions,
        design=design,
        continuing_book=initial is not None,
    )
    if analysis.notes:
        why = analysis.notes
        decision = TuningDecision(pd.DataFrame(), None, None, "; ".join(why) + ": the config stays")
        return done(decision=decision)
    points = replay_points(analysis)
    curves = replay(points, sessions, inputs.config, initial)
    return done(decision=decide_change(analysis, curves, inputs.config, design, preset))


def proposed_only(tuning: MonthlyTuning) -> MonthlyTuning:
    """``tuning`` with its accepted change proposed, not applied (the tune job without
    ``apply``): the config stays, the report shows the change."""
    d = tuning.decision
    reason = f"proposed, not applied (-p apply True applies it): {d.reason}"
    return replace(tuning, decision=TuningDecision(d.table, d.accepted, None, reason))


def curve_of(daily: pd.DataFrame) -> Curve:
    """A replay's :class:`Curve` from its daily frame (date, deposit, positions_value,
    total_value)."""
    return Curve(
        np.array(daily["date"].to_numpy(), dtype="datetime64[D]"),
        daily["deposit"].to_numpy(dtype="float64"),
        daily["total_value"].to_numpy(dtype="float64"),
        daily["positions_value"].to_numpy(dtype="float64"),
    )


def reference_replay(bars: pd.DataFrame) -> Replay:
    """Replays with the production engine (:func:`allocator.backtest.engine.simulate`), in this
    process: the reference the research kernel must equal."""
    prices = PriceTable.from_bars(bars)

    def replay(points, sessions, config, initial=None):
        return [
            curve_of(
                simulate(
                    prices,
                    sessions,
                    ConfigSchedule.constant(config.with_changes(**point)),
                    initial=initial,
                ).daily
            )
            for point in points
        ]

    return replay


def walk_forward_retune(
    bars: pd.DataFrame,
    replay: Replay,
    *,
    months: int = MONTHS,
    design: TuningDesign = DESIGNS["legacy"],
    preset: TradingConfig | None = None,
    log: list | None = None,
    states: dict | None = None,
):
    """A ``retune`` hook for :func:`allocator.backtest.engine.simulate`: tune at every month's
    first session with the run so far and the bars before it; ``log`` collects each month, and
    ``states`` the strategy's book on each of those mornings (continuing-book replays read it)."""
    states = {} if states is None else states

    def retune(day: dt.date, run: StrategyRun, config: TradingConfig) -> TradingConfig | None:
        states[day] = morning_state(run, config)
        history = BookHistory(run.daily["date"].iloc[0], lambda d: states.get(d, StrategyState()))
        tuning = tune_month(
            inputs_from_run(day, run, bars, config, months),
            replay,
            bars,
            design=design,
            history=history,
            preset=preset,
        )
        if log is not None:
            log.append(tuning)
        return tuning.decision.new_config

    return retune


def morning_state(run: StrategyRun, config: TradingConfig) -> StrategyState:
    """The book and the last decision's regime label after the run so far (a copy)."""
    label = None
    if len(run.signals):
        label = regime_label(float(run.signals["regime"].iloc[-1]), config)
    return StrategyState(run.book.copy(), label)


def kernel_replay(bars: pd.DataFrame) -> Replay:
    """Replays on the research kernel (:class:`~allocator.research.replayer.Replayer`, proven
    equal to :func:`reference_replay`), in this process; the market states are built once."""
    replayer = Replayer(bars)

    def replay(points, sessions, config, initial=None):
        configs = [config.with_changes(**point) for point in points]
        dates = np.array(sessions, dtype="datetime64[D]")
        return [
            Curve(dates, d.deposit, d.total_value, d.positions_value)
            for d in replayer.daily(sessions, configs, initial)
        ]

    return replay


def replay_curve(bars, sessions, config, point, initial=None) -> Curve:
    """One replay with the production engine (a Dask task of :func:`cluster_replay`)."""
    return reference_replay(bars)([point], sessions, config, initial)[0]


def cluster_replay(bars: pd.DataFrame, client=None, shared=None) -> Replay:
    """Replays on ``client``'s Dask cluster (``shared``: the bars scattered there), or in this
    process when ``client`` is None."""
    if client is None:
        return kernel_replay(bars)

    def replay(points, sessions, config, initial=None):
        data = shared if shared is not None else client.scatter(bars, broadcast=True)
        futures = [
            client.submit(replay_curve, data, sessions, config, p, initial, pure=False)
            for p in points
        ]
        return client.gather(futures)

    return replay
