"""One month's tuning with its replays: the step the tune job and the walk-forward backtest share.

Not a job itself. :func:`tune_month` analyses the months looked back on
(:func:`allocator.tuning.tuner.analyse`), replays the current config and every candidate over the
trailing window with the production backtest (:func:`allocator.research.cluster.run_points`, on Dask
or serially), and decides (:func:`allocator.tuning.tuner.decide_change`). Only data dated before
the tuning date is read: the closes and trades are cut there, and each replay ends the session
before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from allocator.backtest.engine import StrategyRun
from allocator.research.cluster import run_points
from allocator.shell import calendar
from allocator.strategy.config import TradingConfig
from allocator.strategy.risk import required_history
from allocator.tuning.tuner import (
    TuningAnalysis,
    TuningDecision,
    TuningInputs,
    analyse,
    decide_change,
    replay_points,
)

#: Months of trades scored, and months of sessions each candidate is replayed over.
MONTHS, REPLAY_MONTHS = 3, 12
#: Sessions of closes read before the first trade (the conditions' window and the market index).
CLOSES_BEFORE = 40
#: Fewer replayable sessions than this (a quarter) and the month is not tuned.
MIN_REPLAY_SESSIONS = 63

Replay = Callable[[list[dict], list[dt.date], TradingConfig], list[dict]]


@dataclass(frozen=True)
class MonthlyTuning:
    """What one tuning date did: the analysis, the replays' decision, and the windows used."""

    tuning_date: dt.date
    analysis: TuningAnalysis
    decision: TuningDecision
    looked_back_from: dt.date
    replay_sessions: list[dt.date]


def months_before(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` months before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def replay_sessions(day: dt.date, months: int = REPLAY_MONTHS) -> list[dt.date]:
    """The sessions of the ``months`` months before ``day`` (``day`` excluded)."""
    start = months_before(day, months)
    return calendar.sessions_between(start, calendar.previous_session(day))


def replayable(sessions: list[dt.date], bars: pd.DataFrame, config: TradingConfig) -> list:
    """The ``sessions`` that have the signal's full history in ``bars`` for every asset."""
    held = bars[bars["symbol"].isin(config.assets)]
    if held.empty or held["symbol"].nunique() < len(config.assets):
        return []
    latest_start = held.groupby("symbol")["date"].min().max()
    dates = sorted(held.loc[held["date"] >= latest_start, "date"].unique())
    need = required_history(config)
    if len(dates) <= need:
        return []
    return [s for s in sessions if s >= dates[need]]


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


def tune_month(
    inputs: TuningInputs,
    replay: Replay,
    bars: pd.DataFrame,
    *,
    replay_months: int = REPLAY_MONTHS,
) -> MonthlyTuning:
    """Analyse, replay the current config and every candidate, decide (module doc).

    Nothing changes when the analysis lacks something (no trades, no complete window, too
    little history) or fewer than :data:`MIN_REPLAY_SESSIONS` sessions can be replayed.
    """
    analysis = analyse(inputs)
    sessions = replayable(replay_sessions(inputs.tuning_date, replay_months), bars, inputs.config)
    since = months_before(inputs.tuning_date, MONTHS)
    if len(sessions) < MIN_REPLAY_SESSIONS:
        analysis.notes.append(
            f"too little history to replay the candidates ({len(sessions)} sessions with a full "
            f"signal window in the {replay_months} months before; {MIN_REPLAY_SESSIONS} needed)"
        )
    if analysis.notes:
        why = analysis.notes
        decision = TuningDecision(pd.DataFrame(), None, None, "; ".join(why) + ": the config stays")
        return MonthlyTuning(inputs.tuning_date, analysis, decision, since, sessions)
    points = replay_points(analysis)
    decision = decide_change(analysis, replay(points, sessions, inputs.config), inputs.config)
    return MonthlyTuning(inputs.tuning_date, analysis, decision, since, sessions)


def cluster_replay(bars: pd.DataFrame, client=None, shared=None) -> Replay:
    """Replays on ``client``'s Dask cluster (``shared``: bars scattered there), or serially."""

    def replay(points, sessions, config):
        return run_points(client, bars, sessions, config, points, shared=shared)

    return replay


def walk_forward_retune(
    bars: pd.DataFrame, replay: Replay, *, months: int = MONTHS, log: list | None = None
):
    """A ``retune`` hook for :func:`allocator.backtest.engine.simulate`: tune at every month's
    first session with the run so far and the bars before it; ``log`` collects each month."""

    def retune(day: dt.date, run: StrategyRun, config: TradingConfig) -> TradingConfig | None:
        tuning = tune_month(inputs_from_run(day, run, bars, config, months), replay, bars)
        if log is not None:
            log.append(tuning)
        return tuning.decision.new_config

    return retune
