"""A backtest over a period, as the backtest, study and walk-forward jobs call it.

:func:`run_backtest_job` reads the period's bars and config schedule
(:mod:`allocator.research.replay`) and replays them, or, for ``config_source="walk_forward"``,
runs the tuned backtest of :mod:`allocator.research.walkforward`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from allocator.backtest.engine import BacktestResult
from allocator.exceptions import BacktestError, JobError
from allocator.research.replay import (
    PRESET_NAMES,
    WALK_FORWARD,
    build_schedule,
    load_bars_for,
    parse_overrides,
    run_backtest,
)
from allocator.research.walkforward import walk_forward_backtest
from allocator.shell import calendar
from allocator.shell.settings import Settings
from allocator.tuning.acceptance import DEFAULT_DESIGN, design_named


def run_backtest_job(
    start: dt.date | str,
    end: dt.date | str | None = None,
    *,
    config_source: str = "history",
    overrides: dict[str, Any] | str | None = None,
    data_source: str = "database",
    csv_dir: str | None = None,
    settings: Settings | None = None,
    progress: bool | None = False,
    workers: int = 0,
    design: str = DEFAULT_DESIGN,
) -> BacktestResult:
    """Backtest [start, end] (end default: the latest stored session) as the notebook calls it.

    ``config_source="walk_forward"`` tunes at every month's first session (the replays on a local
    Dask cluster of ``workers`` processes, or in this process when ``workers`` is 0) with the
    tuning ``design`` (:data:`allocator.tuning.acceptance.DESIGNS`); the result's ``tuning_log``
    holds each month's tuning and ``persistence`` how each accepted change did afterwards.
    """
    start = calendar.to_date(start, "start")
    overrides = parse_overrides(overrides)
    needs_db = data_source == "database" or config_source not in (*PRESET_NAMES, WALK_FORWARD)
    with contextlib.ExitStack() as stack:
        engine = None
        if needs_db:
            from allocator.shell.persistence.migrate import migrated_engine

            engine = stack.enter_context(migrated_engine(settings))
        if end is None:
            end = (
                _latest_stored_session(engine)
                if engine is not None
                else calendar.previous_session(calendar.today_eastern())
            )
        end = calendar.to_date(end, "end")
        if end < start:
            raise JobError(f"end {end} is before start {start}")
        schedule = build_schedule(config_source, overrides, engine)
        if config_source == WALK_FORWARD:
            return walk_forward_backtest(
                schedule, start, end, data_source, engine, csv_dir, workers, design_named(design)
            )
        bars = load_bars_for(schedule, start, end, data_source, engine=engine, csv_dir=csv_dir)
        return run_backtest(bars, start, end, schedule, progress=progress)


def _latest_stored_session(engine) -> dt.date:
    from allocator.shell.persistence.prices import latest_bar_date

    with engine.connect() as conn:
        last = latest_bar_date(conn)
    if last is None:
        raise BacktestError("price_history is empty: backfill history first")
    return last
