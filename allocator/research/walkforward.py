"""The walk-forward backtest: the product default tuned at every month's first session.

Each month's tuning (:func:`allocator.research.monthly.tune_month`) reads only what was known
before that session, and is judged by what came after: :func:`persistence` replays every
accepted change beside the config it replaced over the 12 months that followed, from the book
the strategy held that morning, so a reader sees whether what the tuner accepted still helped.
"""

from __future__ import annotations

import contextlib
import datetime as dt

import numpy as np
import pandas as pd

from allocator.backtest.engine import BacktestResult
from allocator.research.cluster import dask_client, scheduler_address
from allocator.research.monthly import (
    MonthlyTuning,
    Replay,
    bars_since,
    cluster_replay,
    months_before,
    walk_forward_retune,
)
from allocator.research.replay import load_bars_for, run_backtest
from allocator.shell import calendar
from allocator.strategy.config import TradingConfig
from allocator.tuning.acceptance import DESIGNS, TuningDesign, curve_metrics

#: Months after an accepted change over which it is judged.
AFTER_MONTHS = 12


def walk_forward_backtest(
    schedule,
    start,
    end,
    data_source,
    engine,
    csv_dir,
    workers,
    design: TuningDesign = DESIGNS["legacy"],
) -> BacktestResult:
    """The tuned backtest of [start, end] (module doc); ``workers`` > 0 replays on Dask.

    The result's ``tuning_log`` holds each month's tuning, and ``persistence`` how each accepted
    change did afterwards (:func:`persistence`).
    """
    first = bars_since(start, design)
    bars = load_bars_for(schedule, first, end, data_source, engine=engine, csv_dir=csv_dir)
    log: list[MonthlyTuning] = []
    states: dict = {}
    base = schedule.at(start).config
    with contextlib.ExitStack() as stack:
        client = shared = None
        if workers > 0:
            client = stack.enter_context(dask_client(scheduler_address(None), workers))
            shared = client.scatter(bars, broadcast=True)
        replay = cluster_replay(bars, client, shared)
        retune = walk_forward_retune(
            bars, replay, design=design, preset=base, log=log, states=states
        )
        result = run_backtest(bars, start, end, schedule, retune=retune)
        result.persistence = persistence(log, states, replay, result.end)
    result.tuning_log = log
    return result


def months_after(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` months after ``day``'s month."""
    return months_before(day, -months)


def persistence(log: list[MonthlyTuning], states: dict, replay: Replay, end: dt.date):
    """Every accepted change: its ``J`` gain in the window the tuner saw, and over the
    :data:`AFTER_MONTHS` months after it (the new config against the one it replaced, both
    from the book of that morning; NaN when those months reach past ``end``)."""
    rows = []
    for month in log:
        decision = month.decision
        if decision.new_config is None:
            continue
        day = month.tuning_date
        old = _replaced(decision.new_config, decision.changes)
        after = calendar.sessions_between(
            day, calendar.previous_session(months_after(day, AFTER_MONTHS))
        )
        gain_after = np.nan
        if after and after[-1] <= end:
            point = {k: v[1] for k, v in decision.changes.items()}
            current, changed = replay([{}, point], after, old, states.get(day))
            gain_after = (
                curve_metrics(changed, old)["objective"] - curve_metrics(current, old)["objective"]
            )
        chosen = decision.table.set_index("candidate").loc[decision.accepted]
        rows.append((day, decision.accepted, float(chosen["gain"]), gain_after))
    return pd.DataFrame(rows, columns=["date", "change", "gain_seen", "gain_after"])


def _replaced(new: TradingConfig, changes: dict[str, list]) -> TradingConfig:
    return new.with_changes(**{k: v[0] for k, v in changes.items()})


def persistence_summary(table: pd.DataFrame) -> dict[str, float]:
    """Counts, mean gains and the share of changes that still helped over the months after."""
    measured = table["gain_after"].dropna()
    return {
        "changes": len(table),
        "measured": len(measured),
        "mean_gain_seen": float(table["gain_seen"].mean()) if len(table) else np.nan,
        "mean_gain_after": float(measured.mean()) if len(measured) else np.nan,
        "share_positive_after": float((measured > 0).mean()) if len(measured) else np.nan,
        "rank_correlation": (
            float(table.loc[measured.index, "gain_seen"].rank().corr(measured.rank()))
            if len(measured) > 2
            else np.nan
        ),
    }
